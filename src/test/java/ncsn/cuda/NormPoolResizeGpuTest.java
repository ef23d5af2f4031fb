package ncsn.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.function.Function;
import java.util.function.LongFunction;
import ncsn.autograd.Autograd;
import ncsn.ops.AvgPool5;
import ncsn.ops.BilinearResize;
import ncsn.ops.CondInstanceNormPlus;
import ncsn.ops.MeanPool2;
import ncsn.ops.OpCatalog;
import ncsn.tensor.DType;
import ncsn.tensor.Device;
import ncsn.tensor.Scope;
import ncsn.tensor.Tensor;
import org.junit.jupiter.api.Test;

/**
 * CIN++, avgpool5, meanpool2 and bilinear resize on the GPU at NCSN-like sizes, against the
 * float64 reference (OpCatalog.compareGpu, limit 1e-4 of max|ref|): the catalog's cases are tiny
 * (planes below one block of 256 threads), these make every block-stride loop wrap, C exceed the
 * block size, and the resize gather ranges long. Also: the embedding and resize gradients are
 * bit-for-bit reproducible (no atomics), and one timing line per op with the bytes each kernel
 * moves (see the .cu headers), for the record. Skipped without a usable GPU.
 */
@RequiresGpu
class NormPoolResizeGpuTest {

    /** x ~ N(0,1) + channel offsets; embed rows gamma, alpha = 1 + 0.5 N(0,1), beta = N(0,1) (as the catalog's cases). */
    private static LongFunction<Tensor[]> cinInputs(int n, int c, int h, int w, int classes, double offset) {
        return seed -> {
            Tensor x = OpCatalog.normal(seed, n, c, h, w).name("x");
            double[] d = x.f64();
            for (int i = 0; i < d.length; i++) d[i] += offset * ((i / (h * w)) % c - c / 2.0) / c + 4 * offset;
            Tensor e = OpCatalog.normal(seed + 1, classes, 3 * c).name("embed");
            double[] ed = e.f64();
            for (int r = 0; r < classes; r++)
                for (int k = 0; k < 2 * c; k++) ed[r * 3 * c + k] = 1 + 0.5 * ed[r * 3 * c + k];
            return new Tensor[] {x, e};
        };
    }

    private static void check(OpCatalog.Case c) {
        OpCatalog.Outcome o = OpCatalog.compareGpu(c, 5);
        System.err.printf("[ncsn] %-60s error %.3g (limit %.3g)%n", c.label(), o.error(), o.limit());
        assertTrue(o.passed(), c.label() + ": error " + o.error() + " > " + o.limit() + " (" + o.detail() + ")");
    }

    @Test
    void cinMatchesReferenceAtNcsnSizes() {
        int[] y4 = {3, 3, 7, 3};
        check(OpCatalog.Case.of("cin_pp", "x[4,64,32,32] labels [3,3,7,3]", cinInputs(4, 64, 32, 32, 10, 0),
                in -> CondInstanceNormPlus.apply(in[0], in[1], y4)));
        check(OpCatalog.Case.of("cin_pp", "x[4,64,32,32] offset 2", cinInputs(4, 64, 32, 32, 10, 2),
                in -> CondInstanceNormPlus.apply(in[0], in[1], y4)));
        int[] y2 = {1, 1};
        check(OpCatalog.Case.of("cin_pp", "x[2,300,5,7] (C > block)", cinInputs(2, 300, 5, 7, 3, 0),
                in -> CondInstanceNormPlus.apply(in[0], in[1], y2)));
        int[] y1 = {0};
        check(OpCatalog.Case.of("cin_pp", "x[1,3,33,65] batch 1", cinInputs(1, 3, 33, 65, 2, 0),
                in -> CondInstanceNormPlus.apply(in[0], in[1], y1)));
    }

