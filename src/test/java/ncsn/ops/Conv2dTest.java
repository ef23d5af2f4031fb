package ncsn.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import ncsn.autograd.Autograd;
import ncsn.cpu.GemmKernel;
import ncsn.cpu.Parallel;
import ncsn.cpu.Simd;
import ncsn.rng.Philox;
import ncsn.tensor.BufferPool;
import ncsn.tensor.DType;
import ncsn.tensor.Scope;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;
import org.junit.jupiter.api.Test;

/**
 * Conv2d beyond the catalog: values worked out by hand (so the reference itself is checked, not
 * only its self-consistency), PyTorch's cross-correlation orientation of the taps, bad-input
 * messages, the float32 kernels against the reference on a larger shape with every GEMM kernel
 * and both threading schemes, and steady-state buffer reuse.
 */
class Conv2dTest {

    // ---- hand-computed values ---------------------------------------------------------------

    /**
     * x = 1..9 in a 3x3 image, an all-ones 3x3 kernel, padding 1, bias 0.5: each output is 0.5
     * plus the sum of the (up to) 9 neighbours. For the loss sum(y): dx[ih,iw] = the number of
     * output pixels whose window covers (ih,iw) (4 at corners, 6 on edges, 9 in the middle),
     * dw[i,j] = the sum of the 2x2 / 2x3 / 3x3 block of x that tap (i,j) sees, db = 9.
     */
    @Test
    void allOnesKernelOnOneToNine() {
        for (DType dt : DType.values()) {
            try (Scope s = Scope.open()) {
                Tensor x = Tensor.wrap(new double[] {1, 2, 3, 4, 5, 6, 7, 8, 9}, 1, 1, 3, 3).to(dt).requiresGrad(true);
                Tensor w = Tensor.wrap(new double[] {1, 1, 1, 1, 1, 1, 1, 1, 1}, 1, 1, 3, 3).to(dt).requiresGrad(true);
                Tensor b = Tensor.wrap(new double[] {0.5}, 1).to(dt).requiresGrad(true);
                Tensor y = Conv2d.apply(x, w, b, 1, 1);
                assertArrayEquals(new int[] {1, 1, 3, 3}, y.shape());
                // 1+2+4+5, 1+2+3+4+5+6, 2+3+5+6 / 1+2+4+5+7+8, 45, 2+3+5+6+8+9 / 4+5+7+8, 4+5+6+7+8+9, 5+6+8+9
                double[] expect = {12, 21, 16, 27, 45, 33, 24, 39, 28};
                for (int i = 0; i < 9; i++) expect[i] += 0.5;
                assertArrayEquals(expect, y.toDoubleArray(), 1e-5, dt.toString());

                Autograd.backward(y, ones(dt, 1, 1, 3, 3));
                assertArrayEquals(new double[] {4, 6, 4, 6, 9, 6, 4, 6, 4}, x.grad().toDoubleArray(), 1e-5);
                // tap (i,j) sees rows {0,1} (i=0), {0,1,2} (i=1), {1,2} (i=2) and the same for columns.
                assertArrayEquals(new double[] {12, 21, 16, 27, 45, 33, 24, 39, 28}, w.grad().toDoubleArray(), 1e-5);
                assertArrayEquals(new double[] {9}, b.grad().toDoubleArray(), 1e-5);
            }
        }
    }

