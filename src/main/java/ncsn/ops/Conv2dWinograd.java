package ncsn.ops;

import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;
import ncsn.cpu.Gemm;
import ncsn.cpu.GemmKernel;
import ncsn.cpu.Parallel;
import ncsn.cpu.Simd;
import ncsn.tensor.DType;
import ncsn.tensor.Scope;
import ncsn.tensor.Tensor;

/**
 * float32 3x3 convolution, stride 1, by Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray,
 * 2016): each 2x2 block of outputs ("tile") costs 16 multiplies per channel pair instead of 36,
 * 2.25x fewer, for a few additions per tile to transform inputs, weights and outputs.
 *
 * <p>With d the dilation and p the padding, a tile covers output rows {r, r+d} and columns
 * {c, c+d} and reads the 4x4 input points (r - p + d*i, c - p + d*j), i, j in 0..3. Every output
 * pixel lies in exactly one tile when the tile corners are the rows and columns whose index
 * divided by d is even: a dilated convolution is d*d interleaved undilated ones, and this
 * covers each with ordinary 2x2 tiles. For one tile and channel pair, with g the 3x3 filter and z
 * the 4x4 input patch:
 * <pre>
 *   U = G g G^T    (4x4)    G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
 *   V = B^T z B    (4x4)    B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *   M = sum over input channels of U .* V
 *   Y = A^T M A    (2x2)    A^T = [1 1 1 0; 0 1 -1 -1]
 * </pre>
 * The sum over channels, for all tiles of a block at once, is 16 matrix products (one per
 * element xi of the 4x4): M_xi [Co, T] = U_xi [Co, Ci] * V_xi [Ci, T], run on {@link Gemm}'s
 * kernel with U packed once per call. Blocks are whole rows of tiles (of any images) sized to
 * keep V and M in L2; workers take blocks from a counter. Every output element is computed by
 * the same operations whatever the block, its position in it, or the thread (the GEMM kernel
 * computes each column of C alone), so results do not depend on the batch or the thread count.
 *
 * <p>Backward-data of a stride-1 3x3 convolution is itself one: dx = conv(dy, w'), w' [Ci, Co]
 * the filters rotated by 180 degrees, padding 2d - p, same dilation ({@link #backwardData}).
 * Backward-weight stays im2col + GEMM ({@link Conv2d.Cpu}).
 *
 * <p>Accuracy: the transforms only add, subtract and halve, so float32 results stay within a few
 * roundings of the direct sum (Conv2dWinogradTest compares with the float64 reference at the
 * catalog's 1e-5 of max |y|). Used by {@link Conv2d.Cpu}'s default entry points when
 * {@link #applies}, which needs {@code -Dncsn.conv.winograd=on}: it is OFF by default.
 *
 * <p>Why off (2026-11-28): alone (one core, batch 32, steady state) 64ch 28x28 forward took
 * 14.5-15.7 ms against im2col's 16.0-19.0 and 128ch 14x14 13.8-14.1 against 14.0-15.1, and the
 * one-thread sampling step 1.00-1.28 s against 1.28-1.64 s. But in a long training run JFR's
 * allocation samples showed the Vector API transforms boxing their vectors in steady state
 * (tens of GB of garbage: Pick.apply, inputRows, outputRows), i.e. C2 did not turn them into
 * intrinsics there as it did in the kernel benchmark, and the batch-128 step got slower. The
 * GEMMs are half of Winograd's time; the transforms need a form C2 compiles reliably (no
 * shuffles or masks held in objects) before this can be the default.
 */
final class Conv2dWinograd {
    private Conv2dWinograd() {}

    /**
     * -Dncsn.conv.winograd=on routes eligible convolutions here; off by default (see the class
     * comment: inside the whole engine its Vector API transforms were not compiled to intrinsics).
     */
    static final boolean ENABLED = "on".equalsIgnoreCase(System.getProperty("ncsn.conv.winograd", "off"));

    /**
     * Fewer channels than this on either side go to im2col: with Ci = 1 (the first layer) the
     * 16 products would have depth 1, and with Co = 1 a single row; im2col's depth 9*Ci wins.
     */
    static final int MIN_CHANNELS = 16;

    /** Floats of V and M per block (768 KiB of the 1 MiB L2, leaving room for U_xi). */
    private static final int BLOCK_FLOATS = 192 * 1024;

    /** Whether the default forward (and, channels swapped, backward-data) of g goes through here. */
    static boolean applies(Conv2d.Dims g) {
        return ENABLED && supports(g) && Math.min(g.ci(), g.co()) >= MIN_CHANNELS;
    }

    /** The geometries this class can compute: 3x3, padding 0..2d (so that backward-data is one too). */
    static boolean supports(Conv2d.Dims g) {
        return g.kh() == 3 && g.kw() == 3 && g.pad() <= 2 * g.dil();
    }

    /** Vector API transforms ({@link Vec}) when the engine uses the Vector API; read once. */
    private static final boolean VECTOR = Simd.vectorEnabled();

