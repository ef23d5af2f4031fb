package ncsn.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import ncsn.rng.Philox;
import ncsn.tensor.DType;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;
import org.junit.jupiter.api.Test;

/**
 * Adam against (1) bits produced by torch 1.13.1's torch.optim.Adam, (2) the textbook form of the
 * update written independently here (bias-corrected moments m^ and v^), (3) float32 vs float64.
 */
class AdamTest {
    // ---- golden data: torch 1.13.1 (Debian build, AVX2 kernels), float32, 19 elements, 3 steps ----
    // p = torch.tensor(P0, requires_grad=True); opt = torch.optim.Adam([p], **cfg)
    // for g in (G0, G1, G2): p.grad = torch.tensor(g); opt.step()
    private static final float[] P0 = {0.00123015337f, 0.298745543f, -0.274137855f, -0.89059186f, -0.454670787f, -0.991646528f,
        0.0601436011f, 1.34021521f, -0.492206514f, -0.620474875f, 0.489842057f, 0.356887013f, 0.105414249f, -0.930468023f,
        -0.0292518232f, 0.695303202f, -1.34421456f, -0.457615763f, -1.90122271f};
    private static final float[][] G = {
        {-0.000763377699f, -0.00401073229f, -0.592784762f, -0.0448625199f, 0.466814101f, 0.0247626081f, -0.0956171826f,
            -0.000721638615f, -0.0273564886f, -0.00167730241f, 0.257609129f, -0.00979603361f, -0.0467868708f, -0.000193565298f,
            -0.00701487856f, 0.00437376695f, -0.000455155532f, -0.0392521843f, 0.00698030833f},
        {2.20734859f, 0.101510838f, -0.000360603066f, 0.000186255857f, -2.02021599f, 0.00735111255f, -0.000949039706f,
            -1.52471685f, -0.0316627473f, 0.063404046f, 0.00871623401f, -0.0150144519f, -0.00125203875f, 0.000100259582f,
            -4.79153728f, -0.0101016285f, -0.00532390736f, 0.0051304684f, 0.393639207f},
        {0.339500815f, -1.45721781f, 0.000167397549f, -0.0209866539f, -2.42614079f, -3.58847792e-5f, -0.124887027f, 0.151391655f,
            0.0824493393f, -0.354181528f, -0.000845790375f, 0.00020193636f, 0.00322473026f, -0.000139169366f, -0.00110669388f,
            3.86583877f, 0.0382463299f, -0.00518471282f, -0.000180403862f}};
    // cfg = {} (lr 1e-3, betas (0.9, 0.999), eps 1e-8)
    private static final int[] DEFAULT_P = {0x3a5725fb, 0x3e9968bb, 0xbe8b3cee, 0xbf63603b, 0xbee89cf4, 0xbf7e8147, 0x3d804cd6,
        0x3fabd607, 0xbefb18ff, 0xbf1ea2c4, 0x3ef9a84f, 0x3eb821ec, 0x3ddc5929, 0xbf6dbfc0, 0xbcdc9d87, 0x3f31af5e, 0xbfabe63a,
        0xbee93b2b, 0xbff3a7f1};
    private static final int[] DEFAULT_M = {0x3e6e217c, 0xbe0c3250, 0xbd44bc72, 0xbbbb4b53, 0xbec5f343, 0x3b2e92dc, 0xbca67442,
        0xbdfa2688, 0x3b505dac, 0xbcf48310, 0x3cb0aba4, 0xbb0b3ca2, 0xbb6a9d89, 0xb7ac92d0, 0xbedd2441, 0x3ec5a598, 0x3b58d554,
        0xbb5415b1, 0x3d135a69};
    private static final int[] DEFAULT_V = {0x3ba34690, 0x3b0bd71f, 0x39b7dd04, 0x36245b2a, 0x3c26cd80, 0x3532c38b, 0x37cf622e,
        0x3b19b48f, 0x370f6217, 0x3907c092, 0x388b0dfd, 0x34ac5898, 0x3613694f, 0x2e92e690, 0x3cbbe41d, 0x3c74db2a, 0x35c828d3,
        0x35d58488, 0x39225e09};
    // cfg = {amsgrad: True, weight_decay: 0.01, lr: 0.01, betas: (0.8, 0.99), eps: 1e-6}
    private static final int[] AMS_WD_P = {0xbb58c912, 0x3e9d7e30, 0xbe81aa26, 0xbf5d6f17, 0xbee674f1, 0xbf80b075, 0x3dadbb10,
        0x3fabe21f, 0xbef2d90a, 0xbf1c77ac, 0x3eefbee2, 0x3ec35ae4, 0x3e008f4b, 0xbf668829, 0xbbbc54a6, 0x3f2ca222, 0xbfa98654,
        0xbedf0232, 0xbff3b62b};
    private static final int[] AMS_WD_M = {0x3ed78de7, 0xbe8c68c8, 0xbd9e15b6, 0xbc68bc73, 0xbf403e72, 0xba0f313d, 0xbd17a8c2,
        0xbe54390f, 0x3bb6b98f, 0xbd82e458, 0x3d15ab7d, 0xbaee580b, 0xbba3388d, 0xbb94277b, 0xbf44923b, 0x3f468497, 0x3976f23f,
        0xbbf34f29, 0x3d5f91d5};
    private static final int[] AMS_WD_V = {0x3d4a51c4, 0x3cae2019, 0x3b63cf0c, 0x381ef933, 0x3dd06c6f, 0x365a273a, 0x397e5496,
        0x3cbb8068, 0x38afc102, 0x3aae8b84, 0x3a319012, 0x35f333f3, 0x37ad9c56, 0x362bc19b, 0x3e68c446, 0x3e199340, 0x37428681,
        0x37a5b292, 0x3ab6e0f9};
    private static final int[] AMS_WD_VMAX = {0x3d4a51c4, 0x3cae2019, 0x3b686ca2, 0x381ef933, 0x3dd06c6f, 0x365a273a, 0x397e5496,
        0x3cbb8068, 0x38afc102, 0x3aae8b84, 0x3a34a4de, 0x35f333f3, 0x37af723f, 0x362bc19b, 0x3e6b1e2c, 0x3e199340, 0x37428681,
        0x37a5b292, 0x3ab83d54};

