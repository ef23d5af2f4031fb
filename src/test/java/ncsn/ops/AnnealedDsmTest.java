package ncsn.ops;

import static ncsn.ops.ElementwiseTest.assertClose;
import static ncsn.ops.ElementwiseTest.random;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ncsn.autograd.Autograd;
import ncsn.tensor.DType;
import ncsn.tensor.Scope;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;
import org.junit.jupiter.api.Test;

/** Noise levels, perturbation and the annealed DSM loss against hand-written forms of spec section 2. */
class AnnealedDsmTest {
    /**
     * float32 bits of the reference code's {@code torch.tensor(np.exp(np.linspace(np.log(b),
     * np.log(e), 10))).float()} (numpy + torch 1.13): MNIST/CIFAR levels 1 -> 0.01 and the toy 20 -> 1.
     */
    private static final int[] SIGMAS_1_001 = {0x3f800000, 0x3f1977cd, 0x3eb800d6, 0x3e5c9d36, 0x3e044133,
        0x3d9e91b7, 0x3d3e1e96, 0x3ce3f280, 0x3c88a69b, 0x3c23d70a};
    private static final int[] SIGMAS_20_1 = {0x41a00000, 0x41656616, 0x4124730a, 0x40ebc72c, 0x40a905c0,
        0x407255ac, 0x402db905, 0x3ff912d9, 0x3fb28dbf, 0x3f800000};

    @Test
    void sigmasAreTheReferenceGeometricLevels() {
        double[] s = AnnealedDsm.sigmas(1, 0.01, 10);
        assertEquals(10, s.length);
        assertEquals(1.0, s[0], 0.0);
        assertEquals(0.01f, (float) s[9], 0.0f);
        double ratio = Math.pow(0.01, 1.0 / 9);
        for (int i = 0; i < 10; i++) {
            assertEquals(s[i], (float) s[i], 0.0, "level " + i + " is float32-representable");
            if (i > 0) assertEquals(ratio, s[i] / s[i - 1], 2e-7, "ratio at level " + i);
            assertEquals(Float.intBitsToFloat(SIGMAS_1_001[i]), (float) s[i], 0.0f, "level " + i + " vs numpy");
        }
        double[] toy = AnnealedDsm.sigmas(20, 1, 10);
        for (int i = 0; i < 10; i++) assertEquals(Float.intBitsToFloat(SIGMAS_20_1[i]), (float) toy[i], 0.0f, "toy level " + i);
        assertArrayEquals(new double[] {3.0}, AnnealedDsm.sigmas(3, 0.5, 1), 0.0);
    }

    @Test
    void perturbAddsEachSamplesSigmaTimesNoise() {
        double[] sig = {1, 0.5, 0.25};
        for (DType dt : DType.values()) {
            Tensor x = Tensor.wrap(new double[] {1, 2, 3, 4}, 2, 2).to(dt).requiresGrad(true);
            Tensor z = Tensor.wrap(new double[] {1, -1, 2, 0.5}, 2, 2).to(dt);
            try (Scope s = Scope.open()) {
                Tensor xt = AnnealedDsm.perturb(x, z, new int[] {0, 2}, sig);
                assertArrayEquals(new double[] {2, 1, 3.5, 4.125}, xt.toDoubleArray(), 0.0, dt.toString());
                Autograd.backward(xt, Tensor.wrap(new double[] {1, 2, 3, 4}, 2, 2).to(dt));
            }
            assertArrayEquals(new double[] {1, 2, 3, 4}, x.grad().toDoubleArray(), 0.0, "identity gradient");
            assertNull(z.grad(), "noise is not differentiated");
        }
    }

    /**
     * The loss written as the reference code writes it: target = -(x~ - x) / s^2 from the
     * perturbed samples, per-sample 0.5 * sum (score - target)^2 * s^2, mean over the batch.
     */
    @Test
    void lossMatchesTheReferenceFormulation() {
        double[] sig = AnnealedDsm.sigmas(1, 0.01, 10);
        int[] labels = {3, 0, 3, 9};
        int n = 4, d = 2 * 3 * 5;
        Tensor x = random(1, n, 2, 3, 5), z = random(2, n, 2, 3, 5), score = random(3, n, 2, 3, 5);
        double[] xs = x.f64(), zs = z.f64(), sc = score.f64();
        double want = 0;
        for (int i = 0; i < n; i++) {
            double s = sig[labels[i]], term = 0;
            for (int j = 0; j < d; j++) {
                double perturbed = xs[i * d + j] + s * zs[i * d + j];
                double target = -1 / (s * s) * (perturbed - xs[i * d + j]);
                term += (sc[i * d + j] - target) * (sc[i * d + j] - target);
            }
            want += 0.5 * term * s * s / n;
        }
        for (DType dt : DType.values()) {
            Tensor l = AnnealedDsm.loss(score.to(dt), z.to(dt), labels, sig, 2.0);
            assertArrayEquals(new int[] {1}, l.shape());
            assertEquals(want, l.item(), 1e-7 * want, dt.toString());
            double[] per = AnnealedDsm.perSampleLoss(score.to(dt), z.to(dt), labels, sig, 2.0);
            double sum = 0;
            for (double v : per) sum += v;
            assertEquals(want * n, sum, 1e-7 * want * n, "per-sample terms sum to N * loss");
        }
    }