    /** y [N,Co,Ho,Wo] (overwritten) = conv(x, w) + b; b may be null. */
    static void forward(GemmKernel kernel, Conv2d.Dims g, float[] x, float[] w, float[] b, float[] y) {
        forward(kernel, VECTOR, g, x, w, b, y);
    }

    /** dx [N,Ci,H,W] (overwritten) from dy [N,Co,Ho,Wo] and w: the convolution of dy with w rotated and transposed. */
    static void backwardData(GemmKernel kernel, Conv2d.Dims g, float[] dy, float[] w, float[] dx) {
        backwardData(kernel, VECTOR, g, dy, w, dx);
    }

    /** {@code vector}: the transforms through {@link Vec} (bit-identical to the scalar ones; tests compare). */
    static void forward(GemmKernel kernel, boolean vector, Conv2d.Dims g, float[] x, float[] w, float[] b, float[] y) {
        require(g);
        try (Scope scope = Scope.open()) {
            run(kernel, vector, g, packFilters(kernel, g, w, false), x, b, y);
        }
    }

    static void backwardData(GemmKernel kernel, boolean vector, Conv2d.Dims g, float[] dy, float[] w, float[] dx) {
        require(g);
        Conv2d.Dims t = new Conv2d.Dims(g.n(), g.co(), g.ho(), g.wo(), g.ci(), 3, 3, 2 * g.dil() - g.pad(), g.dil());
        try (Scope scope = Scope.open()) {
            run(kernel, vector, t, packFilters(kernel, g, w, true), dy, null, dx);
        }
    }

    private static void require(Conv2d.Dims g) {
        if (!supports(g))
            throw new IllegalArgumentException("conv2d Winograd: needs a 3x3 kernel with padding 0.." + 2 * g.dil()
                    + ", got " + g);
    }

    // ---- filters -------------------------------------------------------------------------------

    /**
     * U_xi for the 16 xi, each packed as the GEMM's A (pooled buffers of the caller's scope).
     * Forward: U_xi [Co, Ci] = (G w[co,ci] G^T)_xi. Backward-data ({@code transposed}):
     * U_xi [Ci, Co] = (G rot180(w[co,ci]) G^T)_xi. Computed in double, rounded once.
     */
    private static Gemm.PackedA[] packFilters(GemmKernel kernel, Conv2d.Dims g, float[] w, boolean transposed) {
        int co = g.co(), ci = g.ci();
        int rows = transposed ? ci : co, depth = transposed ? co : ci;
        float[] u = Tensor.empty(DType.F32, 16 * co * ci).f32();
        double[] f = new double[9], gf = new double[12];
        for (int o = 0; o < co; o++) {
            for (int c = 0; c < ci; c++) {
                int w0 = (o * ci + c) * 9;
                for (int i = 0; i < 9; i++) f[i] = w[w0 + (transposed ? 8 - i : i)];
                // G f: 4x3, row by row.
                for (int j = 0; j < 3; j++) {
                    double a = f[j], m = f[3 + j], z = f[6 + j];
                    gf[j] = a;
                    gf[3 + j] = 0.5 * (a + m + z);
                    gf[6 + j] = 0.5 * (a - m + z);
                    gf[9 + j] = z;
                }
                // (G f) G^T: 4x4.
                int at = transposed ? c * co + o : o * ci + c;
                for (int i = 0; i < 4; i++) {
                    double a = gf[3 * i], m = gf[3 * i + 1], z = gf[3 * i + 2];
                    int xi = 4 * i;
                    u[(xi) * co * ci + at] = (float) a;
                    u[(xi + 1) * co * ci + at] = (float) (0.5 * (a + m + z));
                    u[(xi + 2) * co * ci + at] = (float) (0.5 * (a - m + z));
                    u[(xi + 3) * co * ci + at] = (float) z;
                }
            }
        }
        Gemm.PackedA[] packed = new Gemm.PackedA[16];
        for (int xi = 0; xi < 16; xi++)
            packed[xi] = Gemm.packA(kernel, false, rows, depth, u, xi * co * ci, depth,
                    Tensor.empty(DType.F32, Gemm.packedASize(kernel, rows, depth)).f32());
        return packed;
    }

    // ---- tiles ---------------------------------------------------------------------------------

    /** Where the tiles of one output plane are (see the class comment). */
    static final class Tiles {
        /** First output row of each row of tiles, increasing. */
        final int[] rowCorner;
        /** Column classes s in [0, d): tiles with first column s + 2d*b, b < count[s], numbered from offset[s]. */
        final int[] count, offset;
        /** Tiles per row of tiles. */
        final int perRow;
        /** First output column of each tile of a row, in tile order. */
        final int[] colCorner;
        /** The Vector API permutes for these tiles ({@code Vec.RowPicks}), built on first use; Object keeps Vector API types out of this class. */
        Object rowPicks;

