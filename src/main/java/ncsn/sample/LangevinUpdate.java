package ncsn.sample;

import ncsn.cpu.Parallel;
import ncsn.cuda.Launch;
import ncsn.rng.Philox;
import ncsn.tensor.DType;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;

/**
 * One Langevin step as one fused pass, op "langevin_update" (spec section 6):
 * <pre>
 *   x[j] <- x[j] + step * score[j] + sqrt(2 step) * z[j]        j = 0 .. numel-1, in place
 *   z[j]  = N(0,1) draw j of Philox (seed, stream) at block offset: block offset + j/4, word j%4,
 *           Box-Muller on the word pairs exactly as {@link Philox#normalOf} (in double)
 * </pre>
 * The noise is generated inside the kernel from the counter, so a step reads x and score once,
 * writes x once and allocates nothing: no noise buffer, no temporaries. A step consumes
 * {@link #blocksFor}(numel) Philox blocks; the caller advances its offset by that much (the
 * drivers in this package do). Because element j's noise depends only on (seed, stream, offset, j),
 * the result does not depend on the thread count or on how the range is split, and a GPU kernel
 * with the same keying draws the same z.
 *
 * <p>Masked variant (inpainting, spec section 6): where {@code mask[j] != 0} the element is set to
 * {@code known[j]} instead of updated (x[m] = c after every step); its noise draw is skipped but
 * keeps its number j, so masked and unmasked runs share the noise of the free pixels.
 *
 * <p>float32 ({@link Cpu}): every element is computed in double from its float32 inputs and rounded
 * once, so it equals the float64 {@link Reference} run on the same values to within float32's
 * rounding of the result (0.5 ulp), for any size and any split.
 *
 * <p>CUDA ({@link Gpu}, src/main/cuda/langevin.cu): the same per-element double arithmetic with
 * the same Philox keying and one rounding; it differs from {@link Cpu} only through CUDA's double
 * log/sin/cos in z (a double ulp or so), so results are identical or 1 float ulp apart.
 */
public final class LangevinUpdate {
    public static final String OP = "langevin_update";

    private LangevinUpdate() {}

    /** Philox blocks one step over n elements consumes: the offset of the next step is offset + this. */
    public static long blocksFor(long n) {
        return Philox.blocksFor(n);
    }

    /** x += step * score + sqrt(2 step) z, in place; x and score of one shape and dtype. */
    public static void apply(Tensor x, Tensor score, double step, long seed, long stream, long offset) {
        check(x, score, step, offset);
        int n = x.numel();
        if (!x.isCpu()) Gpu.update(x, score, null, null, step, seed, stream, offset);
        else if (x.dtype() == DType.F64) Reference.update(x.f64(), score.f64(), null, null, step, seed, stream, offset, n);
        else Cpu.update(x.f32(), score.f32(), null, null, step, seed, stream, offset, n);
    }

    /**
     * As {@link #apply}, then x[j] = known[j] wherever mask[j] != 0 (those elements are not
     * updated). mask and known have x's shape and dtype.
     */
    public static void applyMasked(Tensor x, Tensor score, double step, long seed, long stream, long offset,
                                   Tensor mask, Tensor known) {
        check(x, score, step, offset);
        checkMask(x, mask, known);
        int n = x.numel();
        if (!x.isCpu()) Gpu.update(x, score, mask, known, step, seed, stream, offset);
        else if (x.dtype() == DType.F64) Reference.update(x.f64(), score.f64(), mask.f64(), known.f64(), step, seed, stream, offset, n);
        else Cpu.update(x.f32(), score.f32(), mask.f32(), known.f32(), step, seed, stream, offset, n);
    }

    /** x[j] = known[j] wherever mask[j] != 0 (the "before the level" half of inpainting). */
    public static void assignMasked(Tensor x, Tensor mask, Tensor known) {
        if (x == null) throw new TensorException(OP + ": x is null");
        x.requireLive(OP);
        checkMask(x, mask, known);
        int n = x.numel();
        if (!x.isCpu()) {
            Launch.kernel("langevin_assign_masked_f32").ptr(x).ptr(mask).ptr(known).l(n).elements(n).run();
        } else if (x.dtype() == DType.F64) {
            double[] xs = x.f64(), m = mask.f64(), c = known.f64();
            for (int j = 0; j < n; j++) if (m[j] != 0) xs[j] = c[j];
        } else {
            float[] xs = x.f32(), m = mask.f32(), c = known.f32();
            for (int j = 0; j < n; j++) if (m[j] != 0) xs[j] = c[j];
        }
    }

    private static void check(Tensor x, Tensor score, double step, long offset) {
        if (x == null || score == null) throw new TensorException(OP + ": x and score must not be null");
        x.requireLive(OP);
        score.requireLive(OP);
        if (!x.sameShape(score) || x.dtype() != score.dtype())
            throw new TensorException(OP + ": score " + score.describe() + " must have the shape and dtype of x " + x.describe());
        if (x.device() != score.device())
            throw new TensorException(OP + ": score " + score.describe() + " is on " + score.device() + " but x " + x.describe()
                    + " is on " + x.device());
        if (!(step > 0) || Double.isInfinite(step))
            throw new TensorException(OP + ": step must be a positive finite number, got " + step);
        if (offset < 0) throw new TensorException(OP + ": Philox block offset must be >= 0, got " + offset);
    }

