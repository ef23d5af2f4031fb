package ncsn.sample;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import ncsn.rng.Philox;
import ncsn.tensor.DType;
import ncsn.tensor.Tensor;
import org.junit.jupiter.api.Test;

/** The annealed / plain Langevin drivers: the spec's step schedule, noise bookkeeping, callbacks, checks. */
class AnnealedLangevinTest {
    private static final double[] SIGMAS = {1.0, 0.5, 0.25};

    /** s(x, i) = -x / sigma_i^2: the score of N(0, sigma_i^2 I). */
    private static ScoreFunction gaussian(double[] sigmas) {
        return (x, level, out) -> {
            double inv = 1 / (sigmas[level] * sigmas[level]);
            for (int j = 0; j < x.numel(); j++) out.set(j, -x.get(j) * inv);
        };
    }

    @Test
    void stepScheduleIsStepLrTimesSigmaRatioSquared() {
        AnnealedLangevin a = new AnnealedLangevin(SIGMAS, 2e-5, 100, 0);
        assertEquals(2e-5 * 16, a.stepSize(0), 1e-20);
        assertEquals(2e-5 * 4, a.stepSize(1), 1e-20);
        assertEquals(2e-5, a.stepSize(2), 0.0);
        assertThrows(IllegalArgumentException.class, () -> a.stepSize(3));
    }

    /**
     * The whole run against the spec written out independently: step k of level i adds
     * step_i * (-x/sigma_i^2) + sqrt(2 step_i) z_k with z_k the Philox normals of (seed, stream)
     * at block offset k * blocksFor(numel).
     */
    @Test
    void runFollowsSpecSection6() {
        int n = 7, steps = 5;
        double stepLr = 0.01;
        long seed = 31;
        double[] x0 = new double[n];
        for (int j = 0; j < n; j++) x0[j] = j - 3.0;
        Tensor x = Tensor.wrap(x0.clone(), 1, n);
        new AnnealedLangevin(SIGMAS, stepLr, steps, seed).run(x, gaussian(SIGMAS));

        double[] want = x0.clone(), z = new double[n];
        long blocks = Philox.blocksFor(n), k = 0;
        for (int i = 0; i < SIGMAS.length; i++) {
            double step = stepLr * Math.pow(SIGMAS[i] / SIGMAS[SIGMAS.length - 1], 2);
            for (int t = 0; t < steps; t++, k++) {
                Philox.normal(seed, AnnealedLangevin.NOISE_STREAM, k * blocks, z, 0, n);
                for (int j = 0; j < n; j++)
                    want[j] = want[j] + step * (-want[j] / (SIGMAS[i] * SIGMAS[i])) + Math.sqrt(2 * step) * z[j];
            }
        }
        assertArrayEquals(want, x.f64(), 1e-12);
    }

    @Test
    void scoreAndCallbackSeeEveryStepInOrder() {
        List<String> calls = new ArrayList<>();
        ScoreFunction f = (x, level, out) -> {
            calls.add("s" + level);
            Arrays.fill(out.f32(), 0f);
        };
        new AnnealedLangevin(SIGMAS, 0.1, 2, 0)
                .onStep((level, t, step, x) -> calls.add("cb" + level + "." + t + "#" + step))
                .run(Tensor.zeros(DType.F32, 2, 2), f);
        assertEquals(List.of("s0", "cb0.0#0", "s0", "cb0.1#1", "s1", "cb1.0#2", "s1", "cb1.1#3", "s2", "cb2.0#4", "s2",
                "cb2.1#5"), calls);

        List<Integer> plainLevels = new ArrayList<>();
        AnnealedLangevin.plain(Tensor.zeros(DType.F32, 3), (x, level, out) -> plainLevels.add(level), 4, 0.1, 3, 0,
                (level, t, step, x) -> assertEquals(t, step));
        assertEquals(List.of(4, 4, 4), plainLevels);
    }

    @Test
    void plainLangevinIsFixedStepAtOneLevel() {
        int n = 5, steps = 4;
        double step = 0.05;
        Tensor x = Tensor.wrap(new double[] {1, 2, 3, 4, 5}, n);
        AnnealedLangevin.plain(x, gaussian(new double[] {2.0}), 0, step, steps, 9, null);
        double[] want = {1, 2, 3, 4, 5}, z = new double[n];
        for (int k = 0; k < steps; k++) {
            Philox.normal(9, AnnealedLangevin.NOISE_STREAM, k * Philox.blocksFor(n), z, 0, n);
            for (int j = 0; j < n; j++) want[j] = want[j] + step * (-want[j] / 4) + Math.sqrt(2 * step) * z[j];
        }
        assertArrayEquals(want, x.f64(), 1e-12);
    }

