package ncsn.ops;

import java.util.ArrayList;
import java.util.List;
import ncsn.autograd.Autograd;
import ncsn.autograd.GradCheck;
import ncsn.cpu.Gemm;
import ncsn.cpu.Parallel;
import ncsn.cuda.Launch;
import ncsn.tensor.DType;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;

/**
 * Fully connected layer, op "linear": y [N,out] = x [N,in] w^T + b, with w [out,in] in PyTorch's
 * nn.Linear layout and b [out] optional (null).
 * <pre>
 *   gx [N,in]  = gy [N,out] w [out,in]
 *   gw [out,in] = gy^T [out,N] x [N,in]
 *   gb [out]   = sum_n gy[n,:]
 * </pre>
 * float32: all three products go through {@link Gemm#sgemm} (row-major BLAS semantics); the bias
 * is written into y first and the product accumulated onto it (beta = 1), so y is written once.
 * The bias gradient sums columns of gy in double ({@link Reduce.Cpu#sumTo}).
 * CUDA tensors go to {@link Gpu}: the same three products through gemm.cu's tiled kernel.
 */
public final class Linear {
    static final String OP = "linear";

    private Linear() {}

    public static Tensor apply(Tensor x, Tensor w, Tensor b) {
        OpChecks.live(OP, x, w, b);
        OpChecks.rank(OP, "x", x, 2);
        OpChecks.rank(OP, "w", w, 2);
        int n = x.dim(0), in = x.dim(1), out = w.dim(0);
        if (w.dim(1) != in)
            throw new TensorException(OP + ": x " + x.describe() + " has " + in + " features but w " + w.describe()
                    + " expects " + w.dim(1) + " (w is [out, in])");
        if (b != null && !b.hasShape(out))
            throw new TensorException(OP + ": bias " + b.describe() + " must be [" + out + "] for w " + w.describe());
        Tensor y = Tensor.empty(x.device(), x.dtype(), n, out);
        boolean gpu = !x.isCpu();
        if (gpu) Gpu.forward(y, x, w, b, n, in, out);
        else if (x.dtype() == DType.F64) Reference.forward(y.f64(), x.f64(), w.f64(), b == null ? null : b.f64(), n, in, out);
        else Cpu.forward(y.f32(), x.f32(), w.f32(), b == null ? null : b.f32(), n, in, out);
        Autograd.record(OP, y, new Tensor[] {x, w, b}, g -> {
            Tensor gx = x.requiresGrad() ? Tensor.empty(x.device(), x.dtype(), n, in) : null;
            Tensor gw = w.requiresGrad() ? Tensor.empty(w.device(), w.dtype(), out, in) : null;
            Tensor gb = b != null && b.requiresGrad() ? Tensor.empty(b.device(), b.dtype(), out) : null;
            if (gpu) {
                Gpu.backward(gx, gw, gb, g, x, w, n, in, out);
            } else if (x.dtype() == DType.F64) {
                Reference.backward(gx == null ? null : gx.f64(), gw == null ? null : gw.f64(), gb == null ? null : gb.f64(),
                        g.f64(), x.f64(), w.f64(), n, in, out);
            } else {
                Cpu.backward(gx == null ? null : gx.f32(), gw == null ? null : gw.f32(), gb == null ? null : gb.f32(),
                        g.f32(), x.f32(), w.f32(), n, in, out);
            }
            return new Tensor[] {gx, gw, gb};
        });
        return y;
    }

    /** float64 reference: the sums written out. */
    static final class Reference {
        static void forward(double[] y, double[] x, double[] w, double[] b, int n, int in, int out) {
            for (int i = 0; i < n; i++)
                for (int o = 0; o < out; o++) {
                    double s = b == null ? 0 : b[o];
                    for (int k = 0; k < in; k++) s += x[i * in + k] * w[o * in + k];
                    y[i * out + o] = s;
                }
        }

        static void backward(double[] gx, double[] gw, double[] gb, double[] g, double[] x, double[] w, int n, int in, int out) {
            if (gx != null)
                for (int i = 0; i < n; i++)
                    for (int k = 0; k < in; k++) {
                        double s = 0;
                        for (int o = 0; o < out; o++) s += g[i * out + o] * w[o * in + k];
                        gx[i * in + k] = s;
                    }
            if (gw != null)
                for (int o = 0; o < out; o++)
                    for (int k = 0; k < in; k++) {
                        double s = 0;
                        for (int i = 0; i < n; i++) s += g[i * out + o] * x[i * in + k];
                        gw[o * in + k] = s;
                    }
            if (gb != null)
                for (int o = 0; o < out; o++) {
                    double s = 0;
                    for (int i = 0; i < n; i++) s += g[i * out + o];
                    gb[o] = s;
                }
        }
    }

