package ncsn.ops;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import ncsn.autograd.Autograd;
import ncsn.autograd.GradCheck;
import ncsn.cpu.Gemm;
import ncsn.cpu.GemmKernel;
import ncsn.cpu.Parallel;
import ncsn.cpu.Simd;
import ncsn.cuda.Launch;
import ncsn.tensor.DType;
import ncsn.tensor.Scope;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;

/**
 * 2-D convolution, stride 1, with zero padding and dilation (PyTorch's {@code F.conv2d}, i.e. a
 * cross-correlation: the kernel is not flipped).
 *
 * <pre>
 *   x [N, Ci, H, W], w [Co, Ci, kh, kw], b [Co] or none  ->  y [N, Co, Ho, Wo]
 *   Ho = H + 2p - d(kh-1),  Wo = W + 2p - d(kw-1)
 *   y[n,co,oh,ow] = b[co] + sum_{ci,i,j} w[co,ci,i,j] * x[n, ci, oh - p + d*i, ow - p + d*j]
 *                   (x outside [0,H) x [0,W) reads as 0)
 * </pre>
 *
 * Backward: dx = the transpose of that map applied to dy (a scatter of w * dy), dw[co,ci,i,j] =
 * sum_{n,oh,ow} dy[n,co,oh,ow] * x[n,ci,oh-p+d*i,ow-p+d*j], db[co] = sum_{n,oh,ow} dy[n,co,oh,ow].
 *
 * <p>float64 goes to {@link Reference} (direct loops, the oracle); float32 to {@link Cpu}
 * (im2col + {@link Gemm}); CUDA tensors to {@link Gpu} (implicit-GEMM kernels, conv2d.cu). NCSN uses 3x3 with padding = dilation in {1, 2, 4}, and 1x1 with
 * padding 0 for shortcuts; any kernel size >= 1 works.
 */
public final class Conv2d {
    private Conv2d() {}

    /**
     * The sizes of one convolution. {@code k = ci*kh*kw} is the depth of the GEMM (rows of the
     * im2col matrix), {@code p = ho*wo} the number of output pixels per image.
     */
    public record Dims(int n, int ci, int h, int w, int co, int kh, int kw, int pad, int dil) {
        public int ho() {
            return h + 2 * pad - dil * (kh - 1);
        }

        public int wo() {
            return w + 2 * pad - dil * (kw - 1);
        }

        /** Rows of the im2col matrix: ci * kh * kw. */
        public int k() {
            return ci * kh * kw;
        }

        /** Output pixels per image: ho * wo. */
        public int p() {
            return ho() * wo();
        }

        /** 1x1 without padding: the input image already is the im2col matrix [Ci, H*W]. */
        public boolean pointwise() {
            return kh == 1 && kw == 1 && pad == 0;
        }

        /** Multiply-adds times 2 of the forward (equal for backward-data and backward-weight). */
        public long flops() {
            return 2L * n * co * ci * kh * kw * ho() * wo();
        }

        @Override
        public String toString() {
            return "x[" + n + "," + ci + "," + h + "," + w + "] w[" + co + "," + ci + "," + kh + "," + kw
                    + "] pad " + pad + " dil " + dil + " -> [" + n + "," + co + "," + ho() + "," + wo() + "]";
        }
    }

    /**
     * y = conv2d(x, w) + b with stride 1: x [N, Ci, H, W], w [Co, Ci, kh, kw], bias [Co] or null,
     * padding {@code padding} on all four sides, dilation {@code dilation}. Returns [N, Co, Ho, Wo].
     * Gradients flow to each of x, w, bias that requires one.
     */
    public static Tensor apply(Tensor x, Tensor w, Tensor bias, int padding, int dilation) {
        Dims g = check(x, w, bias, padding, dilation);
        Tensor out = Tensor.empty(x.device(), x.dtype(), g.n(), g.co(), g.ho(), g.wo());
        boolean gpu = !x.isCpu();
        boolean f64 = x.dtype() == DType.F64;
        if (gpu) Gpu.forward(g, x, w, bias, out);
        else if (f64) Reference.forward(g, x.f64(), w.f64(), bias == null ? null : bias.f64(), out.f64());
        else Cpu.forward(g, x.f32(), w.f32(), bias == null ? null : bias.f32(), out.f32());

        Tensor[] inputs = bias == null ? new Tensor[] {x, w} : new Tensor[] {x, w, bias};
        Autograd.record("conv2d", out, inputs, gy -> {
            Tensor gx = x.requiresGrad() ? Tensor.emptyLike(x) : null;
            Tensor gw = w.requiresGrad() ? Tensor.emptyLike(w) : null;
            Tensor gb = bias != null && bias.requiresGrad() ? Tensor.emptyLike(bias) : null;
            if (gpu) {
                if (gx != null) Gpu.backwardData(g, gy, w, gx);
                if (gw != null) Gpu.backwardWeight(g, x, gy, gw);
                if (gb != null) Gpu.backwardBias(g, gy, gb);
            } else if (f64) {
                if (gx != null) Reference.backwardData(g, gy.f64(), w.f64(), gx.f64());
                if (gw != null) Reference.backwardWeight(g, x.f64(), gy.f64(), gw.f64());
                if (gb != null) Reference.backwardBias(g, gy.f64(), gb.f64());
            } else {
                if (gx != null) Cpu.backwardData(g, gy.f32(), w.f32(), gx.f32());
                if (gw != null) Cpu.backwardWeight(g, x.f32(), gy.f32(), gw.f32(), gb == null ? null : gb.f32());
                else if (gb != null) Cpu.backwardBias(g, gy.f32(), gb.f32());
            }
            return bias == null ? new Tensor[] {gx, gw} : new Tensor[] {gx, gw, gb};
        });
        return out;
    }

