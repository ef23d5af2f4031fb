package ncsn.toy;

import ncsn.ops.AnnealedDsm;
import ncsn.sample.AnnealedLangevin;
import ncsn.sample.ScoreFunction;
import ncsn.tensor.DType;
import ncsn.tensor.Tensor;

/**
 * The paper's toy experiment (spec section 7) with the settings of the authors' toy runner:
 * <ul>
 *   <li>data: {@link ToyMixture#sample};
 *   <li>plain Langevin with the exact data score: start U[-8, 8]^2, lr 0.1, 1000 steps of
 *       x + (lr/2) s + sqrt(lr) z, i.e. {@link AnnealedLangevin#plain} with step = lr/2 = 0.05;
 *   <li>annealed Langevin with exact scores: sigmas geometric 20 -> 1 over 10 levels
 *       ({@link AnnealedDsm#sigmas}), 100 steps per level, lr_i = 0.1 (sigma_i/sigma_last)^2,
 *       i.e. {@link AnnealedLangevin} with step_lr = lr/2 = 0.05; the score at level i is
 *       {@link ToyMixture#exactScore} under {@link ToyMixture.NoiseModel#COMPONENT_STD_SIGMA}
 *       (the authors' GMMDistAnneal);
 *   <li>the same annealed sampler with a {@link ToyScoreMlp} trained by annealed DSM on the
 *       same levels.
 * </ul>
 * The measure is the fraction of samples nearer (5,5) than (-5,-5); the data give 0.8. Every
 * random number comes from Philox keyed by the seed, one stream per use (below), so a seed fixes
 * every result on a given backend.
 */
public final class ToyExperiment {
    /** The paper's lr for the toy (the paper's alpha; the sampler's step is lr/2). */
    public static final double LR = 0.1;
    /** Start box of both samplers: U[-8, 8]^2. */
    public static final double START_LO = -8, START_HI = 8;
    public static final int LEVELS = 10;
    public static final double SIGMA_BEGIN = 20, SIGMA_END = 1;

    /** Philox streams, one per use. */
    static final long DATA_STREAM = 0x44415441L, LANGEVIN_INIT = 0x4C494E31L, LANGEVIN_NOISE = 0x4C4E5331L,
            ANNEAL_INIT = 0x41494E32L, ANNEAL_NOISE = 0x414E5332L, LEARNED_INIT = 0x4C494E33L,
            LEARNED_NOISE = 0x4C4E5333L;

    /**
     * Settings: n samples per sampler, seed, plain Langevin steps (paper 1000), annealed steps per
     * level (paper 100), MLP training steps, batch, hidden units and Adam lr.
     */
    public record Config(int n, long seed, int langevinSteps, int stepsPerLevel, int trainSteps, int batch, int hidden,
                         double trainLr) {
        public Config {
            positive("number of samples (--n)", n);
            positive("Langevin steps", langevinSteps);
            positive("steps per level", stepsPerLevel);
            positive("training steps (--train-steps)", trainSteps);
            positive("training batch size", batch);
            positive("hidden units", hidden);
            if (!(trainLr > 0) || Double.isInfinite(trainLr))
                throw new IllegalArgumentException("toy: training learning rate must be a positive number, got " + trainLr);
        }

        /** The paper's sampler settings with the default MLP training. */
        public static Config defaults(int n, long seed) {
            return new Config(n, seed, 1000, 100, DEFAULT_TRAIN_STEPS, DEFAULT_BATCH, DEFAULT_HIDDEN, DEFAULT_TRAIN_LR);
        }

        public Config withTrainSteps(int steps) {
            return new Config(n, seed, langevinSteps, stepsPerLevel, steps, batch, hidden, trainLr);
        }

        private static void positive(String what, int v) {
            if (v <= 0) throw new IllegalArgumentException("toy: " + what + " must be positive, got " + v);
        }
    }

    /**
     * MLP training defaults, measured (8192 samples per model, seeds 0-5): 3000 steps of batch 512,
     * 32 hidden units, Adam 3e-3 with cosine decay give annealed fractions 0.79 - 0.82 (batch 256:
     * 0.79 - 0.82 with more spread; constant lr 1e-3, 64 units: 0.73 - 0.84).
     */
    public static final int DEFAULT_TRAIN_STEPS = 3000, DEFAULT_BATCH = 512, DEFAULT_HIDDEN = 32;
    public static final double DEFAULT_TRAIN_LR = 3e-3;

