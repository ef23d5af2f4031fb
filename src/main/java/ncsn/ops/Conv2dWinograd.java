package ncsn.ops;

import java.util.Arrays;
import java.util.Map;
import java.util.WeakHashMap;
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
 * kernel with U packed once per weights ({@link Filters}) and V read where the transform wrote
 * it ({@link Gemm#rowsInPlace}). Blocks are whole rows of tiles (of any images) sized to
 * keep V and M in L2; workers take blocks from a counter. Every output element is computed by
 * the same operations whatever the block, its position in it, or the thread (the GEMM kernel
 * computes each column of C alone), so results do not depend on the batch or the thread count.
 *
 * <p>Backward-data of a stride-1 3x3 convolution is itself one: dx = conv(dy, w'), w' [Ci, Co]
 * the filters rotated by 180 degrees, padding 2d - p, same dilation ({@link #backwardData}).
 * Backward-weight sums dM_xi V_xi^T over the tiles, dM = A dY A^T, then dw = G^T dU G
 * ({@link #backwardWeight}).
 *
 * <p>Accuracy: the transforms only add, subtract and halve, so float32 results stay within a few
 * roundings of the direct sum (Conv2dWinogradTest compares with the float64 reference at the
 * catalog's 1e-5 of max |y|). Used by {@link Conv2d.Cpu}'s default entry points when
 * {@link #applies} (on unless -Dncsn.conv.winograd=off).
 *
 * <p>Measured (2026-11-29, 2 threads, batch-128 training step, ngf 64, 28x28): 6.6 s against
 * 8.6 s with im2col and the scalar ELU (same machine, interleaved). Alone, one thread, batch 64:
 * backward-weight 31.9 ms against im2col's 42-44 for 64ch 28x28 (ConvBench). A first version
 * of the Vector API transforms boxed its vectors inside the whole engine (see {@link Vec}).
 */
final class Conv2dWinograd {
    private Conv2dWinograd() {}

    /** Eligible convolutions come here unless -Dncsn.conv.winograd=off (then all go to im2col). */
    static final boolean ENABLED = !"off".equalsIgnoreCase(System.getProperty("ncsn.conv.winograd", "on"));

    /**
     * Fewer channels than this on either side go to im2col: with Ci = 1 (the first layer) the
     * 16 products would have depth 1, and with Co = 1 a single row; im2col's depth 9*Ci wins.
     */
    static final int MIN_CHANNELS = 16;

    /**
     * Floats of V and M per block (3 MiB: more than the 1 MiB L2; each of the 16 products works
     * on its own V_xi and M_xi, 1/16 of it, and wider products amortise the GEMM's calls and
     * tile stores). ConvBench DEFAULT, 2 threads, batch 64, four interleaved rounds
     * (2026-11-29, B read in place): 64ch 28x28 forward 10.6-12.3 ms against 12.6-14.7 at 384K
     * floats, backward-data 10.9-12.8 against 11.9-14.7; 128ch 14x14 d2 the same within noise
     * (10.0-11.9 against 10.2-11.7); 1536K and 3072K floats slower again.
     */
    private static final int BLOCK_FLOATS = 768 * 1024;

    /**
     * Backward-weight's blocks: each block's 16 products have depth T (tiles) and repack both
     * operands, so deeper products amortise the packing and the stores of dU.
     * ConvBench.backwardWeight, one thread, batch 64 (gathering version): 768K floats 31.9 ms
     * against 35-36.5 at 192K and 55 at 3M for 64ch 28x28; 27.6-29.7 against 30.6-33.7 for
     * 128ch 14x14 d2.
     */
    private static final int WEIGHT_BLOCK_FLOATS = 768 * 1024;

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
        Filters f = Filters.acquire(kernel, g, w, false);
        try {
            run(kernel, vector, g, f.packed, x, b, y);
        } finally {
            f.release();
        }
    }

    static void backwardData(GemmKernel kernel, boolean vector, Conv2d.Dims g, float[] dy, float[] w, float[] dx) {
        require(g);
        Conv2d.Dims t = new Conv2d.Dims(g.n(), g.co(), g.ho(), g.wo(), g.ci(), 3, 3, 2 * g.dil() - g.pad(), g.dil());
        Filters f = Filters.acquire(kernel, g, w, true);
        try {
            run(kernel, vector, t, f.packed, dy, null, dx);
        } finally {
            f.release();
        }
    }

    /**
     * dw [Co,Ci,3,3] (overwritten) from x and dy. The gradient of Y = A^T (U .* V) A with
     * respect to U, summed over tiles, is dU_xi [Co, Ci] = dM_xi [Co, T] V_xi [Ci, T]^T with
     * dM = A dY A^T per tile and channel and V the forward's input transform; then
     * dw = G^T dU G. 16 GEMMs of depth T per block instead of im2col's one of depth 4T x 9.
     *
     * <p>Reproducible whatever the thread count: block boundaries depend only on the geometry,
     * blocks are cut into a fixed number of contiguous groups, each group sums its blocks in
     * order into its own dU, and the groups are added in group order (as {@link Conv2d.Cpu}'s
     * im2col backward-weight does with images).
     */
    static void backwardWeight(GemmKernel kernel, Conv2d.Dims g, float[] x, float[] dy, float[] dw, float[] db) {
        backwardWeight(kernel, VECTOR, g, x, dy, dw, db);
    }

    /** As above; db [Co] (overwritten) when not null: sums of dy, in double, per image then in image order. */
    static void backwardWeight(GemmKernel kernel, boolean vector, Conv2d.Dims g, float[] x, float[] dy, float[] dw,
                               float[] db) {
        require(g);
        int uSize = 16 * g.co() * g.ci();
        Tiles tiles = new Tiles(g.ho(), g.wo(), g.dil());
        int tileRows = g.n() * tiles.rowCorner.length, per = weightRowsPerBlock(kernel, g, tiles.perRow);
        int blocks = ceilDiv(tileRows, per), groups = Math.min(blocks, WEIGHT_GROUPS);
        try (Scope scope = Scope.open()) {
            float[] du = Tensor.empty(DType.F32, groups * uSize).f32();
            // Vector path: channels-last, zero-padded copies of x and dy, so that the transforms
            // write V and dM tile-major and the GEMM packs them by copies (see ChannelsLast).
            ChannelsLast cl = vector ? ChannelsLast.of(g, x, dy, db) : null;
            if (!vector && db != null) Conv2d.Cpu.backwardBias(g, dy, db);
            AtomicInteger next = new AtomicInteger();
            Parallel.forRange(Math.min(Parallel.threads(), groups), 1, (lo, hi) -> {
                Scratch s = SCRATCH.get();
                for (int gi; (gi = next.getAndIncrement()) < groups; ) {
                    int b0 = (int) ((long) gi * blocks / groups), b1 = (int) ((long) (gi + 1) * blocks / groups);
                    for (int bi = b0; bi < b1; bi++) {
                        int r0 = bi * per, r1 = Math.min(tileRows, (bi + 1) * per);
                        float beta = bi == b0 ? 0f : 1f;
                        if (cl != null) cl.weightBlock(kernel, g, tiles, r0, r1, du, gi * uSize, beta, s);
                        else weightBlock(kernel, g, tiles, x, dy, r0, r1, du, gi * uSize, beta, s);
                    }
                }
            });
            // Each element sums the groups in group order, whichever core takes it.
            Parallel.forRange(uSize, 1 << 14, (lo, hi) -> {
                for (int t = 1; t < groups; t++)
                    for (int i = lo, o = t * uSize; i < hi; i++) du[i] += du[o + i];
            });
            filterGradients(g, du, dw);
        }
    }

    /** Tile rows per backward-weight block: fixed by the geometry (the sums' order depends on it). */
    static int weightRowsPerBlock(GemmKernel kernel, Conv2d.Dims g, int perRow) {
        return rowsPerBlock(kernel, g, perRow, WEIGHT_BLOCK_FLOATS);
    }

    /** Groups of blocks whose dU partial sums are added in a fixed order (see backwardWeight). */
    private static final int WEIGHT_GROUPS = 8;

    /** du[duOff + xi*Co*Ci ..] = sum over the tiles of tile rows [r0, r1) of dM_xi V_xi^T, + beta * du. */
    private static void weightBlock(GemmKernel kernel, Conv2d.Dims g, Tiles tiles, float[] x, float[] dy, int r0,
                                    int r1, float[] du, int duOff, float beta, Scratch s) {
        int ci = g.ci(), co = g.co(), t = (r1 - r0) * tiles.perRow; // rows of t tiles, no padding
        int vPlane = ci * t + SLACK, mPlane = co * t + SLACK;
        float[] v = s.v(16 * vPlane), m = s.m(16 * mPlane);
        for (int r = r0; r < r1; r++) {
            inputTiles(g, tiles, x, r, (r - r0) * tiles.perRow, v, t, vPlane, s);
            gradientTiles(g, tiles, dy, r, (r - r0) * tiles.perRow, m, t, mPlane);
        }
        for (int xi = 0; xi < 16; xi++)
            Gemm.sgemm(kernel, false, false, true, co, ci, t, 1f, m, xi * mPlane, t, v, xi * vPlane, t, beta, du,
                    duOff + xi * co * ci, ci);
    }

    /**
     * Backward-weight with the Vector API. With V_xi and dM_xi stored channel-major ([Ci, T],
     * lanes = tiles, as forward makes them) the GEMM has to transpose both into its panels, by
     * gathers: about as slow as the multiply-adds. Here x and dy are first copied channels-last
     * (per image [H', W', C], zero-padded so every tile's points exist), which costs one pass
     * over x and dy instead of a transpose of V and dM (4x larger); the transforms then run with
     * lanes = 16 channels and write V_xi^T [T, Ci] and dM_xi^T [T, Co], which the GEMM reads as
     * B and as A^T, both packed by plain copies. The arithmetic per element is the scalar
     * transforms', so the products, and dw, have the same bits (Conv2dWinogradTest).
     */
    static final class ChannelsLast {
        final float[] xt, dyt;
        /** Padded plane sizes: xt [N, hp, wp, Ci] (image at (p, p)), dyt [N, hq, wq, Co] (at (0, 0)). */
        final int hp, wp, hq, wq;

        private ChannelsLast(float[] xt, float[] dyt, int hp, int wp, int hq, int wq) {
            this.xt = xt;
            this.dyt = dyt;
            this.hp = hp;
            this.wp = wp;
            this.hq = hq;
            this.wq = wq;
        }

        /** The copies, in pooled buffers of the caller's scope; db [Co] (when not null) from dy's sums on the way. */
        static ChannelsLast of(Conv2d.Dims g, float[] x, float[] dy, float[] db) {
            int p = g.pad(), d = g.dil();
            // A tile at output (r, c) reads input rows r - p .. r - p + 3d, i.e. padded rows up to
            // ho - 1 + 3d = h + 2p + d - 1; its outputs reach row ho - 1 + d.
            int hp = g.h() + 2 * p + d, wp = g.w() + 2 * p + d, hq = g.ho() + d, wq = g.wo() + d;
            float[] xt = Tensor.empty(DType.F32, g.n() * hp * wp * g.ci() + SLACK).f32();
            float[] dyt = Tensor.empty(DType.F32, g.n() * hq * wq * g.co() + SLACK).f32();
            int co = g.co();
            double[] sums = db == null ? null : Tensor.zeros(DType.F64, g.n() * co).f64();
            Parallel.forRange(g.n(), 1, (lo, hi) -> {
                for (int n = lo; n < hi; n++) {
                    copy(x, n, g.ci(), g.h(), g.w(), xt, hp, wp, p, null);
                    copy(dy, n, co, g.ho(), g.wo(), dyt, hq, wq, 0, sums);
                }
            });
            if (db != null) {
                for (int c = 0; c < co; c++) {
                    double sum = 0;
                    for (int n = 0; n < g.n(); n++) sum += sums[n * co + c];
                    db[c] = (float) sum;
                }
            }
            return new ChannelsLast(xt, dyt, hp, wp, hq, wq);
        }

        /**
         * Image n of src [N, C, H, W] into dst [N, hp, wp, C] at (at, at), zeros around; when
         * sums is not null, sums[n*C + ch] = the sum of the image's channel ch (double, in
         * pixel order), which is the bias gradient's share of the image.
         */
        private static void copy(float[] src, int n, int c, int h, int w, float[] dst, int hp, int wp, int at,
                                 double[] sums) {
            int base = n * hp * wp * c, plane = h * w, rowFloats = wp * c;
            // Zeros only where nothing is copied: the rows above and below, and each row's margins.
            Arrays.fill(dst, base, base + at * rowFloats, 0f);
            Arrays.fill(dst, base + (at + h) * rowFloats, base + hp * rowFloats, 0f);
            for (int row = 0; row < h; row++) {
                int left = base + (row + at) * rowFloats;
                Arrays.fill(dst, left, left + at * c, 0f);
                Arrays.fill(dst, left + (at + w) * c, left + rowFloats, 0f);
            }
            for (int row = 0; row < h; row++) {
                int to = base + ((row + at) * wp + at) * c, from = n * c * plane + row * w;
                // [C, W] -> [W, C] for one row, writing in order: the C source lines stay in L1
                // across the row's columns (writing with stride C instead was 3x slower; 16-lane
                // gathers were no faster than this, nor were passes of 16 channels).
                if (sums == null) {
                    for (int col = 0; col < w; col++, to += c)
                        for (int ch = 0, f = from + col; ch < c; ch++, f += plane) dst[to + ch] = src[f];
                } else {
                    for (int col = 0; col < w; col++, to += c) {
                        for (int ch = 0, f = from + col; ch < c; ch++, f += plane) {
                            dst[to + ch] = src[f];
                            sums[n * c + ch] += src[f];
                        }
                    }
                }
            }
        }

        /** du[duOff + xi*Co*Ci ..] = sum over the tiles of tile rows [r0, r1) of dM_xi V_xi^T, + beta * du. */
        void weightBlock(GemmKernel kernel, Conv2d.Dims g, Tiles tiles, int r0, int r1, float[] du, int duOff,
                         float beta, Scratch s) {
            int ci = g.ci(), co = g.co(), t = (r1 - r0) * tiles.perRow;
            int vPlane = t * ci + SLACK, mPlane = t * co + SLACK;
            float[] v = s.v(16 * vPlane), m = s.m(16 * mPlane);
            Vec.inputTilesLast(g, tiles, xt, hp, wp, r0, r1, v, vPlane, s);
            Vec.gradientTilesLast(g, tiles, dyt, hq, wq, r0, r1, m, mPlane);
            for (int xi = 0; xi < 16; xi++)
                Gemm.sgemm(kernel, false, true, co, ci, t, 1f, m, xi * mPlane, co, Gemm.rowsInPlace(kernel, v, xi * vPlane, ci),
                        beta, du, duOff + xi * co * ci, ci);
        }
    }

    /** dw [o, c] = G^T dU[o, c] G (3x3 from 4x4; dU_xi at du[xi*Co*Ci + o*Ci + c]), in double, rounded once. */
    private static void filterGradients(Conv2d.Dims g, float[] du, float[] dw) {
        int pairs = g.co() * g.ci();
        Parallel.forRange(pairs, 1024, (lo, hi) -> filterGradients(du, pairs, lo, hi, dw));
    }

    private static void filterGradients(float[] du, int pairs, int lo, int hi, float[] dw) {
        double[] u = new double[16], gu = new double[12];
        for (int at = lo; at < hi; at++) {
            for (int xi = 0; xi < 16; xi++) u[xi] = du[xi * pairs + at];
            // G^T u: 3x4, column by column.
            for (int j = 0; j < 4; j++) {
                double a = u[j], b = u[4 + j], c = u[8 + j], e = u[12 + j];
                gu[j] = a + 0.5 * (b + c);
                gu[4 + j] = 0.5 * (b - c);
                gu[8 + j] = 0.5 * (b + c) + e;
            }
            // (G^T u) G: 3x3.
            for (int i = 0; i < 3; i++) {
                double a = gu[4 * i], b = gu[4 * i + 1], c = gu[4 * i + 2], e = gu[4 * i + 3];
                dw[at * 9 + 3 * i] = (float) (a + 0.5 * (b + c));
                dw[at * 9 + 3 * i + 1] = (float) (0.5 * (b - c));
                dw[at * 9 + 3 * i + 2] = (float) (0.5 * (b + c) + e);
            }
        }
    }

    private static void require(Conv2d.Dims g) {
        if (!supports(g))
            throw new IllegalArgumentException("conv2d Winograd: needs a 3x3 kernel with padding 0.." + 2 * g.dil()
                    + ", got " + g);
    }

    // ---- filters -------------------------------------------------------------------------------

    /**
     * A layer's U_xi for the 16 xi, each packed as the GEMM's A, kept from call to call with a
     * copy of the weights they came from. Every Langevin step runs each layer with unchanged
     * weights: transforming and packing them again was 11% of the JFR samples of a batch-25
     * sampling step, on the calling thread alone. A call whose weights equal the copy (every
     * value compared, so a changed weight is never missed) reuses them; otherwise they are
     * recomputed in place, or into new buffers while another call still uses the old ones.
     * Held per weight array (weakly: dropped with the array) and direction.
     */
    static final class Filters {
        private static final Map<float[], Filters[]> BY_WEIGHTS = new WeakHashMap<>();

        final GemmKernel kernel;
        final int co, ci;
        final boolean transposed;
        final float[] weights;
        final Gemm.PackedA[] packed = new Gemm.PackedA[16];
        private final float[][] buffers = new float[16][];
        private int users; // calls between acquire and release; guarded by BY_WEIGHTS

        private Filters(GemmKernel kernel, int co, int ci, boolean transposed) {
            this.kernel = kernel;
            this.co = co;
            this.ci = ci;
            this.transposed = transposed;
            this.weights = new float[co * ci * 9];
            for (int xi = 0; xi < 16; xi++) buffers[xi] = new float[Gemm.packedASize(kernel, rows(), depth())];
        }

        /** Rows and depth of each U_xi: [Co, Ci] forward, [Ci, Co] transposed. */
        private int rows() {
            return transposed ? ci : co;
        }

        private int depth() {
            return transposed ? co : ci;
        }

        private boolean fits(GemmKernel kernel, Conv2d.Dims g) {
            return this.kernel == kernel && co == g.co() && ci == g.ci();
        }

        /** The filters of w for g in this direction, up to date; {@link #release} when the call is done. */
        static Filters acquire(GemmKernel kernel, Conv2d.Dims g, float[] w, boolean transposed) {
            int n = g.co() * g.ci() * 9;
            synchronized (BY_WEIGHTS) {
                Filters[] both = BY_WEIGHTS.computeIfAbsent(w, k -> new Filters[2]);
                int dir = transposed ? 1 : 0;
                Filters f = both[dir];
                boolean fits = f != null && f.fits(kernel, g);
                if (fits && Arrays.equals(f.weights, 0, n, w, 0, n)) {
                    f.users++;
                    return f;
                }
                if (!fits || f.users > 0) both[dir] = f = new Filters(kernel, g.co(), g.ci(), transposed);
                System.arraycopy(w, 0, f.weights, 0, n);
                f.pack();
                f.users++;
                return f;
            }
        }

        void release() {
            synchronized (BY_WEIGHTS) {
                users--;
            }
        }

        /**
         * Forward: U_xi [Co, Ci] = (G w[co,ci] G^T)_xi. Backward-data ({@code transposed}):
         * U_xi [Ci, Co] = (G rot180(w[co,ci]) G^T)_xi. Computed in double, rounded once.
         */
        private void pack() {
            int rows = rows(), depth = depth();
            try (Scope scope = Scope.open()) {
                float[] u = Tensor.empty(DType.F32, 16 * co * ci).f32();
                Parallel.forRange(co, 1, (lo, hi) -> transform(lo, hi, u));
                Parallel.forRange(16, 1, (lo, hi) -> {
                    for (int xi = lo; xi < hi; xi++)
                        packed[xi] = Gemm.packA(kernel, false, rows, depth, u, xi * co * ci, depth, buffers[xi]);
                });
            }
        }

        /** U for output channels [lo, hi) into u[xi*Co*Ci + at], at = o*Ci + c (forward) or c*Co + o. */
        private void transform(int lo, int hi, float[] u) {
            double[] f = new double[9], gf = new double[12];
            for (int o = lo; o < hi; o++) {
                for (int c = 0; c < ci; c++) {
                    int w0 = (o * ci + c) * 9;
                    for (int i = 0; i < 9; i++) f[i] = weights[w0 + (transposed ? 8 - i : i)];
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
        }
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
        return rowsPerBlock(kernel, g, perRow, BLOCK_FLOATS);
    }

    static int rowsPerBlock(GemmKernel kernel, Conv2d.Dims g, int perRow, int blockFloats) {
        int fit = Math.max(1, blockFloats / (16 * (g.ci() + g.co()) * perRow));
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
            Gemm.sgemm(kernel, false, u[xi], Gemm.rowsInPlace(kernel, v, xi * vPlane, ld), t, 1f, 0f, m, xi * mPlane, ld);
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

    /**
     * dM_xi [k, t0 + tile] = (A dY A^T)_xi for every output channel k and tile of flattened tile
     * row r (dY outside the plane is 0: those outputs were dropped in forward). A dY has rows
     * (a, b), (a + c, b + e), (a - c, b - e), (-c, -e) for the tile [a b; c e]; each row (p, q)
     * becomes (p, p + q, p - q, -q).
     */
    private static void gradientTiles(Conv2d.Dims g, Tiles tiles, float[] dy, int r, int t0, float[] m, int ld,
                                      int plane) {
        int co = g.co(), ho = g.ho(), wo = g.wo(), d = g.dil();
        int perImage = tiles.rowCorner.length;
        int n = r / perImage, row = tiles.rowCorner[r % perImage];
        boolean lower = row + d < ho;
        for (int k = 0; k < co; k++) {
            int top = ((n * co + k) * ho + row) * wo, bottom = top + d * wo;
            for (int cls = 0; cls < d; cls++) {
                int nb = tiles.count[cls], at = k * ld + t0 + tiles.offset[cls];
                for (int bb = 0; bb < nb; bb++) {
                    int col = cls + 2 * d * bb, i0 = at + bb;
                    boolean right = col + d < wo;
                    float a = dy[top + col], b = right ? dy[top + col + d] : 0f;
                    float c = lower ? dy[bottom + col] : 0f, e = lower && right ? dy[bottom + col + d] : 0f;
                    gradientRow(m, i0, plane, a, b);
                    gradientRow(m, i0 + 4 * plane, plane, a + c, b + e);
                    gradientRow(m, i0 + 8 * plane, plane, a - c, b - e);
                    gradientRow(m, i0 + 12 * plane, plane, -c, -e);
                }
            }
        }
    }

    /** One row (p, q) of A dY times A^T: (p, p + q, p - q, -q) at m[i], m[i + plane], ... */
    private static void gradientRow(float[] m, int i, int plane, float p, float q) {
        m[i] = p;
        m[i + plane] = p + q;
        m[i + 2 * plane] = p - q;
        m[i + 3 * plane] = -q;
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
     *
     * <p>How the kernels are written so that C2 compiles them to vector instructions inside the
     * whole engine, not only in a benchmark: each is one method whose loop body holds all its
     * vector operations (about 30 Vector API calls), and no vector is passed to or returned from
     * a method. A first version with small helpers (a permute, a row of B^T z) boxed its vectors
     * in training: C2 had compiled a helper on its own and would not inline it ("already
     * compiled into a big method"), or stopped inlining the Vector API's own methods in the
     * larger kernels (NodeCountInliningCutoff), and every vector crossing such a call became a
     * heap object (JFR allocation samples, -XX:CompileCommand=PrintInlining).
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
         * A permute of two vectors: lane l takes lane idx[l] of (first ++ second), applied as
         * {@code first.rearrange(lanes).blend(second.rearrange(lanes), second)}: JDK 17 rebuilds
         * a shuffle with indexes past the vector in Java on every two-vector {@code rearrange}
         * (10x slower, JFR). Applied inline in the kernels, never through a method (see
         * {@link Vec}: no vector crosses a call).
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

        /**
         * Row i of B^T z is z[X_ROW[i]] + SIGN[i] * z[Y_ROW[i]]: z0 - z2, z1 + z2, z2 - z1,
         * z1 - z3. Computed as fma(z_y, sign, z_x), which rounds z_x + sign*z_y once, exactly
         * like the scalar add or subtract (sign*z_y is exact): one loop body serves the four rows.
         */
        private static final int[] X_ROW = {0, 1, 2, 1}, Y_ROW = {2, 2, 1, 3};
        private static final float[] SIGN = {-1f, 1f, -1f, -1f};

        /**
         * V by rows of tiles. Per channel and tile row, the four input rows (zero-padded) as two
         * vectors each; for each row i of B^T z, the tiles' four columns picked by two-vector
         * permutes, and B along them.
         */
        static void inputRows(Conv2d.Dims g, Tiles tiles, float[] x, int r0, int r1, float[] v, int ld, int plane,
                              Scratch s) {
            int ci = g.ci(), h = g.h(), w = g.w(), d = g.dil(), p = g.pad();
            int perImage = tiles.rowCorner.length, per = tiles.perRow;
            RowPicks rp = rowPicks(g, tiles);
            VectorShuffle<Float> p0 = rp.j0().lanes(), p1 = rp.j1().lanes(), p2 = rp.j2().lanes(), p3 = rp.j3().lanes();
            VectorMask<Float> q0 = rp.j0().second(), q1 = rp.j1().second(), q2 = rp.j2().second(), q3 = rp.j3().second();
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
                    int o = c * ld + k * per;
                    for (int i = 0; i < 4; i++) {
                        FloatVector sign = FloatVector.broadcast(S, SIGN[i]);
                        int zx = 2 * L * X_ROW[i], zy = 2 * L * Y_ROW[i];
                        FloatVector lo = FloatVector.fromArray(S, zb, zy).fma(sign, FloatVector.fromArray(S, zb, zx));
                        FloatVector hi = FloatVector.fromArray(S, zb, zy + L).fma(sign, FloatVector.fromArray(S, zb, zx + L));
                        FloatVector t0 = lo.rearrange(p0).blend(hi.rearrange(p0), q0);
                        FloatVector t1 = lo.rearrange(p1).blend(hi.rearrange(p1), q1);
                        FloatVector t2 = lo.rearrange(p2).blend(hi.rearrange(p2), q2);
                        FloatVector t3 = lo.rearrange(p3).blend(hi.rearrange(p3), q3);
                        int oi = o + 4 * i * plane;
                        t0.sub(t2).intoArray(v, oi);
                        t1.add(t2).intoArray(v, oi + plane);
                        t2.sub(t1).intoArray(v, oi + 2 * plane);
                        t1.sub(t3).intoArray(v, oi + 3 * plane);
                    }
                }
            }
        }

        /** y by rows of tiles: A^T M A ({@link #outputPair}) with lanes = the row's tiles, permuted into the two output rows. */
        static void outputRows(Conv2d.Dims g, Tiles tiles, float[] m, int r0, int r1, int ld, int plane, float[] b,
                               float[] y, Scratch s) {
            int co = g.co(), ho = g.ho(), wo = g.wo(), d = g.dil();
            int perImage = tiles.rowCorner.length, per = tiles.perRow;
            RowPicks rp = rowPicks(g, tiles);
            VectorShuffle<Float> pl = rp.lo().lanes(), ph = rp.hi().lanes();
            VectorMask<Float> ql = rp.lo().second(), qh = rp.hi().second();
            float[] rb = s.out(4 * L);
            for (int k0 = 0; k0 < co; k0++) {
                float bias = b == null ? 0f : b[k0];
                for (int k = 0; k < r1 - r0; k++) {
                    int r = r0 + k, n = r / perImage, row = tiles.rowCorner[r % perImage];
                    int top = ((n * co + k0) * ho + row) * wo;
                    for (int half = 0, halves = row + d < ho ? 2 : 1; half < halves; half++) {
                        outputPair(m, k0 * ld + k * per + 4 * half * plane, plane, half == 0 ? 1f : -1f, bias, rb, 2 * L);
                        FloatVector left = FloatVector.fromArray(S, rb, 2 * L), right = FloatVector.fromArray(S, rb, 3 * L);
                        left.rearrange(pl).blend(right.rearrange(pl), ql).intoArray(rb, 0);
                        left.rearrange(ph).blend(right.rearrange(ph), qh).intoArray(rb, L);
                        System.arraycopy(rb, 0, y, top + half * d * wo, wo);
                    }
                }
            }
        }

        /**
         * Row h of A^T M A (h = 0: sign +1, rows m0 + m1 + m2; h = 1: sign -1, rows m1 - m2 - m3)
         * for the vector of tiles at m[a] (a includes 4*h*plane), bias added: the left outputs
         * into out[o ..), the right ones into out[o + L ..). Column j of the row is
         * (m_hj + sign*m_(h+1)j) + sign*m_(h+2)j by exact fmas, as in {@link #inputRows}.
         * Shared by both output forms; vectors stay inside (see {@link Vec}).
         */
        private static void outputPair(float[] m, int a, int plane, float sign, float bias, float[] out, int o) {
            FloatVector sg = FloatVector.broadcast(S, sign), bv = FloatVector.broadcast(S, bias);
            FloatVector s0 = FloatVector.fromArray(S, m, a + 8 * plane).fma(sg,
                    FloatVector.fromArray(S, m, a + 4 * plane).fma(sg, FloatVector.fromArray(S, m, a)));
            FloatVector s1 = FloatVector.fromArray(S, m, a + 9 * plane).fma(sg,
                    FloatVector.fromArray(S, m, a + 5 * plane).fma(sg, FloatVector.fromArray(S, m, a + plane)));
            FloatVector s2 = FloatVector.fromArray(S, m, a + 10 * plane).fma(sg,
                    FloatVector.fromArray(S, m, a + 6 * plane).fma(sg, FloatVector.fromArray(S, m, a + 2 * plane)));
            FloatVector s3 = FloatVector.fromArray(S, m, a + 11 * plane).fma(sg,
                    FloatVector.fromArray(S, m, a + 7 * plane).fma(sg, FloatVector.fromArray(S, m, a + 3 * plane)));
            s0.add(s1).add(s2).add(bv).intoArray(out, o);
            s1.sub(s2).sub(s3).add(bv).intoArray(out, o + L);
        }

        /**
         * B along each row i of a buffered B^T z (row i, column j at tb[at + (4i + j) L], one
         * vector of tiles or channels each): V_4i..V_4i+3 stored at v[o + (4i + k) plane]. Shared
         * by the gathering and channels-last kernels; only arrays cross the call (see {@link Vec}).
         */
        private static void alongRows(float[] tb, int at, float[] v, int o, int plane) {
            for (int i = 0; i < 4; i++) {
                int ti = at + 4 * i * L, oi = o + 4 * i * plane;
                FloatVector e0 = FloatVector.fromArray(S, tb, ti), o0 = FloatVector.fromArray(S, tb, ti + L);
                FloatVector e1 = FloatVector.fromArray(S, tb, ti + 2 * L), o1 = FloatVector.fromArray(S, tb, ti + 3 * L);
                e0.sub(e1).intoArray(v, oi);
                o0.add(e1).intoArray(v, oi + plane);
                e1.sub(o0).intoArray(v, oi + 2 * plane);
                o0.sub(o1).intoArray(v, oi + 3 * plane);
            }
        }

        /**
         * V_xi^T [t, c] for the tiles of tile rows [r0, r1) from channels-last xt (see
         * {@link ChannelsLast}), 16 channels per vector: per tile, B^T down each of the four
         * columns into a small buffer, then B along each row ({@link Conv2dWinograd#inputTiles}'s
         * operations, in its order). Channels past the last whole vector: the same in scalar code.
         */
        static void inputTilesLast(Conv2d.Dims g, Tiles tiles, float[] xt, int hp, int wp, int r0, int r1, float[] v,
                                   int plane, Scratch s) {
            int ci = g.ci(), d = g.dil(), per = tiles.perRow, perImage = tiles.rowCorner.length;
            int whole = ci - ci % L, rowStep = wp * ci, colStep = d * ci;
            float[] tb = s.out(16 * L);
            for (int k = 0; k < r1 - r0; k++) {
                int r = r0 + k, n = r / perImage, row = tiles.rowCorner[r % perImage];
                for (int l = 0; l < per; l++) {
                    int t = k * per + l;
                    // Padded coordinates: input (row - p + d*i, col - p + d*j) is padded (row + d*i, col + d*j).
                    int z = ((n * hp + row) * wp + tiles.colCorner[l]) * ci;
                    for (int c0 = 0; c0 < whole; c0 += L) {
                        for (int j = 0; j < 4; j++) {
                            int zj = z + j * colStep + c0;
                            FloatVector z0 = FloatVector.fromArray(S, xt, zj);
                            FloatVector z1 = FloatVector.fromArray(S, xt, zj + d * rowStep);
                            FloatVector z2 = FloatVector.fromArray(S, xt, zj + 2 * d * rowStep);
                            FloatVector z3 = FloatVector.fromArray(S, xt, zj + 3 * d * rowStep);
                            z0.sub(z2).intoArray(tb, j * L);
                            z1.add(z2).intoArray(tb, (4 + j) * L);
                            z2.sub(z1).intoArray(tb, (8 + j) * L);
                            z1.sub(z3).intoArray(tb, (12 + j) * L);
                        }
                        alongRows(tb, 0, v, t * ci + c0, plane);
                    }
                    for (int c = whole; c < ci; c++) {
                        for (int j = 0; j < 4; j++) {
                            int zj = z + j * colStep + c;
                            float z0 = xt[zj], z1 = xt[zj + d * rowStep], z2 = xt[zj + 2 * d * rowStep], z3 = xt[zj + 3 * d * rowStep];
                            tb[j] = z0 - z2;
                            tb[4 + j] = z1 + z2;
                            tb[8 + j] = z2 - z1;
                            tb[12 + j] = z1 - z3;
                        }
                        for (int i = 0; i < 4; i++) {
                            float e0 = tb[4 * i], o0 = tb[4 * i + 1], e1 = tb[4 * i + 2], o1 = tb[4 * i + 3];
                            int o = 4 * i * plane + t * ci + c;
                            v[o] = e0 - e1;
                            v[o + plane] = o0 + e1;
                            v[o + 2 * plane] = e1 - o0;
                            v[o + 3 * plane] = o0 - o1;
                        }
                    }
                }
            }
        }

        /**
         * dM_xi^T [t, k] for the tiles of tile rows [r0, r1) from channels-last dyt (zero past
         * the plane), 16 output channels per vector; {@link Conv2dWinograd#gradientTiles}'s
         * operations. Channels past the last whole vector: {@link Conv2dWinograd#gradientRow}.
         */
        static void gradientTilesLast(Conv2d.Dims g, Tiles tiles, float[] dyt, int hq, int wq, int r0, int r1,
                                      float[] m, int plane) {
            int co = g.co(), d = g.dil(), per = tiles.perRow, perImage = tiles.rowCorner.length;
            int whole = co - co % L, down = d * wq * co, right = d * co;
            for (int k = 0; k < r1 - r0; k++) {
                int r = r0 + k, n = r / perImage, row = tiles.rowCorner[r % perImage];
                for (int l = 0; l < per; l++) {
                    int t = k * per + l;
                    int at = ((n * hq + row) * wq + tiles.colCorner[l]) * co;
                    for (int c0 = 0; c0 < whole; c0 += L) {
                        int q = at + c0, o = t * co + c0;
                        FloatVector a = FloatVector.fromArray(S, dyt, q), b = FloatVector.fromArray(S, dyt, q + right);
                        FloatVector c = FloatVector.fromArray(S, dyt, q + down), e = FloatVector.fromArray(S, dyt, q + down + right);
                        a.intoArray(m, o);
                        a.add(b).intoArray(m, o + plane);
                        a.sub(b).intoArray(m, o + 2 * plane);
                        b.neg().intoArray(m, o + 3 * plane);
                        FloatVector p = a.add(c), pq = b.add(e);
                        p.intoArray(m, o + 4 * plane);
                        p.add(pq).intoArray(m, o + 5 * plane);
                        p.sub(pq).intoArray(m, o + 6 * plane);
                        pq.neg().intoArray(m, o + 7 * plane);
                        p = a.sub(c);
                        pq = b.sub(e);
                        p.intoArray(m, o + 8 * plane);
                        p.add(pq).intoArray(m, o + 9 * plane);
                        p.sub(pq).intoArray(m, o + 10 * plane);
                        pq.neg().intoArray(m, o + 11 * plane);
                        p = c.neg();
                        pq = e.neg();
                        p.intoArray(m, o + 12 * plane);
                        p.add(pq).intoArray(m, o + 13 * plane);
                        p.sub(pq).intoArray(m, o + 14 * plane);
                        pq.neg().intoArray(m, o + 15 * plane);
                    }
                    for (int ch = whole; ch < co; ch++) {
                        int q = at + ch, o = t * co + ch;
                        float a = dyt[q], b = dyt[q + right], c = dyt[q + down], e = dyt[q + down + right];
                        gradientRow(m, o, plane, a, b);
                        gradientRow(m, o + 4 * plane, plane, a + c, b + e);
                        gradientRow(m, o + 8 * plane, plane, a - c, b - e);
                        gradientRow(m, o + 12 * plane, plane, -c, -e);
                    }
                }
            }
        }

        /**
         * V for tile rows [r0, r1), tiles gathered. Per channel, the four input rows of every
         * tile row go to a zero-padded buffer (4 rows per tile row, W + 2p + d columns: the
         * padding columns and the rows outside the image stay 0 for all channels). Per vector
         * of tiles: B^T down each of the four gathered columns into a small buffer, then B along
         * each of its rows.
         */
        static void inputGathered(Conv2d.Dims g, Tiles tiles, float[] x, int r0, int r1, float[] v, int ld, int plane,
                                  Scratch s) {
            int ci = g.ci(), h = g.h(), w = g.w(), d = g.dil(), p = g.pad();
            int perImage = tiles.rowCorner.length, rows = r1 - r0, wp = w + 2 * p + d;
            float[] zb = s.z(4 * rows * wp + 16 * L);
            int tb = 4 * rows * wp; // B^T z for one vector of tiles: row i, column j at tb + (4i + j) L
            Arrays.fill(zb, 0, tb, 0f);
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
                    for (int j = 0; j < 4; j++) {
                        FloatVector z0 = FloatVector.fromArray(S, zb, j * d, at, t0);
                        FloatVector z1 = FloatVector.fromArray(S, zb, wp + j * d, at, t0);
                        FloatVector z2 = FloatVector.fromArray(S, zb, 2 * wp + j * d, at, t0);
                        FloatVector z3 = FloatVector.fromArray(S, zb, 3 * wp + j * d, at, t0);
                        z0.sub(z2).intoArray(zb, tb + j * L);
                        z1.add(z2).intoArray(zb, tb + (4 + j) * L);
                        z2.sub(z1).intoArray(zb, tb + (8 + j) * L);
                        z1.sub(z3).intoArray(zb, tb + (12 + j) * L);
                    }
                    alongRows(zb, tb, v, c * ld + t0, plane);
                }
            }
        }

        /**
         * y for tile rows [r0, r1), tiles scattered: each tile's four outputs into two padded
         * rows per tile row and output channel (Wo + d columns, so a tile's right column past the
         * edge has room), then the valid part of each row copied into y ({@link #outputPair}).
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
            float[] pair = s.z(2 * L);
            for (int k0 = 0; k0 < co; k0++) {
                float bias = b == null ? 0f : b[k0];
                int oc = k0 * outPlane;
                for (int t0 = 0; t0 < ld; t0 += L) {
                    for (int half = 0; half < 2; half++) {
                        outputPair(m, k0 * ld + t0 + 4 * half * plane, plane, half == 0 ? 1f : -1f, bias, pair, 0);
                        FloatVector.fromArray(S, pair, 0).intoArray(ob, oc + half * wp, at, t0);
                        FloatVector.fromArray(S, pair, L).intoArray(ob, oc + half * wp + d, at, t0);
                    }
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