    private static void assertBits(String what, int[] want, float[] got) {
        for (int i = 0; i < want.length; i++) {
            if (Float.floatToRawIntBits(got[i]) != want[i])
                throw new AssertionError(String.format("%s[%d]: got %.9g (0x%08x), torch %.9g (0x%08x)", what, i, got[i],
                        Float.floatToRawIntBits(got[i]), Float.intBitsToFloat(want[i]), want[i]));
        }
    }

    private static Adam goldenRun(double lr, double b1, double b2, double eps, double wd, boolean ams, Tensor p) {
        Adam opt = new Adam(List.of(p), lr, b1, b2, eps, wd, ams);
        for (float[] g : G) {
            p.setGrad(Tensor.wrap(g.clone(), g.length));
            opt.step();
        }
        return opt;
    }

    @Test
    void float32MatchesTorchBitForBit() {
        Tensor p = Tensor.wrap(P0.clone(), P0.length).requiresGrad(true);
        Adam opt = goldenRun(1e-3, 0.9, 0.999, 1e-8, 0, false, p);
        assertBits("p", DEFAULT_P, p.f32());
        assertBits("exp_avg", DEFAULT_M, opt.state(0).expAvg().f32());
        assertBits("exp_avg_sq", DEFAULT_V, opt.state(0).expAvgSq().f32());
        assertEquals(3, opt.state(0).step());
        assertNull(opt.state(0).maxExpAvgSq());
    }

    @Test
    void float32AmsgradWithWeightDecayMatchesTorchBitForBit() {
        Tensor p = Tensor.wrap(P0.clone(), P0.length).requiresGrad(true);
        Adam opt = goldenRun(0.01, 0.8, 0.99, 1e-6, 0.01, true, p);
        assertBits("p", AMS_WD_P, p.f32());
        assertBits("exp_avg", AMS_WD_M, opt.state(0).expAvg().f32());
        assertBits("exp_avg_sq", AMS_WD_V, opt.state(0).expAvgSq().f32());
        assertBits("max_exp_avg_sq", AMS_WD_VMAX, opt.state(0).maxExpAvgSq().f32());
    }

    // ---- textbook form, float64 -----------------------------------------------------------------

    /**
     * Kingma & Ba's algorithm as usually written: m^ = m / (1 - b1^t), v^ = v / (1 - b2^t),
     * p -= lr * m^ / (sqrt(v^) + eps), with L2 decay folded into g and AMSGrad's max on v.
     * Returns the parameter trajectory for the given gradient sequence (gradient taken at p).
     */
    private static double[] textbook(double[] p0, double[][] grads, double lr, double b1, double b2, double eps, double wd,
                                     boolean ams) {
        int n = p0.length;
        double[] p = p0.clone(), m = new double[n], v = new double[n], vmax = new double[n];
        for (int t = 1; t <= grads.length; t++) {
            for (int i = 0; i < n; i++) {
                double g = grads[t - 1][i] + wd * p[i];
                m[i] = b1 * m[i] + (1 - b1) * g;
                v[i] = b2 * v[i] + (1 - b2) * g * g;
                vmax[i] = Math.max(vmax[i], v[i]);
                double mHat = m[i] / (1 - Math.pow(b1, t));
                double vHat = (ams ? vmax[i] : v[i]) / (1 - Math.pow(b2, t));
                p[i] -= lr * mHat / (Math.sqrt(vHat) + eps);
            }
        }
        return p;
    }

