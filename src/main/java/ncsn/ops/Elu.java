package ncsn.ops;

import java.util.List;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
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
     * float32 kernel, split across cores. Forward evaluates {@link #elu}, an expm1 of our own in
     * float32 with fused multiply-adds, whose bits do not depend on the JIT tier or the CPU (bit-exact
     * resume and batch-independent sampling depend on that); {@link Vec} computes the same
     * operations on whole vectors, bit for bit (EluTest).
     *
     * <p>History: a double-precision form of the same polynomial on Vector API double lanes used
     * 256-bit float vectors (to widen 8 floats into 8 doubles) while every other kernel's are
     * 512-bit, and a second FloatVector shape in the JVM made C2 give up intrinsics in the shared
     * Vector API code: the GEMM's packing boxed every vector (full GCs every 0.5 s, the batch-128
     * training step 8.7 -> 12 s). The float32 form needs only the preferred shape.
     */
    static final class Cpu {
        private static final int GRAIN = 1 << 15;
        private static final boolean VECTOR = Simd.vectorEnabled();

        static void forward(float[] out, float[] x, int n) {
            Parallel.forRange(n, GRAIN, (lo, hi) -> {
                int i = VECTOR ? Vec.forward(out, x, lo, hi) : lo;
                for (; i < hi; i++) out[i] = elu(x[i]);
            });
        }

        // expm1(d) = 2^k (1 + p) - 1 = 2^k p + (2^k - 1), k = round(d / ln 2), r = d - k ln 2 in
        // [-0.35, 0.35], p = expm1(r) by its Taylor series to r^8 (truncation 2e-9 relative).
        // Only add, multiply and fused multiply-add in float32, which Java defines exactly
        // (unlike Math.exp/expm1 and the Vector API's EXP/EXPM1, whose last bit may depend on the
        // JIT tier or the CPU). Max error 0.88 ulp against Math.expm1 over 60M random inputs.
        static final float LOG2E = 1.44269504f;
        /** ln 2 = LN2_HI + LN2_LO, LN2_HI with 16 significant bits: k * LN2_HI is exact. */
        static final float LN2_HI = 0.693145751953125f, LN2_LO = 1.428606765330187e-06f;
        /** 1.5 * 2^23: adding it rounds to an integer, which lands in the low mantissa bits. */
        static final float ROUND = 0x1.8p23f;
        /** Below this, expm1 is -1 in float32 (-1 + 2e-9); clamping keeps 2^k a normal float. */
        static final float FLOOR = -20f;
        static final float T2 = 1f / 2, T3 = 1f / 6, T4 = 1f / 24, T5 = 1f / 120, T6 = 1f / 720, T7 = 1f / 5040,
                T8 = 1f / 40320;
        /** 2^k from t = ROUND + k: t's low bits are k (two's complement), shifted into the exponent field. */
        static final int EXPONENT_ONE = 127 << 23;

        /**
         * elu(v) = v for v > 0 (and NaN), else expm1(v): within 1.2e-7 relative of Math.expm1
         * (EluTest) and far faster than StrictMath.expm1, the native fdlibm that made ELU one of
         * the slowest ops of a step (MemoryBoundBench: 57 ms per 128x64x28x28 call).
         */
        static float elu(float v) {
            if (!(v <= 0)) return v;
            float d = Math.max(v, FLOOR);
            float t = Math.fma(d, LOG2E, ROUND);
            float k = t - ROUND;
            float r = Math.fma(k, -LN2_LO, Math.fma(k, -LN2_HI, d));
            float h = Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(T8, r, T7), r, T6), r, T5), r, T4), r, T3), r, T2);
            float p = Math.fma(r * r, h, r);
            float q = Float.intBitsToFloat((Float.floatToRawIntBits(t) << 23) + EXPONENT_ONE);
            return Math.fma(q, p, q - 1f);
        }

        static void backward(float[] gx, float[] gout, float[] out, int n) {
            Parallel.forRange(n, GRAIN, (lo, hi) -> {
                // Branch-free (min(o, 0) + 1 is 1 for o > 0, else o + 1 = the slope): with activations of
                // random sign the branchy form mispredicted half the time (3.8% of a training step).
                for (int i = lo; i < hi; i++) gx[i] = gout[i] * (Math.min(out[i], 0f) + 1f);
            });
        }
    }

    /** {@link Cpu#elu} on whole vectors, operation for operation (loaded only with the Vector API). */
    static final class Vec {
        private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

        /** out[i] = elu(x[i]) for whole vectors from lo; returns where they end (the caller finishes). */
        static int forward(float[] out, float[] x, int lo, int hi) {
            FloatVector log2e = FloatVector.broadcast(S, Cpu.LOG2E), round = FloatVector.broadcast(S, Cpu.ROUND);
            FloatVector ln2Hi = FloatVector.broadcast(S, -Cpu.LN2_HI), ln2Lo = FloatVector.broadcast(S, -Cpu.LN2_LO);
            FloatVector t2 = FloatVector.broadcast(S, Cpu.T2), t3 = FloatVector.broadcast(S, Cpu.T3);
            FloatVector t4 = FloatVector.broadcast(S, Cpu.T4), t5 = FloatVector.broadcast(S, Cpu.T5);
            FloatVector t6 = FloatVector.broadcast(S, Cpu.T6), t7 = FloatVector.broadcast(S, Cpu.T7);
            FloatVector t8 = FloatVector.broadcast(S, Cpu.T8);
            int i = lo;
            for (int end = lo + S.loopBound(hi - lo); i < end; i += S.length()) {
                FloatVector v = FloatVector.fromArray(S, x, i);
                FloatVector d = v.max(Cpu.FLOOR);
                FloatVector t = d.fma(log2e, round);
                FloatVector k = t.sub(round);
                FloatVector r = k.fma(ln2Lo, k.fma(ln2Hi, d));
                FloatVector h = t8.fma(r, t7).fma(r, t6).fma(r, t5).fma(r, t4).fma(r, t3).fma(r, t2);
                FloatVector p = r.mul(r).fma(h, r);
                FloatVector q = t.reinterpretAsInts().lanewise(VectorOperators.LSHL, 23).add(Cpu.EXPONENT_ONE)
                        .reinterpretAsFloats();
                FloatVector e = q.fma(p, q.sub(1f));
                v.blend(e, v.compare(VectorOperators.LE, 0f)).intoArray(out, i);
            }
            return i;
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