    /**
     * Orientation and dilation: a kernel that is 1 at a single tap (i,j) and 0 elsewhere shifts
     * the image: y[oh,ow] = x[oh - p + d*i, ow - p + d*j] (PyTorch correlates, it does not flip).
     * With d = 2, p = 2 on a 5x6 image, tap (0,0) moves the image down-right by 2, tap (2,1)
     * up by 2. Two output channels check the weight's [Co, Ci, ...] order.
     */
    @Test
    void singleTapShiftsTheImageLikePyTorch() {
        int h = 5, wd = 6;
        double[] xs = new double[2 * h * wd];
        for (int i = 0; i < xs.length; i++) xs[i] = 1 + i; // channel 1 = channel 0 + 30
        double[] ws = new double[2 * 2 * 3 * 3]; // [Co=2, Ci=2, 3, 3]
        ws[(0 * 2 + 0) * 9 + 0 * 3 + 0] = 1;     // out 0 <- in 0, tap (0,0)
        ws[(1 * 2 + 1) * 9 + 2 * 3 + 1] = 2;     // out 1 <- 2 * in 1, tap (2,1)
        for (DType dt : DType.values()) {
            try (Scope s = Scope.open()) {
                Tensor x = Tensor.wrap(xs.clone(), 1, 2, h, wd).to(dt);
                Tensor w = Tensor.wrap(ws.clone(), 2, 2, 3, 3).to(dt);
                double[] y = Conv2d.apply(x, w, null, 2, 2).toDoubleArray();
                assertEquals(2 * h * wd, y.length);
                for (int oh = 0; oh < h; oh++)
                    for (int ow = 0; ow < wd; ow++) {
                        int ih0 = oh - 2, iw0 = ow - 2;          // tap (0,0): -p + 0
                        double e0 = ih0 >= 0 && iw0 >= 0 ? xs[ih0 * wd + iw0] : 0;
                        int ih1 = oh + 2, iw1 = ow;              // tap (2,1): -p + 2*2, -p + 2*1
                        double e1 = ih1 < h ? 2 * xs[h * wd + ih1 * wd + iw1] : 0;
                        assertEquals(e0, y[oh * wd + ow], 1e-6, dt + " out 0 at " + oh + "," + ow);
                        assertEquals(e1, y[h * wd + oh * wd + ow], 1e-6, dt + " out 1 at " + oh + "," + ow);
                    }
            }
        }
    }

    /** 1x1 without padding is a per-pixel matrix product: y[n,co,p] = sum_ci w[co,ci] x[n,ci,p] + b[co]. */
    @Test
    void pointwiseIsAMatrixProductPerPixel() {
        double[] xs = {1, 2, 3, 4, /* ch 1 */ -1, 0, 1, 2}; // [1, 2, 2, 2]
        double[] ws = {2, 3, /* co 1 */ -1, 1, /* co 2 */ 0, 0.5}; // [3, 2, 1, 1]
        for (DType dt : DType.values()) {
            try (Scope s = Scope.open()) {
                Tensor y = Conv2d.apply(Tensor.wrap(xs, 1, 2, 2, 2).to(dt), Tensor.wrap(ws, 3, 2, 1, 1).to(dt),
                        Tensor.wrap(new double[] {10, 20, 30}, 3).to(dt), 0, 1);
                assertArrayEquals(new double[] {
                        10 + 2 - 3, 10 + 4 + 0, 10 + 6 + 3, 10 + 8 + 6,
                        20 - 1 - 1, 20 - 2 + 0, 20 - 3 + 1, 20 - 4 + 2,
                        30 - 0.5, 30 + 0, 30 + 0.5, 30 + 1}, y.toDoubleArray(), 1e-5, dt.toString());
            }
        }
    }

    // ---- gradients only where asked ---------------------------------------------------------

    @Test
    void gradientsOnlyForInputsThatRequireThem() {
        for (DType dt : DType.values()) {
            try (Scope s = Scope.open()) {
                Tensor x = rand(dt, 1, 2, 3, 5, 5).requiresGrad(false);
                Tensor w = rand(dt, 2, 4, 3, 3, 3).requiresGrad(true);
                Tensor b = rand(dt, 3, 4).requiresGrad(false);
                Tensor y = Conv2d.apply(x, w, b, 1, 1);
                Autograd.backward(y, ones(dt, y.shape()));
                assertNull(x.grad());
                assertNotNull(w.grad());
                assertNull(b.grad());

                // bias only: the kernel path that sums dy without computing dW.
                Tensor w2 = rand(dt, 4, 4, 3, 3, 3);
                Tensor b2 = Tensor.wrap(new double[] {0, 0, 0, 0}, 4).to(dt).requiresGrad(true);
                Tensor y2 = Conv2d.apply(x, w2, b2, 0, 1);
                Autograd.backward(y2, ones(dt, y2.shape()));
                assertArrayEquals(new double[] {18, 18, 18, 18}, b2.grad().toDoubleArray(), 1e-5); // 2 images * 3x3
            }
        }
    }

