package ncsn.ops;

import java.util.ArrayList;
import java.util.List;
import ncsn.autograd.Autograd;
import ncsn.cpu.Parallel;
import ncsn.cuda.Launch;
import ncsn.tensor.DType;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;

/**
 * The annealed denoising score matching objective (spec section 2) as two fused ops.
 * <pre>
 *   dsm_perturb:  x~[n,...] = x[n,...] + s_n * z[n,...]                 s_n = sigmas[labels[n]]
 *                 d x~ / d x = identity; the noise z is data (not differentiated)
 *   dsm_loss:     loss [1] = (1/N) sum_n 0.5 * s_n^p * sum_j (score[n,j] - t[n,j])^2,
 *                 t = -z / s_n  (= -(x~ - x) / s_n^2),  p = anneal power (2 in the paper)
 *                 d loss / d score[n,j] = (score[n,j] - t[n,j]) * s_n^p / N
 * </pre>
 * These match the reference's {@code anneal_dsm_score_estimation}: target computed from the
 * noise, per-sample loss summed over all non-batch dims, weighted by sigma^p, mean over the batch.
 * The float32 loss accumulates in double; its gradient is a single fused pass over score and z.
 */
public final class AnnealedDsm {
    private AnnealedDsm() {}

    /**
     * The spec's noise levels: exp(linspace(log begin, log end, L)) computed in float64 as numpy
     * does (i * step + start, last element exactly log end), then rounded to float32. Returned as
     * doubles that are all float32-representable, so float32 and float64 paths use equal values.
     */
    public static double[] sigmas(double begin, double end, int levels) {
        if (!(begin > 0) || !(end > 0) || levels < 1)
            throw new TensorException("sigmas: need begin > 0, end > 0 and at least one level (got "
                    + begin + ", " + end + ", " + levels + ")");
        double lo = Math.log(begin), hi = Math.log(end);
        double[] s = new double[levels];
        double step = levels > 1 ? (hi - lo) / (levels - 1) : 0;
        for (int i = 0; i < levels; i++) {
            double e = (levels > 1 && i == levels - 1) ? hi : i * step + lo;
            s[i] = (float) Math.exp(e);
        }
        return s;
    }

    // ---- dsm_perturb ---------------------------------------------------------------------------

    /** x + sigmas[labels[n]] * noise[n] for each sample n; x and noise [N, ...] of one shape. */
    public static Tensor perturb(Tensor x, Tensor noise, int[] labels, double[] sigmas) {
        String op = "dsm_perturb";
        OpChecks.live(op, x, noise);
        OpChecks.sameShape(op, x, noise);
        checkBatch(op, x, labels, sigmas);
        int n = x.dim(0), d = x.numel() / Math.max(1, n);
        double[] s = perSampleSigma(labels, sigmas);
        Tensor out = Tensor.emptyLike(x);
        if (!x.isCpu()) Gpu.perturb(out, x, noise, s, d);
        else if (x.dtype() == DType.F64) Reference.perturb(out.f64(), x.f64(), noise.f64(), s, n, d);
        else Cpu.perturb(out.f32(), x.f32(), noise.f32(), s, n, d);
        // Identity gradient to x: the output gradient itself (never modified in place by anyone).
        Autograd.record(op, out, new Tensor[] {x}, g -> new Tensor[] {g});
        return out;
    }

    // ---- dsm_loss ------------------------------------------------------------------------------

    /** The mean weighted loss, shape [1]; differentiable with respect to score only. */
    public static Tensor loss(Tensor score, Tensor noise, int[] labels, double[] sigmas, double annealPower) {
        if (score != null && !score.isCpu()) return Gpu.loss(score, noise, labels, sigmas, annealPower);
        double[] per = perSampleLoss(score, noise, labels, sigmas, annealPower); // validates the arguments
        int n = score.dim(0), d = score.numel() / n;
        double[] s = perSampleSigma(labels, sigmas);
        Tensor out = Tensor.empty(score.dtype(), 1);
        double total = 0;
        for (double v : per) total += v;
        out.set(0, total / n);
        Autograd.record("dsm_loss", out, new Tensor[] {score}, g -> {
            Tensor gs = Tensor.emptyLike(score);
            double g0 = g.get(0);
            if (score.dtype() == DType.F64) Reference.backward(gs.f64(), g0, score.f64(), noise.f64(), s, annealPower, n, d);
            else Cpu.backward(gs.f32(), g0, score.f32(), noise.f32(), s, annealPower, n, d);
            return new Tensor[] {gs};
        });
        return out;
    }