        Tiles(int ho, int wo, int d) {
            int rows = 0;
            for (int r = 0; r < ho; r++) if ((r / d) % 2 == 0) rows++;
            rowCorner = new int[rows];
            for (int r = 0, i = 0; r < ho; r++) if ((r / d) % 2 == 0) rowCorner[i++] = r;
            count = new int[d];
            offset = new int[d];
            int t = 0;
            for (int s = 0; s < d; s++) {
                count[s] = s < wo ? (wo - s + 2 * d - 1) / (2 * d) : 0;
                offset[s] = t;
                t += count[s];
            }
            perRow = t;
            colCorner = new int[t];
            for (int c = 0, i = 0; c < d; c++)
                for (int b = 0; b < count[c]; b++) colCorner[i++] = c + 2 * d * b;
        }
    }

    /**
     * y = conv(x, U) + b for the geometry g (3x3, stride 1): blocks of tile rows through input
     * transform, 16 GEMMs and output transform.
     */
    private static void run(GemmKernel kernel, boolean vector, Conv2d.Dims g, Gemm.PackedA[] u, float[] x, float[] b,
                            float[] y) {
        Tiles tiles = new Tiles(g.ho(), g.wo(), g.dil());
        int tileRows = g.n() * tiles.rowCorner.length;
        int rowsPerBlock = rowsPerBlock(kernel, g, tiles.perRow);
        // At least one block per worker where there are enough rows (one image when sampling).
        rowsPerBlock = Math.max(1, Math.min(rowsPerBlock, ceilDiv(tileRows, Parallel.threads())));
        int blocks = ceilDiv(tileRows, rowsPerBlock), per = rowsPerBlock;
        AtomicInteger next = new AtomicInteger();
        Parallel.forRange(Math.min(Parallel.threads(), blocks), 1, (lo, hi) -> {
            Scratch s = SCRATCH.get();
            for (int bi; (bi = next.getAndIncrement()) < blocks; ) {
                int r0 = bi * per, r1 = Math.min(tileRows, r0 + per);
                block(kernel, vector, g, tiles, u, x, b, y, r0, r1, s);
            }
        });
    }

    /**
     * Tile rows per block: V and M (16 * (Ci + Co) floats per tile) within BLOCK_FLOATS, and
     * among the counts that fit, the one wasting least of the GEMM's last column sliver.
     */
    static int rowsPerBlock(GemmKernel kernel, Conv2d.Dims g, int perRow) {
        int fit = Math.max(1, BLOCK_FLOATS / (16 * (g.ci() + g.co()) * perRow));
        int nr = kernel.nr(), best = fit;
        double bestUse = 0;
        for (int r = fit; r >= Math.max(1, fit / 2); r--) {
            int t = r * perRow;
            double use = (double) t / (ceilDiv(t, nr) * nr);
            if (use > bestUse + 1e-9) {
                bestUse = use;
                best = r;
            }
        }
        return best;
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }

    /**
     * Tile rows [r0, r1) of the flattened (image, tile row) sequence: T tiles, stored with a
     * leading dimension ld >= T (whole vectors for the Vector API transforms).
     */
    private static void block(GemmKernel kernel, boolean vector, Conv2d.Dims g, Tiles tiles, Gemm.PackedA[] u,
                              float[] x, float[] b, float[] y, int r0, int r1, Scratch s) {
        int ci = g.ci(), co = g.co(), t = (r1 - r0) * tiles.perRow;
        int ld = vector ? Vec.roundUp(t) : t;
        // V_xi [Ci, ld] and M_xi [Co, ld] planes, each followed by SLACK floats that whole-vector
        // stores and loads past a plane's last tile may touch.
        int vPlane = ci * ld + SLACK, mPlane = co * ld + SLACK;
        float[] v = s.v(16 * vPlane), m = s.m(16 * mPlane);
        if (vector) Vec.inputTiles(g, tiles, x, r0, r1, v, ld, vPlane, s);
        else for (int r = r0; r < r1; r++) inputTiles(g, tiles, x, r, (r - r0) * tiles.perRow, v, ld, vPlane, s);
        for (int xi = 0; xi < 16; xi++)
            Gemm.sgemm(kernel, false, u[xi], Gemm.panels(kernel, false, v, xi * vPlane, ld), t, 1f, 0f, m, xi * mPlane, ld);
        if (vector) Vec.outputTiles(g, tiles, m, r0, r1, ld, mPlane, b, y, s);
        else for (int r = r0; r < r1; r++) outputTiles(g, tiles, m, r, (r - r0) * tiles.perRow, ld, mPlane, b, y);
    }

    /** Floats after each V and M plane (at least a vector of the widest Vector API shape). */
    private static final int SLACK = 64;

