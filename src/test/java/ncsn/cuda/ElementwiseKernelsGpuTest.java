package ncsn.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.function.Function;
import ncsn.autograd.Autograd;
import ncsn.ops.AnnealedDsm;
import ncsn.ops.Elementwise;
import ncsn.ops.Elu;
import ncsn.ops.Reduce;
import ncsn.ops.Softplus;
import ncsn.tensor.DType;
import ncsn.tensor.Device;
import ncsn.tensor.Scope;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;
import org.junit.jupiter.api.Test;

/**
 * GPU checks of the elementwise, reduction, softplus and DSM kernels, called through the ops
 * (forward and autograd backward) on sizes OpCatalog's small cases do not reach: empty, one
 * element, around the block size, beyond one full grid (grid-stride), reductions long enough
 * for the two-pass sum, images larger than a block. Also the caching allocator in a step loop,
 * use-after-free, and determinism. Skipped, with the probe's reason, without a usable GPU.
 *
 * <p>Tolerances, against float64 computations on the same float32 inputs:
 * <ul>
 *   <li>add, mul (same shape or broadcast): exact (one correctly rounded float op, i.e. 0.5 ulp
 *       of the float64 result); scale uses fmaf, within 1 ulp (the reference rounds twice);
 *       ELU uses expm1f (CUDA documents 1 ulp): 2 ulp plus 1e-30 absolute; its backward
 *       is one fmaf (0.5 ulp; gout * (out + 1) with out + 1 rounded first measured 1.16 ulp);</li>
 *   <li>sums (reductions and broadcast gradients): each float32 input (or rounded product g * b)
 *       is off by at most 2^-24 of itself, partial sums are rounded to float32 at most once
 *       more, accumulation is double: |err| <= 1 ulp(result) + 2^-23 * sum|terms|;</li>
 *   <li>softplus: double per element, rounded once: 1 ulp;</li>
 *   <li>DSM perturb: bit-identical to the CPU float32 kernel; the loss within 1e-6 relative of
 *       float64; its gradient within 4 ulp plus 1e-9 of the largest magnitude.</li>
 * </ul>
 */
@RequiresGpu
class ElementwiseKernelsGpuTest {
    /** Awkward sizes: empty, single, around the block size, odd, and beyond one full grid (grid-stride). */
    private static int[] sizes() {
        int fullGrid = 32 * CudaContext.get().multiprocessorCount() * CudaContext.BLOCK;
        return new int[] {0, 1, 7, 255, 256, 257, 1000, 65537, fullGrid + 3, 2 * fullGrid + 129};
    }