    @Test
    void poolsAndResizeMatchReference() {
        check(OpCatalog.Case.of("avgpool5", "[2,16,33,31]", s -> new Tensor[] {OpCatalog.normal(s, 2, 16, 33, 31).name("x")},
                in -> AvgPool5.apply(in[0])));
        check(OpCatalog.Case.of("meanpool2", "[2,16,32,30]", s -> new Tensor[] {OpCatalog.normal(s, 2, 16, 32, 30).name("x")},
                in -> MeanPool2.apply(in[0])));
        int[][] rs = {{2, 8, 16, 16, 32, 32}, {2, 8, 32, 32, 16, 16}, {1, 4, 8, 8, 64, 64}, {1, 3, 31, 17, 10, 40}};
        for (int[] r : rs)
            check(OpCatalog.Case.of("resize_bilinear", String.format("[%d,%d,%d,%d] -> %dx%d", r[0], r[1], r[2], r[3], r[4], r[5]),
                    s -> new Tensor[] {OpCatalog.normal(s, r[0], r[1], r[2], r[3]).name("x")},
                    in -> BilinearResize.apply(in[0], r[4], r[5])));
    }

    /**
     * The device copy of the labels is reused across calls with equal labels in one scope (and
     * must not be reused once its scope has closed): interleaved label sets give the CPU path's
     * results, and gradients through a reused copy match too.
     */
    @Test
    void labelsUploadIsReusedCorrectly() {
        int[] ya = {0, 2, 2}, yb = {1, 1, 0};
        Tensor[] base = cinInputs(3, 6, 5, 7, 3, 0).apply(21);
        Tensor xc = base[0].to(DType.F32), ec = base[1].to(DType.F32).requiresGrad(true);
        Tensor xg = xc.to(Device.CUDA), eg = base[1].to(Device.CUDA).requiresGrad(true);
        try {
            for (int round = 0; round < 2; round++) {   // round 2: the first round's scope (and upload) is gone
                try (Scope s = Scope.open()) {
                    double[] a1 = CondInstanceNormPlus.apply(xg, eg, ya).toDoubleArray();
                    double[] b = CondInstanceNormPlus.apply(xg, eg, yb).toDoubleArray();
                    Tensor outA2 = CondInstanceNormPlus.apply(xg, eg, ya.clone());
                    assertArrayEquals(a1, outA2.toDoubleArray(), 0.0, "same labels, same result");
                    assertArrayEquals(CondInstanceNormPlus.apply(xc, ec, yb).toDoubleArray(), b, 1e-4, "labels b");
                    Tensor g = OpCatalog.normal(4, outA2.shape());
                    Autograd.backward(outA2, g.to(Device.CUDA));
                    Autograd.backward(CondInstanceNormPlus.apply(xc, ec, ya), g.to(DType.F32));
                    assertArrayEquals(ec.grad().toDoubleArray(), eg.grad().toDoubleArray(), 1e-4, "embed grad, labels a");
                    ec.grad().free();
                    eg.grad().free();
                    ec.setGrad(null);
                    eg.setGrad(null);
                }
            }
        } finally {
            if (eg.grad() != null) eg.grad().free();
            xg.free();
            eg.free();
        }
    }

    /** Output and input gradients of f on the GPU as double arrays (inputs from a fixed seed). */
    private static double[][] run(LongFunction<Tensor[]> inputs, Function<Tensor[], Tensor> f) {
        Tensor[] base = inputs.apply(9);
        Tensor[] in = new Tensor[base.length];
        try (Scope s = Scope.open()) {
            for (int k = 0; k < base.length; k++) in[k] = base[k].to(Device.CUDA).requiresGrad(true);
            Tensor out = f.apply(in);
            Tensor g = OpCatalog.normal(3, out.shape()).to(Device.CUDA);
            Autograd.backward(out, g);
            double[][] r = new double[1 + in.length][];
            r[0] = out.toDoubleArray();
            for (int k = 0; k < in.length; k++) r[1 + k] = in[k].grad().toDoubleArray();
            return r;
        } finally {
            for (Tensor t : in) if (t != null && t.grad() != null) t.grad().free();
        }
    }

    @Test
    void gradientsAreReproducible() {
        int[] y = {1, 1, 1, 0, 1, 1, 1, 1};
        LongFunction<Tensor[]> cin = cinInputs(8, 32, 16, 16, 3, 0);
        Function<Tensor[], Tensor> cinF = in -> CondInstanceNormPlus.apply(in[0], in[1], y);
        LongFunction<Tensor[]> img = s -> new Tensor[] {OpCatalog.normal(s, 2, 8, 16, 16)};
        Function<Tensor[], Tensor> up = in -> BilinearResize.apply(in[0], 40, 36);
        for (var p : new Object[][] {{cin, cinF}, {img, up}}) {
            @SuppressWarnings("unchecked") var inputs = (LongFunction<Tensor[]>) p[0];
            @SuppressWarnings("unchecked") var f = (Function<Tensor[], Tensor>) p[1];
            double[][] a = run(inputs, f), b = run(inputs, f);
            for (int k = 0; k < a.length; k++) assertArrayEquals(a[k], b[k], 0.0, "run 2 differs from run 1 in result " + k);
        }
    }