    /**
     * The per-sample terms 0.5 * s_n^p * sum_j (score - t)^2 (no gradient, no mean): for the
     * per-level test losses. Accumulated in double for either dtype (on the GPU in double too,
     * each term rounded to float32 once; the values are copied back, which waits for the GPU).
     */
    public static double[] perSampleLoss(Tensor score, Tensor noise, int[] labels, double[] sigmas, double annealPower) {
        String op = "dsm_loss";
        check(op, score, noise, labels, sigmas);
        int n = score.dim(0), d = score.numel() / Math.max(1, n);
        double[] s = perSampleSigma(labels, sigmas);
        if (!score.isCpu()) {
            Tensor per = Gpu.perSample(score, noise, s, annealPower, n, d);
            double[] out = per.toDoubleArray();
            per.free();
            return out;
        }
        double[] per = new double[n];
        if (score.dtype() == DType.F64) Reference.perSample(per, score.f64(), noise.f64(), s, annealPower, n, d);
        else Cpu.perSample(per, score.f32(), noise.f32(), s, annealPower, n, d);
        return per;
    }

    private static void check(String op, Tensor score, Tensor noise, int[] labels, double[] sigmas) {
        if (score == null || noise == null) throw new TensorException(op + ": score or noise is null");
        OpChecks.live(op, score, noise);
        OpChecks.sameShape(op, score, noise);
        checkBatch(op, score, labels, sigmas);
    }

    private static void checkBatch(String op, Tensor x, int[] labels, double[] sigmas) {
        if (x.rank() < 1 || x.dim(0) < 1)
            throw new TensorException(op + ": expected a batch [N, ...] with N >= 1, got " + x.describe());
        if (sigmas == null || sigmas.length == 0) throw new TensorException(op + ": no noise levels given");
        OpChecks.labels(op, labels, x.dim(0), sigmas.length);
        for (double v : sigmas)
            if (!(v > 0) || Double.isInfinite(v)) throw new TensorException(op + ": noise level " + v + " is not a positive number");
    }

    /** s_n = sigmas[labels[n]] (copied: later changes to the caller's arrays do not reach backward). */
    private static double[] perSampleSigma(int[] labels, double[] sigmas) {
        double[] s = new double[labels.length];
        for (int i = 0; i < s.length; i++) s[i] = sigmas[labels[i]];
        return s;
    }

    // ---- float64 reference ---------------------------------------------------------------------

    static final class Reference {
        static void perturb(double[] out, double[] x, double[] z, double[] s, int n, int d) {
            for (int i = 0; i < n; i++)
                for (int j = 0; j < d; j++) out[i * d + j] = x[i * d + j] + s[i] * z[i * d + j];
        }

        static void perSample(double[] per, double[] score, double[] z, double[] s, double p, int n, int d) {
            for (int i = 0; i < n; i++) {
                double acc = 0;
                for (int j = 0; j < d; j++) {
                    double target = -z[i * d + j] / s[i];
                    double diff = score[i * d + j] - target;
                    acc += diff * diff;
                }
                per[i] = 0.5 * acc * Math.pow(s[i], p);
            }
        }

        static void backward(double[] gs, double g, double[] score, double[] z, double[] s, double p, int n, int d) {
            for (int i = 0; i < n; i++)
                for (int j = 0; j < d; j++) {
                    double target = -z[i * d + j] / s[i];
                    gs[i * d + j] = g * (score[i * d + j] - target) * Math.pow(s[i], p) / n;
                }
        }
    }

    // ---- float32 kernels -----------------------------------------------------------------------

    static final class Cpu {
        private static final int GRAIN = 1 << 15;

        /** out = x + s_n * z: float32 multiply then add, as PyTorch's {@code x + z * s} rounds. */
        static void perturb(float[] out, float[] x, float[] z, double[] s, int n, int d) {
            Parallel.forRange(n, Math.max(1, GRAIN / Math.max(1, d)), (lo, hi) -> {
                for (int i = lo; i < hi; i++) {
                    float si = (float) s[i];
                    int off = i * d;
                    for (int j = off; j < off + d; j++) out[j] = x[j] + si * z[j];
                }
            });
        }