    // ---- bad input --------------------------------------------------------------------------

    @Test
    void messagesNameConv2dAndTheShapes() {
        Tensor x = Tensor.persistent(DType.F32, 2, 3, 5, 5);
        Tensor w = Tensor.persistent(DType.F32, 4, 2, 3, 3);
        assertEquals("conv2d: input [2,3,5,5] has 3 channels but weight [4,2,3,3] expects 2",
                assertThrows(TensorException.class, () -> Conv2d.apply(x, w, null, 1, 1)).getMessage());

        Tensor w3 = Tensor.persistent(DType.F32, 4, 3, 3, 3);
        String m = assertThrows(TensorException.class,
                () -> Conv2d.apply(x, w3, Tensor.persistent(DType.F32, 5), 1, 1)).getMessage();
        assertEquals("conv2d: bias [5] does not match weight [4,3,3,3]: expected [4]", m);
        m = assertThrows(TensorException.class,
                () -> Conv2d.apply(x, w3, Tensor.persistent(DType.F32, 4, 1), 1, 1)).getMessage();
        assertTrue(m.startsWith("conv2d: bias [4,1]"), m);

        // 5 + 0 - 4*2 = -3: the dilated kernel does not fit.
        m = assertThrows(TensorException.class, () -> Conv2d.apply(x, w3, null, 0, 4)).getMessage();
        assertEquals("conv2d: output size -3x-3 is not positive: input [2,3,5,5], weight [4,3,3,3], padding 0, dilation 4", m);

        m = assertThrows(TensorException.class,
                () -> Conv2d.apply(Tensor.persistent(DType.F32, 3, 5, 5), w3, null, 1, 1)).getMessage();
        assertEquals("conv2d: input [3,5,5] must have 4 dimensions [N, C, H, W]", m);
        m = assertThrows(TensorException.class,
                () -> Conv2d.apply(x, Tensor.persistent(DType.F32, 4, 3, 3), null, 1, 1)).getMessage();
        assertEquals("conv2d: weight [4,3,3] must have 4 dimensions [Co, Ci, kh, kw]", m);
        m = assertThrows(TensorException.class, () -> Conv2d.apply(x, w3, null, -1, 1)).getMessage();
        assertTrue(m.startsWith("conv2d: padding -1 is negative") && m.contains("[2,3,5,5]"), m);
        m = assertThrows(TensorException.class, () -> Conv2d.apply(x, w3, null, 1, 0)).getMessage();
        assertTrue(m.startsWith("conv2d: dilation 0 must be at least 1") && m.contains("[4,3,3,3]"), m);

        // dtype mismatch and a freed tensor: OpChecks messages, naming conv2d.
        m = assertThrows(TensorException.class,
                () -> Conv2d.apply(x, Tensor.persistent(DType.F64, 4, 3, 3, 3), null, 1, 1)).getMessage();
        assertTrue(m.startsWith("conv2d: dtypes differ") && m.contains("[2, 3, 5, 5]"), m);
        Tensor freed;
        try (Scope s = Scope.open()) {
            freed = Tensor.empty(DType.F32, 4, 3, 3, 3);
        }
        m = assertThrows(TensorException.class, () -> Conv2d.apply(x, freed, null, 1, 1)).getMessage();
        assertTrue(m.startsWith("conv2d: ") && m.contains("freed"), m);
    }

    // ---- float32 kernels against the reference ----------------------------------------------