    /**
     * V_xi [c, t0 + tile] = (B^T z B)_xi for every channel c and tile of flattened tile row r
     * (its tiles numbered from t0 in a block of t tiles). First the column transform B^T down
     * the four input rows, for every input column the row's tiles read (shared by neighbours),
     * then the row transform along each class's columns.
     */
    private static void inputTiles(Conv2d.Dims g, Tiles tiles, float[] x, int r, int t0, float[] v, int ld, int plane,
                                   Scratch s) {
        int ci = g.ci(), h = g.h(), w = g.w(), d = g.dil(), p = g.pad();
        int perImage = tiles.rowCorner.length;
        int n = r / perImage, corner = tiles.rowCorner[r % perImage] - p;
        for (int c = 0; c < ci; c++) {
            int base = (n * ci + c) * h * w;
            int row0 = rowOffset(base, corner, h, w), row1 = rowOffset(base, corner + d, h, w);
            int row2 = rowOffset(base, corner + 2 * d, h, w), row3 = rowOffset(base, corner + 3 * d, h, w);
            for (int cls = 0; cls < d; cls++) {
                int nb = tiles.count[cls];
                if (nb == 0) continue;
                int cols = 2 * nb + 2, first = cls - p;
                float[] z = s.z(4 * cols);
                for (int q = 0; q < cols; q++) {
                    int col = first + d * q;
                    float z0 = 0, z1 = 0, z2 = 0, z3 = 0;
                    if (col >= 0 && col < w) {
                        if (row0 >= 0) z0 = x[row0 + col];
                        if (row1 >= 0) z1 = x[row1 + col];
                        if (row2 >= 0) z2 = x[row2 + col];
                        if (row3 >= 0) z3 = x[row3 + col];
                    }
                    z[q] = z0 - z2;
                    z[cols + q] = z1 + z2;
                    z[2 * cols + q] = z2 - z1;
                    z[3 * cols + q] = z1 - z3;
                }
                int at = c * ld + t0 + tiles.offset[cls];
                for (int i = 0; i < 4; i++) {
                    int zr = i * cols, o = 4 * i * plane + at;
                    for (int bb = 0; bb < nb; bb++) {
                        float e0 = z[zr + 2 * bb], o0 = z[zr + 2 * bb + 1], e1 = z[zr + 2 * bb + 2], o1 = z[zr + 2 * bb + 3];
                        v[o + bb] = e0 - e1;
                        v[o + plane + bb] = o0 + e1;
                        v[o + 2 * plane + bb] = e1 - o0;
                        v[o + 3 * plane + bb] = o0 - o1;
                    }
                }
            }
        }
    }

    /** Offset of input row {@code row} of the plane at {@code base}, or -1 outside the image (zero padding). */
    private static int rowOffset(int base, int row, int h, int w) {
        return row >= 0 && row < h ? base + row * w : -1;
    }

    /** y tiles of flattened tile row r = A^T M A (+ b), dropping the outputs past the plane's edge. */
    private static void outputTiles(Conv2d.Dims g, Tiles tiles, float[] m, int r, int t0, int ld, int plane, float[] b,
                                    float[] y) {
        int co = g.co(), ho = g.ho(), wo = g.wo(), d = g.dil();
        int perImage = tiles.rowCorner.length;
        int n = r / perImage, row = tiles.rowCorner[r % perImage];
        boolean lower = row + d < ho;
        for (int k = 0; k < co; k++) {
            float bias = b == null ? 0f : b[k];
            int top = ((n * co + k) * ho + row) * wo, bottom = top + d * wo;
            for (int cls = 0; cls < d; cls++) {
                int nb = tiles.count[cls];
                int at = k * ld + t0 + tiles.offset[cls];
                for (int bb = 0; bb < nb; bb++) {
                    int i0 = at + bb;
                    // A^T down the columns: s0 = m0 + m1 + m2, s1 = m1 - m2 - m3, per column j.
                    float m00 = m[i0], m01 = m[i0 + plane], m02 = m[i0 + 2 * plane], m03 = m[i0 + 3 * plane];
                    float m10 = m[i0 + 4 * plane], m11 = m[i0 + 5 * plane], m12 = m[i0 + 6 * plane], m13 = m[i0 + 7 * plane];
                    float m20 = m[i0 + 8 * plane], m21 = m[i0 + 9 * plane], m22 = m[i0 + 10 * plane], m23 = m[i0 + 11 * plane];
                    float m30 = m[i0 + 12 * plane], m31 = m[i0 + 13 * plane], m32 = m[i0 + 14 * plane], m33 = m[i0 + 15 * plane];
                    float s00 = m00 + m10 + m20, s01 = m01 + m11 + m21, s02 = m02 + m12 + m22, s03 = m03 + m13 + m23;
                    float s10 = m10 - m20 - m30, s11 = m11 - m21 - m31, s12 = m12 - m22 - m32, s13 = m13 - m23 - m33;
                    int col = cls + 2 * d * bb;
                    boolean right = col + d < wo;
                    y[top + col] = s00 + s01 + s02 + bias;
                    if (right) y[top + col + d] = s01 - s02 - s03 + bias;
                    if (lower) {
                        y[bottom + col] = s10 + s11 + s12 + bias;
                        if (right) y[bottom + col + d] = s11 - s12 - s13 + bias;
                    }
                }
            }
        }
    }

