package ncsn.sample;

import ncsn.autograd.Autograd;
import ncsn.ops.Elementwise;
import ncsn.rng.Philox;
import ncsn.rng.Rng;
import ncsn.tensor.DType;
import ncsn.tensor.Scope;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;

/**
 * Annealed Langevin dynamics in the released code's form (spec section 6), over any
 * {@link ScoreFunction}:
 * <pre>
 *   for i in 0 .. L-1:                       (level 0 = largest sigma)
 *       step_i = step_lr * (sigma_i / sigma_{L-1})^2
 *       repeat T times:  x <- x + step_i * score(x, i) + sqrt(2 step_i) z,   z ~ N(0, I)
 * </pre>
 * step_lr is the code's meaning, i.e. alpha/2 in the paper's x + (alpha_i/2) s + sqrt(alpha_i) z
 * with alpha_i = eps sigma_i^2 / sigma_L^2: the images use step_lr = 2e-5, T = 100. The toy
 * experiments (spec section 7) write the paper's form with lr = alpha: x + (lr/2) s + sqrt(lr) z,
 * lr_i = 0.1 (sigma_i / sigma_last)^2, which is this driver with step_lr = lr / 2 = 0.05.
 *
 * <p>Plain Langevin ({@link #plain}) is the baseline: one fixed level (label), one fixed step,
 * x <- x + step s(x, level) + sqrt(2 step) z.
 *
 * <p>Each step is one {@link LangevinUpdate} (fused, noise drawn inside the kernel) on x in place;
 * the score goes into one buffer allocated once per run, so nothing is allocated per step by the
 * sampler itself. Noise: Philox (seed, {@link #stream}), the block offset starting at 0 and
 * advancing by {@link LangevinUpdate#blocksFor}(numel) per step, so step k of a run always sees the
 * same z: the same seed gives the same samples on the same backend, whatever the thread count.
 */
public final class AnnealedLangevin {
    /** Default Philox stream of the Langevin noise z ("LANG"). */
    public static final long NOISE_STREAM = 0x4C414E47L;
    /** Philox stream of {@link #uniformInit} ("INIT"). */
    public static final long INIT_STREAM = 0x494E4954L;

    private final double[] sigmas;
    private final double stepLr;
    private final int stepsPerLevel;
    private final long seed;
    private long stream = NOISE_STREAM;
    private StepCallback callback;

    /**
     * @param sigmas        noise levels, largest first (sigma_0 .. sigma_{L-1}), all positive
     * @param stepLr        the spec's step_lr (> 0): the step at the last level
     * @param stepsPerLevel T (> 0)
     * @param seed          Philox key of the noise
     */
    public AnnealedLangevin(double[] sigmas, double stepLr, int stepsPerLevel, long seed) {
        if (sigmas == null || sigmas.length == 0)
            throw new IllegalArgumentException("annealed Langevin: sigmas must list at least one noise level");
        for (int i = 0; i < sigmas.length; i++)
            if (!(sigmas[i] > 0) || Double.isInfinite(sigmas[i]))
                throw new IllegalArgumentException("annealed Langevin: sigmas[" + i + "] must be a positive finite number, got " + sigmas[i]);
        requirePositive("step_lr", stepLr);
        if (stepsPerLevel <= 0)
            throw new IllegalArgumentException("annealed Langevin: steps per level must be positive, got " + stepsPerLevel);
        this.sigmas = sigmas.clone();
        this.stepLr = stepLr;
        this.stepsPerLevel = stepsPerLevel;
        this.seed = seed;
    }

    /** Uses another Philox stream for the noise (separate runs with one seed). Returns this. */
    public AnnealedLangevin stream(long stream) {
        this.stream = stream;
        return this;
    }

    /** Called after every step (null: none). Returns this. */
    public AnnealedLangevin onStep(StepCallback callback) {
        this.callback = callback;
        return this;
    }

    public int levels() {
        return sigmas.length;
    }

    public int stepsPerLevel() {
        return stepsPerLevel;
    }

    public double stepLr() {
        return stepLr;
    }

    public double[] sigmas() {
        return sigmas.clone();
    }

    /** step_i = step_lr * (sigma_i / sigma_{L-1})^2. */
    public double stepSize(int level) {
        if (level < 0 || level >= sigmas.length)
            throw new IllegalArgumentException("annealed Langevin: level " + level + " is outside 0.." + (sigmas.length - 1));
        double r = sigmas[level] / sigmas[sigmas.length - 1];
        return stepLr * r * r;
    }