    /**
     * N=3, Ci=13, Co=10, 11x9 (K = 117: not a multiple of any register block; P = 99 odd), for
     * dilations 1/2/4 with padding = dilation, a valid conv, padding < dilation, a 5x3 kernel,
     * and 1x1 with and without padding; forward, dx, dw, db, with every
     * available GEMM kernel and both threading schemes.
     * Tolerance 1e-5 of max |ref|: sums of at most 297 float32 products.
     */
    @Test
    void float32KernelsMatchTheReference() {
        List<GemmKernel> kernels = new ArrayList<>();
        kernels.add(Simd.scalarGemm());
        if (Simd.vectorGemmOrNull() != null) kernels.add(Simd.vectorGemmOrNull());
        int[][] geoms = { // kh, kw, pad, dil
            {3, 3, 1, 1}, {3, 3, 2, 2}, {3, 3, 4, 4}, {3, 3, 0, 1}, {3, 3, 1, 2}, {5, 3, 2, 1},
            {1, 1, 0, 1}, {1, 1, 1, 1}};
        for (int[] gm : geoms) {
            Conv2d.Dims g = new Conv2d.Dims(3, 13, 11, 9, 10, gm[0], gm[1], gm[2], gm[3]);
            double[] x = gauss(100, 3 * 13 * 11 * 9), w = gauss(101, 10 * 13 * gm[0] * gm[1]), b = gauss(102, 10);
            double[] dy = gauss(103, 3 * 10 * g.p());
            // Reference on the float32-rounded inputs.
            round(x);
            round(w);
            round(b);
            round(dy);
            double[] y64 = new double[3 * 10 * g.p()], dx64 = new double[x.length], dw64 = new double[w.length];
            double[] db64 = new double[10];
            Conv2d.Reference.forward(g, x, w, b, y64);
            Conv2d.Reference.backwardData(g, dy, w, dx64);
            Conv2d.Reference.backwardWeight(g, x, dy, dw64);
            Conv2d.Reference.backwardBias(g, dy, db64);
            for (GemmKernel k : kernels) {
                for (Conv2d.Cpu.Threading t : List.of(Conv2d.Cpu.Threading.IMAGES, Conv2d.Cpu.Threading.GEMM)) {
                    String what = g + " " + k.name() + " " + t;
                    float[] y = new float[y64.length], dx = new float[x.length], dw = new float[w.length];
                    float[] db = new float[10];
                    java.util.Arrays.fill(y, Float.NaN); // every output element must be written
                    java.util.Arrays.fill(dx, Float.NaN);
                    java.util.Arrays.fill(dw, Float.NaN);
                    Conv2d.Cpu.forward(k, t, g, f32(x), f32(w), f32(b), y);
                    Conv2d.Cpu.backwardData(k, t, g, f32(dy), f32(w), dx);
                    Conv2d.Cpu.backwardWeight(k, t, g, f32(x), f32(dy), dw, db);
                    close(what + " forward", y64, y);
                    close(what + " dx", dx64, dx);
                    close(what + " dw", dw64, dw);
                    close(what + " db", db64, db);
                    float[] db2 = new float[10];
                    Conv2d.Cpu.backwardBias(g, f32(dy), db2);
                    close(what + " db alone", db64, db2);
                    float[] y0 = new float[y64.length];
                    Conv2d.Cpu.forward(k, t, g, f32(x), f32(w), null, y0);
                    for (int i = 0; i < y0.length; i++) y0[i] += (float) b[i / g.p() % 10];
                    close(what + " forward without bias", y64, y0);
                }
            }
        }
    }

