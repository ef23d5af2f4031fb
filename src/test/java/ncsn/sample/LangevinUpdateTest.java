package ncsn.sample;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.lang.management.ManagementFactory;
import java.util.Locale;
import ncsn.cpu.Parallel;
import ncsn.rng.Philox;
import ncsn.tensor.DType;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;
import org.junit.jupiter.api.Test;

/** The fused Langevin update: float32 kernel against the float64 reference, its noise, its checks. */
class LangevinUpdateTest {
    /** Sizes around the 4-element Philox block and the parallel grain (2^13 blocks = 32768 elements). */
    private static final int[] SIZES = {1, 2, 3, 4, 5, 7, 13, 1023, 4097, 32767, 32768, 32769, 70001};

    static float[] normals(long seed, int n, double scale) {
        double[] d = new double[n];
        Philox.normal(seed, 77, 0, d, 0, n);
        float[] f = new float[n];
        for (int i = 0; i < n; i++) f[i] = (float) (d[i] * scale);
        return f;
    }

    private static double[] widen(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) d[i] = f[i];
        return d;
    }

    /**
     * The float32 kernel evaluates the reference's double expression from the same float inputs
     * and rounds once, so it must equal the reference rounded to float32: allow 1 ulp (for a
     * last-bit difference between Math.log/sin/cos in interpreted and compiled code), print the worst.
     */
    @Test
    void float32KernelMatchesFloat64ReferenceOnAwkwardSizes() {
        long[][] keys = {{0, 0, 0}, {123456789L, AnnealedLangevin.NOISE_STREAM, 5}, {-1L, -7L, 0xFFFFFFFEL}};
        for (int n : SIZES) {
            for (long[] k : keys) {
                float[] x = normals(n, n, 3.0), s = normals(n + 1000, n, 10.0);
                double step = 0.0123;
                double[] ref = widen(x);
                LangevinUpdate.Reference.update(ref, widen(s), null, null, step, k[0], k[1], k[2], n);
                Tensor xt = Tensor.wrap(x.clone(), n);
                LangevinUpdate.apply(xt, Tensor.wrap(s, n), step, k[0], k[1], k[2]);
                float[] got = xt.f32();
                int worst = -1;
                double worstUlps = 0;
                for (int j = 0; j < n; j++) {
                    float want = (float) ref[j];
                    double ulps = Math.abs(got[j] - want) / Math.ulp(want);
                    if (ulps > worstUlps) {
                        worstUlps = ulps;
                        worst = j;
                    }
                }
                if (worstUlps > 1)
                    fail(String.format(Locale.ROOT, "n=%d key=%d/%d/%d: element %d float32 %s vs reference %s (%.1f ulp)",
                            n, k[0], k[1], k[2], worst, got[worst], ref[worst], worstUlps));
            }
        }
    }

    /** With score 0, x 0 and step 1/2, x becomes exactly the documented Philox normals of (seed, stream, offset). */
    @Test
    void noiseIsThePhiloxNormalStreamWithDocumentedKeying() {
        for (int n : new int[] {1, 6, 4097, 40000}) {
            long seed = 99, stream = 5, offset = (1L << 32) - 3;   // crosses the low counter word
            double[] want = new double[n];
            Philox.normal(seed, stream, offset, want, 0, n);
            Tensor x64 = Tensor.zeros(DType.F64, n);
            LangevinUpdate.apply(x64, Tensor.zeros(DType.F64, n), 0.5, seed, stream, offset);
            assertArrayEquals(want, x64.f64(), 0.0, "float64, n=" + n);
            Tensor x32 = Tensor.zeros(DType.F32, n);
            LangevinUpdate.apply(x32, Tensor.zeros(DType.F32, n), 0.5, seed, stream, offset);
            float[] f = x32.f32();
            for (int j = 0; j < n; j++)
                if (f[j] != (float) want[j]) fail("float32 n=" + n + " element " + j + ": " + f[j] + " vs " + want[j]);
        }
    }

    @Test
    void updateIsStepTimesScorePlusScaledNoise() {
        int n = 1000;
        double step = 0.37;
        double[] z = new double[n];
        Philox.normal(3, 4, 10, z, 0, n);
        double[] x = new double[n], s = new double[n];
        for (int j = 0; j < n; j++) {
            x[j] = j * 0.01 - 3;
            s[j] = Math.sin(j);
        }
        Tensor xt = Tensor.wrap(x.clone(), n);
        LangevinUpdate.apply(xt, Tensor.wrap(s, n), step, 3, 4, 10);
        for (int j = 0; j < n; j++)
            assertEquals(x[j] + step * s[j] + Math.sqrt(2 * step) * z[j], xt.f64()[j], 1e-12, "element " + j);
    }

    @Test
    void resultDoesNotDependOnThreadCount() {
        int n = 300_001;
        float[] x0 = normals(1, n, 1), s = normals(2, n, 1);
        int before = Parallel.threads();
        try {
            Parallel.setThreads(1);
            Tensor a = Tensor.wrap(x0.clone(), n);
            LangevinUpdate.apply(a, Tensor.wrap(s, n), 0.01, 8, 9, 0);
            Parallel.setThreads(Runtime.getRuntime().availableProcessors());
            Tensor b = Tensor.wrap(x0.clone(), n);
            LangevinUpdate.apply(b, Tensor.wrap(s, n), 0.01, 8, 9, 0);
            assertArrayEquals(a.f32(), b.f32());
        } finally {
            Parallel.setThreads(before);
        }
    }

    /** Noise scale: with score 0 the increments have mean 0 and variance 2 step. */
    @Test
    void incrementsHaveVarianceTwoStep() {
        int n = 200_000;
        double step = 0.02;
        Tensor x = Tensor.zeros(DType.F32, n);
        LangevinUpdate.apply(x, Tensor.zeros(DType.F32, n), step, 42, 1, 0);
        double m = 0, v = 0;
        for (float f : x.f32()) m += f;
        m /= n;
        for (float f : x.f32()) v += (f - m) * (f - m);
        v /= n - 1;
        assertEquals(0, m, 4 * Math.sqrt(2 * step / n), "mean");
        assertEquals(2 * step, v, 2 * step * 0.02, "variance");   // sd of the estimate ~0.3%
    }

    @Test
    void maskedVariantKeepsKnownValuesAndUpdatesTheRestAsUnmasked() {
        for (DType dt : DType.values()) {
            int n = 4099;
            Tensor x0 = Tensor.wrap(widen(normals(5, n, 1)), n).to(dt);
            Tensor s = Tensor.wrap(widen(normals(6, n, 1)), n).to(dt);
            Tensor mask = Tensor.zeros(dt, n), known = Tensor.zeros(dt, n);
            for (int j = 0; j < n; j++) {
                mask.set(j, j % 3 == 0 ? 1 : 0);
                known.set(j, 100 + j);
            }
            Tensor plain = x0.copy(), masked = x0.copy();
            LangevinUpdate.apply(plain, s, 0.1, 1, 2, 3);
            LangevinUpdate.applyMasked(masked, s, 0.1, 1, 2, 3, mask, known);
            for (int j = 0; j < n; j++) {
                double want = j % 3 == 0 ? 100 + j : plain.get(j);
                assertEquals(want, masked.get(j), 0.0, dt + " element " + j);
            }
            Tensor y = x0.copy();
            LangevinUpdate.assignMasked(y, mask, known);
            for (int j = 0; j < n; j++) assertEquals(j % 3 == 0 ? 100 + j : x0.get(j), y.get(j), 0.0);
        }
    }

    /** A step allocates nothing in proportion to the tensor (no noise buffer): below 1 KiB per step. */
    @Test
    void stepAllocatesNoBuffers() {
        var bean = ManagementFactory.getThreadMXBean();
        if (!(bean instanceof com.sun.management.ThreadMXBean tb) || !tb.isThreadAllocatedMemorySupported()) return;
        int n = 30_000;   // below the parallel grain: all work on this thread, so all allocation is counted
        Tensor x = Tensor.zeros(DType.F32, n), s = Tensor.zeros(DType.F32, n);
        for (int k = 0; k < 200; k++) LangevinUpdate.apply(x, s, 1e-3, 1, 2, k);   // warm up (JIT)
        long tid = Thread.currentThread().getId();
        long before = tb.getThreadAllocatedBytes(tid);
        int steps = 50;
        for (int k = 0; k < steps; k++) LangevinUpdate.apply(x, s, 1e-3, 1, 2, k);
        long perStep = (tb.getThreadAllocatedBytes(tid) - before) / steps;
        assertTrue(perStep < 1024, "allocated " + perStep + " bytes per step of " + n + " elements (a noise buffer is "
                + 4 * n + ")");
    }

    @Test
    void badArgumentsAreNamed() {
        Tensor x = Tensor.zeros(DType.F32, 2, 3), s = Tensor.zeros(DType.F32, 2, 3);
        for (double step : new double[] {0, -1e-3, Double.NaN, Double.POSITIVE_INFINITY}) {
            TensorException e = assertThrows(TensorException.class, () -> LangevinUpdate.apply(x, s, step, 0, 0, 0));
            assertTrue(e.getMessage().contains("step must be a positive"), e.getMessage());
        }
        TensorException shape = assertThrows(TensorException.class,
                () -> LangevinUpdate.apply(x, Tensor.zeros(DType.F32, 3, 2), 0.1, 0, 0, 0));
        assertTrue(shape.getMessage().contains("score") && shape.getMessage().contains("[3, 2]"), shape.getMessage());
        assertThrows(TensorException.class, () -> LangevinUpdate.apply(x, Tensor.zeros(DType.F64, 2, 3), 0.1, 0, 0, 0));
        TensorException off = assertThrows(TensorException.class, () -> LangevinUpdate.apply(x, s, 0.1, 0, 0, -1));
        assertTrue(off.getMessage().contains("offset"), off.getMessage());
        TensorException m = assertThrows(TensorException.class,
                () -> LangevinUpdate.applyMasked(x, s, 0.1, 0, 0, 0, Tensor.zeros(DType.F32, 6), s));
        assertTrue(m.getMessage().contains("mask"), m.getMessage());
    }
}