        /** per[n] = 0.5 s_n^p sum_j (score + z / s_n)^2, each term and the sum in double. */
        static void perSample(double[] per, float[] score, float[] z, double[] s, double p, int n, int d) {
            Parallel.forRange(n, Math.max(1, GRAIN / Math.max(1, d)), (lo, hi) -> {
                for (int i = lo; i < hi; i++) {
                    double inv = 1.0 / s[i];
                    int off = i * d;
                    double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                    int j = off, end = off + d, end4 = off + (d & ~3);
                    for (; j < end4; j += 4) {
                        double e0 = score[j] + z[j] * inv, e1 = score[j + 1] + z[j + 1] * inv;
                        double e2 = score[j + 2] + z[j + 2] * inv, e3 = score[j + 3] + z[j + 3] * inv;
                        a0 += e0 * e0;
                        a1 += e1 * e1;
                        a2 += e2 * e2;
                        a3 += e3 * e3;
                    }
                    for (; j < end; j++) {
                        double e = score[j] + z[j] * inv;
                        a0 += e * e;
                    }
                    per[i] = 0.5 * ((a0 + a1) + (a2 + a3)) * Math.pow(s[i], p);
                }
            });
        }

        /**
         * gs = c_n * (score + z / s_n) with c_n = g s_n^p / N, one vectorisable float32 pass.
         * Near the optimum score ~ -z/s_n is large (|z|/0.01 ~ 100) while the difference is O(1),
         * so plain float32 (z * (float)(1/s) + score) would lose ~|z/s| 2^-24 ~ 1e-5 of the result
         * to the rounding of 1/s. Instead 1/s = hi + lo (two floats, ~48 bits) and
         * e = fma(z, lo, fma(z, hi, score)) is within ~1 ulp of the exact difference; c_n * e adds
         * one more rounding. (The same in double per element is as accurate but 20x slower on
         * JDK 17: its float/double conversions do not vectorise.)
         */
        static void backward(float[] gs, double g, float[] score, float[] z, double[] s, double p, int n, int d) {
            Parallel.forRange(n, Math.max(1, GRAIN / Math.max(1, d)), (lo, hi) -> {
                for (int i = lo; i < hi; i++) {
                    double inv = 1.0 / s[i];
                    float invHi = (float) inv, invLo = (float) (inv - invHi);
                    float c = (float) (g * Math.pow(s[i], p) / n);
                    int off = i * d;
                    for (int j = off; j < off + d; j++) gs[j] = c * Math.fma(z[j], invLo, Math.fma(z[j], invHi, score[j]));
                }
            });
        }
    }

    // ---- CUDA launchers (src/main/cuda/dsm.cu) ------------------------------------------------

    /**
     * The fused GPU forms. Labels and sigmas arrive on the host; each call uploads a small
     * per-sample parameter tensor P [N, 5] (see dsm.cu: s as float, 1/s and s^p each split into
     * two floats) and frees it once its kernels are queued (the stream orders later reuse). The
     * loss is two launches: a block per image for the per-sample terms, one block for the mean.
     */
    static final class Gpu {
        static final int P = 5;

        static Tensor params(Tensor like, double[] s, double annealPower) {
            int n = s.length;
            float[] p = new float[n * P];
            for (int i = 0; i < n; i++) {
                double inv = 1.0 / s[i], w = Math.pow(s[i], annealPower);
                float invHi = (float) inv, wHi = (float) w;
                p[i * P] = (float) s[i];
                p[i * P + 1] = invHi;
                p[i * P + 2] = (float) (inv - invHi);
                p[i * P + 3] = wHi;
                p[i * P + 4] = (float) (w - wHi);
            }
            return Tensor.wrap(p, n, P).to(like.device());
        }

        static void perturb(Tensor out, Tensor x, Tensor z, double[] s, int d) {
            Tensor p = params(x, s, 0.0);
            long total = x.numel();
            Launch.kernel("dsm_perturb_f32").ptr(x).ptr(z).ptr(p).ptr(out).l(total).i(d).elements(total).run();
            p.free();
        }

        /** per [N] (float32, on the device) = 0.5 s_n^p sum_j (score + z / s_n)^2. */
        static Tensor perSample(Tensor score, Tensor z, double[] s, double annealPower, int n, int d) {
            Tensor p = params(score, s, annealPower);
            Tensor per = perSample(score, z, p, n, d);
            p.free();
            return per;
        }