    /** Runs all levels on x (float32 or float64, [N, ...]) in place. */
    public void run(Tensor x, ScoreFunction score) {
        checkSamples(x, score);
        Tensor s = Tensor.emptyLike(x);
        long blocksPerStep = LangevinUpdate.blocksFor(x.numel());
        long offset = 0;
        int global = 0;
        for (int level = 0; level < sigmas.length; level++) {
            double step = stepSize(level);
            for (int t = 0; t < stepsPerLevel; t++) {
                score.score(x, level, s);
                LangevinUpdate.apply(x, s, step, seed, stream, offset);
                offset += blocksPerStep;
                if (callback != null) callback.afterStep(level, t, global, x);
                global++;
            }
        }
    }

    /**
     * Plain Langevin (the baseline): {@code steps} updates x <- x + step s(x, level) + sqrt(2 step) z
     * at one fixed level, in place; noise from Philox (seed, {@link #NOISE_STREAM}) from block offset 0.
     */
    public static void plain(Tensor x, ScoreFunction score, int level, double step, int steps, long seed, StepCallback callback) {
        plain(x, score, level, step, steps, seed, NOISE_STREAM, callback);
    }

    /** {@link #plain} with an explicit Philox stream for the noise. */
    public static void plain(Tensor x, ScoreFunction score, int level, double step, int steps, long seed, long stream,
                             StepCallback callback) {
        requirePositive("step", step);
        if (steps <= 0) throw new IllegalArgumentException("Langevin: steps must be positive, got " + steps);
        if (level < 0) throw new IllegalArgumentException("Langevin: level must be >= 0, got " + level);
        checkSamples(x, score);
        Tensor s = Tensor.emptyLike(x);
        long blocksPerStep = LangevinUpdate.blocksFor(x.numel());
        long offset = 0;
        for (int t = 0; t < steps; t++) {
            score.score(x, level, s);
            LangevinUpdate.apply(x, s, step, seed, stream, offset);
            offset += blocksPerStep;
            if (callback != null) callback.afterStep(level, t, t, x);
        }
    }

    /** Fills x with U[lo, hi) from Philox (seed, {@link #INIT_STREAM}, offset 0): the usual start. */
    public static Tensor uniformInit(Tensor x, double lo, double hi, long seed) {
        return uniformInit(x, lo, hi, seed, INIT_STREAM);
    }

    /** {@link #uniformInit} with an explicit stream. */
    public static Tensor uniformInit(Tensor x, double lo, double hi, long seed, long stream) {
        if (!(hi > lo)) throw new IllegalArgumentException("uniform start: need lo < hi, got [" + lo + ", " + hi + ")");
        int n = x.numel();
        if (!x.isCpu()) {
            // On the device: the same U[0,1) draws (Rng's keying is Philox.uniform's), then lo + (hi - lo) u.
            new Rng(seed, stream, 0).uniform(x);
            if (lo != 0 || hi != 1) {
                try (Autograd.NoGrad ng = Autograd.noGrad(); Scope s = Scope.open()) {
                    x.copyFrom(Elementwise.scale(x, hi - lo, lo));
                }
            }
            return x;
        }
        if (x.dtype() == DType.F64) {
            double[] d = x.f64();
            Philox.uniform(seed, stream, 0, d, 0, n);
            for (int j = 0; j < n; j++) d[j] = lo + (hi - lo) * d[j];
        } else {
            float[] f = x.f32();
            Philox.uniform(seed, stream, 0, f, 0, n);
            for (int j = 0; j < n; j++) f[j] = (float) (lo + (hi - lo) * f[j]);
        }
        return x;
    }

    private static void requirePositive(String name, double v) {
        if (!(v > 0) || Double.isInfinite(v))
            throw new IllegalArgumentException("Langevin: " + name + " must be a positive finite number, got " + v);
    }

    private static void checkSamples(Tensor x, ScoreFunction score) {
        if (x == null) throw new TensorException("Langevin: samples x are null");
        if (score == null) throw new IllegalArgumentException("Langevin: no score function given");
        x.requireLive("Langevin");
        if (x.numel() == 0) throw new TensorException("Langevin: samples " + x.describe() + " are empty");
    }
}