    /**
     * Timing at an NCSN training size, x [128,128,32,32] (64 MiB): forward alone (inputs without
     * gradients: no autograd), then forward + backward (the backward adds the leaf-gradient
     * accumulation, one more read + write of x's size, on top of the op's kernels). Bytes per
     * element as in the .cu headers (kernel-issued traffic; the second read of x in the CIN++
     * statistics is normally an L2 hit). Includes the Java launch overhead and, for CIN++, the
     * labels upload (a synchronous host copy).
     */
    @Test
    void timing() {
        int n = 128, c = 128, h = 32, w = 32;
        int[] y = new int[n];
        for (int i = 0; i < n; i++) y[i] = i % 10;
        long el = (long) n * c * h * w;
        try (Scope s = Scope.open()) {
            Tensor x = OpCatalog.normal(1, n, c, h, w).to(Device.CUDA);
            Tensor e = Tensor.zeros(Device.CUDA, DType.F32, 10, 3 * c).fill(1.0);
            time("cin_pp forward (16 B/el issued: stats 8, write 8)", 16.0 * el, () -> CondInstanceNormPlus.apply(x, e, y));
            time("avgpool5 forward (8 B/el)", 8.0 * el, () -> AvgPool5.apply(x));
            time("meanpool2 forward (5 B per input el)", 5.0 * el, () -> MeanPool2.apply(x));
            time("resize 32->16 forward (4 B/in + 4 B/out el)", 4.0 * el + 1.0 * el, () -> BilinearResize.apply(x, h / 2, w / 2));
            Tensor small = x.reshape(n, 4 * c, h / 2, w / 2);   // the same bytes as 16x16 planes
            time("resize 16->32 forward (4 B/in + 4 B/out el)", 4.0 * el + 16.0 * el, () -> BilinearResize.apply(small, h, w));
            Tensor xg = x.copy().requiresGrad(true), eg = e.copy().requiresGrad(true);
            Tensor g = Tensor.zeros(Device.CUDA, DType.F32, n, c, h, w).fill(0.5);
            // fwd+bwd bytes: forward as above; backward = op kernels + leaf accumulation (12 B/el: read acc, read g, write).
            time("cin_pp fwd+bwd (16 + 20 + 12 B/el)", 48.0 * el, () -> Autograd.backward(CondInstanceNormPlus.apply(xg, eg, y), g));
            time("avgpool5 fwd+bwd (8 + 8 + 12 B/el)", 28.0 * el, () -> Autograd.backward(AvgPool5.apply(xg), g));
            Tensor gq = Tensor.zeros(Device.CUDA, DType.F32, n, c, h / 2, w / 2).fill(0.5);
            time("meanpool2 fwd+bwd (5 + 5 + 12 B/el)", 22.0 * el, () -> Autograd.backward(MeanPool2.apply(xg), gq));
            time("resize 32->16 fwd+bwd (5 + 5 + 12 B/el)", 22.0 * el, () -> Autograd.backward(BilinearResize.apply(xg, h / 2, w / 2), gq));
            xg.grad().free();
            eg.grad().free();
        }
    }

    private static void time(String what, double bytes, Runnable r) {
        for (int i = 0; i < 3; i++) try (Scope s = Scope.open()) { r.run(); }
        CudaContext.get().synchronize();
        int reps = 20;
        long t0 = System.nanoTime();
        for (int i = 0; i < reps; i++) try (Scope s = Scope.open()) { r.run(); }
        CudaContext.get().synchronize();
        double sec = (System.nanoTime() - t0) * 1e-9 / reps;
        System.err.printf("[ncsn] %-55s %8.3f ms  %7.1f GB/s%n", what, sec * 1e3, bytes / sec * 1e-9);
    }
}
