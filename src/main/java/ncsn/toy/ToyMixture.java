package ncsn.toy;

import ncsn.rng.Philox;
import ncsn.sample.ScoreFunction;
import ncsn.tensor.DType;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;

/**
 * The 2-D data of the paper's toy experiments (spec section 7):
 * p(x) = 0.8 N(x; (5,5), I) + 0.2 N(x; (-5,-5), I), with exact samples, densities and scores.
 *
 * <p>Scores of the same mixture with another component standard deviation s,
 * p_s(x) = sum_k w_k N(x; m_k, s^2 I), are exact too:
 * <pre>
 *   grad log p_s(x) = sum_k r_k(x) (m_k - x) / s^2,   r_k = softmax_k(log w_k - |x - m_k|^2 / (2 s^2))
 * </pre>
 * (responsibilities through a max-shifted softmax in double, so far-away points do not underflow).
 *
 * <p>What "the score at level i" is ({@link NoiseModel}): spec section 7 says "the mixture whose
 * components have standard deviation sigma_i". The authors' code that made the paper's figure
 * (models/gmm.py, GMMDistAnneal.score(x, sigma), called by runners/toy_runner.py's
 * anneal_langevin_dynamics with sigma from 20 down to 1) uses exactly that: the components' std is
 * sigma_i itself, so the last level (sigma = 1) is the data score. That is
 * {@link NoiseModel#COMPONENT_STD_SIGMA}, the default. The score of the data actually perturbed
 * with N(0, sigma_i^2 I), which a denoising score matching model learns, has components of std
 * sqrt(1 + sigma_i^2): {@link NoiseModel#PERTURBED}. The two differ little at large sigma and most
 * at the last level (std 1 vs sqrt 2); both recover the 0.8 / 0.2 weights.
 */
public final class ToyMixture {
    /** Mixture weights: mode 0 at (5,5), mode 1 at (-5,-5). */
    public static final double[] WEIGHTS = {0.8, 0.2};
    /** Component means [2 modes][x, y]. */
    public static final double[][] MEANS = {{5, 5}, {-5, -5}};
    /** Component standard deviation of the data itself. */
    public static final double DATA_STD = 1.0;

    private static final double[] LOG_WEIGHTS = {Math.log(WEIGHTS[0]), Math.log(WEIGHTS[1])};

    /** Which mixture the exact score of noise level sigma describes (see the class comment). */
    public enum NoiseModel {
        /** Components of std sigma (the reference's GMMDistAnneal; the paper's figure). */
        COMPONENT_STD_SIGMA,
        /** Components of std sqrt(DATA_STD^2 + sigma^2): the data convolved with N(0, sigma^2 I). */
        PERTURBED;

        /** Component standard deviation at noise level sigma. */
        public double componentStd(double sigma) {
            return this == COMPONENT_STD_SIGMA ? sigma : Math.sqrt(DATA_STD * DATA_STD + sigma * sigma);
        }
    }

    private ToyMixture() {}

    /**
     * n samples [n, 2] of the data from Philox (seed, stream): draw i of U[0,1) at offset 0 picks
     * mode 0 when below 0.8; the 2n normals that follow (offset blocksFor(n)) give mean + z.
     */
    public static Tensor sample(DType dtype, int n, long seed, long stream) {
        return sample(dtype, n, seed, stream, 0);
    }

    /** As {@link #sample(DType, int, long, long)} from block offset {@code offset}; uses {@link #blocksFor}(n) blocks. */
    public static Tensor sample(DType dtype, int n, long seed, long stream, long offset) {
        if (n <= 0) throw new IllegalArgumentException("toy data: number of samples must be positive, got " + n);
        double[] u = new double[n];
        double[] z = new double[2 * n];
        Philox.uniform(seed, stream, offset, u, 0, n);
        Philox.normal(seed, stream, offset + Philox.blocksFor(n), z, 0, 2 * n);
        Tensor out = Tensor.empty(dtype, n, 2);
        for (int i = 0; i < n; i++) {
            int k = u[i] < WEIGHTS[0] ? 0 : 1;
            out.set(2 * i, MEANS[k][0] + DATA_STD * z[2 * i]);
            out.set(2 * i + 1, MEANS[k][1] + DATA_STD * z[2 * i + 1]);
        }
        return out;
    }

