package ncsn.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.SplittableRandom;
import ncsn.cpu.GemmKernel;
import ncsn.cpu.Parallel;
import ncsn.cpu.Simd;
import org.junit.jupiter.api.Test;

/**
 * {@link Conv2dWinograd} against the float64 reference ({@link Conv2d.Reference}) on awkward
 * geometries: odd and tiny planes (a tile's second row or column falls outside), every padding
 * 0..2d for dilations 1, 2 and 4 (planes narrower than 2d, empty column classes), batch 1,
 * channel counts that are not multiples of 8 or of the GEMM's slivers, rows of tiles narrower and
 * wider than a vector; forward, backward-data and backward-weight, with the Vector API and the
 * scalar GEMM kernels. Limit: the catalog's float32 tolerance, 1e-5 of max |ref|.
 */
class Conv2dWinogradTest {
    private static final double LIMIT = OpCatalog.DEFAULT_TOLERANCE32;

    // n, ci, h, w, co, pad, dil
    private static final int[][] GEOMETRIES = {
        {2, 5, 7, 9, 3, 1, 1}, {1, 17, 6, 5, 19, 1, 1}, {3, 16, 28, 28, 16, 1, 1}, {2, 7, 9, 8, 5, 0, 1},
        {2, 3, 8, 11, 4, 2, 1}, {1, 9, 1, 1, 6, 1, 1}, {1, 4, 2, 3, 3, 2, 1},
        {2, 6, 7, 9, 5, 2, 2}, {1, 5, 14, 13, 7, 0, 2}, {2, 3, 5, 6, 4, 1, 2}, {1, 4, 3, 4, 3, 4, 2},
        {2, 5, 14, 14, 6, 4, 4}, {1, 3, 9, 11, 5, 3, 4}, {1, 4, 5, 3, 3, 8, 4}, {2, 33, 13, 11, 35, 4, 4},
        // Rows too wide for the Vector API's permutes (AVX-512): the gathering path.
        {2, 6, 5, 37, 7, 1, 1}, {1, 4, 6, 30, 5, 2, 2}, {1, 3, 4, 33, 4, 4, 4},
    };

    @Test
    void forwardAndBackwardMatchTheReference() {
        for (GemmKernel kernel : kernels()) {
            for (int[] q : GEOMETRIES) {
                Conv2d.Dims g = new Conv2d.Dims(q[0], q[1], q[2], q[3], q[4], 3, 3, q[5], q[6]);
                assertTrue(g.ho() > 0 && g.wo() > 0, g.toString());
                SplittableRandom rnd = new SplittableRandom(q[1] * 131L + q[4] * 7L + q[6]);
                double[] x = normal(rnd, g.n() * g.ci() * g.h() * g.w());
                double[] w = normal(rnd, g.co() * g.ci() * 9);
                double[] b = normal(rnd, g.co());
                double[] dy = normal(rnd, g.n() * g.co() * g.p());

                double[] y = new double[dy.length], dx = new double[x.length];
                Conv2d.Reference.forward(g, x, w, b, y);
                Conv2d.Reference.backwardData(g, dy, w, dx);

                float[] yf = new float[y.length], dxf = new float[dx.length];
                Arrays.fill(yf, Float.NaN); // every output must be written
                Arrays.fill(dxf, Float.NaN);
                Conv2dWinograd.forward(kernel, g, f32(x), f32(w), f32(b), yf);
                Conv2dWinograd.backwardData(kernel, g, f32(dy), f32(w), dxf);
                String what = kernel.name() + " " + g;
                assertWithin(y, yf, "forward " + what);
                assertWithin(dx, dxf, "backward-data " + what);

                double[] dw = new double[w.length], db = new double[g.co()];
                Conv2d.Reference.backwardWeight(g, x, dy, dw);
                for (int n = 0; n < g.n(); n++)
                    for (int c = 0; c < g.co(); c++)
                        for (int i = 0; i < g.p(); i++) db[c] += dy[(n * g.co() + c) * g.p() + i];
                for (boolean vector : vectorAndScalar()) {
                    float[] dwf = new float[dw.length], dbf = new float[db.length];
                    Arrays.fill(dwf, Float.NaN);
                    Arrays.fill(dbf, Float.NaN);
                    Conv2dWinograd.backwardWeight(kernel, vector, g, f32(x), f32(dy), dwf, dbf);
                    assertWithin(dw, dwf, "backward-weight " + (vector ? "(channels-last) " : "") + what);
                    assertWithin(db, dbf, "bias gradient " + (vector ? "(channels-last) " : "") + what);
                }

                float[] y0 = new float[y.length];
                Conv2dWinograd.forward(kernel, g, f32(x), f32(w), null, y0);
                Conv2d.Reference.forward(g, x, w, null, y);
                assertWithin(y, y0, "forward without bias " + what);
            }
        }
    }

