package ncsn.ops;

import java.util.List;
import ncsn.autograd.Autograd;
import ncsn.cpu.Parallel;
import ncsn.cuda.Launch;
import ncsn.tensor.DType;
import ncsn.tensor.Tensor;

/**
 * Softplus with PyTorch's defaults (beta = 1, threshold = 20), op "softplus":
 * <pre>
 *   out = x                               for x > 20   (PyTorch returns the input there)
 *       = log1p(exp(-|x|)) + max(x, 0)    otherwise    (= log(1 + e^x) without overflow or
 *                                                        the underflow of log1p(exp(x)) for x << 0)
 *   d out / d x = 1 for x > 20, sigmoid(x) otherwise
 * </pre>
 * The forward jumps by log1p(e^-20) ~ 2e-9 at the threshold, exactly as PyTorch's does.
 */
public final class Softplus {
    static final String OP = "softplus";
    static final double THRESHOLD = 20.0;

    private Softplus() {}

    public static Tensor apply(Tensor x) {
        OpChecks.live(OP, x);
        Tensor out = Tensor.emptyLike(x);
        int n = x.numel();
        if (!x.isCpu()) Gpu.forward(out, x);
        else if (x.dtype() == DType.F64) Reference.forward(out.f64(), x.f64(), n);
        else Cpu.forward(out.f32(), x.f32(), n);
        Autograd.record(OP, out, new Tensor[] {x}, g -> {
            Tensor gx = Tensor.emptyLike(x);
            if (!x.isCpu()) Gpu.backward(gx, g, x);
            else if (x.dtype() == DType.F64) Reference.backward(gx.f64(), g.f64(), x.f64(), n);
            else Cpu.backward(gx.f32(), g.f32(), x.f32(), n);
            return new Tensor[] {gx};
        });
        return out;
    }

    /** float64 reference. */
    static final class Reference {
        static double softplus(double v) {
            return v > THRESHOLD ? v : Math.log1p(Math.exp(-Math.abs(v))) + Math.max(v, 0.0);
        }

        static double sigmoid(double v) {
            if (v >= 0) return 1.0 / (1.0 + Math.exp(-v));
            double e = Math.exp(v);
            return e / (1.0 + e);
        }

        static void forward(double[] out, double[] x, int n) {
            for (int i = 0; i < n; i++) out[i] = softplus(x[i]);
        }

        static void backward(double[] gx, double[] g, double[] x, int n) {
            for (int i = 0; i < n; i++) gx[i] = x[i] > THRESHOLD ? g[i] : g[i] * sigmoid(x[i]);
        }
    }

    /**
     * float32: the same formulas evaluated in double per element (exp and log1p are double
     * intrinsics; the extra precision is free next to their cost) and rounded once.
     */
    static final class Cpu {
        private static final int GRAIN = 1 << 13;

        static void forward(float[] out, float[] x, int n) {
            Parallel.forRange(n, GRAIN, (lo, hi) -> {
                for (int i = lo; i < hi; i++) {
                    float v = x[i];
                    out[i] = v > 20f ? v : (float) (Math.log1p(Math.exp(-Math.abs((double) v))) + Math.max(v, 0f));
                }
            });
        }

        static void backward(float[] gx, float[] g, float[] x, int n) {
            Parallel.forRange(n, GRAIN, (lo, hi) -> {
                for (int i = lo; i < hi; i++) {
                    float v = x[i];
                    if (v > 20f) {
                        gx[i] = g[i];
                    } else {
                        // sigmoid(v) = 1 / (1 + e^-v) = e^v / (1 + e^v): the form whose exp cannot overflow.
                        double e = Math.exp(-Math.abs((double) v));
                        double s = v >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
                        gx[i] = (float) (g[i] * s);
                    }
                }
            });
        }
    }

    /** CUDA launchers for src/main/cuda/softplus.cu (grid-stride; the same double-per-element formulas). */
    static final class Gpu {
        static void forward(Tensor out, Tensor x) {
            int n = x.numel();
            Launch.kernel("softplus_forward_f32").ptr(x).ptr(out).l(n).elements(n).run();
        }

        static void backward(Tensor gx, Tensor g, Tensor x) {
            int n = x.numel();
            Launch.kernel("softplus_backward_f32").ptr(g).ptr(x).ptr(gx).l(n).elements(n).run();
        }
    }

    static List<OpCatalog.Case> cases() {
        return List.of(
                OpCatalog.Case.of(OP, "N(0,1) [2,3,5,7]", seed -> new Tensor[] {OpCatalog.normal(seed, 2, 3, 5, 7).name("x")},
                        in -> apply(in[0])),
                // Both tails: large negative (output ~ e^x, tiny) and beyond the threshold (identity).
                OpCatalog.Case.of(OP, "U(-40,40) [3,37]", seed -> new Tensor[] {OpCatalog.uniform(seed, -40, 40, 3, 37).name("x")},
                        in -> apply(in[0])),
                OpCatalog.Case.of(OP, "[1,1]", seed -> new Tensor[] {OpCatalog.normal(seed, 1, 1).name("x")},
                        in -> apply(in[0])));
    }
}