        private static Tensor perSample(Tensor score, Tensor z, Tensor p, int n, int d) {
            Tensor per = Tensor.empty(score.device(), DType.F32, n);
            Launch.kernel("dsm_loss_per_sample_f32").ptr(score).ptr(z).ptr(p).ptr(per).i(n).i(d)
                    .grid(n).block(Reduce.Gpu.blockFor(d)).run();
            return per;
        }

        /**
         * The loss [1] on the device. P is uploaded once (the upload waits for the stream) and,
         * when a gradient will be needed, kept for the backward, which frees it; otherwise freed
         * at once.
         */
        static Tensor loss(Tensor score, Tensor noise, int[] labels, double[] sigmas, double annealPower) {
            String op = "dsm_loss";
            check(op, score, noise, labels, sigmas);
            int n = score.dim(0), d = score.numel() / n;
            double[] s = perSampleSigma(labels, sigmas);
            Tensor p = params(score, s, annealPower);
            Tensor per = perSample(score, noise, p, n, d);
            Tensor out = Tensor.empty(score.device(), DType.F32, 1);
            Launch.kernel("dsm_loss_mean_f32").ptr(per).ptr(out).i(n).grid(1).block(Reduce.Gpu.blockFor(n)).run();
            per.free();
            if (!Autograd.needsGrad(score)) {
                p.free();
                return out;
            }
            Autograd.record(op, out, new Tensor[] {score}, g -> {
                Tensor gs = Tensor.emptyLike(score);
                long total = score.numel();
                Launch.kernel("dsm_loss_backward_f32").ptr(score).ptr(noise).ptr(p).ptr(g).ptr(gs).l(total).i(d).i(n)
                        .elements(total).run();
                p.free(); // queued behind the kernel on the one stream
                return new Tensor[] {gs};
            });
            return out;
        }
    }

    // ---- catalog cases -------------------------------------------------------------------------

    static List<OpCatalog.Case> cases() {
        double[] sig = sigmas(1.0, 0.01, 10);
        List<OpCatalog.Case> cs = new ArrayList<>();
        Object[][] shapes = {
            {new int[] {3, 1, 5, 7}, new int[] {2, 7, 2}},
            {new int[] {1, 3, 4, 4}, new int[] {9}},
            {new int[] {5, 2}, new int[] {0, 4, 4, 9, 0}},
        };
        for (Object[] c : shapes) {
            int[] shape = (int[]) c[0], labels = (int[]) c[1];
            String v = java.util.Arrays.toString(shape) + " labels " + java.util.Arrays.toString(labels);
            cs.add(OpCatalog.Case.of("dsm_perturb", v,
                    seed -> new Tensor[] {
                        OpCatalog.uniform(seed, 0, 1, shape).name("x"),
                        OpCatalog.fixed(OpCatalog.normal(seed + 1, shape)).name("noise")},
                    in -> perturb(in[0], in[1], labels, sig)));
            // Scores near the optimum -z/s plus O(1) error, as a trained network would give.
            cs.add(OpCatalog.Case.of("dsm_loss", v + " power 2",
                    seed -> new Tensor[] {
                        nearTarget(seed, shape, labels, sig).name("score"),
                        OpCatalog.fixed(OpCatalog.normal(seed + 1, shape)).name("noise")},
                    in -> loss(in[0], in[1], labels, sig, 2.0)));
        }
        // Unit-scale scores (far from the target at small sigma), and another anneal power.
        cs.add(OpCatalog.Case.of("dsm_loss", "[3,1,5,7] N(0,1) scores power 1",
                seed -> new Tensor[] {
                    OpCatalog.normal(seed, 3, 1, 5, 7).name("score"),
                    OpCatalog.fixed(OpCatalog.normal(seed + 1, 3, 1, 5, 7)).name("noise")},
                in -> loss(in[0], in[1], new int[] {0, 5, 5}, sig, 1.0)));
        return cs;
    }

    /** score = -z/s_n + N(0,1) with z the case's noise (same seed + 1). */
    private static Tensor nearTarget(long seed, int[] shape, int[] labels, double[] sig) {
        Tensor score = OpCatalog.normal(seed, shape);
        Tensor z = OpCatalog.normal(seed + 1, shape);
        double[] sc = score.f64(), zz = z.f64();
        int n = shape[0], d = sc.length / n;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < d; j++) sc[i * d + j] += -zz[i * d + j] / sig[labels[i]];
        return score;
    }
}