    /** Per-thread buffers, grown to the largest block once and reused. */
    private static final class Scratch {
        private float[] v = new float[0], m = new float[0], z = new float[0], out = new float[0];
        private int[] at = new int[0];

        float[] out(int n) {
            return out.length >= n ? out : (out = new float[n]);
        }

        int[] at(int n) {
            return at.length >= n ? at : (at = new int[n]);
        }

        float[] v(int n) {
            return v.length >= n ? v : (v = new float[n]);
        }

        float[] m(int n) {
            return m.length >= n ? m : (m = new float[n]);
        }

        float[] z(int n) {
            return z.length >= n ? z : (z = new float[n]);
        }
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);
    /**
     * The transforms on whole vectors of tiles (16 with AVX-512). The arithmetic is
     * {@link #inputTiles} and {@link #outputTiles}'s, operation for operation, so all paths give
     * the same bits; only the data movement differs:
     * <ul>
     *   <li>rows: when a row of tiles fits in one vector and its padded input and output rows in
     *       two (28x28 and 14x14 with AVX-512, any dilation), each input row is loaded as two
     *       vectors, and two-vector permutes pick every tile's columns; outputs go back into rows
     *       the same way. Lanes past the row's tiles are computed and dropped. A gather costs
     *       about 22 cycles here (7.5 ns per 16 lanes, Zen 4 class EPYC, JDK 17), a permute a few.
     *   <li>gathers: otherwise, any tiles of the block side by side, their 16 input points
     *       gathered from zero-padded copies of the block's input rows and their 4 outputs
     *       scattered into padded output rows, copied into y afterwards.
     * </ul>
     * Whole-vector stores past a plane's last tile land in the planes' SLACK or in tiles that
     * are written later. Loaded only when the Vector API is in use.
     */
    static final class Vec {
        private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
        private static final int L = S.length();

        static int roundUp(int t) {
            return (t + L - 1) / L * L;
        }

        /** Whether rows of tiles go through the permute path (see the class comment). */
        static boolean byRows(Conv2d.Dims g, Tiles tiles) {
            int right = 0;
            for (int c : tiles.colCorner) right = Math.max(right, c);
            return tiles.perRow <= L && g.w() + 2 * g.pad() <= 2 * L && g.wo() <= 2 * L && right + 3 * g.dil() < 2 * L;
        }

        static void inputTiles(Conv2d.Dims g, Tiles tiles, float[] x, int r0, int r1, float[] v, int ld, int plane,
                               Scratch s) {
            if (byRows(g, tiles)) inputRows(g, tiles, x, r0, r1, v, ld, plane, s);
            else inputGathered(g, tiles, x, r0, r1, v, ld, plane, s);
        }

        static void outputTiles(Conv2d.Dims g, Tiles tiles, float[] m, int r0, int r1, int ld, int plane, float[] b,
                                float[] y, Scratch s) {
            if (byRows(g, tiles)) outputRows(g, tiles, m, r0, r1, ld, plane, b, y, s);
            else outputScattered(g, tiles, m, r0, r1, ld, plane, b, y, s);
        }

        /**
         * A permute of two vectors: lane l takes lane idx[l] of (first ++ second). Done as two
         * one-vector permutes and a blend: JDK 17 rebuilds a shuffle with indexes past the
         * vector in Java on every two-vector {@code rearrange} (10x slower, JFR).
         */
        private record Pick(VectorShuffle<Float> lanes, VectorMask<Float> second) {
            static Pick of(int[] idx) {
                int[] wrapped = new int[L];
                boolean[] hi = new boolean[L];
                for (int l = 0; l < L; l++) {
                    wrapped[l] = idx[l] % L;
                    hi[l] = idx[l] >= L;
                }
                return new Pick(VectorShuffle.fromArray(S, wrapped, 0), VectorMask.fromArray(S, hi, 0));
            }

            FloatVector apply(FloatVector first, FloatVector secondVector) {
                return first.rearrange(lanes).blend(secondVector.rearrange(lanes), second);
            }
        }

        /** The permutes of the rows path: the tiles' four input columns, and the two output halves. */
        private record RowPicks(Pick j0, Pick j1, Pick j2, Pick j3, Pick lo, Pick hi) {}

        /** Built once per call (per Tiles), not per block; workers racing to build it store equal values. */
        private static RowPicks rowPicks(Conv2d.Dims g, Tiles tiles) {
            if (tiles.rowPicks instanceof RowPicks r) return r;
            int d = g.dil(), wo = g.wo();
            RowPicks r = new RowPicks(picks(tiles, 0), picks(tiles, d), picks(tiles, 2 * d), picks(tiles, 3 * d),
                    places(tiles, d, wo, 0), places(tiles, d, wo, 1));
            tiles.rowPicks = r;
            return r;
        }