    private static float[] normal(int n, long seed, double scale) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (scale * (r.nextDouble() * 2 - 1) * (r.nextDouble() * 2 - 1) * 3);
        return a;
    }

    private static double[] widen(float[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) d[i] = a[i];
        return d;
    }

    private static double[] abs(double[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) d[i] = Math.abs(a[i]);
        return d;
    }

    private static Tensor cuda(float[] a, int... shape) {
        return Tensor.wrap(a, shape).to(Device.CUDA);
    }

    private static float[] host(Tensor t) {
        return t.to(Device.CPU).f32();
    }

    /** |got - want| <= ulps * ulp(float(want)) + abs, else fails printing the worst element side by side. */
    private static void assertClose(String what, float[] got, double[] want, double ulps, double abs) {
        assertClose(what, got, want, ulps, abs, null, 0);
    }

    /** As above plus {@code sumFactor * sumAbs[i]} (the rounding of the terms of a sum). */
    private static void assertClose(String what, float[] got, double[] want, double ulps, double abs,
                                    double[] sumAbs, double sumFactor) {
        assertEquals(want.length, got.length, what + ": length");
        int worst = -1;
        double worstRatio = 0;
        for (int i = 0; i < got.length; i++) {
            double tol = ulps * Math.ulp((float) want[i]) + abs + (sumAbs == null ? 0 : sumFactor * sumAbs[i]);
            double err = Math.abs(got[i] - want[i]);
            if (!(err <= tol) && (worst < 0 || err / tol > worstRatio)) {
                worst = i;
                worstRatio = err / tol;
            }
        }
        if (worst >= 0)
            fail(what + ": worst element " + worst + " of " + got.length + ": gpu " + got[worst] + " vs float64 "
                    + want[worst] + " (" + worstRatio + " x tolerance)");
    }

    /** Runs f on a CUDA leaf x and backpropagates gOut; returns {out, grad} on the host. */
    private static float[][] forwardBackward(Function<Tensor, Tensor> f, float[] x, int[] shape, float[] gOut) {
        Tensor xd = cuda(x, shape).requiresGrad(true);
        Tensor out = f.apply(xd);
        float[] outH = host(out);
        Autograd.backward(out, cuda(gOut, out.shape()));
        float[] gH = host(xd.grad());
        xd.grad().free(); // leaf gradients are persistent
        return new float[][] {outH, gH};
    }

    // ---- ELU, add, mul, scale (flat) ---------------------------------------------------------

    @Test
    void eluForwardAndBackwardMatchFloat64Reference() {
        for (int n : sizes()) {
            try (Scope s = Scope.open()) {
                float[] x = normal(n, 11 + n, 4);
                float[] g = normal(n, 97 + n, 1);
                if (n == 0) {
                    assertEquals(0, host(Elu.apply(cuda(x, n))).length);
                    continue;
                }
                float[][] r = forwardBackward(Elu::apply, x, new int[] {n}, g);
                double[] ref = Elu.apply(Tensor.wrap(widen(x), n)).f64();
                assertClose("elu_forward_f32 n=" + n, r[0], ref, 2, 1e-30);
                // backward reference from the GPU's own float32 output, as the kernel uses it
                double[] refG = new double[n];
                for (int i = 0; i < n; i++) refG[i] = g[i] * (r[0][i] > 0 ? 1.0 : r[0][i] + 1.0);
                assertClose("elu_backward_f32 n=" + n, r[1], refG, 1, 1e-30);
            }
        }
    }

    @Test
    void addMulAndScaleMatchFloat64Reference() {
        for (int n : sizes()) {
            try (Scope s = Scope.open()) {
                float[] a = normal(n, 3 + n, 100);
                float[] b = normal(n, 5 + n, 0.01);
                Tensor ad = cuda(a, n), bd = cuda(b, n);
                Tensor a64 = Tensor.wrap(widen(a), n), b64 = Tensor.wrap(widen(b), n);
                assertClose("add_f32 n=" + n, host(Elementwise.add(ad, bd)), Elementwise.add(a64, b64).f64(), 0.5, 0);
                assertClose("mul_f32 n=" + n, host(Elementwise.mul(ad, bd)), Elementwise.mul(a64, b64).f64(), 0.5, 0);
                assertClose("scale_f32 n=" + n, host(Elementwise.scale(ad, -0.37f, 1.5f)),
                        Elementwise.scale(a64, -0.37f, 1.5f).f64(), 1, 0);
                // in place: out aliases x
                Launch.kernel("scale_f32").ptr(ad).ptr(ad).f(2f).f(0f).l(n).elements(n).run();
                float[] twice = host(ad);
                for (int i = 0; i < n; i++) assertEquals(2 * a[i], twice[i], 0f, "in-place scale at " + i);
            }
        }
    }

    @Test
    void sameShapeGradientsOfMulAndScale() {
        int n = 2 * 32 * CudaContext.get().multiprocessorCount() * CudaContext.BLOCK + 129;
        try (Scope s = Scope.open()) {
            float[] a = normal(n, 1, 3), b = normal(n, 2, 3), g = normal(n, 3, 1);
            Tensor ad = cuda(a, n).requiresGrad(true), bd = cuda(b, n).requiresGrad(true);
            Autograd.backward(Elementwise.mul(ad, bd), cuda(g, n));
            double[] wantA = new double[n], wantB = new double[n];
            for (int i = 0; i < n; i++) {
                wantA[i] = (double) g[i] * b[i];
                wantB[i] = (double) g[i] * a[i];
            }
            assertClose("mul backward a", host(ad.grad()), wantA, 0.5, 0);
            assertClose("mul backward b", host(bd.grad()), wantB, 0.5, 0);
            ad.grad().free();
            bd.grad().free();
            float[][] r = forwardBackward(x -> Elementwise.scale(x, -0.37, 0.25), a, new int[] {n}, g);
            double[] wantG = new double[n];
            for (int i = 0; i < n; i++) wantG[i] = (double) -0.37f * g[i];
            assertClose("scale backward", r[1], wantG, 0.5, 0);
        }
    }

    // ---- broadcasting ------------------------------------------------------------------------

    @Test
    void broadcastForwardAndOperandGradientsMatchFloat64Reference() {
        int[] x = {5, 37, 33, 35}; // N, C, H, W: odd, C not a multiple of 8 or 32, H*W > block
        int[][] others = {{1, 37, 1, 1}, {5, 37, 1, 1}, {5, 1, 1, 1}, {37, 1, 1}, {35}, {1, 37, 33, 35}, {1, 1, 1, 1},
            {5, 1, 33, 1}};
        for (int[] bs : others) {
            for (boolean mul : new boolean[] {false, true}) {
                for (boolean swap : new boolean[] {false, true}) {
                    try (Scope s = Scope.open()) {
                        checkBroadcast(swap ? bs : x, swap ? x : bs, mul);
                    }
                }
            }
        }
        try (Scope s = Scope.open()) {
            checkBroadcast(new int[] {7, 1, 64, 1}, new int[] {1, 3, 1, 129}, true); // both broadcast
            checkBroadcast(new int[] {1, 1}, new int[] {1}, false);
            checkBroadcast(new int[] {100000, 3}, new int[] {3}, true); // many outputs, short sums (rows kernel)
            checkBroadcast(new int[] {3, 100000}, new int[] {3, 1}, false); // long sums (two-pass)
        }
    }

    private static int numel(int[] s) {
        int n = 1;
        for (int d : s) n *= d;
        return n;
    }

    private static void checkBroadcast(int[] as, int[] bs, boolean mul) {
        String what = (mul ? "mul " : "add ") + Arrays.toString(as) + " with " + Arrays.toString(bs);
        float[] a = normal(numel(as), 17, 2), b = normal(numel(bs), 19, 2);
        Tensor ad = cuda(a, as).requiresGrad(true), bd = cuda(b, bs).requiresGrad(true);
        Tensor out = mul ? Elementwise.mul(ad, bd) : Elementwise.add(ad, bd);
        float[] g = normal(out.numel(), 23, 1);
        Autograd.backward(out, cuda(g, out.shape()));

        Tensor a64 = Tensor.wrap(widen(a), as).requiresGrad(true), b64 = Tensor.wrap(widen(b), bs).requiresGrad(true);
        Tensor out64 = mul ? Elementwise.mul(a64, b64) : Elementwise.add(a64, b64);
        Autograd.backward(out64, Tensor.wrap(widen(g), out64.shape()));
        // sum|terms| of each gradient element: the same op on absolute values
        Tensor aa = Tensor.wrap(abs(widen(a)), as).requiresGrad(true), ba = Tensor.wrap(abs(widen(b)), bs).requiresGrad(true);
        Autograd.backward(mul ? Elementwise.mul(aa, ba) : Elementwise.add(aa, ba), Tensor.wrap(abs(widen(g)), out64.shape()));

        assertTrue(Arrays.equals(out.shape(), out64.shape()), what + ": shape " + out.describe());
        assertClose(what + " forward", host(out), out64.f64(), 0.5, 0);
        assertClose(what + " grad a", host(ad.grad()), a64.grad().f64(), 1, 0, aa.grad().f64(), 0x1p-23);
        assertClose(what + " grad b", host(bd.grad()), b64.grad().f64(), 1, 0, ba.grad().f64(), 0x1p-23);
        ad.grad().free();
        bd.grad().free();
    }

    // ---- reductions --------------------------------------------------------------------------

    @Test
    void reductionsMatchFloat64ReferenceAndAreDeterministic() {
        int big = 2 * 32 * CudaContext.get().multiprocessorCount() * CudaContext.BLOCK + 129;
        Object[][] cases = {
            {new int[] {1}, null}, {new int[] {257}, null}, {new int[] {big}, null}, {new int[] {5_000_011}, null},
            {new int[] {64, 37, 31, 33}, new int[] {0, 2, 3}},   // channel statistics (two-pass, strided)
            {new int[] {64, 37, 31, 33}, new int[] {1, 2, 3}},   // per image
            {new int[] {64, 37, 31, 33}, new int[] {2, 3}},      // per image and channel
            {new int[] {64, 37, 31, 33}, new int[] {0}},         // over the batch: rows kernel
            {new int[] {64, 37, 31, 33}, new int[] {0, 1}},      // inner dims kept
            {new int[] {200000, 3}, new int[] {0}},              // few outputs, long strided sums
            {new int[] {3, 200000}, new int[] {1}},
            {new int[] {2, 3, 4, 5, 6}, new int[] {0, 2, 4}},    // alternating kept and reduced dims
            {new int[] {1, 1, 1}, new int[] {1}},
        };
        for (Object[] c : cases) {
            int[] shape = (int[]) c[0], dims = (int[]) c[1];
            for (boolean mean : new boolean[] {false, true}) {
                try (Scope s = Scope.open()) {
                    checkReduce(shape, dims, mean);
                }
            }
        }
    }

    private static void checkReduce(int[] shape, int[] dims, boolean mean) {
        String what = (mean ? "mean " : "sum ") + Arrays.toString(shape) + " over " + (dims == null ? "all" : Arrays.toString(dims));
        float[] x = normal(numel(shape), 29 + numel(shape), 1);
        Function<Tensor, Tensor> f = t -> dims == null ? (mean ? Reduce.mean(t) : Reduce.sum(t))
                : (mean ? Reduce.mean(t, dims) : Reduce.sum(t, dims));
        Tensor xd = cuda(x, shape).requiresGrad(true);
        Tensor out = f.apply(xd);
        float[] outH = host(out);
        float[] again = host(f.apply(cuda(x, shape)));
        assertArrayEquals(outH, again, what + ": two runs differ (not deterministic)");
        float[] g = normal(out.numel(), 31, 1);
        Autograd.backward(out, cuda(g, out.shape()));

        Tensor x64 = Tensor.wrap(widen(x), shape).requiresGrad(true);
        Tensor out64 = f.apply(x64);
        Autograd.backward(out64, Tensor.wrap(widen(g), out64.shape()));
        double[] sumAbs = f.apply(Tensor.wrap(abs(widen(x)), shape)).f64();
        assertTrue(Arrays.equals(out.shape(), out64.shape()), what + ": shape " + out.describe());
        assertClose(what + " forward", outH, out64.f64(), 1, 0, sumAbs, 0x1p-23);
        // backward: g (sum: exact) or float(1/count) * g (mean: two roundings)
        assertClose(what + " backward", host(xd.grad()), x64.grad().f64(), mean ? 2 : 0.5, 0);
        xd.grad().free();
    }

    // ---- softplus ----------------------------------------------------------------------------

    @Test
    void softplusMatchesFloat64Reference() {
        for (int n : sizes()) {
            if (n == 0) continue;
            try (Scope s = Scope.open()) {
                float[] x = normal(n, 41 + n, 10); // |x| up to 30: both tails and the threshold
                float[] g = normal(n, 43 + n, 1);
                float[][] r = forwardBackward(Softplus::apply, x, new int[] {n}, g);
                Tensor x64 = Tensor.wrap(widen(x), n).requiresGrad(true);
                Tensor out64 = Softplus.apply(x64);
                Autograd.backward(out64, Tensor.wrap(widen(g), n));
                assertClose("softplus forward n=" + n, r[0], out64.f64(), 1, 1e-37);
                assertClose("softplus backward n=" + n, r[1], x64.grad().f64(), 1, 1e-37);
            }
        }
    }

    // ---- annealed DSM ------------------------------------------------------------------------

    @Test
    void dsmPerturbLossAndGradientMatchReferences() {
        double[] sig = AnnealedDsm.sigmas(1.0, 0.01, 10);
        Object[][] cases = {
            {new int[] {1, 3, 32, 32}, new int[] {9}},
            {new int[] {5, 1, 28, 28}, new int[] {0, 9, 3, 9, 5}},
            {new int[] {4, 7}, new int[] {1, 2, 3, 9}},                 // D smaller than a warp
            {new int[] {3, 1000}, new int[] {8, 0, 9}},                 // D not a multiple of 32
            {new int[] {128, 3, 32, 32}, null},                         // a training batch
        };
        for (Object[] c : cases) {
            int[] shape = (int[]) c[0];
            int n = shape[0], numel = numel(shape), d = numel / n;
            int[] labels = c[1] != null ? (int[]) c[1] : new int[n];
            if (c[1] == null) for (int i = 0; i < n; i++) labels[i] = (i * 7) % sig.length;
            String what = Arrays.toString(shape) + " labels " + Arrays.toString(labels).substring(0, Math.min(40, Arrays.toString(labels).length()));
            try (Scope s = Scope.open()) {
                float[] x = normal(numel, 51, 0.3), z = normal(numel, 53, 1);
                // perturb: bit-identical to the CPU float32 kernel (multiply, then add)
                Tensor pert = AnnealedDsm.perturb(cuda(x, shape), cuda(z, shape), labels, sig);
                float[] cpu = AnnealedDsm.perturb(Tensor.wrap(x.clone(), shape), Tensor.wrap(z.clone(), shape), labels, sig).f32();
                assertArrayEquals(cpu, host(pert), what + ": dsm_perturb differs from the CPU kernel");

                // scores near the optimum -z/s (large) plus O(1): the hard case for float32
                float[] score = normal(numel, 55, 1);
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < d; j++) score[i * d + j] += (float) (-z[i * d + j] / sig[labels[i]]);
                for (double power : new double[] {2.0, 1.0}) {
                    Tensor sd = cuda(score, shape).requiresGrad(true);
                    Tensor loss = AnnealedDsm.loss(sd, cuda(z, shape), labels, sig, power);
                    assertEquals(Device.CUDA, loss.device());
                    float lossH = host(loss)[0];
                    Autograd.backward(loss, cuda(new float[] {0.75f}, 1));

                    Tensor s64 = Tensor.wrap(widen(score), shape).requiresGrad(true);
                    Tensor loss64 = AnnealedDsm.loss(s64, Tensor.wrap(widen(z), shape), labels, sig, power);
                    Autograd.backward(loss64, Tensor.wrap(new double[] {0.75}, 1));
                    double want = loss64.item();
                    assertEquals(want, lossH, 1e-6 * Math.abs(want), what + " power " + power + ": loss");
                    try (Autograd.NoGrad ng = Autograd.noGrad()) { // the path that frees its parameters at once
                        assertEquals(lossH, AnnealedDsm.loss(sd, cuda(z, shape), labels, sig, power).item(), 0.0,
                                what + ": loss without gradient differs");
                    }
                    double[] gw = s64.grad().f64();
                    double maxAbs = 0;
                    for (double v : gw) maxAbs = Math.max(maxAbs, Math.abs(v));
                    assertClose(what + " power " + power + ": d loss / d score", host(sd.grad()), gw, 4, 1e-9 * maxAbs);
                    sd.grad().free();

                    double[] per = AnnealedDsm.perSampleLoss(cuda(score, shape), cuda(z, shape), labels, sig, power);
                    double[] per64 = AnnealedDsm.perSampleLoss(Tensor.wrap(widen(score), shape), Tensor.wrap(widen(z), shape),
                            labels, sig, power);
                    for (int i = 0; i < n; i++)
                        assertEquals(per64[i], per[i], 1e-6 * Math.abs(per64[i]), what + ": per-sample loss " + i);
                }
            }
        }
    }

    @Test
    void dsmRejectsMixedDevicesAndBadLabels() {
        try (Scope s = Scope.open()) {
            Tensor x = cuda(new float[6], 2, 3);
            TensorException e = assertThrows(TensorException.class,
                    () -> AnnealedDsm.loss(x, Tensor.wrap(new float[6], 2, 3), new int[] {0, 1}, new double[] {1, 0.1}, 2));
            assertTrue(e.getMessage().contains("dsm_loss") && e.getMessage().contains("devices differ"), e.getMessage());
            e = assertThrows(TensorException.class,
                    () -> AnnealedDsm.perturb(x, x, new int[] {0, 2}, new double[] {1, 0.1}));
            assertTrue(e.getMessage().contains("dsm_perturb") && e.getMessage().contains("label 2"), e.getMessage());
        }
    }

    // ---- memory ------------------------------------------------------------------------------

    @Test
    void roundTripIsExact() {
        try (Scope s = Scope.open()) {
            float[] x = normal(1001, 1, 1e3);
            x[0] = Float.NaN;
            x[1] = Float.NEGATIVE_INFINITY;
            x[2] = -0f;
            Tensor back = CudaTensors.toHost(CudaTensors.toDevice(Tensor.wrap(x, 7, 11, 13)));
            assertTrue(back.hasShape(7, 11, 13));
            assertTrue(java.util.Arrays.equals(x, back.f32()), "host -> device -> host changed the bits");
            Tensor f64 = CudaTensors.toHost(CudaTensors.toDevice(Tensor.wrap(new double[] {0.1, -2.5}, 2)));
            assertEquals(DType.F32, f64.dtype());
            assertEquals(0.1f, f64.f32()[0], 0f);
        }
    }

    @Test
    void secondStepDoesNoCuMemAlloc() {
        DeviceAllocator alloc = CudaContext.get().allocator();
        long afterFirst = 0;
        int[] shape = {128, 3, 28, 28};
        for (int step = 0; step < 3; step++) {
            try (Scope s = Scope.open()) {
                Tensor x = cuda(normal(numel(shape), step, 1), shape).requiresGrad(true);
                Tensor b = cuda(normal(3, step, 1), 1, 3, 1, 1).requiresGrad(true);
                Tensor h = Elu.apply(Elementwise.add(Elementwise.scale(x, 0.5, 0.1), b));
                Tensor loss = Reduce.mean(Softplus.apply(Elementwise.mul(h, h)));
                Autograd.backward(loss);
                host(loss);
                assertTrue(s.ownedCount() >= 5, "CUDA temporaries are not scope-owned: " + s.ownedCount());
                x.grad().free();
                b.grad().free();
            }
            if (step == 0) afterFirst = alloc.rawAllocs();
            else assertEquals(afterFirst, alloc.rawAllocs(), "step " + step + " called cuMemAlloc: " + alloc.stats());
        }
        assertTrue(alloc.bytesCached() >= 4L * 128 * 3 * 28 * 28 * 4, alloc.stats());
    }

    @Test
    void useAfterFreeIsAClearError() {
        Tensor kept;
        try (Scope s = Scope.open()) {
            kept = CudaTensors.toDevice(Tensor.wrap(new float[] {1, 2, 3}, 3));
        }
        TensorException e = assertThrows(TensorException.class, () -> CudaTensors.toHost(kept));
        assertTrue(e.getMessage().contains("toHost") && e.getMessage().contains("freed"), e.getMessage());
        e = assertThrows(TensorException.class, () -> Elu.apply(kept));
        assertTrue(e.getMessage().contains("elu") && e.getMessage().contains("freed"), e.getMessage());
        e = assertThrows(TensorException.class, () -> Reduce.sum(kept));
        assertTrue(e.getMessage().contains("sum") && e.getMessage().contains("freed"), e.getMessage());
        kept.free(); // idempotent: does not release the block twice
    }

    /** Event-timed bandwidth of each kernel family on 2^24 floats (bytes per element as in the .cu headers). */
    @Test
    void eventTimerMeasuresKernelTime() {
        CudaContext ctx = CudaContext.get();
        int n = 1 << 24;
        try (Scope s = Scope.open()) {
            Tensor x = CudaTensors.empty(n);
            Launch.kernel("scale_f32").ptr(x).ptr(x).f(0f).f(1f).l(n).elements(n).run(); // warm-up and initialise
            float ms;
            try (CudaContext.EventTimer t = ctx.startTimer()) {
                for (int i = 0; i < 10; i++) Launch.kernel("scale_f32").ptr(x).ptr(x).f(1f).f(1f).l(n).elements(n).run();
                ms = t.stopMillis();
            }
            assertTrue(ms > 0 && ms < 10_000, "event time " + ms + " ms");
            float[] h = CudaTensors.toHost(x).f32();
            assertEquals(11f, h[h.length - 1], 0f);
            report("scale_f32 (in place)", ms / 10, 8.0 * n);

            Tensor a = cuda(normal(n, 1, 1), 128, 128, 32, 32), c = cuda(normal(128, 2, 1), 1, 128, 1, 1);
            report("add_f32", time(() -> Elementwise.add(a, a)), 12.0 * n);
            report("broadcast_f32 [N,C,H,W]+[1,C,1,1]", time(() -> Elementwise.add(a, c)), 8.0 * n);
            report("reduce sum all (two-pass)", time(() -> Reduce.sum(a)), 4.0 * n);
            report("reduce sum dims 0,2,3", time(() -> Reduce.sum(a, 0, 2, 3)), 4.0 * n);
            report("reduce sum dim 0 (rows)", time(() -> Reduce.sum(a, 0)), 4.0 * n);
            report("softplus_forward_f32", time(() -> Softplus.apply(a)), 8.0 * n);
            int[] labels = new int[128];
            report("dsm_perturb_f32", time(() -> AnnealedDsm.perturb(a, a, labels, new double[] {0.5})), 12.0 * n);
        }
    }

    /** Mean milliseconds of 10 runs after one warm-up (temporaries freed by a scope per run). */
    private static float time(Runnable r) {
        CudaContext ctx = CudaContext.get();
        try (Scope s = Scope.open()) {
            r.run();
        }
        try (CudaContext.EventTimer t = ctx.startTimer()) {
            for (int i = 0; i < 10; i++)
                try (Scope s = Scope.open()) {
                    r.run();
                }
            return t.stopMillis() / 10;
        }
    }

    private static void report(String what, float ms, double bytes) {
        System.err.printf("[ncsn] %-36s %8.3f ms  %6.0f GB/s%n", what, ms, bytes / (ms * 1e-3) / 1e9);
    }
}