    /** Philox blocks one draw of n samples consumes (n uniforms, then 2n normals). */
    public static long blocksFor(int n) {
        return Philox.blocksFor(n) + Philox.blocksFor(2L * n);
    }

    /** log p_s(x, y) of the mixture with component std s. */
    public static double logDensity(double x, double y, double s) {
        double a0 = logComponent(0, x, y, s), a1 = logComponent(1, x, y, s);
        double m = Math.max(a0, a1);
        return m + Math.log(Math.exp(a0 - m) + Math.exp(a1 - m)) - Math.log(2 * Math.PI * s * s);
    }

    /** log w_k - |x - m_k|^2 / (2 s^2) (the normalising constant is the same for both modes). */
    private static double logComponent(int k, double x, double y, double s) {
        double dx = x - MEANS[k][0], dy = y - MEANS[k][1];
        return LOG_WEIGHTS[k] - (dx * dx + dy * dy) / (2 * s * s);
    }

    /** Exact score of the mixture with component std s at the point (x, y), into out[0..1]. */
    public static void score(double x, double y, double s, double[] out) {
        double a0 = logComponent(0, x, y, s), a1 = logComponent(1, x, y, s);
        double m = Math.max(a0, a1);
        double e0 = Math.exp(a0 - m), e1 = Math.exp(a1 - m);
        double r0 = e0 / (e0 + e1), r1 = 1 - r0;
        double inv = 1 / (s * s);
        out[0] = (r0 * (MEANS[0][0] - x) + r1 * (MEANS[1][0] - x)) * inv;
        out[1] = (r0 * (MEANS[0][1] - y) + r1 * (MEANS[1][1] - y)) * inv;
    }

    /** Exact score of the mixture with component std s at every row of x [N, 2], into out [N, 2]. */
    public static void score(Tensor x, double s, Tensor out) {
        if (x.rank() != 2 || x.dim(1) != 2)
            throw new TensorException("toy score: expected points [N, 2], got " + x.describe());
        if (!out.sameShape(x) || out.dtype() != x.dtype())
            throw new TensorException("toy score: output " + out.describe() + " must match x " + x.describe());
        if (!(s > 0)) throw new IllegalArgumentException("toy score: component std must be positive, got " + s);
        int n = x.dim(0);
        double[] g = new double[2];
        if (x.dtype() == DType.F64) {
            double[] xs = x.f64(), o = out.f64();
            for (int i = 0; i < n; i++) {
                score(xs[2 * i], xs[2 * i + 1], s, g);
                o[2 * i] = g[0];
                o[2 * i + 1] = g[1];
            }
        } else {
            float[] xs = x.f32(), o = out.f32();
            for (int i = 0; i < n; i++) {
                score(xs[2 * i], xs[2 * i + 1], s, g);
                o[2 * i] = (float) g[0];
                o[2 * i + 1] = (float) g[1];
            }
        }
    }

    /** The exact noise-conditional score s(x, i) = grad log p at level sigmas[i] under {@code model}. */
    public static ScoreFunction exactScore(double[] sigmas, NoiseModel model) {
        double[] stds = new double[sigmas.length];
        for (int i = 0; i < stds.length; i++) stds[i] = model.componentStd(sigmas[i]);
        return (x, level, out) -> score(x, stds[level], out);
    }

    /** The exact data score (component std 1) at every level: what plain Langevin follows. */
    public static ScoreFunction dataScore() {
        return (x, level, out) -> score(x, DATA_STD, out);
    }

    /**
     * The fraction of the rows of x [N, 2] nearer (5,5) than (-5,-5), i.e. with x + y > 0 (a tie
     * counts as not nearer). The data give 0.8.
     */
    public static double fractionNearFirstMode(Tensor x) {
        if (x.rank() != 2 || x.dim(1) != 2 || x.dim(0) == 0)
            throw new TensorException("toy: expected points [N, 2], got " + x.describe());
        int n = x.dim(0), near = 0;
        for (int i = 0; i < n; i++) {
            double px = x.get(2 * i), py = x.get(2 * i + 1);
            double d0 = sq(px - MEANS[0][0]) + sq(py - MEANS[0][1]);
            double d1 = sq(px - MEANS[1][0]) + sq(py - MEANS[1][1]);
            if (d0 < d1) near++;
        }
        return (double) near / n;
    }

    private static double sq(double v) {
        return v * v;
    }
}
