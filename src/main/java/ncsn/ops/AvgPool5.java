package ncsn.ops;

import java.util.List;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import ncsn.autograd.Autograd;
import ncsn.cpu.Parallel;
import ncsn.cuda.Launch;
import ncsn.tensor.DType;
import ncsn.tensor.Tensor;

/**
 * 5x5 average pooling, stride 1, zero padding 2, padding counted in the divisor (PyTorch
 * AvgPool2d(5, 1, 2) with count_include_pad=True): the CRP block's pool (spec section 3; the
 * reference code names the module `maxpool` but it averages).
 * <pre>
 *   out[n,c,i,j] = (1/25) * sum_{|di|<=2, |dj|<=2} x[n,c,i+di,j+dj]   (terms outside the plane are 0)
 * </pre>
 * The box is symmetric and the divisor constant, so the backward (the adjoint) is the same
 * operator applied to the output gradient: dx[i,j] = (1/25) * sum_{|di|,|dj|<=2} dout[i+di,j+dj].
 */
public final class AvgPool5 {
    static final String OP = "avgpool5";
    static final int K = 5, R = 2;

    private AvgPool5() {}

    /** out [N,C,H,W] = avgpool5(x [N,C,H,W]). */
    public static Tensor apply(Tensor x) {
        OpChecks.live(OP, x);
        OpChecks.rank(OP, "x", x, 4);
        int planes = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3);
        Tensor out = Tensor.emptyLike(x);
        if (!x.isCpu()) Gpu.pool(out, x, h, w);
        else if (x.dtype() == DType.F64) Reference.forward(out.f64(), x.f64(), planes, h, w);
        else Cpu.pool(out.f32(), x.f32(), planes, h, w);
        Autograd.record(OP, out, new Tensor[] {x}, g -> {
            Tensor gx = Tensor.emptyLike(x);
            if (!x.isCpu()) Gpu.pool(gx, g, h, w);   // self-adjoint (see class comment)
            else if (x.dtype() == DType.F64) Reference.backward(gx.f64(), g.f64(), planes, h, w);
            else Cpu.pool(gx.f32(), g.f32(), planes, h, w);   // self-adjoint (see class comment)
            return new Tensor[] {gx};
        });
        return out;
    }

    /** float64 reference: the window sum per output element; backward scatters each output's share. */
    static final class Reference {
        static void forward(double[] out, double[] x, int planes, int h, int w) {
            for (int q = 0; q < planes; q++)
                for (int i = 0; i < h; i++)
                    for (int j = 0; j < w; j++) {
                        double s = 0;
                        for (int di = -R; di <= R; di++)
                            for (int dj = -R; dj <= R; dj++) {
                                int r = i + di, c = j + dj;
                                if (r >= 0 && r < h && c >= 0 && c < w) s += x[(q * h + r) * w + c];
                            }
                        out[(q * h + i) * w + j] = s / (K * K);
                    }
        }

        /** gx written: every output element sends gout/25 to each in-plane input of its window. */
        static void backward(double[] gx, double[] gout, int planes, int h, int w) {
            java.util.Arrays.fill(gx, 0, planes * h * w, 0.0);
            for (int q = 0; q < planes; q++)
                for (int i = 0; i < h; i++)
                    for (int j = 0; j < w; j++) {
                        double share = gout[(q * h + i) * w + j] / (K * K);
                        for (int di = -R; di <= R; di++)
                            for (int dj = -R; dj <= R; dj++) {
                                int r = i + di, c = j + dj;
                                if (r >= 0 && r < h && c >= 0 && c < w) gx[(q * h + r) * w + c] += share;
                            }
                    }
        }
    }

    /**
     * float32 kernel, separable, on blocks of whole planes (about 16 KB, in L1): vertical 5-sums
     * into a scratch block, then horizontal 5-sums times 1/25 into out, each as ONE flat loop over
     * the block (t[k] = x[k-2W] + ... + x[k+2W], out[k] = t[k-2] + ... + t[k+2]), long enough to
     * vectorise even for 16-wide rows; the flat loops compute wrong values where a window
     * crosses a plane's top/bottom rows or a row's first/last columns, and those edge rows and
     * columns (2 each side) are then overwritten with the clipped sums (3 or 4 terms, written out). About 9 adds per element
     * instead of 25. Parallel over planes. The two flat loops use the Vector API when loaded:
     * JDK 17's C2 did not vectorise the vertical loop (five loads at run-time offsets +-W, +-2W;
     * measured 10x slower than the explicit vectors) and only partly the horizontal one (3x).
     */
    static final class Cpu {
        private static final int GRAIN = 1 << 15;
        /** Scratch block size in floats (whole planes; at least one). */
        private static final int BLOCK = 4096;
        private static final float INV = 1f / (K * K);

        /** out [planes,H,W] = avgpool5(in [planes,H,W]); out and in must not alias. */
        static void pool(float[] out, float[] in, int planes, int h, int w) {
            int plane = h * w;
            int per = Math.max(1, BLOCK / Math.max(1, plane));   // planes per block
            Parallel.forRange(planes, Math.max(1, GRAIN / Math.max(1, plane)), (lo, hi) -> {
                float[] t = new float[per * plane];   // vertical 5-sums of one block
                for (int q = lo; q < hi; q += per) {
                    int nb = Math.min(per, hi - q), base = q * plane, len = nb * plane;
                    verticalSums(t, in, base, len, nb, h, w);
                    horizontalSums(out, base, t, len, nb, h, w);
                }
            });
        }

        /** t[k] = sum of in[base + k + r*W], |r| <= 2, rows clipped to each plane; k in [0, len). */
        private static void verticalSums(float[] t, float[] in, int base, int len, int nb, int h, int w) {
            int w2 = 2 * w, k = w2;
            if (VECTOR) k = Vec.verticalSums(t, in, base, w2, len - w2, w);
            for (; k < len - w2; k++)
                t[k] = in[base + k - w2] + in[base + k - w] + in[base + k] + in[base + k + w] + in[base + k + w2];
            // Rows whose window leaves the plane: 0, 1, H-2, H-1 (every row when H <= 4).
            for (int b = 0; b < nb; b++) {
                int o = b * h * w, src = base + o;
                if (h >= 4) {
                    sumRows(t, o, in, src, 3, w);                                  // row 0: rows 0..2
                    sumRows(t, o + w, in, src, 4, w);                              // row 1: rows 0..3
                    sumRows(t, o + (h - 2) * w, in, src + (h - 4) * w, 4, w);      // row H-2: rows H-4..H-1
                    sumRows(t, o + (h - 1) * w, in, src + (h - 3) * w, 3, w);      // row H-1: rows H-3..H-1
                } else {
                    for (int i = 0; i < h; i++) {
                        int r0 = Math.max(0, i - R), r1 = Math.min(h - 1, i + R);
                        sumRows(t, o + i * w, in, src + r0 * w, r1 - r0 + 1, w);
                    }
                }
            }
        }

        /** t[o + j] = sum over r < count of in[src + r*W + j], j in [0, W). */
        private static void sumRows(float[] t, int o, float[] in, int src, int count, int w) {
            int j = VECTOR ? Vec.sumRows(t, o, in, src, count, w) : 0;
            for (; j < w; j++) {
                float s = in[src + j];
                for (int r = 1; r < count; r++) s += in[src + r * w + j];
                t[o + j] = s;
            }
        }

        /** out[base + k] = (sum of t[k + d], |d| <= 2, columns clipped to each row) / 25; k in [0, len). */
        private static void horizontalSums(float[] out, int base, float[] t, int len, int nb, int h, int w) {
            int k = 2;
            if (VECTOR) k = Vec.horizontalSums(out, base, t, 2, len - 2, INV);
            for (; k < len - 2; k++) out[base + k] = (t[k - 2] + t[k - 1] + t[k] + t[k + 1] + t[k + 2]) * INV;
            // Columns whose window leaves the row: 0, 1, W-2, W-1 (every column when W <= 4).
            for (int row = 0; row < nb * h; row++) {
                int o = row * w, d = base + o;
                if (w >= 4) {
                    out[d] = (t[o] + t[o + 1] + t[o + 2]) * INV;
                    out[d + 1] = (t[o] + t[o + 1] + t[o + 2] + t[o + 3]) * INV;
                    int e = o + w - 4;
                    out[d + w - 2] = (t[e] + t[e + 1] + t[e + 2] + t[e + 3]) * INV;
                    out[d + w - 1] = (t[e + 1] + t[e + 2] + t[e + 3]) * INV;
                } else {
                    for (int j = 0; j < w; j++) {
                        float s = 0;
                        for (int c = Math.max(0, j - R); c <= Math.min(w - 1, j + R); c++) s += t[o + c];
                        out[d + j] = s * INV;
                    }
                }
            }
        }
    }

    /** Vector API on unless the module is absent or -Dncsn.simd=scalar (then the scalar loops do all the work). */
    static final boolean VECTOR = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent()
            && !"scalar".equals(System.getProperty("ncsn.simd"));

    /** The flat loops of {@link Cpu} in explicit vectors; each returns the index where the scalar tail starts. */
    static final class Vec {
        private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
        private static final int V = S.length();

        /** t[k] = in[base+k-2W] + in[base+k-W] + in[base+k] + in[base+k+W] + in[base+k+2W] for k in [from, to). */
        static int verticalSums(float[] t, float[] in, int base, int from, int to, int w) {
            int k = from, w2 = 2 * w;
            for (; k + V <= to; k += V) {
                int i = base + k;
                FloatVector.fromArray(S, in, i - w2).add(FloatVector.fromArray(S, in, i - w))
                        .add(FloatVector.fromArray(S, in, i)).add(FloatVector.fromArray(S, in, i + w))
                        .add(FloatVector.fromArray(S, in, i + w2)).intoArray(t, k);
            }
            return k;
        }

        /** t[o+j] = sum over r < count of in[src + r*W + j], for j in [0, W). */
        static int sumRows(float[] t, int o, float[] in, int src, int count, int w) {
            int j = 0;
            for (; j + V <= w; j += V) {
                var s = FloatVector.fromArray(S, in, src + j);
                for (int r = 1; r < count; r++) s = s.add(FloatVector.fromArray(S, in, src + r * w + j));
                s.intoArray(t, o + j);
            }
            return j;
        }

        /** out[base+k] = (t[k-2] + t[k-1] + t[k] + t[k+1] + t[k+2]) * inv for k in [from, to). */
        static int horizontalSums(float[] out, int base, float[] t, int from, int to, float inv) {
            int k = from;
            for (; k + V <= to; k += V) {
                FloatVector.fromArray(S, t, k - 2).add(FloatVector.fromArray(S, t, k - 1))
                        .add(FloatVector.fromArray(S, t, k)).add(FloatVector.fromArray(S, t, k + 1))
                        .add(FloatVector.fromArray(S, t, k + 2)).mul(inv).intoArray(out, base + k);
            }
            return k;
        }
    }

    /**
     * CUDA launcher for avgpool5_f32 (src/main/cuda/pool.cu): one block per 32x8 output tile,
     * staged with its halo in shared memory; forward and backward (the adjoint is the same operator).
     */
    static final class Gpu {
        /** Tile of the kernel (AVGPOOL5_TW x AVGPOOL5_TH); the block is one thread per tile element. */
        private static final int TW = 32, TH = 8;

        /** out [planes,H,W] = avgpool5(in [planes,H,W]); out and in must not alias. */
        static void pool(Tensor out, Tensor in, int h, int w) {
            if (in.numel() == 0) return;
            int planes = in.dim(0) * in.dim(1);
            int tilesX = (w + TW - 1) / TW, tilesY = (h + TH - 1) / TH;
            // planes * tiles <= numel (every tile holds an element), so the grid fits an int.
            Launch.kernel("avgpool5_f32").ptr(in).ptr(out).i(h).i(w).i(tilesX).i(tilesY)
                    .grid(planes * tilesX * tilesY).block(TW * TH).run();
        }
    }

    /** Test cases for {@link OpCatalog}: planes smaller than the window, odd sizes, full interior rows, H = W = 4. */
    static List<OpCatalog.Case> cases() {
        return List.of(
                OpCatalog.Case.of(OP, "[2,3,5,7]", s -> new Tensor[] {OpCatalog.normal(s, 2, 3, 5, 7).name("x")}, in -> apply(in[0])),
                OpCatalog.Case.of(OP, "[1,1,8,9]", s -> new Tensor[] {OpCatalog.normal(s, 1, 1, 8, 9).name("x")}, in -> apply(in[0])),
                OpCatalog.Case.of(OP, "[1,3,3,2]", s -> new Tensor[] {OpCatalog.normal(s, 1, 3, 3, 2).name("x")}, in -> apply(in[0])),
                OpCatalog.Case.of(OP, "[3,2,1,1]", s -> new Tensor[] {OpCatalog.normal(s, 3, 2, 1, 1).name("x")}, in -> apply(in[0])),
                OpCatalog.Case.of(OP, "[1,2,1,11]", s -> new Tensor[] {OpCatalog.normal(s, 1, 2, 1, 11).name("x")}, in -> apply(in[0])),
                OpCatalog.Case.of(OP, "[1,2,4,4]", s -> new Tensor[] {OpCatalog.normal(s, 1, 2, 4, 4).name("x")}, in -> apply(in[0])),
                // W >= 16: the vector path of the edge-row sums (and their scalar tail) runs.
                OpCatalog.Case.of(OP, "[1,1,6,19]", s -> new Tensor[] {OpCatalog.normal(s, 1, 1, 6, 19).name("x")}, in -> apply(in[0])));
    }
}