        /** Picks, from two vectors (2L columns), column colCorner[l] + shift for lane l. */
        private static Pick picks(Tiles tiles, int shift) {
            int[] idx = new int[L];
            for (int l = 0; l < tiles.perRow; l++) idx[l] = tiles.colCorner[l] + shift;
            return Pick.of(idx);
        }

        /**
         * Places, into output columns [half*L, half*L + L), from two vectors (lanes = tiles) y_0
         * (left outputs, index l) and y_d (right outputs, index L + l).
         */
        private static Pick places(Tiles tiles, int d, int wo, int half) {
            int[] idx = new int[L];
            for (int l = 0; l < tiles.perRow; l++) {
                int c = tiles.colCorner[l];
                if (c / L == half) idx[c % L] = l;
                if (c + d < wo && (c + d) / L == half) idx[(c + d) % L] = L + l;
            }
            return Pick.of(idx);
        }

        /** V by rows of tiles: four input rows (zero-padded, two vectors each), B^T down, permutes, B along. */
        static void inputRows(Conv2d.Dims g, Tiles tiles, float[] x, int r0, int r1, float[] v, int ld, int plane,
                              Scratch s) {
            int ci = g.ci(), h = g.h(), w = g.w(), d = g.dil(), p = g.pad();
            int perImage = tiles.rowCorner.length, per = tiles.perRow;
            RowPicks rp = rowPicks(g, tiles);
            Pick j0 = rp.j0(), j1 = rp.j1(), j2 = rp.j2(), j3 = rp.j3();
            float[] zb = s.z(8 * L);
            Arrays.fill(zb, 0, 8 * L, 0f); // padding columns: stay 0
            for (int c = 0; c < ci; c++) {
                for (int k = 0; k < r1 - r0; k++) {
                    int r = r0 + k, n = r / perImage, corner = tiles.rowCorner[r % perImage] - p;
                    int base = (n * ci + c) * h * w;
                    for (int i = 0; i < 4; i++) {
                        int row = corner + d * i;
                        if (row >= 0 && row < h) System.arraycopy(x, base + row * w, zb, 2 * L * i + p, w);
                        else Arrays.fill(zb, 2 * L * i + p, 2 * L * i + p + w, 0f);
                    }
                    FloatVector a0 = FloatVector.fromArray(S, zb, 0), b0 = FloatVector.fromArray(S, zb, L);
                    FloatVector a1 = FloatVector.fromArray(S, zb, 2 * L), b1 = FloatVector.fromArray(S, zb, 3 * L);
                    FloatVector a2 = FloatVector.fromArray(S, zb, 4 * L), b2 = FloatVector.fromArray(S, zb, 5 * L);
                    FloatVector a3 = FloatVector.fromArray(S, zb, 6 * L), b3 = FloatVector.fromArray(S, zb, 7 * L);
                    int o = c * ld + k * per;
                    // B^T down the rows (both halves), then pick the tiles' four columns, then B along.
                    rowsAlong(a0.sub(a2), b0.sub(b2), j0, j1, j2, j3, v, o, plane);
                    rowsAlong(a1.add(a2), b1.add(b2), j0, j1, j2, j3, v, o + 4 * plane, plane);
                    rowsAlong(a2.sub(a1), b2.sub(b1), j0, j1, j2, j3, v, o + 8 * plane, plane);
                    rowsAlong(a1.sub(a3), b1.sub(b3), j0, j1, j2, j3, v, o + 12 * plane, plane);
                }
            }
        }

        /** One row i of B^T z: the tiles' columns picked from (lo, hi), then V_i0..V_i3 stored at o + j*plane. */
        private static void rowsAlong(FloatVector lo, FloatVector hi, Pick j0, Pick j1, Pick j2, Pick j3, float[] v, int o,
                                      int plane) {
            FloatVector t0 = j0.apply(lo, hi), t1 = j1.apply(lo, hi), t2 = j2.apply(lo, hi), t3 = j3.apply(lo, hi);
            t0.sub(t2).intoArray(v, o);
            t1.add(t2).intoArray(v, o + plane);
            t2.sub(t1).intoArray(v, o + 2 * plane);
            t1.sub(t3).intoArray(v, o + 3 * plane);
        }

        /** Row 0 of A^T M at column j, for the tiles at i0: m0j + m1j + m2j (M_xi at i0 + xi*plane). */
        private static FloatVector down0(float[] m, int i0, int plane, int j) {
            return FloatVector.fromArray(S, m, i0 + j * plane).add(FloatVector.fromArray(S, m, i0 + (4 + j) * plane))
                    .add(FloatVector.fromArray(S, m, i0 + (8 + j) * plane));
        }

        /** Row 1 of A^T M at column j: m1j - m2j - m3j. */
        private static FloatVector down1(float[] m, int i0, int plane, int j) {
            return FloatVector.fromArray(S, m, i0 + (4 + j) * plane).sub(FloatVector.fromArray(S, m, i0 + (8 + j) * plane))
                    .sub(FloatVector.fromArray(S, m, i0 + (12 + j) * plane));
        }