    /**
     * An image's outputs do not depend on the other images of the batch or on the thread count
     * (bit for bit): the blocks, and a tile's place in its block, change with both.
     */
    @Test
    void imagesAreIndependentOfTheBatchAndTheThreads() {
        GemmKernel kernel = Simd.gemmKernel();
        Conv2d.Dims g = new Conv2d.Dims(5, 24, 14, 14, 20, 3, 3, 2, 2);
        SplittableRandom rnd = new SplittableRandom(5);
        float[] x = f32(normal(rnd, g.n() * g.ci() * g.h() * g.w())), w = f32(normal(rnd, g.co() * g.ci() * 9));
        float[] b = f32(normal(rnd, g.co()));
        float[] all = new float[g.n() * g.co() * g.p()];
        Conv2dWinograd.forward(kernel, g, x, w, b, all);
        int plane = g.ci() * g.h() * g.w(), out = g.co() * g.p();
        Conv2d.Dims one = new Conv2d.Dims(1, g.ci(), g.h(), g.w(), g.co(), 3, 3, g.pad(), g.dil());
        int before = Parallel.threads();
        try {
            for (int threads : new int[] {1, 2, 3}) {
                Parallel.setThreads(threads);
                for (int n = 0; n < g.n(); n++) {
                    float[] alone = new float[out];
                    Conv2dWinograd.forward(kernel, one, Arrays.copyOfRange(x, n * plane, (n + 1) * plane), w, b, alone);
                    for (int i = 0; i < out; i++)
                        assertEquals(Float.floatToRawIntBits(all[n * out + i]), Float.floatToRawIntBits(alone[i]),
                                "image " + n + " element " + i + " with " + threads + " threads");
                }
            }
        } finally {
            Parallel.setThreads(before);
        }
    }