    private static double[] runF64(double[] p0, double[][] grads, double lr, double b1, double b2, double eps, double wd,
                                   boolean ams) {
        Tensor p = Tensor.wrap(p0.clone(), p0.length).requiresGrad(true);
        Adam opt = new Adam(List.of(p), lr, b1, b2, eps, wd, ams);
        for (double[] g : grads) {
            p.setGrad(Tensor.wrap(g.clone(), g.length));
            opt.step();
        }
        return p.toDoubleArray();
    }

    // A gradient sequence whose second moment shrinks at step 3, so AMSGrad's max matters.
    private static final double[] Q0 = {0.5, -1.25, 2.0};
    private static final double[][] QG = {{0.1, -2.0, 0.0}, {0.3, 1.0, 1e-3}, {-0.01, 0.5, -4.0}, {0.02, -0.1, 0.25}};

    @Test
    void float64MatchesTheTextbookUpdate() {
        // First step by hand: m^ = g, v^ = g^2, so p moves by lr * g / (|g| + eps) = 1e-3 * sign(g) (nearly).
        double[] one = runF64(Q0, new double[][] {QG[0]}, 1e-3, 0.9, 0.999, 1e-8, 0, false);
        assertEquals(0.5 - 1e-3 * 0.1 / (0.1 + 1e-8), one[0], 1e-15);
        assertEquals(-1.25 + 1e-3 * 2.0 / (2.0 + 1e-8), one[1], 1e-15);
        assertEquals(2.0, one[2], 0.0); // g = 0: m = 0, no move
        assertArrayEquals(textbook(Q0, QG, 1e-3, 0.9, 0.999, 1e-8, 0, false),
                runF64(Q0, QG, 1e-3, 0.9, 0.999, 1e-8, 0, false), 1e-14);
    }

    @Test
    void weightDecayAddsAnL2Gradient() {
        double[] want = textbook(Q0, QG, 0.05, 0.9, 0.999, 1e-8, 0.1, false);
        assertArrayEquals(want, runF64(Q0, QG, 0.05, 0.9, 0.999, 1e-8, 0.1, false), 1e-14);
        // With decay and zero gradient the parameter shrinks toward 0.
        double[] decayed = runF64(new double[] {1.0}, new double[][] {{0}, {0}}, 0.05, 0.9, 0.999, 1e-8, 0.1, false);
        assertTrue(decayed[0] < 1.0 - 0.09, "decayed to " + decayed[0]);
    }

    @Test
    void amsgradUsesTheRunningMaximum() {
        double[] want = textbook(Q0, QG, 0.05, 0.5, 0.9, 1e-8, 0, true);
        double[] got = runF64(Q0, QG, 0.05, 0.5, 0.9, 1e-8, 0, true);
        assertArrayEquals(want, got, 1e-14);
        double[] plain = textbook(Q0, QG, 0.05, 0.5, 0.9, 1e-8, 0, false);
        assertTrue(Math.abs(plain[2] - got[2]) > 1e-4, "amsgrad changes the trajectory of element 2");
    }

    // ---- float32 vs float64 ---------------------------------------------------------------------

