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

    /**
     * float32 kernel, split across cores. Forward evaluates {@link #elu}, an expm1 of our own in
     * double whose bits do not depend on the JIT tier (bit-exact resume and batch-independent
     * sampling depend on that).
     *
     * <p>Tried and dropped: the same polynomial on Vector API double lanes (2.5 ms against 26 per
     * 128x64x28x28 call in MemoryBoundBench). Its float vectors were 256-bit (to widen 8 floats
     * into 8 doubles) while every other kernel's are 512-bit, and a second FloatVector shape in
     * the JVM made C2 give up intrinsics in the shared Vector API code: the GEMM's packing and the
     * Winograd transforms then boxed every vector (tens of GB/s of garbage in JFR's allocation
     * samples, full GCs every 0.5 s, the batch-128 training step 8.7 -> 12 s).
     */
    static final class Cpu {
        private static final int GRAIN = 1 << 15;

        static void forward(float[] out, float[] x, int n) {
            Parallel.forRange(n, GRAIN, (lo, hi) -> {
                for (int i = lo; i < hi; i++) out[i] = elu(x[i]);
            });
        }

        // expm1(d) = 2^k (1 + p) - 1 = 2^k p + (2^k - 1), k = round(d / ln 2), r = d - k ln 2 in
        // [-0.35, 0.35], p = expm1(r) by its Taylor series to r^11 (truncation 7e-15 relative).
        // Everything is add, multiply and fused multiply-add in double, which Java defines exactly
        // (unlike Math.exp/expm1 and the Vector API's EXP/EXPM1, whose last bit may depend on the
        // JIT tier or the CPU).
        static final double LOG2E = 1.4426950408889634;
        static final double LN2_HI = 6.93147180369123816490e-01; // 32 significant bits: k * LN2_HI is exact
        static final double LN2_LO = 1.90821492927058770002e-10;
        /** 1.5 * 2^52: adding it rounds to an integer, which lands in the low mantissa bits. */
        static final double ROUND = 0x1.8p52;
        /** Below this, expm1 is -1 in float32 (-1 + 4e-18); clamping keeps 2^k a normal double. */
        static final double FLOOR = -40;
        static final double[] TAYLOR = { // 1/2!, 1/3!, ..., 1/11!
            1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
            1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800};

        /**
         * elu(v) = v for v > 0 (and NaN), else expm1(v) rounded to float32: within 1.2e-7 relative
         * of Math.expm1 (EluTest) and about 20x faster than StrictMath.expm1, the native fdlibm that
         * made ELU one of the slowest ops of a step (MemoryBoundBench: 57 ms per 128x64x28x28 call).
         */
        static float elu(float v) {
            if (!(v <= 0)) return v;
            double d = Math.max(v, FLOOR);
            double t = Math.fma(d, LOG2E, ROUND);
            double k = t - ROUND;
            double r = Math.fma(k, -LN2_LO, Math.fma(k, -LN2_HI, d));
            double h = TAYLOR[9];
            for (int j = 8; j >= 0; j--) h = Math.fma(h, r, TAYLOR[j]);
            double p = Math.fma(r * r, h, r);
            double q = Double.longBitsToDouble((Double.doubleToRawLongBits(t) << 52) + EXPONENT_ONE);
            return (float) Math.fma(q, p, q - 1.0);
        }

        /** 2^k from t = ROUND + k: t's low 12 bits are k (two's complement); shifted into the exponent field. */
        static final long EXPONENT_ONE = 1023L << 52;

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
