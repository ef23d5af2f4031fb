package ncsn.ops;

import java.util.List;
import ncsn.autograd.Autograd;
import ncsn.cpu.Parallel;
import ncsn.cuda.Launch;
import ncsn.tensor.DType;
import ncsn.tensor.Tensor;

/**
 * ELU with alpha = 1: out = x for x > 0, exp(x) - 1 otherwise. Backward uses the saved output:
 * d out / d x = 1 for x > 0, out + 1 (= exp(x)) otherwise.
 */
public final class Elu {
    private Elu() {}

    /** out[...] = elu(x[...]); any shape. */
    public static Tensor apply(Tensor x) {
        OpChecks.live("elu", x);
        Tensor out = Tensor.emptyLike(x);
        int n = x.numel();
        if (!x.isCpu()) Gpu.forward(out, x);
        else if (x.dtype() == DType.F64) Reference.forward(out.f64(), x.f64(), n);
        else Cpu.forward(out.f32(), x.f32(), n);
        Autograd.record("elu", out, new Tensor[] {x}, g -> {
            Tensor gx = Tensor.emptyLike(x);
            if (!x.isCpu()) Gpu.backward(gx, g, out);
            else if (x.dtype() == DType.F64) Reference.backward(gx.f64(), g.f64(), out.f64(), n);
            else Cpu.backward(gx.f32(), g.f32(), out.f32(), n);
            return new Tensor[] {gx};
        });
        return out;
    }

    /** float64 reference: the definition, element by element. */
    static final class Reference {
        static void forward(double[] out, double[] x, int n) {
            for (int i = 0; i < n; i++) out[i] = x[i] > 0 ? x[i] : Math.expm1(x[i]);
        }

        static void backward(double[] gx, double[] gout, double[] out, int n) {
            for (int i = 0; i < n; i++) gx[i] = gout[i] * (out[i] > 0 ? 1.0 : out[i] + 1.0);
        }
    }

    /** float32 kernel: the same loops split across cores (memory-bound; the JIT vectorises the loop). */
    static final class Cpu {
        private static final int GRAIN = 1 << 15;

        static void forward(float[] out, float[] x, int n) {
            Parallel.forRange(n, GRAIN, (lo, hi) -> {
                for (int i = lo; i < hi; i++) out[i] = elu(x[i]);
            });
        }

        /**
         * elu(v) in float32 through Math.exp (a HotSpot intrinsic, the same stub in the interpreter
         * and both JITs, so results do not depend on when code gets compiled) instead of Math.expm1
         * (StrictMath's native fdlibm on JDK 17: about 9 ns per element, 0.9 GB/s for the whole
         * op; MemoryBoundBench: 57 -> 26 ms per 128x64x28x28 call). The Vector API's EXPM1 was 13x
         * faster still (SVML), but its results differ in the last bit between interpreted and
         * C2-compiled code, which broke bit-exact resume; a deterministic vector expm1 of our own
         * is the next step. exp(v) - 1 in double
         * has absolute error ~1e-16, i.e. relative error below float32's 6e-8 for |v| >= 1e-8;
         * closer to 0 the series v + v^2/2 (next term |v|^3/6) is exact to float precision.
         */
        static float elu(float v) {
            if (v > 0) return v;
            double d = v;
            return (float) (d > -1e-5 ? d + 0.5 * d * d : Math.exp(d) - 1.0);
        }

        static void backward(float[] gx, float[] gout, float[] out, int n) {
            Parallel.forRange(n, GRAIN, (lo, hi) -> {
                // Branch-free (min(o, 0) + 1 is 1 for o > 0, else o + 1 = the slope): with activations of
                // random sign the branchy form mispredicted half the time (3.8% of a training step).
                for (int i = lo; i < hi; i++) gx[i] = gout[i] * (Math.min(out[i], 0f) + 1f);
            });
        }
    }

    /** CUDA launchers for src/main/cuda/elementwise.cu (grid-stride, any size; out may alias x). */
    static final class Gpu {
        static void forward(Tensor out, Tensor x) {
            Launch.kernel("elu_forward_f32").ptr(x).ptr(out).l(x.numel()).elements(x.numel()).run();
        }

        static void backward(Tensor gx, Tensor gout, Tensor out) {
            Launch.kernel("elu_backward_f32").ptr(gout).ptr(out).ptr(gx).l(out.numel()).elements(out.numel()).run();
        }
    }

    /** Test cases for {@link OpCatalog}: awkward shapes, values straddling 0. */
    static List<OpCatalog.Case> cases() {
        return List.of(
                OpCatalog.Case.of("elu", "[2,3,5,7]", seed -> new Tensor[] {OpCatalog.normal(seed, 2, 3, 5, 7)},
                        in -> apply(in[0])),
                OpCatalog.Case.of("elu", "[1,1,1,1]", seed -> new Tensor[] {OpCatalog.normal(seed, 1, 1, 1, 1)},
                        in -> apply(in[0])));
    }
}