    /**
     * Filters are kept between calls ({@link Conv2dWinograd.Filters}): a call must always see
     * its weights as they are now. Changing one weight in place (as Adam does) must give the
     * bits of a cold call on a fresh copy of the weights, in both directions; unchanged
     * weights reuse the same packed filters.
     */
    @Test
    void keptFiltersFollowWeightsChangedInPlace() {
        GemmKernel kernel = Simd.gemmKernel();
        Conv2d.Dims g = new Conv2d.Dims(2, 19, 9, 10, 17, 3, 3, 1, 1);
        SplittableRandom rnd = new SplittableRandom(8);
        float[] x = f32(normal(rnd, g.n() * g.ci() * g.h() * g.w())), w = f32(normal(rnd, g.co() * g.ci() * 9));
        float[] dy = f32(normal(rnd, g.n() * g.co() * g.p()));
        int out = g.n() * g.co() * g.p(), in = x.length;
        for (int step = 0; step < 4; step++) {
            float[] y = new float[out], dx = new float[in];
            Conv2dWinograd.forward(kernel, g, x, w, null, y);
            Conv2dWinograd.backwardData(kernel, g, dy, w, dx);
            Conv2dWinograd.Filters kept = Conv2dWinograd.Filters.acquire(kernel, g, w, false);
            Conv2dWinograd.Filters again = Conv2dWinograd.Filters.acquire(kernel, g, w, false);
            kept.release();
            again.release();
            assertTrue(kept == again, "unchanged weights: the same filters");
            float[] fresh = w.clone(), yCold = new float[out], dxCold = new float[in];
            Conv2dWinograd.forward(kernel, g, x, fresh, null, yCold);
            Conv2dWinograd.backwardData(kernel, g, dy, fresh, dxCold);
            for (int i = 0; i < out; i++)
                assertEquals(Float.floatToRawIntBits(yCold[i]), Float.floatToRawIntBits(y[i]), "step " + step + " y[" + i + "]");
            for (int i = 0; i < in; i++)
                assertEquals(Float.floatToRawIntBits(dxCold[i]), Float.floatToRawIntBits(dx[i]), "step " + step + " dx[" + i + "]");
            w[(step * 97) % w.length] += 0.5f; // one weight early in the array, one at its end
            w[w.length - 1 - step] -= 0.25f;
        }
    }

    /**
     * Backward-weight sums over every tile of the batch: its bits must not depend on the thread
     * count (blocks and groups are fixed by the geometry, groups added in order). Enough tile
     * rows for several blocks and groups.
     */
    @Test
    void backwardWeightIsIndependentOfTheThreads() {
        GemmKernel kernel = Simd.gemmKernel();
        Conv2d.Dims g = new Conv2d.Dims(40, 48, 14, 14, 40, 3, 3, 1, 1);
        SplittableRandom rnd = new SplittableRandom(9);
        float[] x = f32(normal(rnd, g.n() * g.ci() * g.h() * g.w())), dy = f32(normal(rnd, g.n() * g.co() * g.p()));
        assertTrue(Conv2dWinograd.weightRowsPerBlock(kernel, g, 7) * 3 < g.n() * 7, "needs several blocks");
        int before = Parallel.threads();
        try {
            float[] first = null;
            for (int threads : new int[] {1, 2, 3}) {
                Parallel.setThreads(threads);
                float[] dw = new float[g.co() * g.ci() * 9];
                Conv2dWinograd.backwardWeight(kernel, g, x, dy, dw, null);
                if (first == null) first = dw;
                else assertTrue(Arrays.equals(first, dw), "dW with " + threads + " threads differs from 1 thread");
            }
        } finally {
            Parallel.setThreads(before);
        }
    }

    /** The Vector API transforms give the scalar transforms' bits (same GEMM kernel). */
    @Test
    void vectorTransformsMatchTheScalarOnesBitForBit() {
        org.junit.jupiter.api.Assumptions.assumeTrue(Simd.vectorEnabled(), "Vector API not in use");
        GemmKernel kernel = Simd.gemmKernel();
        for (int[] q : GEOMETRIES) {
            Conv2d.Dims g = new Conv2d.Dims(q[0], q[1], q[2], q[3], q[4], 3, 3, q[5], q[6]);
            SplittableRandom rnd = new SplittableRandom(q[2] * 31L + q[5]);
            float[] x = f32(normal(rnd, g.n() * g.ci() * g.h() * g.w())), w = f32(normal(rnd, g.co() * g.ci() * 9));
            float[] b = f32(normal(rnd, g.co())), dy = f32(normal(rnd, g.n() * g.co() * g.p()));
            float[] yv = new float[dy.length], ys = new float[dy.length], dxv = new float[x.length], dxs = new float[x.length];
            Conv2dWinograd.forward(kernel, true, g, x, w, b, yv);
            Conv2dWinograd.forward(kernel, false, g, x, w, b, ys);
            Conv2dWinograd.backwardData(kernel, true, g, dy, w, dxv);
            Conv2dWinograd.backwardData(kernel, false, g, dy, w, dxs);
            float[] dwv = new float[w.length], dws = new float[w.length];
            Conv2dWinograd.backwardWeight(kernel, true, g, x, dy, dwv, null);
            Conv2dWinograd.backwardWeight(kernel, false, g, x, dy, dws, null);
            assertTrue(Arrays.equals(ys, yv), "forward " + g);
            assertTrue(Arrays.equals(dxs, dxv), "backward-data " + g);
            assertTrue(Arrays.equals(dws, dwv), "backward-weight " + g);
        }
    }

