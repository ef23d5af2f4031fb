package ncsn.ops;

import java.util.List;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;
import ncsn.autograd.Autograd;
import ncsn.cpu.Parallel;
import ncsn.cpu.Simd;
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
     * float32 kernel, split across cores. Forward evaluates {@link #elu} (an expm1 of our own in
     * double, see there); when the engine uses the Vector API, whole vectors go through {@link Vec},
     * which performs the same operations in the same order on 8 lanes, so every element's bits are
     * the same whichever path, thread chunk or JIT tier computed it (bit-exact resume and
     * batch-independent sampling depend on that).
     */
    static final class Cpu {
        private static final int GRAIN = 1 << 15;

        /** Vector API forward when the engine uses the Vector API; read once. */
        private static final boolean VECTOR = Simd.vectorEnabled();

        static void forward(float[] out, float[] x, int n) {
            Parallel.forRange(n, GRAIN, (lo, hi) -> {
                int i = VECTOR ? Vec.forward(out, x, lo, hi) : lo;
                for (; i < hi; i++) out[i] = elu(x[i]);
            });
        }

        // expm1(d) = 2^k (1 + p) - 1 = 2^k p + (2^k - 1), k = round(d / ln 2), r = d - k ln 2 in
        // [-0.35, 0.35], p = expm1(r) by its Taylor series to r^11 (truncation 7e-15 relative).
        // Everything is add, multiply and fused multiply-add in double, which Java defines exactly
        // (unlike Math.exp/expm1 and the Vector API's EXP/EXPM1, whose last bit may depend on the
        // JIT tier or the CPU), so the vector and scalar forms agree bit for bit.
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

    /**
     * {@link Cpu#elu} on the machine's widest double vectors (8 lanes with AVX-512), the floats
     * loaded as many at a time into a half-width vector and widened. Loaded only
     * when {@link Cpu}'s VECTOR is true: nothing else touches jdk.incubator.vector, so the op works
     * without the module.
     */
    static final class Vec {
        private static final VectorSpecies<Double> D = DoubleVector.SPECIES_PREFERRED;
        private static final VectorSpecies<Float> F =
                VectorSpecies.of(float.class, VectorShape.forBitSize(D.vectorBitSize() / 2));

        /** out[lo, end) = elu(x[lo, end)) for whole vectors; returns end (the scalar loop does the rest). */
        static int forward(float[] out, float[] x, int lo, int hi) {
            int end = lo + F.loopBound(hi - lo);
            for (int i = lo; i < end; i += F.length()) {
                FloatVector v = FloatVector.fromArray(F, x, i);
                DoubleVector d = ((DoubleVector) v.convertShape(VectorOperators.F2D, D, 0)).max(Cpu.FLOOR);
                DoubleVector t = d.lanewise(VectorOperators.FMA, Cpu.LOG2E, Cpu.ROUND);
                DoubleVector k = t.sub(Cpu.ROUND);
                DoubleVector r = k.lanewise(VectorOperators.FMA, -Cpu.LN2_HI, d);
                r = k.lanewise(VectorOperators.FMA, -Cpu.LN2_LO, r);
                DoubleVector h = DoubleVector.broadcast(D, Cpu.TAYLOR[9]);
                for (int j = 8; j >= 0; j--) h = h.lanewise(VectorOperators.FMA, r, DoubleVector.broadcast(D, Cpu.TAYLOR[j]));
                DoubleVector p = r.mul(r).lanewise(VectorOperators.FMA, h, r);
                DoubleVector q = (DoubleVector) t.reinterpretAsLongs().lanewise(VectorOperators.LSHL, 52)
                        .add(Cpu.EXPONENT_ONE).reinterpretAsDoubles();
                FloatVector e = (FloatVector) q.lanewise(VectorOperators.FMA, p, q.sub(1.0))
                        .convertShape(VectorOperators.D2F, F, 0);
                // NaN and positive lanes keep v, as in Cpu.elu.
                v.blend(e, v.compare(VectorOperators.LE, 0f)).intoArray(out, i);
            }
            return end;
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