    /** Validates the arguments; every message names conv2d and the shapes involved. */
    static Dims check(Tensor x, Tensor w, Tensor bias, int padding, int dilation) {
        OpChecks.live("conv2d", x, w, bias);
        if (x.rank() != 4)
            throw new TensorException("conv2d: input " + shape(x) + " must have 4 dimensions [N, C, H, W]");
        if (w.rank() != 4)
            throw new TensorException("conv2d: weight " + shape(w) + " must have 4 dimensions [Co, Ci, kh, kw]");
        if (padding < 0)
            throw new TensorException("conv2d: padding " + padding + " is negative (input " + shape(x)
                    + ", weight " + shape(w) + ")");
        if (dilation < 1)
            throw new TensorException("conv2d: dilation " + dilation + " must be at least 1 (input " + shape(x)
                    + ", weight " + shape(w) + ")");
        if (x.numel() == 0 || w.numel() == 0)
            throw new TensorException("conv2d: empty tensor: input " + shape(x) + ", weight " + shape(w));
        if (x.dim(1) != w.dim(1))
            throw new TensorException("conv2d: input " + shape(x) + " has " + x.dim(1) + " channels but weight "
                    + shape(w) + " expects " + w.dim(1));
        if (bias != null && (bias.rank() != 1 || bias.dim(0) != w.dim(0)))
            throw new TensorException("conv2d: bias " + shape(bias) + " does not match weight " + shape(w)
                    + ": expected [" + w.dim(0) + "]");
        Dims g = new Dims(x.dim(0), x.dim(1), x.dim(2), x.dim(3), w.dim(0), w.dim(2), w.dim(3), padding, dilation);
        if (g.ho() <= 0 || g.wo() <= 0)
            throw new TensorException("conv2d: output size " + g.ho() + "x" + g.wo() + " is not positive: input "
                    + shape(x) + ", weight " + shape(w) + ", padding " + padding + ", dilation " + dilation);
        return g;
    }

