package ncsn.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.SplittableRandom;
import ncsn.ops.Elementwise;
import ncsn.ops.Elu;
import ncsn.tensor.DType;
import ncsn.tensor.Scope;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * GPU checks of the elementwise kernels against the float64 reference ops, the caching
 * allocator in a step loop, and use-after-free. Skipped, with the probe's reason, on machines
 * without a usable GPU.
 *
 * <p>Tolerances: add is exact (float32 a + b is correctly rounded, so it equals the float64 sum
 * rounded to float32); scale uses fmaf (one rounding), within 1 ulp of the float64 value rounded
 * to float32 (the reference rounds twice); ELU uses expm1f (CUDA documents 1 ulp), so 2 ulp of
 * the float64 result plus 1e-30 absolute.
 */
class ElementwiseKernelsGpuTest {
    /** Awkward sizes: empty, single, around the block size, odd, and beyond one full grid (grid-stride). */
    private static int[] sizes() {
        int fullGrid = 32 * CudaContext.get().multiprocessorCount() * CudaContext.BLOCK;
        return new int[] {0, 1, 7, 255, 256, 257, 1000, 65537, fullGrid + 3, 2 * fullGrid + 129};
    }

    @BeforeAll
    static void requireGpu() {
        if (!CudaProbe.available())
            System.err.println("[ncsn] ElementwiseKernelsGpuTest skipped: no usable GPU: " + CudaProbe.reason());
        Assumptions.assumeTrue(CudaProbe.available(), "no usable GPU: " + CudaProbe.reason());
        Assumptions.assumeTrue(CudaProbe.fatbinPresent(), "kernel fatbin not built (no nvcc at build time)");
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

    /** |got - want| <= ulps * ulp(float(want)) + abs, else fails printing the worst element side by side. */
    private static void assertClose(String what, float[] got, double[] want, double ulps, double abs) {
        assertEquals(want.length, got.length, what + ": length");
        int worst = -1;
        double worstRatio = 0;
        for (int i = 0; i < got.length; i++) {
            double tol = ulps * Math.ulp((float) want[i]) + abs;
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

    @Test
    void eluForwardAndBackwardMatchFloat64Reference() {
        for (int n : sizes()) {
            try (Scope s = Scope.open()) {
                float[] x = normal(n, 11 + n, 4);
                float[] g = normal(n, 97 + n, 1);
                Tensor xd = CudaTensors.toDevice(Tensor.wrap(x, n));
                Tensor out = ElementwiseKernels.eluForward(xd);
                Tensor gin = ElementwiseKernels.eluBackward(CudaTensors.toDevice(Tensor.wrap(g, n)), out);
                float[] outH = CudaTensors.toHost(out).f32();
                float[] ginH = CudaTensors.toHost(gin).f32();

                double[] ref = Elu.apply(Tensor.wrap(widen(x), n)).f64();
                assertClose("elu_forward_f32 n=" + n, outH, ref, 2, 1e-30);
                // backward reference from the GPU's own float32 output, as the kernel uses it
                double[] refG = new double[n];
                for (int i = 0; i < n; i++) refG[i] = g[i] * (outH[i] > 0 ? 1.0 : outH[i] + 1.0);
                assertClose("elu_backward_f32 n=" + n, ginH, refG, 1, 1e-30);
            }
        }
    }

    @Test
    void addAndScaleMatchFloat64Reference() {
        for (int n : sizes()) {
            try (Scope s = Scope.open()) {
                float[] a = normal(n, 3 + n, 100);
                float[] b = normal(n, 5 + n, 0.01);
                Tensor ad = CudaTensors.toDevice(Tensor.wrap(a, n));
                Tensor bd = CudaTensors.toDevice(Tensor.wrap(b, n));
                double[] refAdd = Elementwise.add(Tensor.wrap(widen(a), n), Tensor.wrap(widen(b), n)).f64();
                assertClose("add_f32 n=" + n, CudaTensors.toHost(ElementwiseKernels.add(ad, bd)).f32(), refAdd, 0.5, 0);
                double[] refScale = Elementwise.scale(Tensor.wrap(widen(a), n), -0.37f, 1.5f).f64();
                assertClose("scale_f32 n=" + n, CudaTensors.toHost(ElementwiseKernels.scale(ad, -0.37f, 1.5f)).f32(),
                        refScale, 1, 0);
                // in place: out aliases x
                ElementwiseKernels.scaleInto(ad, 2f, 0f, ad);
                float[] twice = CudaTensors.toHost(ad).f32();
                for (int i = 0; i < n; i++) assertEquals(2 * a[i], twice[i], 0f, "in-place scale at " + i);
            }
        }
    }

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
        Tensor w = CudaTensors.persistent(64, 3, 3, 3);
        CudaTensors.copyHostToDevice(normal(w.numel(), 2, 1), w);
        long afterFirst = 0;
        for (int step = 0; step < 3; step++) {
            try (Scope s = Scope.open()) {
                Tensor x = CudaTensors.toDevice(Tensor.wrap(normal(128 * 28 * 28, step, 1), 128, 1, 28, 28));
                Tensor h = ElementwiseKernels.eluForward(ElementwiseKernels.scale(x, 0.5f, 0.1f));
                Tensor g = ElementwiseKernels.eluBackward(h, h);
                ElementwiseKernels.add(g, h);
                CudaTensors.toHost(h);
                assertTrue(s.ownedCount() >= 5, "CUDA temporaries are not scope-owned: " + s.ownedCount());
            }
            if (step == 0) afterFirst = alloc.rawAllocs();
            else assertEquals(afterFirst, alloc.rawAllocs(), "step " + step + " called cuMemAlloc: " + alloc.stats());
        }
        assertTrue(alloc.bytesCached() >= 4L * 128 * 28 * 28 * 4, alloc.stats());
        w.free();
    }

    @Test
    void useAfterFreeIsAClearError() {
        Tensor kept;
        try (Scope s = Scope.open()) {
            kept = CudaTensors.toDevice(Tensor.wrap(new float[] {1, 2, 3}, 3));
        }
        TensorException e = assertThrows(TensorException.class, () -> CudaTensors.toHost(kept));
        assertTrue(e.getMessage().contains("toHost") && e.getMessage().contains("freed"), e.getMessage());
        e = assertThrows(TensorException.class, () -> ElementwiseKernels.eluForward(kept));
        assertTrue(e.getMessage().contains("freed"), e.getMessage());
        kept.free(); // idempotent: does not release the block twice
    }

    @Test
    void eventTimerMeasuresKernelTime() {
        CudaContext ctx = CudaContext.get();
        try (Scope s = Scope.open()) {
            Tensor x = CudaTensors.empty(1 << 24);
            ElementwiseKernels.scaleInto(x, 0f, 1f, x); // warm-up and initialise
            float ms;
            try (CudaContext.EventTimer t = ctx.startTimer()) {
                for (int i = 0; i < 10; i++) ElementwiseKernels.scaleInto(x, 1f, 1f, x);
                ms = t.stopMillis();
            }
            assertTrue(ms > 0 && ms < 10_000, "event time " + ms + " ms");
            float[] h = CudaTensors.toHost(x).f32();
            assertEquals(11f, h[h.length - 1], 0f);
            System.err.printf("[ncsn] scale_f32 on 2^24 floats: %.3f ms per launch (%.0f GB/s)%n", ms / 10,
                    8.0 * (1 << 24) / (ms / 10 * 1e-3) / 1e9);
        }
    }
}