        /** y by rows of tiles: A^T M A with lanes = the row's tiles, permuted into two output rows. */
        static void outputRows(Conv2d.Dims g, Tiles tiles, float[] m, int r0, int r1, int ld, int plane, float[] b,
                               float[] y, Scratch s) {
            int co = g.co(), ho = g.ho(), wo = g.wo(), d = g.dil();
            int perImage = tiles.rowCorner.length, per = tiles.perRow;
            RowPicks rp = rowPicks(g, tiles);
            Pick lo = rp.lo(), hi = rp.hi();
            float[] rb = s.out(2 * L);
            for (int k0 = 0; k0 < co; k0++) {
                FloatVector bias = FloatVector.broadcast(S, b == null ? 0f : b[k0]);
                for (int k = 0; k < r1 - r0; k++) {
                    int r = r0 + k, n = r / perImage, row = tiles.rowCorner[r % perImage];
                    int i0 = k0 * ld + k * per;
                    FloatVector s00 = down0(m, i0, plane, 0), s01 = down0(m, i0, plane, 1);
                    FloatVector s02 = down0(m, i0, plane, 2), s03 = down0(m, i0, plane, 3);
                    FloatVector s10 = down1(m, i0, plane, 0), s11 = down1(m, i0, plane, 1);
                    FloatVector s12 = down1(m, i0, plane, 2), s13 = down1(m, i0, plane, 3);
                    int top = ((n * co + k0) * ho + row) * wo;
                    FloatVector y0 = s00.add(s01).add(s02).add(bias), y1 = s01.sub(s02).sub(s03).add(bias);
                    lo.apply(y0, y1).intoArray(rb, 0);
                    hi.apply(y0, y1).intoArray(rb, L);
                    System.arraycopy(rb, 0, y, top, wo);
                    if (row + d < ho) {
                        FloatVector y2 = s10.add(s11).add(s12).add(bias), y3 = s11.sub(s12).sub(s13).add(bias);
                        lo.apply(y2, y3).intoArray(rb, 0);
                        hi.apply(y2, y3).intoArray(rb, L);
                        System.arraycopy(rb, 0, y, top + d * wo, wo);
                    }
                }
            }
        }

        /**
         * V for tile rows [r0, r1), tiles gathered. Per channel, the four input rows of every
         * tile row go to a zero-padded buffer (4 rows per tile row, W + 2p + d columns: the
         * padding columns and the rows outside the image stay 0 for all channels).
         */
        static void inputGathered(Conv2d.Dims g, Tiles tiles, float[] x, int r0, int r1, float[] v, int ld, int plane,
                                  Scratch s) {
            int ci = g.ci(), h = g.h(), w = g.w(), d = g.dil(), p = g.pad();
            int perImage = tiles.rowCorner.length, rows = r1 - r0, wp = w + 2 * p + d;
            float[] zb = s.z(4 * rows * wp);
            Arrays.fill(zb, 0, 4 * rows * wp, 0f);
            int[] at = s.at(ld);
            for (int t = 0; t < ld; t++) {
                int k = t / tiles.perRow;
                at[t] = k < rows ? 4 * k * wp + tiles.colCorner[t % tiles.perRow] : 0;
            }
            for (int c = 0; c < ci; c++) {
                for (int k = 0; k < rows; k++) {
                    int r = r0 + k, n = r / perImage, corner = tiles.rowCorner[r % perImage] - p;
                    int base = (n * ci + c) * h * w;
                    for (int i = 0; i < 4; i++) {
                        int row = corner + d * i;
                        if (row >= 0 && row < h) System.arraycopy(x, base + row * w, zb, (4 * k + i) * wp + p, w);
                    }
                }
                for (int t0 = 0; t0 < ld; t0 += L) {
                    // B^T down each column j of the 4x4 points: t_ij (unrolled: no arrays of vectors).
                    FloatVector z00 = FloatVector.fromArray(S, zb, 0, at, t0);
                    FloatVector z10 = FloatVector.fromArray(S, zb, wp, at, t0);
                    FloatVector z20 = FloatVector.fromArray(S, zb, 2 * wp, at, t0);
                    FloatVector z30 = FloatVector.fromArray(S, zb, 3 * wp, at, t0);
                    FloatVector t00 = z00.sub(z20), t10 = z10.add(z20), t20 = z20.sub(z10), t30 = z10.sub(z30);
                    FloatVector z01 = FloatVector.fromArray(S, zb, d, at, t0);
                    FloatVector z11 = FloatVector.fromArray(S, zb, wp + d, at, t0);
                    FloatVector z21 = FloatVector.fromArray(S, zb, 2 * wp + d, at, t0);
                    FloatVector z31 = FloatVector.fromArray(S, zb, 3 * wp + d, at, t0);
                    FloatVector t01 = z01.sub(z21), t11 = z11.add(z21), t21 = z21.sub(z11), t31 = z11.sub(z31);
                    FloatVector z02 = FloatVector.fromArray(S, zb, 2 * d, at, t0);
                    FloatVector z12 = FloatVector.fromArray(S, zb, wp + 2 * d, at, t0);
                    FloatVector z22 = FloatVector.fromArray(S, zb, 2 * wp + 2 * d, at, t0);
                    FloatVector z32 = FloatVector.fromArray(S, zb, 3 * wp + 2 * d, at, t0);
                    FloatVector t02 = z02.sub(z22), t12 = z12.add(z22), t22 = z22.sub(z12), t32 = z12.sub(z32);
                    FloatVector z03 = FloatVector.fromArray(S, zb, 3 * d, at, t0);
                    FloatVector z13 = FloatVector.fromArray(S, zb, wp + 3 * d, at, t0);
                    FloatVector z23 = FloatVector.fromArray(S, zb, 2 * wp + 3 * d, at, t0);
                    FloatVector z33 = FloatVector.fromArray(S, zb, 3 * wp + 3 * d, at, t0);
                    FloatVector t03 = z03.sub(z23), t13 = z13.add(z23), t23 = z23.sub(z13), t33 = z13.sub(z33);
                    // then B along each row i.
                    int o = c * ld + t0;
                    t00.sub(t02).intoArray(v, o + 0 * plane);
                    t01.add(t02).intoArray(v, o + 1 * plane);
                    t02.sub(t01).intoArray(v, o + 2 * plane);
                    t01.sub(t03).intoArray(v, o + 3 * plane);
                    t10.sub(t12).intoArray(v, o + 4 * plane);
                    t11.add(t12).intoArray(v, o + 5 * plane);
                    t12.sub(t11).intoArray(v, o + 6 * plane);
                    t11.sub(t13).intoArray(v, o + 7 * plane);
                    t20.sub(t22).intoArray(v, o + 8 * plane);
                    t21.add(t22).intoArray(v, o + 9 * plane);
                    t22.sub(t21).intoArray(v, o + 10 * plane);
                    t21.sub(t23).intoArray(v, o + 11 * plane);
                    t30.sub(t32).intoArray(v, o + 12 * plane);
                    t31.add(t32).intoArray(v, o + 13 * plane);
                    t32.sub(t31).intoArray(v, o + 14 * plane);
                    t31.sub(t33).intoArray(v, o + 15 * plane);
                }
            }
        }

