package ncsn.sample;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import ncsn.model.CondRefineNetDilated;
import ncsn.rng.Philox;
import ncsn.tensor.BufferPool;
import org.junit.jupiter.api.Test;

/**
 * {@link ImageSampler}: the spec's update written out independently with an analytic score,
 * determinism and independence of the batch size (also with a real network), the denoising step,
 * chain frames, pooled memory, and the timing numbers.
 */
class ImageSamplerTest {
    private static final double[] SIGMAS = {1.0, 0.3, 0.1};

    /** s(x, i) = -(x - 0.5) / sigma_i^2: the score of N(0.5, sigma_i^2 I). */
    private static ScoreFunction gaussian(double[] sigmas) {
        return (x, level, out) -> {
            double inv = 1 / (sigmas[level] * sigmas[level]);
            float[] xs = x.f32(), o = out.f32();
            for (int j = 0; j < xs.length; j++) o[j] = (float) (-(xs[j] - 0.5) * inv);
        };
    }

    /** The whole chain per spec section 6 in double, with the keying the class comment documents. */
    private static double[] expected(int n, int chw, long seed, int t, double stepLr, boolean denoise) {
        int len = n * chw;
        double[] x = new double[len], z = new double[len];
        Philox.uniform(seed, AnnealedLangevin.INIT_STREAM, 0, x, 0, len);
        for (int j = 0; j < len; j++) x[j] = (float) x[j];
        long blocks = Philox.blocksFor(len);
        int k = 0;
        for (int i = 0; i < SIGMAS.length; i++) {
            double step = stepLr * Math.pow(SIGMAS[i] / SIGMAS[SIGMAS.length - 1], 2);
            for (int s = 0; s < t; s++, k++) {
                Philox.normal(seed, AnnealedLangevin.NOISE_STREAM, k * blocks, z, 0, len);
                for (int j = 0; j < len; j++) {
                    double sc = (float) (-(x[j] - 0.5) / (SIGMAS[i] * SIGMAS[i]));
                    x[j] = (float) (x[j] + step * sc + Math.sqrt(2 * step) * z[j]);
                }
            }
        }
        if (denoise) {
            double s2 = SIGMAS[2] * SIGMAS[2];
            for (int j = 0; j < len; j++) x[j] = (float) (x[j] + s2 * (float) (-(x[j] - 0.5) / s2));
        }
        return x;
    }