    /** Everything one run produces: samples [n, 2] (float32) and timings in seconds. */
    public record Result(Config config, Tensor data, Tensor langevin, Tensor annealed, Tensor learnedAnnealed,
                         ToyScoreMlp model, double[] trainLosses, double langevinSeconds, double annealedSeconds,
                         double trainSeconds, double learnedSeconds) {
        public double dataFraction() {
            return ToyMixture.fractionNearFirstMode(data);
        }

        public double langevinFraction() {
            return ToyMixture.fractionNearFirstMode(langevin);
        }

        public double annealedFraction() {
            return ToyMixture.fractionNearFirstMode(annealed);
        }

        public double learnedAnnealedFraction() {
            return ToyMixture.fractionNearFirstMode(learnedAnnealed);
        }
    }

    private ToyExperiment() {}

    /** The toy's noise levels: 20 -> 1, geometric, 10 levels (float32-rounded, as training uses). */
    public static double[] sigmas() {
        return AnnealedDsm.sigmas(SIGMA_BEGIN, SIGMA_END, LEVELS);
    }

    /** n i.i.d. samples of the data. */
    public static Tensor data(int n, long seed) {
        return ToyMixture.sample(DType.F32, n, seed, DATA_STREAM);
    }

    /** Plain Langevin with the exact data score from U[-8,8]^2 (float32 [n, 2]). */
    public static Tensor langevin(int n, long seed, int steps) {
        Tensor x = AnnealedLangevin.uniformInit(Tensor.empty(DType.F32, n, 2), START_LO, START_HI, seed, LANGEVIN_INIT);
        AnnealedLangevin.plain(x, ToyMixture.dataScore(), 0, LR / 2, steps, seed, LANGEVIN_NOISE, null);
        return x;
    }

    /** Annealed Langevin with the exact scores of {@code model} from U[-8,8]^2. */
    public static Tensor annealed(int n, long seed, int stepsPerLevel, ToyMixture.NoiseModel model) {
        double[] sig = sigmas();
        return annealedWith(ToyMixture.exactScore(sig, model), n, seed, stepsPerLevel, ANNEAL_INIT, ANNEAL_NOISE);
    }

    /** Trains the MLP score model (seeded) and returns it with its per-step losses in {@code losses[0]}. */
    public static ToyScoreMlp train(Config c, double[][] losses) {
        ToyScoreMlp m = new ToyScoreMlp(sigmas(), c.hidden(), c.seed());
        double[] l = m.train(c.trainSteps(), c.batch(), c.trainLr(), c.seed());
        if (losses != null) losses[0] = l;
        return m;
    }

    /** Annealed Langevin with a trained model's scores, same settings as the exact run. */
    public static Tensor learnedAnnealed(ToyScoreMlp model, int n, long seed, int stepsPerLevel) {
        return annealedWith(model.scoreFunction(), n, seed, stepsPerLevel, LEARNED_INIT, LEARNED_NOISE);
    }

    private static Tensor annealedWith(ScoreFunction f, int n, long seed, int stepsPerLevel, long init, long noise) {
        Tensor x = AnnealedLangevin.uniformInit(Tensor.empty(DType.F32, n, 2), START_LO, START_HI, seed, init);
        new AnnealedLangevin(sigmas(), LR / 2, stepsPerLevel, seed).stream(noise).run(x, f);
        return x;
    }

    /** All four, timed. */
    public static Result run(Config c) {
        Tensor data = data(c.n(), c.seed());
        long t0 = System.nanoTime();
        Tensor lang = langevin(c.n(), c.seed(), c.langevinSteps());
        long t1 = System.nanoTime();
        Tensor ann = annealed(c.n(), c.seed(), c.stepsPerLevel(), ToyMixture.NoiseModel.COMPONENT_STD_SIGMA);
        long t2 = System.nanoTime();
        double[][] losses = new double[1][];
        ToyScoreMlp model = train(c, losses);
        long t3 = System.nanoTime();
        Tensor learned = learnedAnnealed(model, c.n(), c.seed(), c.stepsPerLevel());
        long t4 = System.nanoTime();
        return new Result(c, data, lang, ann, learned, model, losses[0],
                (t1 - t0) / 1e9, (t2 - t1) / 1e9, (t3 - t2) / 1e9, (t4 - t3) / 1e9);
    }
}