    @Test
    void sameSeedSameSamplesOtherSeedOrStreamOtherSamples() {
        double[][] out = new double[4][];
        long[][] keys = {{5, AnnealedLangevin.NOISE_STREAM}, {5, AnnealedLangevin.NOISE_STREAM}, {6, AnnealedLangevin.NOISE_STREAM}, {5, 1}};
        for (int r = 0; r < 4; r++) {
            Tensor x = AnnealedLangevin.uniformInit(Tensor.empty(DType.F32, 64, 2), -1, 1, 3);
            new AnnealedLangevin(SIGMAS, 0.01, 10, keys[r][0]).stream(keys[r][1]).run(x, gaussian(SIGMAS));
            out[r] = x.toDoubleArray();
        }
        assertArrayEquals(out[0], out[1], 0.0, "same seed");
        assertFalse(Arrays.equals(out[0], out[2]), "another seed");
        assertFalse(Arrays.equals(out[0], out[3]), "another stream");
    }

    /** Long plain Langevin on N(0, 4) ends with about the right spread (a sanity check of the sign and scale). */
    @Test
    void plainLangevinSamplesAGaussian() {
        int n = 20_000;
        Tensor x = AnnealedLangevin.uniformInit(Tensor.empty(DType.F32, n), -1, 1, 1);
        AnnealedLangevin.plain(x, gaussian(new double[] {2.0}), 0, 0.05, 400, 2, null);
        double m = 0, v = 0;
        for (float f : x.f32()) m += f;
        m /= n;
        for (float f : x.f32()) v += (f - m) * (f - m);
        v /= n;
        // Discretised Langevin on N(0, s^2) has stationary variance s^2 / (1 - step / (2 s^2)) = 4.025.
        assertEquals(0, m, 0.1);
        assertEquals(4.0 / (1 - 0.05 / 8), v, 0.2);
    }

    @Test
    void uniformInitIsInRangeAndSeeded() {
        Tensor a = AnnealedLangevin.uniformInit(Tensor.empty(DType.F32, 1000, 2), -8, 8, 1);
        Tensor b = AnnealedLangevin.uniformInit(Tensor.empty(DType.F64, 1000, 2), -8, 8, 1);
        for (int j = 0; j < 2000; j++) {
            assertTrue(a.get(j) >= -8 && a.get(j) < 8);
            assertEquals(b.get(j), a.get(j), 1e-5);
        }
        assertThrows(IllegalArgumentException.class, () -> AnnealedLangevin.uniformInit(Tensor.empty(DType.F32, 2), 1, 1, 0));
    }

    @Test
    void badSettingsAreNamed() {
        ScoreFunction f = gaussian(SIGMAS);
        Tensor x = Tensor.zeros(DType.F32, 2);
        assertMessage("steps per level", () -> new AnnealedLangevin(SIGMAS, 0.1, 0, 0));
        assertMessage("steps per level", () -> new AnnealedLangevin(SIGMAS, 0.1, -3, 0));
        assertMessage("step_lr", () -> new AnnealedLangevin(SIGMAS, 0, 10, 0));
        assertMessage("step_lr", () -> new AnnealedLangevin(SIGMAS, -1e-5, 10, 0));
        assertMessage("step_lr", () -> new AnnealedLangevin(SIGMAS, Double.NaN, 10, 0));
        assertMessage("sigmas", () -> new AnnealedLangevin(new double[0], 0.1, 10, 0));
        assertMessage("sigmas[1]", () -> new AnnealedLangevin(new double[] {1, 0}, 0.1, 10, 0));
        assertMessage("steps must be positive", () -> AnnealedLangevin.plain(x, f, 0, 0.1, 0, 0, null));
        assertMessage("step must be a positive", () -> AnnealedLangevin.plain(x, f, 0, 0, 10, 0, null));
        assertMessage("step must be a positive", () -> AnnealedLangevin.plain(x, f, 0, -0.1, 10, 0, null));
        assertMessage("score function", () -> new AnnealedLangevin(SIGMAS, 0.1, 1, 0).run(x, null));
    }

    private static void assertMessage(String part, org.junit.jupiter.api.function.Executable e) {
        IllegalArgumentException ex = assertThrows(IllegalArgumentException.class, e);
        assertTrue(ex.getMessage().contains(part), "message '" + ex.getMessage() + "' should name '" + part + "'");
    }
}