    /** Several tensors (one spanning several chunks), 20 steps of float32-representable gradients. */
    @Test
    void float32TracksFloat64Over20Steps() {
        int[] sizes = {40_000, 7, 16_385, 1};
        for (boolean ams : new boolean[] {false, true}) {
            List<Tensor> p32 = new ArrayList<>(), p64 = new ArrayList<>();
            for (int k = 0; k < sizes.length; k++) {
                double[] init = new double[sizes[k]];
                Philox.normal(100 + k, 1, 0, init, 0, init.length);
                for (int i = 0; i < init.length; i++) init[i] = (float) init[i];
                p64.add(Tensor.wrap(init, init.length).requiresGrad(true));
                p32.add(Tensor.wrap(init.clone(), init.length).to(DType.F32).requiresGrad(true));
            }
            Adam a32 = new Adam(p32, 1e-2, 0.9, 0.999, 1e-8, 1e-3, ams), a64 = new Adam(p64, 1e-2, 0.9, 0.999, 1e-8, 1e-3, ams);
            for (int step = 0; step < 20; step++) {
                for (int k = 0; k < sizes.length; k++) {
                    double[] g = new double[sizes[k]];
                    Philox.normal(7 + step, 2 + k, 0, g, 0, g.length);
                    for (int i = 0; i < g.length; i++) g[i] = (float) (g[i] * Math.exp(-(i % 13)));
                    p64.get(k).setGrad(Tensor.wrap(g, g.length));
                    p32.get(k).setGrad(Tensor.wrap(g.clone(), g.length).to(DType.F32));
                }
                a32.step();
                a64.step();
            }
            double worst = 0;
            for (int k = 0; k < sizes.length; k++) {
                double[] x = p32.get(k).toDoubleArray(), y = p64.get(k).toDoubleArray();
                for (int i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
                assertEquals(20, a32.state(k).step());
            }
            // Each step moves p by ~lr = 1e-2 with relative float32 error ~1e-7, plus p's own
            // rounding (|p| < 6, ulp 5e-7): 20 steps stay well under 1e-5.
            assertTrue(worst < 1e-5, "amsgrad=" + ams + ": worst |p32 - p64| = " + worst);
        }
    }

    // ---- bookkeeping ----------------------------------------------------------------------------

    @Test
    void parametersWithoutGradientAreSkippedAndKeepTheirOwnStep() {
        Tensor a = Tensor.wrap(new float[] {1, 2}, 2).requiresGrad(true);
        Tensor b = Tensor.wrap(new double[] {3}, 1).requiresGrad(true);
        Adam opt = new Adam(List.of(a, b));
        a.setGrad(Tensor.wrap(new float[] {1, -1}, 2));
        opt.step();
        assertArrayEquals(new double[] {3}, b.toDoubleArray(), 0.0);
        assertNull(opt.state(1), "no state before the first gradient");
        assertEquals(1, opt.state(0).step());
        b.setGrad(Tensor.wrap(new double[] {0.5}, 1));
        opt.step();
        assertEquals(2, opt.state(0).step());
        assertEquals(1, opt.state(1).step(), "b's first step uses t = 1 bias corrections");
        assertEquals(3 - 1e-3 * 0.5 / (0.5 + 1e-8), b.toDoubleArray()[0], 1e-15);
        opt.zeroGrad();
        assertArrayEquals(new double[] {0, 0}, a.grad().toDoubleArray(), 0.0);
        assertArrayEquals(new double[] {0}, b.grad().toDoubleArray(), 0.0);
    }

    /** A restored state (moments copied, step set) continues exactly like the original optimizer. */
    @Test
    void stateRoundTripsForCheckpoints() {
        Tensor p = Tensor.wrap(P0.clone(), P0.length).requiresGrad(true);
        Adam opt = goldenRun(1e-3, 0.9, 0.999, 1e-8, 0, false, p);
        Tensor q = Tensor.wrap(p.f32().clone(), P0.length).requiresGrad(true);
        Adam restored = new Adam(List.of(q));
        Adam.ParamState s = restored.initState(0);
        s.expAvg().copyFrom(opt.state(0).expAvg());
        s.expAvgSq().copyFrom(opt.state(0).expAvgSq());
        s.setStep(opt.state(0).step());
        float[] g = G[1].clone();
        p.setGrad(Tensor.wrap(g, g.length));
        q.setGrad(Tensor.wrap(g.clone(), g.length));
        opt.step();
        restored.step();
        assertArrayEquals(p.f32(), q.f32());
        assertEquals(4, restored.state(0).step());
        assertNotNull(restored.state(0).expAvg().name());
    }

    @Test
    void badArgumentsAreReported() {
        Tensor p = Tensor.wrap(new float[] {1}, 1).requiresGrad(true);
        TensorException e = assertThrows(TensorException.class, () -> new Adam(List.of(p), -1, 0.9, 0.999, 1e-8, 0, false));
        assertTrue(e.getMessage().contains("learning rate"), e.getMessage());
        e = assertThrows(TensorException.class, () -> new Adam(List.of(p), 1e-3, 1.0, 0.999, 1e-8, 0, false));
        assertTrue(e.getMessage().contains("beta"), e.getMessage());
        e = assertThrows(TensorException.class, () -> new Adam(List.of(p, p)));
        assertTrue(e.getMessage().contains("twice"), e.getMessage());
        Adam opt = new Adam(List.of(p));
        p.setGrad(Tensor.wrap(new float[] {1, 2}, 2));
        e = assertThrows(TensorException.class, opt::step);
        assertTrue(e.getMessage().startsWith("adam:") && e.getMessage().contains("[2]") && e.getMessage().contains("[1]"),
                e.getMessage());
    }
}
