package ncsn.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.SplittableRandom;
import ncsn.sample.LangevinUpdate;
import ncsn.tensor.DType;
import ncsn.tensor.Device;
import ncsn.tensor.Scope;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;
import org.junit.jupiter.api.Test;

/**
 * The fused Langevin step on the GPU (src/main/cuda/langevin.cu) against the float64 reference
 * run on the same float32 inputs, and against the CPU float32 kernel, for awkward sizes (partial
 * last Philox block, around the thread block, beyond one full grid), non-zero offsets and
 * streams; plain, masked (inpainting) and assignMasked.
 *
 * <p>Bound: 1 float ulp of the reference rounded to float32 (or 1e-14 absolute, for results that
 * cancel to nearly zero, see {@link #assertClose}). The kernel computes each element in
 * double in the reference's order and rounds once, so it equals (float) reference except where
 * CUDA's double log/sin/cos differ from Java's by a double ulp and the sum sits on a float
 * rounding boundary: then the neighbouring float, 1 ulp away. Masked elements equal known[j]
 * exactly. Skipped, with the probe's reason, without a usable GPU.
 */
@RequiresGpu
class LangevinGpuTest {
    private static final long[][] KEYS = {
            // seed, stream, offset
            {1234L, 0L, 0L},
            {0x123456789abcdefL, -7L, 12345L},
            {-1L, 0x100000001L, (1L << 32) + 3},
    };


    private static float[] random(SplittableRandom r, int n, double scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) ((2 * r.nextDouble() - 1) * scale);
        return a;
    }

    private static double[] widen(float[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) d[i] = a[i];
        return d;
    }

    private static float[] narrow(double[] d) {
        float[] a = new float[d.length];
        for (int i = 0; i < d.length; i++) a[i] = (float) d[i];
        return a;
    }

    @Test
    void plainAndMaskedMatchReference() {
        SplittableRandom rnd = new SplittableRandom(42);
        double[] steps = {3.3e-5, 0.5};
        for (long[] k : KEYS) {
            for (int n : PhiloxGpuTest.sizes()) {
                float[] x = random(rnd, n, 1.0), score = random(rnd, n, 30.0), known = random(rnd, n, 1.0);
                float[] mask = new float[n];
                for (int i = 0; i < n; i++) mask[i] = rnd.nextInt(3) == 0 ? 1f : 0f;
                for (double step : steps) {
                    // The beyond-one-grid size once only: its float64 reference is slow.
                    if (n > 200_000 && (k != KEYS[0] || step != steps[0])) continue;
                    for (boolean masked : new boolean[] {false, true}) {
                        String what = (masked ? "masked" : "plain") + " n=" + n + " step=" + step + " key " + java.util.Arrays.toString(k);
                        try (Scope s = Scope.open()) {
                            // float64 reference on the float32 inputs
                            Tensor xr = Tensor.wrap(widen(x), n);
                            if (masked) LangevinUpdate.applyMasked(xr, Tensor.wrap(widen(score), n), step, k[0], k[1], k[2],
                                    Tensor.wrap(widen(mask), n), Tensor.wrap(widen(known), n));
                            else LangevinUpdate.apply(xr, Tensor.wrap(widen(score), n), step, k[0], k[1], k[2]);
                            float[] want = narrow(xr.f64());
                            // CPU float32 kernel
                            Tensor xc = Tensor.wrap(x.clone(), n);
                            if (masked) LangevinUpdate.applyMasked(xc, Tensor.wrap(score, n), step, k[0], k[1], k[2],
                                    Tensor.wrap(mask, n), Tensor.wrap(known, n));
                            else LangevinUpdate.apply(xc, Tensor.wrap(score, n), step, k[0], k[1], k[2]);
                            // GPU
                            Tensor xg = Tensor.wrap(x, n).to(Device.CUDA);
                            Tensor sg = Tensor.wrap(score, n).to(Device.CUDA);
                            if (masked) LangevinUpdate.applyMasked(xg, sg, step, k[0], k[1], k[2],
                                    Tensor.wrap(mask, n).to(Device.CUDA), Tensor.wrap(known, n).to(Device.CUDA));
                            else LangevinUpdate.apply(xg, sg, step, k[0], k[1], k[2]);
                            float[] got = PhiloxGpuTest.host(xg);
                            assertClose(want, got, what + " vs float64 reference");
                            assertClose(xc.f32(), got, what + " vs CPU float32");
                            if (masked) {
                                for (int i = 0; i < n; i++)
                                    if (mask[i] != 0 && Float.floatToRawIntBits(got[i]) != Float.floatToRawIntBits(known[i]))
                                        throw new AssertionError(what + ": masked element " + i + " is " + got[i] + ", not known " + known[i]);
                            }
                        }
                    }
                }
            }
        }
    }

    /**
     * Within 1 float ulp, or 1e-14 absolute: a double-ulp difference in z (|noise z| < 10 here) is
     * below 2e-15, which can exceed 1 ulp only of a result that nearly cancels to zero.
     */
    private static void assertClose(float[] want, float[] got, String what) {
        float[] adjusted = got.clone();
        for (int i = 0; i < want.length; i++)
            if (Math.abs((double) got[i] - want[i]) <= 1e-14) adjusted[i] = want[i];
        PhiloxGpuTest.assertUlps(want, got, Long.MAX_VALUE, what + " (report only)");
        PhiloxGpuTest.assertUlps(want, adjusted, 1, what);
    }

    @Test
    void assignMaskedCopiesKnownValuesOnly() {
        SplittableRandom rnd = new SplittableRandom(7);
        for (int n : PhiloxGpuTest.sizes()) {
            float[] x = random(rnd, n, 1.0), known = random(rnd, n, 1.0), mask = new float[n];
            for (int i = 0; i < n; i++) mask[i] = rnd.nextBoolean() ? 1f : 0f;
            try (Scope s = Scope.open()) {
                Tensor xc = Tensor.wrap(x.clone(), n);
                LangevinUpdate.assignMasked(xc, Tensor.wrap(mask, n), Tensor.wrap(known, n));
                Tensor xg = Tensor.wrap(x, n).to(Device.CUDA);
                LangevinUpdate.assignMasked(xg, Tensor.wrap(mask, n).to(Device.CUDA), Tensor.wrap(known, n).to(Device.CUDA));
                PhiloxGpuTest.assertUlps(xc.f32(), PhiloxGpuTest.host(xg), 0, "assignMasked n=" + n);
            }
        }
    }

    @Test
    void mixedDevicesAreRejected() {
        try (Scope s = Scope.open()) {
            Tensor x = Tensor.zeros(Device.CUDA, DType.F32, 2, 3);
            Tensor score = Tensor.zeros(DType.F32, 2, 3);
            TensorException e = assertThrows(TensorException.class, () -> LangevinUpdate.apply(x, score, 0.1, 1, 2, 3));
            assertEquals(true, e.getMessage().contains(LangevinUpdate.OP), e.getMessage());
        }
    }
}