    @Test
    void gradientIsScoreMinusTargetWeightedOverN() {
        // N = 2, one value each: score (1, -2), z (0.5, 1), sigmas (0.5, 2), power 2.
        // target = -z/s = (-1, -0.5); loss = (0.5*4*0.25 + 0.5*2.25*4) / 2 = 2.5;
        // grad = (score - target) * s^2 / 2 = (2*0.25/2, -1.5*4/2) = (0.25, -3).
        double[] sig = {0.5, 2};
        for (DType dt : DType.values()) {
            Tensor score = Tensor.wrap(new double[] {1, -2}, 2, 1).to(dt).requiresGrad(true);
            Tensor z = Tensor.wrap(new double[] {0.5, 1}, 2, 1).to(dt);
            try (Scope s = Scope.open()) {
                Tensor l = AnnealedDsm.loss(score, z, new int[] {0, 1}, sig, 2.0);
                assertEquals(2.5, l.item(), 0.0);
                Autograd.backward(l);
            }
            assertArrayEquals(new double[] {0.25, -3}, score.grad().toDoubleArray(), 0.0, dt.toString());
        }
    }

    @Test
    void theOptimalScoreHasZeroLoss() {
        double[] sig = AnnealedDsm.sigmas(1, 0.01, 10);
        int[] labels = {9, 1, 5};
        Tensor z = random(4, 3, 7);
        Tensor score = Tensor.zeros(DType.F64, 3, 7);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 7; j++) score.f64()[i * 7 + j] = -z.f64()[i * 7 + j] / sig[labels[i]];
        assertEquals(0.0, AnnealedDsm.loss(score, z, labels, sig, 2.0).item(), 1e-25);
    }

    /** A batch large enough for the parallel float32 kernels (128 CIFAR-sized images), against float64. */
    @Test
    void float32MatchesReferenceOnATrainingSizedBatch() {
        double[] sig = AnnealedDsm.sigmas(1, 0.01, 10);
        int n = 128;
        int[] labels = new int[n];
        for (int i = 0; i < n; i++) labels[i] = (i * 7) % 10;
        Tensor x64 = random(5, n, 3, 32, 32), z64 = random(6, n, 3, 32, 32);
        Tensor x32 = x64.to(DType.F32), z32 = z64.to(DType.F32);
        Tensor p64 = AnnealedDsm.perturb(x64, z64, labels, sig), p32 = AnnealedDsm.perturb(x32, z32, labels, sig);
        assertClose("perturb", p64.toDoubleArray(), p32.toDoubleArray(), 1e-7);
        // Score = the optimum plus unit noise: the realistic regime (|score| up to ~400 at s = 0.01).
        Tensor s64 = random(7, n, 3, 32, 32);
        double[] sd = s64.f64(), zd = z64.f64();
        int d = 3 * 32 * 32;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < d; j++) sd[i * d + j] = (float) (sd[i * d + j] - zd[i * d + j] / sig[labels[i]]);
        s64.requiresGrad(true);
        Tensor s32 = s64.to(DType.F32).requiresGrad(true);
        try (Scope s = Scope.open()) {
            Tensor l64 = AnnealedDsm.loss(s64, z64, labels, sig, 2.0), l32 = AnnealedDsm.loss(s32, z32, labels, sig, 2.0);
            assertEquals(l64.item(), l32.item(), 1e-6 * l64.item());
            Autograd.backward(l64);
            Autograd.backward(l32);
        }
        assertClose("dsm_loss grad", s64.grad().toDoubleArray(), s32.grad().toDoubleArray(), 1e-6);
    }

    @Test
    void badInputsAreReported() {
        double[] sig = {1, 0.1};
        Tensor x = Tensor.zeros(DType.F32, 2, 3);
        TensorException e = assertThrows(TensorException.class,
                () -> AnnealedDsm.perturb(x, Tensor.zeros(DType.F32, 2, 4), new int[] {0, 1}, sig));
        assertTrue(e.getMessage().startsWith("dsm_perturb:") && e.getMessage().contains("[2, 4]"), e.getMessage());
        e = assertThrows(TensorException.class, () -> AnnealedDsm.loss(x, Tensor.zeros(DType.F32, 2, 3), new int[] {0, 2}, sig, 2));
        assertTrue(e.getMessage().startsWith("dsm_loss:") && e.getMessage().contains("label 2"), e.getMessage());
        e = assertThrows(TensorException.class, () -> AnnealedDsm.loss(x, Tensor.zeros(DType.F32, 2, 3), new int[] {0}, sig, 2));
        assertTrue(e.getMessage().startsWith("dsm_loss:") && e.getMessage().contains("2 labels"), e.getMessage());
        e = assertThrows(TensorException.class, () -> AnnealedDsm.loss(x, Tensor.zeros(DType.F64, 2, 3), new int[] {0, 1}, sig, 2));
        assertTrue(e.getMessage().startsWith("dsm_loss:"), e.getMessage());
        e = assertThrows(TensorException.class, () -> AnnealedDsm.sigmas(1, 0, 10));
        assertTrue(e.getMessage().startsWith("sigmas:"), e.getMessage());
    }
}