    private static void checkMask(Tensor x, Tensor mask, Tensor known) {
        if (mask == null || known == null) throw new TensorException(OP + ": mask and known values must not be null");
        mask.requireLive(OP);
        known.requireLive(OP);
        for (Tensor t : new Tensor[] {mask, known}) {
            if (!t.sameShape(x) || t.dtype() != x.dtype())
                throw new TensorException(OP + ": mask/known " + t.describe() + " must have the shape and dtype of x " + x.describe());
            if (t.device() != x.device())
                throw new TensorException(OP + ": mask/known " + t.describe() + " is on " + t.device() + " but x " + x.describe()
                        + " is on " + x.device());
        }
    }

    /** float64 reference: element by element, noise from {@link Philox#block} + {@link Philox#normalOf}. */
    static final class Reference {
        static void update(double[] x, double[] score, double[] mask, double[] known, double step,
                           long seed, long stream, long offset, int n) {
            double noise = Math.sqrt(2 * step);
            int[] w = new int[4];
            for (int j = 0; j < n; j++) {
                if (mask != null && mask[j] != 0) {
                    x[j] = known[j];
                    continue;
                }
                Philox.block(seed, stream, offset + j / 4, w);
                double z = Philox.normalOf(w, j % 4);
                x[j] = x[j] + step * score[j] + noise * z;
            }
        }
    }

    /**
     * float32: blocks of 4 elements split across the workers; one Philox block and one Box-Muller
     * pair per 2 elements, arithmetic in double, one rounding.
     */
    static final class Cpu {
        /** Smallest parallel chunk: 2^13 Philox blocks = 32K elements (a tensor under 64K elements stays on one thread). */
        static final int GRAIN_BLOCKS = 1 << 13;

        static void update(float[] x, float[] score, float[] mask, float[] known, double step,
                           long seed, long stream, long offset, int n) {
            double noise = Math.sqrt(2 * step);
            int blocks = (int) Philox.blocksFor(n);
            Parallel.forRange(blocks, GRAIN_BLOCKS,
                    (lo, hi) -> blocks(x, score, mask, known, step, noise, seed, stream, offset, n, lo, hi));
        }

        /** Blocks [lo, hi): elements 4 lo .. min(n, 4 hi). */
        static void blocks(float[] x, float[] score, float[] mask, float[] known, double step, double noise,
                           long seed, long stream, long offset, int n, int lo, int hi) {
            int[] w = new int[4];
            for (int b = lo; b < hi; b++) {
                Philox.block(seed, stream, offset + b, w);
                int j = b << 2;
                int m = Math.min(4, n - j);
                // Pair (w0, w1) -> elements j, j+1; pair (w2, w3) -> elements j+2, j+3 (Philox.normalOf's keying).
                double r01 = Philox.boxMullerRadius(w[0]), t01 = Philox.boxMullerAngle(w[1]);
                put(x, score, mask, known, step, noise, j, r01 * Math.cos(t01));
                if (m > 1) put(x, score, mask, known, step, noise, j + 1, r01 * Math.sin(t01));
                if (m > 2) {
                    double r23 = Philox.boxMullerRadius(w[2]), t23 = Philox.boxMullerAngle(w[3]);
                    put(x, score, mask, known, step, noise, j + 2, r23 * Math.cos(t23));
                    if (m > 3) put(x, score, mask, known, step, noise, j + 3, r23 * Math.sin(t23));
                }
            }
        }

        private static void put(float[] x, float[] score, float[] mask, float[] known, double step, double noise,
                                int j, double z) {
            if (mask != null && mask[j] != 0) x[j] = known[j];
            else x[j] = (float) (x[j] + step * score[j] + noise * z);
        }
    }

    /**
     * CUDA launcher for src/main/cuda/langevin.cu: one thread per Philox block (4 elements),
     * grid-stride, any size; mask and known both null (plain step) or both set. step and
     * sqrt(2 step) travel as double bits (computed here in double, as {@link Cpu} does).
     */
    static final class Gpu {
        static void update(Tensor x, Tensor score, Tensor mask, Tensor known, double step, long seed, long stream, long offset) {
            long n = x.numel();
            double noise = Math.sqrt(2 * step);
            Launch.kernel("langevin_update_f32").ptr(x).ptr(score).ptr(mask).ptr(known).l(n)
                    .l(Double.doubleToRawLongBits(step)).l(Double.doubleToRawLongBits(noise))
                    .l(seed).l(stream).l(offset).elements(blocksFor(n)).run();
        }

        // ---- CUDA graph variant (LangevinGraph): the scalars live in a device buffer p ----

        /** Floats of a parameter buffer: 5 long longs (step bits, noise bits, seed, stream, offset). */
        static final int PARAM_FLOATS = 10;

        /** p = {step, sqrt(2 step), seed, stream, offset}, with the bits {@link #update} passes. */
        static void setParams(Tensor p, double step, long seed, long stream, long offset) {
            double noise = Math.sqrt(2 * step);
            Launch.kernel("langevin_params_set_f32").ptr(p).l(Double.doubleToRawLongBits(step))
                    .l(Double.doubleToRawLongBits(noise)).l(seed).l(stream).l(offset).grid(1).block(1).run();
        }

        /** {@link #update} with the scalars read from p on the device. */
        static void updateFromParams(Tensor x, Tensor score, Tensor mask, Tensor known, Tensor p) {
            long n = x.numel();
            Launch.kernel("langevin_update_dev_f32").ptr(x).ptr(score).ptr(mask).ptr(known).l(n).ptr(p)
                    .elements(blocksFor(n)).run();
        }

        /** p's offset += blocks (the next step's offset), on the device. */
        static void advance(Tensor p, long blocks) {
            Launch.kernel("langevin_params_advance_f32").ptr(p).l(blocks).grid(1).block(1).run();
        }
    }
}