    private static double[] toDouble(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) d[i] = f[i];
        return d;
    }

    @Test
    void annealedChainFollowsSpecSection6AtEveryBatchSize() {
        int n = 5, c = 1, h = 2, w = 4, chw = c * h * w;
        ImageSampler s = new ImageSampler(gaussian(SIGMAS), SIGMAS, c, h, w, false);
        double[] want = expected(n, chw, 7, 4, 0.01, false);
        for (int batch : new int[] {5, 2, 1, 3, 100}) {
            ImageSampler.Result r = s.sample(ImageSampler.Settings.annealed(n, 7, 4, 0.01, batch, false, false), null);
            assertArrayEquals(want, toDouble(r.samples().f32()), 1e-6, "batch " + batch);
            assertArrayEquals(new int[] {n, c, h, w}, r.samples().shape());
            assertNull(r.frames());
        }
    }

    @Test
    void denoiseAddsSigmaLastSquaredTimesScore() {
        ImageSampler s = new ImageSampler(gaussian(SIGMAS), SIGMAS, 1, 2, 2, false);
        ImageSampler.Result plain = s.sample(ImageSampler.Settings.annealed(3, 1, 2, 0.01, 3, false, false), null);
        ImageSampler.Result den = s.sample(ImageSampler.Settings.annealed(3, 1, 2, 0.01, 3, true, false), null);
        assertArrayEquals(expected(3, 4, 1, 2, 0.01, true), toDouble(den.samples().f32()), 1e-6);
        // For this score the step lands exactly on the mean 0.5.
        for (float v : den.samples().f32()) assertEquals(0.5, v, 1e-6);
        assertFalse(Arrays.equals(plain.samples().f32(), den.samples().f32()));
        assertEquals(plain.timing().evaluations() + 1, den.timing().evaluations());
    }

    @Test
    void plainLangevinUsesStepLrAtTheFixedLabel() {
        List<Integer> levels = new ArrayList<>();
        ScoreFunction g = gaussian(SIGMAS);
        ImageSampler s = new ImageSampler((x, level, out) -> {
            levels.add(level);
            g.score(x, level, out);
        }, SIGMAS, 1, 2, 2, false);
        int n = 2, len = 8, steps = 6;
        ImageSampler.Result r = s.sample(ImageSampler.Settings.langevin(n, 3, 1, steps, 0.004, 1, false, false), null);
        assertEquals(List.of(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1), levels);
        double[] x = new double[len], z = new double[len];
        Philox.uniform(3, AnnealedLangevin.INIT_STREAM, 0, x, 0, len);
        for (int k = 0; k < steps; k++) {
            Philox.normal(3, AnnealedLangevin.NOISE_STREAM, k * Philox.blocksFor(len), z, 0, len);
            for (int j = 0; j < len; j++)
                x[j] = x[j] + 0.004 * (-(x[j] - 0.5) / 0.09) + Math.sqrt(0.008) * z[j];
        }
        assertArrayEquals(x, toDouble(r.samples().f32()), 1e-5);
        assertThrows(IllegalArgumentException.class,
                () -> s.sample(ImageSampler.Settings.langevin(n, 3, 3, steps, 0.004, 1, false, false), null));
    }

    @Test
    void oddImageSizesRoundTheBatchSoTheNoiseStillMatches() {
        assertEquals(4, ImageSampler.effectiveBatch(3, 10, 9));
        assertEquals(10, ImageSampler.effectiveBatch(9, 10, 9));
        assertEquals(4, ImageSampler.effectiveBatch(3, 10, 6));
        assertEquals(3, ImageSampler.effectiveBatch(3, 10, 8));
        assertEquals(10, ImageSampler.effectiveBatch(64, 10, 9));
        ImageSampler s = new ImageSampler(gaussian(SIGMAS), SIGMAS, 1, 3, 3, false);
        float[] whole = s.sample(ImageSampler.Settings.annealed(7, 5, 2, 0.01, 7, false, false), null).samples().f32();
        ImageSampler.Result split = s.sample(ImageSampler.Settings.annealed(7, 5, 2, 0.01, 1, false, false), null);
        assertEquals(4, split.timing().batch());
        assertEquals(2, split.timing().batches());
        assertArrayEquals(whole, split.samples().f32());
    }

    @Test
    void framesEveryTenStepsPlusTheEndAndTheDenoisedResult() {
        assertEquals(4, ImageSampler.frameCount(30, false));
        assertEquals(4, ImageSampler.frameCount(25, false));
        assertEquals(5, ImageSampler.frameCount(25, true));
        assertEquals(2, ImageSampler.frameCount(9, false));
        ImageSampler s = new ImageSampler(gaussian(SIGMAS), SIGMAS, 1, 2, 2, false);
        ImageSampler.Result r = s.sample(ImageSampler.Settings.annealed(3, 2, 7, 0.01, 2, true, true), null); // 21 steps
        assertEquals(ImageSampler.frameCount(21, true), r.frames().length);
        byte[] last = r.frames()[r.frames().length - 1];
        byte[] want = new byte[12];
        ImageGrid.quantize(r.samples().f32(), 0, want, 0, 12, false);
        assertArrayEquals(want, last, "the last frame is the final (denoised) state");
        byte[] first = new byte[12];
        float[] x0 = new float[12];
        Philox.uniform(2, AnnealedLangevin.INIT_STREAM, 0, x0, 0, 12);
        ImageGrid.quantize(x0, 0, first, 0, 12, false);
        assertArrayEquals(first, r.frames()[0], "frame 0 is the uniform start");
        assertFalse(Arrays.equals(r.frames()[1], r.frames()[0]));
    }

    @Test
    void listenerSeesEveryStepAndTheTimingAddsUp() {
        List<String> calls = new ArrayList<>();
        ImageSampler s = new ImageSampler(gaussian(SIGMAS), SIGMAS, 1, 2, 2, false);
        ImageSampler.Result r = s.sample(ImageSampler.Settings.annealed(3, 0, 2, 0.01, 2, false, false), new ImageSampler.Listener() {
            @Override
            public void start(long total, int batches, int chain) {
                calls.add("start " + total + " " + batches + " " + chain);
            }

            @Override
            public void step(int batch, int level, int t, long done) {
                calls.add(batch + ":" + level + "." + t + "#" + done);
            }

            @Override
            public void finish() {
                calls.add("finish");
            }
        });
        assertEquals(List.of("start 12 2 6", "0:0.0#1", "0:0.1#2", "0:1.0#3", "0:1.1#4", "0:2.0#5", "0:2.1#6",
                "1:0.0#7", "1:0.1#8", "1:1.0#9", "1:1.1#10", "1:2.0#11", "1:2.1#12", "finish"), calls);
        ImageSampler.Timing t = r.timing();
        assertEquals(12, t.steps());
        assertEquals(6, t.chainSteps());
        assertTrue(t.networkSeconds() > 0 && t.updateSeconds() > 0);
        assertTrue(t.totalSeconds() >= t.networkSeconds() + t.updateSeconds());
        assertEquals((t.networkSeconds() + t.updateSeconds()) / 12, t.secondsPerStep(), 1e-12);
        assertEquals(1000 * t.secondsPerStep(), t.secondsPer1000Steps(), 1e-9);
        String json = t.toJson("  \"extra\": 1,\n");
        com.google.gson.JsonObject o = com.google.gson.JsonParser.parseString(json).getAsJsonObject();
        assertEquals(12, o.get("langevin_steps").getAsInt());
        assertEquals(1, o.get("extra").getAsInt());
        assertTrue(o.get("network_share").getAsDouble() > 0 && o.get("network_share").getAsDouble() < 1);
    }

    /**
     * The real network: same seed, same bits, whatever the batch size; another seed, other samples;
     * and from the second step on the buffer pool serves every temporary (no fresh arrays).
     */
    @Test
    void networkSamplingIsDeterministicBatchIndependentAndPooled() {
        CondRefineNetDilated model = TinyModels.model(1, 11);
        double[] sigmas = {1.0, 0.2, 0.05};
        ImageSampler s = ImageSampler.forModel(model, sigmas, 8);
        List<Long> fresh = new ArrayList<>();
        ImageSampler.Listener poolWatch = new ImageSampler.Listener() {
            @Override
            public void step(int batch, int level, int t, long done) {
                fresh.add(BufferPool.freshAllocations());
            }
        };
        ImageSampler.Result a = s.sample(ImageSampler.Settings.annealed(4, 9, 3, 2e-5, 4, true, false), poolWatch);
        assertEquals(9, fresh.size());
        assertEquals(fresh.get(1), fresh.get(fresh.size() - 1), "pool misses after the second step: " + fresh);
        ImageSampler.Result b = s.sample(ImageSampler.Settings.annealed(4, 9, 3, 2e-5, 1, true, false), null);
        ImageSampler.Result again = s.sample(ImageSampler.Settings.annealed(4, 9, 3, 2e-5, 4, true, false), null);
        ImageSampler.Result other = s.sample(ImageSampler.Settings.annealed(4, 10, 3, 2e-5, 4, true, false), null);
        assertArrayEquals(a.samples().f32(), again.samples().f32());
        assertArrayEquals(a.samples().f32(), b.samples().f32(), "batch 1 vs 4");
        assertFalse(Arrays.equals(a.samples().f32(), other.samples().f32()));
        for (float v : a.samples().f32()) assertTrue(Float.isFinite(v));
    }

    /**
     * The spec's schedule end to end (sigmas 1 -> 0.01 over 10 levels, step_lr 2e-5, T 100) with the
     * exact score of a two-image "data set" smoothed at each level (a mixture of N(mu_k, sigma_i^2 I)):
     * every sample ends within a few sigma_L of one of the two images, and both images are drawn.
     */
    @Test
    void specScheduleWithExactScoresRecoversTheData() {
        int hw = 16;
        float[][] mu = new float[2][hw];
        for (int p = 0; p < hw; p++) {
            mu[0][p] = p % 2 == 0 ? 0.9f : 0.1f;
            mu[1][p] = p < hw / 2 ? 0.8f : 0.2f;
        }
        double[] sig = ncsn.ops.AnnealedDsm.sigmas(1, 0.01, 10);
        ScoreFunction mixture = (x, level, out) -> {
            double s2 = sig[level] * sig[level];
            float[] xs = x.f32(), o = out.f32();
            for (int i = 0; i < x.dim(0); i++) {
                double[] logw = new double[2];
                for (int k = 0; k < 2; k++)
                    for (int p = 0; p < hw; p++) logw[k] -= Math.pow(xs[i * hw + p] - mu[k][p], 2) / (2 * s2);
                double m = Math.max(logw[0], logw[1]), w0 = Math.exp(logw[0] - m), w1 = Math.exp(logw[1] - m);
                w0 /= w0 + w1;
                for (int p = 0; p < hw; p++)
                    o[i * hw + p] = (float) ((w0 * (mu[0][p] - xs[i * hw + p]) + (1 - w0) * (mu[1][p] - xs[i * hw + p])) / s2);
            }
        };
        int n = 16;
        ImageSampler s = new ImageSampler(mixture, sig, 1, 4, 4, false);
        float[] x = s.sample(ImageSampler.Settings.annealed(n, 3, 100, 2e-5, n, false, false), null).samples().f32();
        int[] count = new int[2];
        for (int i = 0; i < n; i++) {
            double[] d = new double[2];
            for (int k = 0; k < 2; k++)
                for (int p = 0; p < hw; p++) d[k] += Math.pow(x[i * hw + p] - mu[k][p], 2);
            int k = d[0] < d[1] ? 0 : 1;
            count[k]++;
            assertTrue(Math.sqrt(d[k] / hw) < 0.03, "sample " + i + " RMS distance " + Math.sqrt(d[k] / hw) + " to image " + k);
        }
        assertTrue(count[0] > 0 && count[1] > 0, "both images drawn: " + Arrays.toString(count));
    }

    @Test
    void badSettingsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> ImageSampler.Settings.annealed(0, 0, 1, 1e-5, 1, false, false));
        assertThrows(IllegalArgumentException.class, () -> ImageSampler.Settings.annealed(1, 0, 0, 1e-5, 1, false, false));
        assertThrows(IllegalArgumentException.class, () -> ImageSampler.Settings.annealed(1, 0, 1, 0, 1, false, false));
        assertThrows(IllegalArgumentException.class, () -> ImageSampler.Settings.annealed(1, 0, 1, 1e-5, 0, false, false));
        assertThrows(IllegalArgumentException.class, () -> ImageSampler.Settings.langevin(1, 0, 0, 0, 1e-5, 1, false, false));
        CondRefineNetDilated model = TinyModels.model(1, 1);
        assertThrows(IllegalArgumentException.class, () -> ImageSampler.forModel(model, new double[] {1, 0.1}, 8));
    }
}
