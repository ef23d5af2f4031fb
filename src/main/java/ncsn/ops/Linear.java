package ncsn.ops;

import java.util.ArrayList;
import java.util.List;
import ncsn.autograd.Autograd;
import ncsn.cpu.Gemm;
import ncsn.cpu.Parallel;
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
 */
public final class Linear {
    static final String OP = "linear";

    private Linear() {}

    public static Tensor apply(Tensor x, Tensor w, Tensor b) {
        OpChecks.liveCpu(OP, x, w, b);
        OpChecks.rank(OP, "x", x, 2);
        OpChecks.rank(OP, "w", w, 2);
        int n = x.dim(0), in = x.dim(1), out = w.dim(0);
        if (w.dim(1) != in)
            throw new TensorException(OP + ": x " + x.describe() + " has " + in + " features but w " + w.describe()
                    + " expects " + w.dim(1) + " (w is [out, in])");
        if (b != null && !b.hasShape(out))
            throw new TensorException(OP + ": bias " + b.describe() + " must be [" + out + "] for w " + w.describe());
        Tensor y = Tensor.empty(x.dtype(), n, out);
        if (x.dtype() == DType.F64) Reference.forward(y.f64(), x.f64(), w.f64(), b == null ? null : b.f64(), n, in, out);
        else Cpu.forward(y.f32(), x.f32(), w.f32(), b == null ? null : b.f32(), n, in, out);
        Autograd.record(OP, y, new Tensor[] {x, w, b}, g -> {
            Tensor gx = x.requiresGrad() ? Tensor.empty(x.dtype(), n, in) : null;
            Tensor gw = w.requiresGrad() ? Tensor.empty(w.dtype(), out, in) : null;
            Tensor gb = b != null && b.requiresGrad() ? Tensor.empty(b.dtype(), out) : null;
            if (x.dtype() == DType.F64) {
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
        cs.add(OpCatalog.Case.of(OP, "x[4,3] w[5,3] no bias",
                seed -> new Tensor[] {OpCatalog.normal(seed, 4, 3).name("x"), OpCatalog.normal(seed + 1, 5, 3).name("w")},
                t -> apply(t[0], t[1], null)));
        return cs;
    }
}