        /**
         * y for tile rows [r0, r1), tiles scattered: each tile's four outputs into two padded
         * rows per tile row and output channel (Wo + d columns, so a tile's right column past the
         * edge has room), then the valid part of each row copied into y.
         */
        static void outputScattered(Conv2d.Dims g, Tiles tiles, float[] m, int r0, int r1, int ld, int plane, float[] b,
                                    float[] y, Scratch s) {
            int co = g.co(), ho = g.ho(), wo = g.wo(), d = g.dil();
            int perImage = tiles.rowCorner.length, rows = r1 - r0, wp = wo + d;
            int spare = 2 * rows * wp, outPlane = spare + wp + d + 1;
            float[] ob = s.out(co * outPlane);
            int[] at = s.at(ld);
            for (int t = 0; t < ld; t++) {
                int k = t / tiles.perRow;
                at[t] = k < rows ? 2 * k * wp + tiles.colCorner[t % tiles.perRow] : spare;
            }
            for (int k0 = 0; k0 < co; k0++) {
                FloatVector bias = FloatVector.broadcast(S, b == null ? 0f : b[k0]);
                int oc = k0 * outPlane;
                for (int t0 = 0; t0 < ld; t0 += L) {
                    int i0 = k0 * ld + t0;
                    FloatVector s00 = down0(m, i0, plane, 0), s01 = down0(m, i0, plane, 1);
                    FloatVector s02 = down0(m, i0, plane, 2), s03 = down0(m, i0, plane, 3);
                    FloatVector s10 = down1(m, i0, plane, 0), s11 = down1(m, i0, plane, 1);
                    FloatVector s12 = down1(m, i0, plane, 2), s13 = down1(m, i0, plane, 3);
                    s00.add(s01).add(s02).add(bias).intoArray(ob, oc, at, t0);
                    s01.sub(s02).sub(s03).add(bias).intoArray(ob, oc + d, at, t0);
                    s10.add(s11).add(s12).add(bias).intoArray(ob, oc + wp, at, t0);
                    s11.sub(s12).sub(s13).add(bias).intoArray(ob, oc + wp + d, at, t0);
                }
                for (int k = 0; k < rows; k++) {
                    int r = r0 + k, n = r / perImage, row = tiles.rowCorner[r % perImage];
                    int top = ((n * co + k0) * ho + row) * wo;
                    System.arraycopy(ob, oc + 2 * k * wp, y, top, wo);
                    if (row + d < ho) System.arraycopy(ob, oc + (2 * k + 1) * wp, y, top + d * wo, wo);
                }
            }
        }
    }
}