    /** "[2,3,5,5]": compact shape for messages. */
    private static String shape(Tensor t) {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < t.rank(); i++) sb.append(i == 0 ? "" : ",").append(t.dim(i));
        return sb.append(']').toString();
    }

    // =========================================================================================

    /**
     * float64 reference: the definition as direct loops (7 deep), no cleverness. Index helpers
     * spell the NCHW / [Co,Ci,kh,kw] layouts out.
     */
    static final class Reference {
        private Reference() {}

        /** y [N,Co,Ho,Wo] = b + sum over (ci, i, j) of w * shifted x; b may be null. */
        static void forward(Dims g, double[] x, double[] w, double[] b, double[] y) {
            int ho = g.ho(), wo = g.wo();
            for (int n = 0; n < g.n(); n++)
                for (int co = 0; co < g.co(); co++)
                    for (int oh = 0; oh < ho; oh++)
                        for (int ow = 0; ow < wo; ow++) {
                            double s = b == null ? 0.0 : b[co];
                            for (int ci = 0; ci < g.ci(); ci++)
                                for (int i = 0; i < g.kh(); i++)
                                    for (int j = 0; j < g.kw(); j++) {
                                        int ih = oh - g.pad() + g.dil() * i, iw = ow - g.pad() + g.dil() * j;
                                        if (ih < 0 || ih >= g.h() || iw < 0 || iw >= g.w()) continue;
                                        s += w[wIdx(g, co, ci, i, j)] * x[xIdx(g, n, ci, ih, iw)];
                                    }
                            y[yIdx(g, n, co, oh, ow)] = s;
                        }
        }

        /** dx [N,Ci,H,W] (overwritten) = every w[co,ci,i,j] * dy[n,co,oh,ow] added where it was read. */
        static void backwardData(Dims g, double[] dy, double[] w, double[] dx) {
            Arrays.fill(dx, 0, g.n() * g.ci() * g.h() * g.w(), 0.0);
            int ho = g.ho(), wo = g.wo();
            for (int n = 0; n < g.n(); n++)
                for (int co = 0; co < g.co(); co++)
                    for (int oh = 0; oh < ho; oh++)
                        for (int ow = 0; ow < wo; ow++) {
                            double gy = dy[yIdx(g, n, co, oh, ow)];
                            for (int ci = 0; ci < g.ci(); ci++)
                                for (int i = 0; i < g.kh(); i++)
                                    for (int j = 0; j < g.kw(); j++) {
                                        int ih = oh - g.pad() + g.dil() * i, iw = ow - g.pad() + g.dil() * j;
                                        if (ih < 0 || ih >= g.h() || iw < 0 || iw >= g.w()) continue;
                                        dx[xIdx(g, n, ci, ih, iw)] += w[wIdx(g, co, ci, i, j)] * gy;
                                    }
                        }
        }

        /** dw [Co,Ci,kh,kw] (overwritten) = sum over n, oh, ow of dy * the x element the tap read. */
        static void backwardWeight(Dims g, double[] x, double[] dy, double[] dw) {
            int ho = g.ho(), wo = g.wo();
            for (int co = 0; co < g.co(); co++)
                for (int ci = 0; ci < g.ci(); ci++)
                    for (int i = 0; i < g.kh(); i++)
                        for (int j = 0; j < g.kw(); j++) {
                            double s = 0;
                            for (int n = 0; n < g.n(); n++)
                                for (int oh = 0; oh < ho; oh++)
                                    for (int ow = 0; ow < wo; ow++) {
                                        int ih = oh - g.pad() + g.dil() * i, iw = ow - g.pad() + g.dil() * j;
                                        if (ih < 0 || ih >= g.h() || iw < 0 || iw >= g.w()) continue;
                                        s += dy[yIdx(g, n, co, oh, ow)] * x[xIdx(g, n, ci, ih, iw)];
                                    }
                            dw[wIdx(g, co, ci, i, j)] = s;
                        }
        }

        /** db [Co] (overwritten) = sum of dy over n, oh, ow. */
        static void backwardBias(Dims g, double[] dy, double[] db) {
            for (int co = 0; co < g.co(); co++) {
                double s = 0;
                for (int n = 0; n < g.n(); n++)
                    for (int oh = 0; oh < g.ho(); oh++)
                        for (int ow = 0; ow < g.wo(); ow++) s += dy[yIdx(g, n, co, oh, ow)];
                db[co] = s;
            }
        }

        private static int xIdx(Dims g, int n, int c, int h, int w) {
            return ((n * g.ci() + c) * g.h() + h) * g.w() + w;
        }

        private static int yIdx(Dims g, int n, int c, int h, int w) {
            return ((n * g.co() + c) * g.ho() + h) * g.wo() + w;
        }

        private static int wIdx(Dims g, int co, int ci, int i, int j) {
            return ((co * g.ci() + ci) * g.kh() + i) * g.kw() + j;
        }
    }

    // =========================================================================================

    /**
     * float32 kernels: im2col + GEMM. Per image n, with K = Ci*kh*kw and P = Ho*Wo:
     * <pre>
     *   col[K, P]     = im2col(x_n)           row (ci,i,j), column (oh,ow): x_n[ci, oh-p+d*i, ow-p+d*j] or 0
     *   forward       y_n[Co, P]  = W[Co, K] * col[K, P] (+ b broadcast over P)
     *   backward-data dcol[K, P]  = W^T * dy_n[Co, P];  dx_n = col2im(dcol) (scatter-add of the taps)
     *   backward-wgt  dW[Co, K]  += dy_n[Co, P] * col[K, P]^T   (col recomputed from x: not saved)
     *   bias          db[Co]     += row sums of dy_n
     * </pre>
     * col is never stored whole: the GEMM asks for its packed panels ({@link Gemm.PanelSource}) and
     * {@link #im2colRow} writes a few rows (or, for backward-weight, a sliver's rows) at a time
     * into a small per-thread buffer that the kernel's packer copies into the panel. W (and W^T)
     * is packed once per call for all images ({@link Gemm#packA}). 1x1 with padding 0 skips
     * im2col: col is x_n itself, and dx_n is written by the GEMM.
     *
     * <p>Threading ({@link Threading#AUTO}): with at least as many images as threads the workers
     * take whole images from a shared counter, each with a single-threaded GEMM (backward-weight:
     * whole groups of images, each group summing into its own partial dW, the groups added in a
     * fixed order, so dW is bit-for-bit the same for any thread count and timing): no
     * synchronisation inside an image and the B panel stays in that core's cache. With fewer
     * images (sampling one image) the images run one after another and the GEMM (and col2im)
     * split the work. Measured on the 2-core dev machine (best of interleaved runs, 64ch 32x32
     * and 128ch 16x16 3x3): images-parallel was as fast as or faster than the split GEMM for
     * every pass at batch 3, 4 and 128 (e.g. forward at 128: 64 ms vs 138 ms), so even a batch
     * that is not a multiple of the thread count goes by images.
     *
     * <p>Buffers: the dcol buffers and im2col row buffers are per thread, grow to the largest
     * layer once and are reused; the packed weights and the partial dW of image groups beyond
     * the first are pooled tensors from a {@link Scope} the kernel opens itself: no large
     * allocation per call in steady state.
     *
     * <p>Tried and dropped: backward-data as a transposed convolution (dx = conv(dy, w rotated
     * 180 degrees with Ci/Co swapped), padding d(k-1)-p, no col2im) measured no faster than
     * dcol + col2im, both with the old im2col and again with im2col packed into the panels
     * (training step, ngf 64, batch 16, one thread, four interleaved rounds: 1.93-2.03 s either
     * way; a first three-round run that showed 20% had caught the machine's slow phases). Measured (sampling step, ngf 64, batch 25, one thread, interleaved with the
     * previous jar): packing W once and im2col into the panels, plus one copy per im2col row,
     * took the step from 1.36-1.40 s to 1.25-1.30 s.
     */
    public static final class Cpu {
        private Cpu() {}

        /** How work is split across {@link Parallel} workers; AUTO picks as described above. */
        public enum Threading { AUTO, IMAGES, GEMM }

        /**
         * y [N,Co,Ho,Wo] (overwritten) = conv(x, w) + b; b may be null. 3x3 convolutions with at
         * least 16 channels each side go through {@link Conv2dWinograd} (unless
         * -Dncsn.conv.winograd=off), the others through im2col.
         */
        public static void forward(Dims g, float[] x, float[] w, float[] b, float[] y) {
            if (Conv2dWinograd.applies(g)) Conv2dWinograd.forward(Simd.gemmKernel(), g, x, w, b, y);
            else forward(Simd.gemmKernel(), Threading.AUTO, g, x, w, b, y);
        }

        /** dx [N,Ci,H,W] (overwritten) from dy [N,Co,Ho,Wo] and w (Winograd where forward is). */
        public static void backwardData(Dims g, float[] dy, float[] w, float[] dx) {
            if (Conv2dWinograd.applies(g)) Conv2dWinograd.backwardData(Simd.gemmKernel(), g, dy, w, dx);
            else backwardData(Simd.gemmKernel(), Threading.AUTO, g, dy, w, dx);
        }

        /** dw [Co,Ci,kh,kw] (overwritten) and, when db != null, db [Co] (overwritten); Winograd where forward is. */
        public static void backwardWeight(Dims g, float[] x, float[] dy, float[] dw, float[] db) {
            if (Conv2dWinograd.applies(g)) {
                Conv2dWinograd.backwardWeight(Simd.gemmKernel(), g, x, dy, dw, db);
            } else {
                backwardWeight(Simd.gemmKernel(), Threading.AUTO, g, x, dy, dw, db);
            }
        }

        // ---- forward ------------------------------------------------------------------------

        public static void forward(GemmKernel kernel, Threading threading, Dims g, float[] x, float[] w, float[] b,
                                   float[] y) {
            int nImages = g.n(), co = g.co(), k = g.k();
            try (Scope scope = Scope.open()) {
                // W [Co, K] packed once for all images (a pooled buffer: no allocation in steady state).
                Gemm.PackedA wp = Gemm.packA(kernel, false, co, k, w, 0, k,
                        Tensor.empty(DType.F32, Gemm.packedASize(kernel, co, k)).f32());
                if (byImages(threading, nImages)) {
                    AtomicInteger next = new AtomicInteger();
                    Parallel.forRange(Math.min(Parallel.threads(), nImages), 1, (lo, hi) -> {
                        for (int n; (n = next.getAndIncrement()) < nImages; ) forwardImage(kernel, false, g, x, wp, b, y, n);
                    });
                } else {
                    for (int n = 0; n < nImages; n++) forwardImage(kernel, true, g, x, wp, b, y, n);
                }
            }
        }

        /** im2col rows per copy into a GEMM panel: 8 x a 1024-column panel is 32 KiB, within L1. */
        private static final int PANEL_ROWS = 8;

        /** Image n's im2col matrix [K, P] as GEMM panels: x itself for a 1x1 pad-0 conv, else packed straight from x. */
        private static Gemm.PanelSource columnPanels(GemmKernel kernel, Dims g, float[] x, int xOff) {
            if (g.pointwise()) return Gemm.panels(kernel, false, x, xOff, g.p());
            int nr = kernel.nr();
            return (p0, kc, j0, nc, bp, bp0) -> {
                // A few im2col rows at a time into a buffer that stays in L1, then vector copies into the panel.
                float[] rows = SCRATCH.get().rows(PANEL_ROWS * nc);
                for (int r0 = 0; r0 < kc; r0 += PANEL_ROWS) {
                    int n = Math.min(PANEL_ROWS, kc - r0);
                    for (int r = 0; r < n; r++) im2colRow(g, x, xOff, p0 + r0 + r, j0, j0 + nc, rows, r * nc);
                    kernel.packBRows(rows, 0, nc, n, nc, kc, bp, bp0 + r0 * nr);
                }
            };
        }

        /** y_n[Co, P] = W[Co, K] * col_n[K, P] (+ b). {@code parallel}: the GEMM uses all workers. */
        private static void forwardImage(GemmKernel kernel, boolean parallel, Dims g, float[] x, Gemm.PackedA w,
                                         float[] b, float[] y, int n) {
            int co = g.co(), p = g.p();
            int xOff = n * g.ci() * g.h() * g.w(), yOff = n * co * p;
            float beta = 0f;
            if (b != null) {
                // Bias first, then the GEMM accumulates onto it (beta = 1): no second pass over y.
                for (int c = 0; c < co; c++) Arrays.fill(y, yOff + c * p, yOff + (c + 1) * p, b[c]);
                beta = 1f;
            }
            Gemm.sgemm(kernel, parallel, w, columnPanels(kernel, g, x, xOff), p, 1f, beta, y, yOff, p);
        }

        /**
         * Image n's transposed im2col matrix col^T [P, K] as GEMM panels (backward-weight's B):
         * per sliver of nr im2col rows, their pixel range goes to a small buffer, which the
         * kernel's transposing packer (gathers) turns into the sliver.
         */
        private static Gemm.PanelSource transposedColumnPanels(GemmKernel kernel, Dims g, float[] x, int xOff) {
            if (g.pointwise()) return Gemm.panels(kernel, true, x, xOff, g.p());
            int nr = kernel.nr();
            return (p0, kc, j0, nc, bp, bp0) -> {
                float[] rows = SCRATCH.get().rows(nr * kc);
                for (int sl = 0; sl < nc; sl += nr) {
                    int cols = Math.min(nr, nc - sl);
                    for (int r = 0; r < cols; r++) im2colRow(g, x, xOff, j0 + sl + r, p0, p0 + kc, rows, r * kc);
                    kernel.packB(true, rows, 0, kc, 0, kc, 0, cols, bp, bp0 + sl * kc);
                }
            };
        }

        // ---- backward-data ------------------------------------------------------------------

        public static void backwardData(GemmKernel kernel, Threading threading, Dims g, float[] dy, float[] w,
                                        float[] dx) {
            int nImages = g.n(), co = g.co(), k = g.k();
            try (Scope scope = Scope.open()) {
                // W^T [K, Co] packed once for all images.
                Gemm.PackedA wt = Gemm.packA(kernel, true, k, co, w, 0, k,
                        Tensor.empty(DType.F32, Gemm.packedASize(kernel, k, co)).f32());
                if (byImages(threading, nImages)) {
                    AtomicInteger next = new AtomicInteger();
                    Parallel.forRange(Math.min(Parallel.threads(), nImages), 1, (lo, hi) -> {
                        Scratch s = SCRATCH.get();
                        for (int n; (n = next.getAndIncrement()) < nImages; ) dataImage(kernel, false, g, dy, wt, dx, n, s);
                    });
                } else {
                    Scratch s = SCRATCH.get();
                    for (int n = 0; n < nImages; n++) dataImage(kernel, true, g, dy, wt, dx, n, s);
                }
            }
        }

        /** dx_n = col2im(W^T[K, Co] * dy_n[Co, P]); for 1x1 pad 0 the GEMM writes dx_n directly. */
        private static void dataImage(GemmKernel kernel, boolean parallel, Dims g, float[] dy, Gemm.PackedA wt,
                                      float[] dx, int n, Scratch s) {
            int co = g.co(), k = g.k(), p = g.p();
            int xOff = n * g.ci() * g.h() * g.w(), yOff = n * co * p;
            Gemm.PanelSource dyn = Gemm.panels(kernel, false, dy, yOff, p);
            if (g.pointwise()) {
                Gemm.sgemm(kernel, parallel, wt, dyn, p, 1f, 0f, dx, xOff, p);
                return;
            }
            float[] dcol = s.col(k * p);
            Gemm.sgemm(kernel, parallel, wt, dyn, p, 1f, 0f, dcol, 0, p);
            if (parallel) {
                // Channels are independent in col2im (each owns its dx plane).
                int grain = Math.max(1, (1 << 15) / (g.kh() * g.kw() * p));
                Parallel.forRange(g.ci(), grain, (lo, hi) -> col2im(g, dcol, dx, xOff, lo, hi));
            } else {
                col2im(g, dcol, dx, xOff, 0, g.ci());
            }
        }

        // ---- backward-weight and bias -------------------------------------------------------

        public static void backwardWeight(GemmKernel kernel, Threading threading, Dims g, float[] x, float[] dy,
                                          float[] dw, float[] db) {
            int nImages = g.n(), co = g.co(), k = g.k(), wSize = co * k;
            // dW is a sum over images. To keep it bit-for-bit reproducible (a resumed run must
            // repeat the uninterrupted one) whatever the thread count or the threads' timing, the
            // images are cut into a FIXED number of contiguous groups; each group sums its images
            // in order into its own buffer (group 0 into dw itself), and the groups are added in
            // group order at the end. Workers take whole groups from a counter, so a slow core
            // simply takes fewer groups; which worker runs a group does not change any bits.
            int groups = Math.min(nImages, WEIGHT_GROUPS);
            try (Scope scope = Scope.open()) {
                float[] part = groups > 1 ? Tensor.empty(DType.F32, (groups - 1) * wSize).f32() : null;
                double[] pb = db == null ? null : new double[groups * co];
                if (byImages(threading, nImages)) {
                    AtomicInteger next = new AtomicInteger();
                    Parallel.forRange(Math.min(Parallel.threads(), groups), 1, (lo, hi) -> {
                        Scratch s = SCRATCH.get();
                        for (int gi; (gi = next.getAndIncrement()) < groups; )
                            weightGroup(kernel, false, g, x, dy, dw, part, pb, gi, groups, s);
                    });
                } else {
                    Scratch s = SCRATCH.get();
                    for (int gi = 0; gi < groups; gi++) weightGroup(kernel, true, g, x, dy, dw, part, pb, gi, groups, s);
                }
                for (int t = 1; t < groups; t++)
                    for (int i = 0, o = (t - 1) * wSize; i < wSize; i++) dw[i] += part[o + i];
                if (db != null) {
                    for (int c = 0; c < co; c++) {
                        double sum = 0;
                        for (int t = 0; t < groups; t++) sum += pb[t * co + c];
                        db[c] = (float) sum;
                    }
                }
            }
        }

        /** Groups of images whose dW partial sums are reduced in a fixed order (see backwardWeight). */
        private static final int WEIGHT_GROUPS = 8;

        /** Group gi of {@code groups}: images [gi*N/groups, (gi+1)*N/groups) summed into its own dW buffer. */
        private static void weightGroup(GemmKernel kernel, boolean parallel, Dims g, float[] x, float[] dy, float[] dw,
                                        float[] part, double[] pb, int gi, int groups, Scratch s) {
            int nImages = g.n(), co = g.co(), wSize = co * g.k();
            int n0 = (int) ((long) gi * nImages / groups), n1 = (int) ((long) (gi + 1) * nImages / groups);
            float[] pw = gi == 0 ? dw : part;
            int pwOff = gi == 0 ? 0 : (gi - 1) * wSize;
            for (int n = n0; n < n1; n++)
                weightImage(kernel, parallel, g, x, dy, pw, pwOff, n == n0 ? 0f : 1f, pb, gi * co, n, s);
        }

        /**
         * dw[dwOff..] = dy_n[Co, P] * col_n[K, P]^T + beta * dw[dwOff..];
         * pb[pbOff + co] += row sums of dy_n (when pb != null).
         */
        private static void weightImage(GemmKernel kernel, boolean parallel, Dims g, float[] x, float[] dy, float[] dw,
                                        int dwOff, float beta, double[] pb, int pbOff, int n, Scratch s) {
            int co = g.co(), k = g.k(), p = g.p();
            int xOff = n * g.ci() * g.h() * g.w(), yOff = n * co * p;
            // dy_n packed once (not once per column panel of dW, as the plain sgemm would for these skinny products).
            Gemm.PackedA a = Gemm.packA(kernel, false, co, p, dy, yOff, p, s.packed(Gemm.packedASize(kernel, co, p)));
            Gemm.sgemm(kernel, parallel, a, transposedColumnPanels(kernel, g, x, xOff), k, 1f, beta, dw, dwOff, k);
            if (pb != null) for (int c = 0; c < co; c++) pb[pbOff + c] += Reduce.Cpu.sumRun(dy, yOff + c * p, p);
        }

        /** db [Co] (overwritten) = sum of dy over n, oh, ow (used when w needs no gradient). */
        public static void backwardBias(Dims g, float[] dy, float[] db) {
            int co = g.co(), p = g.p(), nImages = g.n();
            Parallel.forRange(co, Math.max(1, (1 << 16) / Math.max(1, nImages * p)), (lo, hi) -> {
                for (int c = lo; c < hi; c++) {
                    double sum = 0;
                    for (int n = 0; n < nImages; n++) sum += Reduce.Cpu.sumRun(dy, (n * co + c) * p, p);
                    db[c] = (float) sum;
                }
            });
        }

        // ---- im2col / col2im ----------------------------------------------------------------

        /**
         * Columns [q0, q1) of row r of image x[xOff ..]'s im2col matrix, written to dst[dstOff ..]:
         * row r = (ci, i, j) holds, for each output pixel q = (oh, ow), x[ci, oh + dy, ow + dx] with
         * dy = i*d - p, dx = j*d - p, or 0 outside the image. With Wo == W the valid rows are one
         * contiguous run of x (one copy, then the out-of-image columns zeroed); otherwise each
         * output row's piece is a zero head, one arraycopy and a zero tail.
         */
        static void im2colRow(Dims g, float[] x, int xOff, int r, int q0, int q1, float[] dst, int dstOff) {
            final int h = g.h(), w = g.w(), kw = g.kw(), kk = g.kh() * kw, pad = g.pad(), d = g.dil();
            final int ho = g.ho(), wo = g.wo();
            int ci = r / kk, t = r - ci * kk, i = t / kw, j = t - i * kw;
            int xc = xOff + ci * h * w;
            int dy = i * d - pad, dx = j * d - pad;
            // Output pixel (oh, ow) reads input (oh + dy, ow + dx): valid when 0 <= oh + dy < h etc.
            int ohLo = clamp(-dy, 0, ho), ohHi = clamp(h - dy, ohLo, ho);
            int owLo = clamp(-dx, 0, wo), owHi = clamp(w - dx, owLo, wo);
            int shift = dstOff - q0; // dst index of pixel q is q + shift
            if (wo == w) {
                // Same width (stride 1, "same" padding: every 3x3 conv here): pixel q reads x[xc + q + dy*w + dx]
                // whenever valid, so the valid rows are ONE copy; then the |dx| columns per row that
                // fall outside the image are zeroed. (One arraycopy per output row instead was most of
                // im2col's time at 7x7 and 14x14.)
                int lo = clamp(ohLo * wo, q0, q1), hi = clamp(ohHi * wo, lo, q1);
                Arrays.fill(dst, q0 + shift, lo + shift, 0f);
                Arrays.fill(dst, hi + shift, q1 + shift, 0f);
                // Keep the reads inside the plane: the first valid row's first -dx pixels and the last
                // valid row's last dx pixels are outside the image anyway (zeroed below).
                int cLo = dx < 0 ? Math.min(hi, Math.max(lo, ohLo * wo - dx)) : lo;
                int cHi = dx > 0 ? Math.max(cLo, Math.min(hi, ohHi * wo - dx)) : hi;
                if (cHi > cLo) System.arraycopy(x, xc + cLo + dy * w + dx, dst, cLo + shift, cHi - cLo);
                if (dx != 0 && hi > lo) {
                    for (int oh = lo / wo, end = (hi - 1) / wo; oh <= end; oh++) {
                        int base = oh * wo;
                        for (int q = Math.max(lo, base), e = Math.min(hi, base + owLo); q < e; q++) dst[q + shift] = 0f;
                        for (int q = Math.max(lo, base + owHi), e = Math.min(hi, base + wo); q < e; q++) dst[q + shift] = 0f;
                    }
                }
                return;
            }
            for (int oh = q0 / wo, q = q0; q < q1; oh++) {
                int rowEnd = Math.min(q1, (oh + 1) * wo), base = oh * wo;
                if (oh < ohLo || oh >= ohHi) {
                    Arrays.fill(dst, q + shift, rowEnd + shift, 0f);
                } else {
                    int lo = clamp(base + owLo, q, rowEnd), hi = clamp(base + owHi, lo, rowEnd);
                    for (int e = q + shift, end = lo + shift; e < end; e++) dst[e] = 0f;
                    if (hi > lo) System.arraycopy(x, xc + (oh + dy) * w + (lo - base) + dx, dst, lo + shift, hi - lo);
                    for (int e = hi + shift, end = rowEnd + shift; e < end; e++) dst[e] = 0f;
                }
                q = rowEnd;
            }
        }

        /**
         * The adjoint of im2col ({@link #im2colRow}): for channels [ciLo, ciHi), dx[xOff + plane ci] (overwritten)
         * = sum over the kh*kw rows (ci, i, j) of dcol scattered back to where im2col read them.
         */
        static void col2im(Dims g, float[] dcol, float[] dx, int xOff, int ciLo, int ciHi) {
            final int h = g.h(), w = g.w(), kh = g.kh(), kw = g.kw(), pad = g.pad(), d = g.dil();
            final int ho = g.ho(), wo = g.wo(), p = ho * wo;
            for (int ci = ciLo; ci < ciHi; ci++) {
                int xc = xOff + ci * h * w;
                Arrays.fill(dx, xc, xc + h * w, 0f);
                for (int i = 0; i < kh; i++) {
                    int dy = i * d - pad;
                    int ohLo = clamp(-dy, 0, ho), ohHi = clamp(h - dy, ohLo, ho);
                    for (int j = 0; j < kw; j++) {
                        int dx0 = j * d - pad;
                        int owLo = clamp(-dx0, 0, wo), owHi = clamp(w - dx0, owLo, wo);
                        int len = owHi - owLo;
                        if (len <= 0) continue;
                        int src = ((ci * kh + i) * kw + j) * p + owLo;
                        for (int oh = ohLo; oh < ohHi; oh++) {
                            int a = xc + (oh + dy) * w + owLo + dx0, b = src + oh * wo;
                            for (int q = 0; q < len; q++) dx[a + q] += dcol[b + q];
                        }
                    }
                }
            }
        }

        private static int clamp(int v, int lo, int hi) {
            return Math.min(Math.max(v, lo), hi);
        }

        static boolean byImages(Threading threading, int nImages) {
            int t = Parallel.threads();
            return switch (threading) {
                case IMAGES -> true;
                case GEMM -> false;
                case AUTO -> t > 1 && nImages >= t;
            };
        }

        /**
         * Per-thread scratch (dcol, im2col row slices, packed dy_n), grown to the largest layer and kept. Only
         * used for the duration of one image, so two worker slots on one thread cannot clash.
         */
        private static final class Scratch {
            private float[] col = new float[0], rows = new float[0], packed = new float[0];

            /** backward-data's dcol [K, P]. */
            float[] col(int n) {
                return col = grown(col, n);
            }

            /** A few im2col row slices while packing a GEMM panel (see columnPanels). */
            float[] rows(int n) {
                return rows = grown(rows, n);
            }

            /** backward-weight's dy_n packed as the GEMM's A. */
            float[] packed(int n) {
                return packed = grown(packed, n);
            }

            private static float[] grown(float[] a, int n) {
                return a.length < n ? new float[n] : a;
            }
        }

        private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);
    }

    // =========================================================================================

    /**
     * CUDA path (float32, NCHW): every pass goes through one {@link Impl}, chosen once by
     * {@code -Dncsn.cuda.conv} and logged once with the reason. Only {@code own} exists now: the
     * implicit-GEMM kernels of src/main/cuda/conv2d.cu (64x64 output tile, K slices of 16, 256
     * threads with 4x4 outputs each; see gemm_tile.cuh). cuDNN is not integrated yet; it would be
     * a second {@link Impl}. The bias gradient is one kernel for every implementation.
     *
     * <p>FLOPs of each pass (forward, backward-data, backward-weight): {@link Dims#flops()} =
     * 2 N Co Ci kh kw Ho Wo (multiply-adds of the direct definition, padding taps included).
     */
    public static final class Gpu {
        private Gpu() {}

        /** One convolution implementation on CUDA tensors; every output is overwritten. */
        interface Impl {
            /** y [N,Co,Ho,Wo] = conv(x, w) + b (b may be null). */
            void forward(Dims g, Tensor x, Tensor w, Tensor b, Tensor y);

            /** dx [N,Ci,H,W] from dy [N,Co,Ho,Wo] and w. */
            void backwardData(Dims g, Tensor dy, Tensor w, Tensor dx);

            /** dw [Co,Ci,kh,kw] = sum over the batch and pixels of dy * the tap's x. */
            void backwardWeight(Dims g, Tensor x, Tensor dy, Tensor dw);
        }

        private static final java.util.logging.Logger LOG = java.util.logging.Logger.getLogger(Gpu.class.getName());
        private static volatile Impl impl;

        /** The implementation named by -Dncsn.cuda.conv (default "own"), chosen on first use. */
        static Impl impl() {
            Impl i = impl;
            if (i != null) return i;
            synchronized (Gpu.class) {
                if (impl == null) {
                    String p = System.getProperty("ncsn.cuda.conv", "own").trim();
                    if (!p.equals("own"))
                        throw new TensorException("conv2d: -Dncsn.cuda.conv=" + p
                                + " is not supported; the only CUDA convolution implementation is 'own'"
                                + " (own implicit-GEMM kernels; cuDNN is not integrated)");
                    impl = new OwnImplicitGemm();
                    LOG.info("conv2d on CUDA: own implicit-GEMM kernels (cuDNN not integrated; -Dncsn.cuda.conv=own)");
                }
                return impl;
            }
        }

        static void forward(Dims g, Tensor x, Tensor w, Tensor b, Tensor y) {
            requireF32(g, x);
            impl().forward(g, x, w, b, y);
        }

        static void backwardData(Dims g, Tensor dy, Tensor w, Tensor dx) {
            requireF32(g, dy);
            impl().backwardData(g, dy, w, dx);
        }

        static void backwardWeight(Dims g, Tensor x, Tensor dy, Tensor dw) {
            requireF32(g, dy);
            impl().backwardWeight(g, x, dy, dw);
        }

        /** db [Co] (overwritten) = sum of dy over n, oh, ow: one block per channel, double sums. */
        static void backwardBias(Dims g, Tensor dy, Tensor db) {
            Launch.kernel("conv2d_bias_grad_f32").ptr(dy).ptr(db).i(g.n()).i(g.co()).i(g.p())
                    .grid(g.co()).block(256).run();
        }

        private static void requireF32(Dims g, Tensor t) {
            if (t.dtype() != DType.F32)
                throw new TensorException("conv2d: CUDA tensors must be float32, got " + t.describe() + " (" + g + ")");
        }

        /** The kernels of conv2d.cu; grids as in that file's header. */
        static final class OwnImplicitGemm implements Impl {
            private static final int TILE = 64, SLICE = 16, THREADS = 256;
            /** CUDA's limit on gridDim.y and gridDim.z. */
            private static final int GRID_YZ = 65535;

            @Override
            public void forward(Dims g, Tensor x, Tensor w, Tensor b, Tensor y) {
                grid(g, "forward", g.p(), g.co(), g.n());
                dims(Launch.kernel("conv2d_forward_f32").ptr(x).ptr(w).ptr(b).ptr(y), g)
                        .grid(tiles(g.p()), tiles(g.co()), g.n()).block(THREADS).run();
            }

            @Override
            public void backwardData(Dims g, Tensor dy, Tensor w, Tensor dx) {
                int hw = g.h() * g.w();
                grid(g, "backward-data", hw, g.ci(), g.n());
                dims(Launch.kernel("conv2d_backward_data_f32").ptr(dy).ptr(w).ptr(dx), g)
                        .grid(tiles(hw), tiles(g.ci()), g.n()).block(THREADS).run();
            }

            /**
             * The reduction over R = N*Ho*Wo is cut into {@code splits} chunks so that small dW
             * (few 64x64 tiles) still fills the GPU: about 2 blocks per SM, each chunk at least 512
             * rows, at most 64 chunks. Partials go to a scratch [splits, Co, K] and are added in
             * split order (deterministic); one split writes dw directly.
             */
            @Override
            public void backwardWeight(Dims g, Tensor x, Tensor dy, Tensor dw) {
                long r = (long) g.n() * g.p();
                int tiles = tiles(g.k()) * tiles(g.co());
                int target = 2 * ncsn.cuda.CudaContext.get().multiprocessorCount();
                long want = Math.min(Math.min((target + tiles - 1) / tiles, Math.max(1, r / 512)), 64);
                long chunk = ceilDiv(ceilDiv(r, want), SLICE) * SLICE;
                int splits = (int) ceilDiv(r, chunk);
                grid(g, "backward-weight", g.k(), g.co(), splits);
                if (splits == 1) {
                    launchWeight(g, x, dy, dw, (int) chunk, 1);
                    return;
                }
                try (Scope s = Scope.open()) {
                    Tensor part = Tensor.empty(dw.device(), DType.F32, splits, g.co(), g.k());
                    launchWeight(g, x, dy, part, (int) chunk, splits);
                    long count = (long) g.co() * g.k();
                    Launch.kernel("conv2d_weight_reduce_f32").ptr(part).ptr(dw).i(splits).l(count).elements(count).run();
                }
            }

            private static void launchWeight(Dims g, Tensor x, Tensor dy, Tensor out, int chunk, int splits) {
                dims(Launch.kernel("conv2d_backward_weight_f32").ptr(x).ptr(dy).ptr(out), g).i(chunk)
                        .grid(tiles(g.k()), tiles(g.co()), splits).block(THREADS).run();
            }

            private static Launch dims(Launch l, Dims g) {
                return l.i(g.n()).i(g.ci()).i(g.h()).i(g.w()).i(g.co()).i(g.kh()).i(g.kw()).i(g.pad()).i(g.dil());
            }

            private static int tiles(int n) {
                return (n + TILE - 1) / TILE;
            }

            private static long ceilDiv(long a, long b) {
                return (a + b - 1) / b;
            }

            /** The grid's y (tiles of rows) and z (images or splits) must fit CUDA's limits. */
            private static void grid(Dims g, String pass, int cols, int rows, int z) {
                if (tiles(rows) > GRID_YZ || z > GRID_YZ)
                    throw new TensorException("conv2d on CUDA (" + pass + "): " + g + " needs a grid of " + tiles(cols)
                            + " x " + tiles(rows) + " x " + z + " blocks; y and z are limited to " + GRID_YZ);
            }
        }
    }

    // =========================================================================================

    /**
     * Catalog cases: every geometry NCSN uses (3x3 with padding = dilation 1/2/4, 1x1 shortcut),
     * plus valid convolution, no bias, batch 1, a non-square 5x3 kernel, padding != dilation, and
     * channel counts 3/5/7 on odd spatial sizes. Sizes are small: the gradient check runs two
     * forwards per probed element.
     */
    static List<OpCatalog.Case> cases() {
        List<OpCatalog.Case> out = new ArrayList<>();
        // name, N, Ci, H, W, Co, kh, kw, padding, dilation, bias
        out.add(conv("3x3 p1 d1 bias", 2, 3, 7, 9, 5, 3, 3, 1, 1, true));
        out.add(conv("3x3 p2 d2 bias", 2, 5, 7, 9, 3, 3, 3, 2, 2, true));
        out.add(conv("3x3 p4 d4 bias", 2, 3, 9, 11, 5, 3, 3, 4, 4, true));
        out.add(conv("1x1 p0 bias (shortcut)", 2, 7, 5, 7, 5, 1, 1, 0, 1, true));
        out.add(conv("3x3 p1 d1 no bias", 2, 5, 7, 9, 7, 3, 3, 1, 1, false));
        out.add(conv("3x3 p0 valid", 2, 3, 7, 9, 5, 3, 3, 0, 1, true));
        out.add(conv("batch 1 3x3 p1", 1, 7, 6, 5, 3, 3, 3, 1, 1, true));
        out.add(conv("3x3 p1 d2 (shrinks)", 2, 3, 8, 9, 5, 3, 3, 1, 2, true));
        out.add(conv("5x3 kernel p2 d1", 2, 3, 7, 8, 5, 5, 3, 2, 1, true));
        out.add(conv("1x1 p1 (padded pointwise)", 1, 5, 5, 7, 3, 1, 1, 1, 1, false));
        // Larger than one 64x64 tile of the CUDA kernels in every GEMM dimension (Co, pixels, the
        // K slices of 16, and for backward-weight N*Ho*Wo >= 1024 so the reduction is split):
        // exercises the tile edges on the GPU. Fewer gradcheck probes keep the float64 check quick.
        GradCheck.Options few = GradCheck.Options.defaults().withMaxElements(24);
        out.add(conv("multi-tile 3x3 p2 d2", 4, 3, 17, 19, 66, 3, 3, 2, 2, true).gradOptions(few));
        out.add(conv("multi-tile 1x1 Ci 70 -> Co 65", 2, 70, 9, 9, 65, 1, 1, 0, 1, true).gradOptions(few));
        out.add(conv("multi-tile 3x3 p4 d4 batch 1", 1, 9, 13, 11, 67, 3, 3, 4, 4, false).gradOptions(few));
        return out;
    }

    private static OpCatalog.Case conv(String variant, int n, int ci, int h, int w, int co, int kh, int kw, int pad,
                                       int dil, boolean bias) {
        String label = variant + " x[" + n + "," + ci + "," + h + "," + w + "] w[" + co + "," + ci + "," + kh + "," + kw + "]";
        return OpCatalog.Case.of("conv2d", label, seed -> {
            Tensor x = OpCatalog.normal(seed, n, ci, h, w).name("x");
            Tensor wt = OpCatalog.normal(seed + 1, co, ci, kh, kw).name("w");
            if (!bias) return new Tensor[] {x, wt};
            return new Tensor[] {x, wt, OpCatalog.normal(seed + 2, co).name("b")};
        }, in -> apply(in[0], in[1], in.length > 2 ? in[2] : null, pad, dil));
    }
}