    /**
     * The forward pass packs im2col straight into the GEMM's panels: with K = 40*9 = 360 (two
     * depth blocks) and P = 37*35 = 1295 (several column panels, rows of the output split across
     * slivers) every slice of every im2col row must land where the reference puts it; also
     * for dilated taps that reach past a narrow image.
     */
    @Test
    void implicitIm2colAcrossDepthBlocksAndColumnPanels() {
        List<GemmKernel> kernels = new ArrayList<>();
        kernels.add(Simd.scalarGemm());
        if (Simd.vectorGemmOrNull() != null) kernels.add(Simd.vectorGemmOrNull());
        // pad, dil, H, W; the last two: the dilated taps reach past a narrow image (no valid column).
        for (int[] gm : new int[][] {{1, 1, 37, 35}, {2, 2, 37, 35}, {1, 2, 37, 35}, {4, 4, 9, 3}, {2, 2, 5, 2}}) {
            Conv2d.Dims g = new Conv2d.Dims(2, 40, gm[2], gm[3], 7, 3, 3, gm[0], gm[1]);
            double[] x = gauss(200, 2 * 40 * gm[2] * gm[3]), w = gauss(201, 7 * 40 * 9), b = gauss(202, 7);
            round(x);
            round(w);
            round(b);
            double[] y64 = new double[2 * 7 * g.p()], dy = round(gauss(203, y64.length)), dw64 = new double[w.length];
            Conv2d.Reference.forward(g, x, w, b, y64);
            Conv2d.Reference.backwardWeight(g, x, dy, dw64); // col^T panels: P deep, K wide
            for (GemmKernel k : kernels) {
                for (Conv2d.Cpu.Threading t : List.of(Conv2d.Cpu.Threading.IMAGES, Conv2d.Cpu.Threading.GEMM)) {
                    float[] y = new float[y64.length], dw = new float[w.length];
                    java.util.Arrays.fill(y, Float.NaN);
                    java.util.Arrays.fill(dw, Float.NaN);
                    Conv2d.Cpu.forward(k, t, g, f32(x), f32(w), f32(b), y);
                    close(g + " " + k.name() + " " + t + " forward", y64, y);
                    Conv2d.Cpu.backwardWeight(k, t, g, f32(x), f32(dy), dw, null);
                    close(g + " " + k.name() + " " + t + " dw", dw64, dw);
                }
            }
            // Any slice [q0, q1) of a row equals that part of the whole row.
            float[] xf = f32(x), whole = new float[g.p()], part = new float[g.p() + 3];
            java.util.SplittableRandom rnd = new java.util.SplittableRandom(5);
            for (int trial = 0; trial < 200; trial++) {
                int r = rnd.nextInt(g.k()), q0 = rnd.nextInt(g.p()), q1 = q0 + rnd.nextInt(g.p() - q0 + 1);
                Conv2d.Cpu.im2colRow(g, xf, g.ci() * g.h() * g.w(), r, 0, g.p(), whole, 0);
                java.util.Arrays.fill(part, Float.NaN);
                Conv2d.Cpu.im2colRow(g, xf, g.ci() * g.h() * g.w(), r, q0, q1, part, 3);
                for (int q = q0; q < q1; q++)
                    assertEquals(whole[q], part[3 + q - q0], g + " row " + r + " slice [" + q0 + ", " + q1 + ") at " + q);
                assertTrue(Float.isNaN(part[2]) && (q1 - q0 + 3 >= part.length || Float.isNaN(part[3 + q1 - q0])),
                        "wrote outside the slice");
            }
        }
    }

    /**
     * Threading AUTO for batch sizes around the thread count (1, 3, 4, 9) agrees with the
     * reference, with the engine's thread count and with one thread.
     */
    @Test
    void autoThreadingAtSeveralBatchSizes() {
        int threads = Parallel.threads();
        try {
            autoThreading();
            Parallel.setThreads(1);
            autoThreading();
        } finally {
            Parallel.setThreads(threads);
        }
    }

    private static void autoThreading() {
        for (int n : new int[] {1, 3, 4, 9}) {
            Conv2d.Dims g = new Conv2d.Dims(n, 5, 7, 6, 6, 3, 3, 2, 2);
            double[] x = round(gauss(7, n * 5 * 7 * 6)), w = round(gauss(8, 6 * 5 * 9)), dy = round(gauss(9, n * 6 * g.p()));
            double[] y64 = new double[dy.length], dx64 = new double[x.length], dw64 = new double[w.length];
            Conv2d.Reference.forward(g, x, w, null, y64);
            Conv2d.Reference.backwardData(g, dy, w, dx64);
            Conv2d.Reference.backwardWeight(g, x, dy, dw64);
            float[] y = new float[y64.length], dx = new float[x.length], dw = new float[w.length];
            Conv2d.Cpu.forward(g, f32(x), f32(w), null, y);
            Conv2d.Cpu.backwardData(g, f32(dy), f32(w), dx);
            Conv2d.Cpu.backwardWeight(g, f32(x), f32(dy), dw, null);
            String what = "n=" + n + " threads=" + Parallel.threads();
            close(what + " forward", y64, y);
            close(what + " dx", dx64, dx);
            close(what + " dw", dw64, dw);
        }
    }