    @Test
    void choosesWinogradOnlyWhereItApplies() {
        org.junit.jupiter.api.Assumptions.assumeTrue(Conv2dWinograd.ENABLED, "Winograd is off (-Dncsn.conv.winograd=off)");
        assertTrue(Conv2dWinograd.applies(new Conv2d.Dims(1, 64, 28, 28, 64, 3, 3, 1, 1)));
        assertTrue(Conv2dWinograd.applies(new Conv2d.Dims(1, 128, 14, 14, 128, 3, 3, 4, 4)));
        assertFalse(Conv2dWinograd.applies(new Conv2d.Dims(1, 1, 28, 28, 64, 3, 3, 1, 1)), "first layer: Ci = 1");
        assertFalse(Conv2dWinograd.applies(new Conv2d.Dims(1, 64, 28, 28, 1, 3, 3, 1, 1)), "last layer: Co = 1");
        assertFalse(Conv2dWinograd.applies(new Conv2d.Dims(1, 64, 28, 28, 64, 1, 1, 0, 1)), "1x1");
        assertFalse(Conv2dWinograd.applies(new Conv2d.Dims(1, 64, 28, 28, 64, 3, 3, 3, 1)), "padding > 2d");
    }

    @Test
    void supportsEvery3x3WithPaddingUpTo2d() {
        assertTrue(Conv2dWinograd.supports(new Conv2d.Dims(1, 64, 28, 28, 64, 3, 3, 1, 1)));
        assertTrue(Conv2dWinograd.supports(new Conv2d.Dims(1, 1, 14, 14, 1, 3, 3, 8, 4)));
        assertFalse(Conv2dWinograd.supports(new Conv2d.Dims(1, 64, 28, 28, 64, 1, 1, 0, 1)), "1x1");
        assertFalse(Conv2dWinograd.supports(new Conv2d.Dims(1, 64, 28, 28, 64, 3, 3, 3, 1)), "padding > 2d");
    }

    private static boolean[] vectorAndScalar() {
        return Simd.vectorEnabled() ? new boolean[] {true, false} : new boolean[] {false};
    }

    private static GemmKernel[] kernels() {
        return Simd.vectorEnabled() ? new GemmKernel[] {Simd.gemmKernel(), Simd.scalarGemm()}
                : new GemmKernel[] {Simd.scalarGemm()};
    }

    private static void assertWithin(double[] ref, float[] got, String what) {
        WorstError e = new WorstError();
        double[] g = new double[got.length];
        for (int i = 0; i < g.length; i++) g[i] = got[i];
        e.compare(what, g, ref, null, 0);
        assertTrue(e.within(LIMIT), what + ": error " + e.error() + " > " + LIMIT + ": " + e.detail());
    }

    private static double[] normal(SplittableRandom rnd, int n) {
        double[] a = new double[n];
        for (int i = 0; i < n; i++) a[i] = gaussian(rnd);
        return a;
    }

    private static double gaussian(SplittableRandom rnd) {
        double u = rnd.nextDouble(), v = rnd.nextDouble();
        return Math.sqrt(-2 * Math.log(1 - u)) * Math.cos(2 * Math.PI * v);
    }

    private static float[] f32(double[] a) {
        float[] f = new float[a.length];
        for (int i = 0; i < a.length; i++) f[i] = (float) a[i];
        return f;
    }
}