    /** float32: sgemm for the products. */
    static final class Cpu {
        static void forward(float[] y, float[] x, float[] w, float[] b, int n, int in, int out) {
            float beta = 0f;
            if (b != null) {
                Parallel.forRange(n, Math.max(1, (1 << 14) / Math.max(1, out)), (lo, hi) -> {
                    for (int i = lo; i < hi; i++) System.arraycopy(b, 0, y, i * out, out);
                });
                beta = 1f;
            }
            // y [n,out] = x [n,in] * (w [out,in])^T (+ y).
            Gemm.sgemm(false, true, n, out, in, 1f, x, 0, in, w, 0, in, beta, y, 0, out);
        }

        static void backward(float[] gx, float[] gw, float[] gb, float[] g, float[] x, float[] w, int n, int in, int out) {
            // gx [n,in] = g [n,out] * w [out,in]
            if (gx != null) Gemm.sgemm(false, false, n, in, out, 1f, g, 0, out, w, 0, in, 0f, gx, 0, in);
            // gw [out,in] = (g [n,out])^T * x [n,in]
            if (gw != null) Gemm.sgemm(true, false, out, in, n, 1f, g, 0, out, x, 0, in, 0f, gw, 0, in);
            if (gb != null) Reduce.Cpu.sumTo(gb, g, new int[] {n, out}, new int[] {1, out}, 1.0);
        }
    }

    /**
     * CUDA launchers for src/main/cuda/gemm.cu: the three products through the tiled GEMM
     * (64x64 tile, K slices of 16, 256 threads, 4x4 per thread; grid (ceil(N/64), ceil(M/64))),
     * the bias added in the forward GEMM's epilogue, its gradient summed per column in double.
     * FLOPs: 2 n in out per product.
     */
    static final class Gpu {
        private static final int TILE = 64;

        static void forward(Tensor y, Tensor x, Tensor w, Tensor b, int n, int in, int out) {
            // y [n,out] = x [n,in] * (w [out,in])^T (+ b on every row)
            gemm("gemm_nt_f32", x, w, b, y, n, out, in, in, in, out);
        }

        static void backward(Tensor gx, Tensor gw, Tensor gb, Tensor g, Tensor x, Tensor w, int n, int in, int out) {
            // gx [n,in] = g [n,out] * w [out,in]
            if (gx != null) gemm("gemm_nn_f32", g, w, null, gx, n, in, out, out, in, in);
            // gw [out,in] = (g [n,out])^T * x [n,in]
            if (gw != null) gemm("gemm_tn_f32", g, x, null, gw, out, in, n, out, in, in);
            if (gb != null)
                Launch.kernel("linear_bias_grad_f32").ptr(g).ptr(gb).i(n).i(out).elements(out).run();
        }

        /** c [m, nn] (overwritten) = op(a) op(b) (+ bias[col]) with k-deep products. */
        private static void gemm(String kernel, Tensor a, Tensor b, Tensor bias, Tensor c, int m, int nn, int k,
                                 int lda, int ldb, int ldc) {
            if (a.dtype() != DType.F32)
                throw new TensorException(OP + ": CUDA tensors must be float32, got " + a.describe());
            int gy = (m + TILE - 1) / TILE;
            if (gy > 65535)
                throw new TensorException(OP + ": " + m + " rows need " + gy + " row tiles; CUDA allows 65535 ("
                        + a.describe() + ")");
            Launch.kernel(kernel).ptr(a).ptr(b).ptr(bias).ptr(c).i(m).i(nn).i(k).i(lda).i(ldb).i(ldc)
                    .grid((nn + TILE - 1) / TILE, gy).block(256).run();
        }
    }

    static List<OpCatalog.Case> cases() {
        List<OpCatalog.Case> cs = new ArrayList<>();
        int[][] sizes = {{3, 5, 7}, {1, 4, 3}, {5, 2, 9}, {6, 17, 11}};
        for (int[] s : sizes) {
            int n = s[0], in = s[1], out = s[2];
            cs.add(OpCatalog.Case.of(OP, "x[" + n + "," + in + "] w[" + out + "," + in + "] +b",
                    seed -> new Tensor[] {
                        OpCatalog.normal(seed, n, in).name("x"),
                        OpCatalog.normal(seed + 1, out, in).name("w"),
                        OpCatalog.normal(seed + 2, out).name("b")},
                    t -> apply(t[0], t[1], t[2])));
        }
        // More than one 64x64 CUDA tile in every dimension, K not a multiple of the 16-deep slice.
        cs.add(OpCatalog.Case.of(OP, "x[70,33] w[67,33] +b (multi-tile)",
                seed -> new Tensor[] {
                    OpCatalog.normal(seed, 70, 33).name("x"),
                    OpCatalog.normal(seed + 1, 67, 33).name("w"),
                    OpCatalog.normal(seed + 2, 67).name("b")},
                t -> apply(t[0], t[1], t[2])).gradOptions(GradCheck.Options.defaults().withMaxElements(32)));
        cs.add(OpCatalog.Case.of(OP, "x[4,3] w[5,3] no bias",
                seed -> new Tensor[] {OpCatalog.normal(seed, 4, 3).name("x"), OpCatalog.normal(seed + 1, 5, 3).name("w")},
                t -> apply(t[0], t[1], null)));
        return cs;
    }
}