    /**
     * Reproducibility: every output (dW and db included, which sum over images) is bit-for-bit
     * the same with 1 or 2 threads and with either threading scheme, so a resumed training run
     * repeats the uninterrupted one.
     */
    @Test
    void resultsDoNotDependOnThreading() {
        Conv2d.Dims g = new Conv2d.Dims(11, 6, 7, 9, 5, 3, 3, 2, 2);
        float[] x = f32(gauss(21, 11 * 6 * 7 * 9)), w = f32(gauss(22, 5 * 6 * 9)), b = f32(gauss(23, 5));
        float[] dy = f32(gauss(24, 11 * 5 * g.p()));
        float[][] first = null;
        int threads = Parallel.threads();
        try {
            for (int t : new int[] {1, 2}) {
                Parallel.setThreads(t);
                for (Conv2d.Cpu.Threading mode : Conv2d.Cpu.Threading.values()) {
                    float[] y = new float[dy.length], dx = new float[x.length], dw = new float[w.length];
                    float[] db = new float[5];
                    Conv2d.Cpu.forward(Simd.gemmKernel(), mode, g, x, w, b, y);
                    Conv2d.Cpu.backwardData(Simd.gemmKernel(), mode, g, dy, w, dx);
                    Conv2d.Cpu.backwardWeight(Simd.gemmKernel(), mode, g, x, dy, dw, db);
                    float[][] now = {y, dx, dw, db};
                    if (first == null) first = now;
                    else for (int i = 0; i < now.length; i++)
                        assertArrayEquals(first[i], now[i], "output " + i + " with " + t + " threads, " + mode);
                }
            }
        } finally {
            Parallel.setThreads(threads);
        }
    }

    /** A training-step loop allocates no new pooled arrays after the first step. */
    @Test
    void steadyStateReusesBuffers() {
        Tensor w = rand(DType.F32, 5, 8, 6, 3, 3).requiresGrad(true);
        Tensor b = rand(DType.F32, 6, 8).requiresGrad(true);
        long freshAfterFirst = 0;
        for (int step = 0; step < 3; step++) {
            try (Scope s = Scope.open()) {
                Tensor x = rand(DType.F32, 4, 4, 6, 9, 7).requiresGrad(true);
                Tensor y = Conv2d.apply(x, w, b, 2, 2);
                Autograd.backward(y, ones(DType.F32, y.shape()));
            }
            if (step == 0) freshAfterFirst = BufferPool.freshAllocations();
        }
        assertEquals(freshAfterFirst, BufferPool.freshAllocations(), "pool misses after the first step");
    }

    // ---- helpers ----------------------------------------------------------------------------

    private static Tensor ones(DType dt, int... shape) {
        Tensor t = Tensor.empty(dt, shape);
        for (int i = 0; i < t.numel(); i++) t.set(i, 1.0);
        return t;
    }

    private static Tensor rand(DType dt, long seed, int... shape) {
        Tensor t = Tensor.empty(dt, shape);
        double[] d = gauss(seed, t.numel());
        for (int i = 0; i < d.length; i++) t.set(i, d[i]);
        return t;
    }

    private static double[] gauss(long seed, int n) {
        double[] d = new double[n];
        Philox.normal(seed, 0x636f6e76L, 0, d, 0, n);
        return d;
    }

    private static double[] round(double[] d) {
        for (int i = 0; i < d.length; i++) d[i] = (float) d[i];
        return d;
    }

    private static float[] f32(double[] d) {
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) f[i] = (float) d[i];
        return f;
    }

    /** max |fast - ref| <= 1e-5 max |ref|, reporting the worst element. */
    private static void close(String what, double[] ref, float[] fast) {
        double maxRef = 0, worst = -1;
        int at = -1;
        for (int i = 0; i < ref.length; i++) {
            maxRef = Math.max(maxRef, Math.abs(ref[i]));
            double d = Math.abs(fast[i] - ref[i]);
            if (Double.isNaN(d)) d = Double.POSITIVE_INFINITY;
            if (d > worst) {
                worst = d;
                at = i;
            }
        }
        double limit = 1e-5 * Math.max(maxRef, 1e-12);
        if (!(worst <= limit))
            throw new AssertionError(what + ": worst at " + at + " fast " + fast[at] + " ref " + ref[at] + " (|diff| "
                    + worst + " > " + limit + ")");
    }
}
