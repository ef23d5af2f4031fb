package ncsn.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.Random;
import java.util.function.Function;
import ncsn.autograd.Autograd;
import ncsn.ops.Conv2d;
import ncsn.ops.Linear;
import ncsn.tensor.Device;
import ncsn.tensor.Scope;
import ncsn.tensor.Tensor;
import org.junit.jupiter.api.Test;

/**
 * conv2d and linear on the GPU (own implicit-GEMM / tiled GEMM kernels) at NCSN-like sizes,
 * against the float32 CPU path (itself checked against the float64 reference by OpCatalogTest):
 * forward and every gradient, limit 1e-4 of max|cpu| (both are float32 sums of up to ~1000
 * products in different orders). Also: backward-weight is bit-for-bit reproducible (split-K with
 * a fixed-order reduction, no atomics), and a timing line per NCSN layer size for the record
 * (FLOPs per pass = 2 N Co Ci kh kw Ho Wo). The small awkward shapes are OpCatalogGpuTest's.
 * Skipped without a usable GPU.
 */
@RequiresGpu
class Conv2dGpuTest {
    private static final double LIMIT = 1e-4;


    @Test
    void convMatchesCpuAtNcsnSizes() {
        // n, ci, h, w, co, k, pad, dil, bias
        int[][] cases = {
            {5, 32, 16, 16, 48, 3, 1, 1, 1},
            {5, 32, 16, 16, 48, 3, 2, 2, 1},
            {5, 32, 16, 16, 48, 3, 4, 4, 1},
            {3, 64, 8, 8, 32, 1, 0, 1, 1},      // 1x1 shortcut, Ci != Co
            {1, 3, 13, 11, 128, 3, 1, 1, 1},    // first layer, batch 1, odd sizes
            {2, 128, 8, 8, 128, 3, 2, 2, 0},    // K = 1152: 72 slices
            {2, 7, 9, 10, 9, 3, 0, 1, 1},       // valid convolution: Ho < H
            {16, 16, 32, 32, 24, 3, 1, 1, 1},   // N*Ho*Wo = 16384: split-K backward-weight
        };
        for (int[] c : cases) {
            int n = c[0], ci = c[1], h = c[2], w = c[3], co = c[4], k = c[5], pad = c[6], dil = c[7];
            boolean bias = c[8] == 1;
            String label = "conv2d x[" + n + "," + ci + "," + h + "," + w + "] w[" + co + "," + ci + "," + k + "," + k
                    + "] pad " + pad + " dil " + dil + (bias ? " +b" : "");
            int[][] shapes = bias ? new int[][] {{n, ci, h, w}, {co, ci, k, k}, {co}} : new int[][] {{n, ci, h, w}, {co, ci, k, k}};
            compare(label, shapes, in -> Conv2d.apply(in[0], in[1], bias ? in[2] : null, pad, dil), 7 + n + ci);
        }
    }

    @Test
    void linearMatchesCpu() {
        int[][] cases = {{130, 257, 70}, {1, 5, 200}, {64, 64, 64}, {3, 1000, 7}};
        for (int[] c : cases) {
            int n = c[0], in = c[1], out = c[2];
            compare("linear x[" + n + "," + in + "] w[" + out + "," + in + "] +b",
                    new int[][] {{n, in}, {out, in}, {out}}, t -> Linear.apply(t[0], t[1], t[2]), 3 + n);
        }
    }

    @Test
    void backwardWeightIsReproducible() {
        int[][] shapes = {{16, 16, 32, 32}, {32, 16, 3, 3}, {32}};
        Function<Tensor[], Tensor> f = in -> Conv2d.apply(in[0], in[1], in[2], 2, 2);
        double[][] first = run(Device.CUDA, shapes, f, 5);
        double[][] second = run(Device.CUDA, shapes, f, 5);
        for (int k = 0; k < first.length; k++)
            assertArrayEquals(first[k], second[k], 0.0, "run 2 differs from run 1 in result " + k + " (0 = output)");
    }

    /** Prints forward and forward+backward times of NCSN's conv layers (no assertion beyond finiteness). */
    @Test
    void timingForTheRecord() {
        // n, c (in = out), h = w, dil (pad = dil)
        int[][] layers = {{128, 128, 32, 1}, {128, 128, 16, 2}, {128, 256, 8, 4}};
        for (int[] l : layers) {
            int n = l[0], c = l[1], s = l[2], d = l[3];
            Conv2d.Dims g = new Conv2d.Dims(n, c, s, s, c, 3, 3, d, d);
            try (Scope scope = Scope.open()) {
                Tensor x = Tensor.wrap(randn(n * c * s * s, 1), n, c, s, s).to(Device.CUDA).requiresGrad(true);
                Tensor w = Tensor.wrap(randn(c * c * 9, 2), c, c, 3, 3).to(Device.CUDA).requiresGrad(true);
                Tensor b = Tensor.wrap(randn(c, 3), c).to(Device.CUDA).requiresGrad(true);
                Tensor gy = Tensor.wrap(randn(n * c * s * s, 4), n, c, s, s).to(Device.CUDA);
                double fwd = Double.MAX_VALUE, both = Double.MAX_VALUE;
                for (int rep = 0; rep < 5; rep++) {
                    CudaContext.get().synchronize();
                    long t0 = System.nanoTime();
                    Tensor y = Conv2d.apply(x, w, b, d, d);
                    CudaContext.get().synchronize();
                    long t1 = System.nanoTime();
                    Autograd.backward(y, gy);
                    CudaContext.get().synchronize();
                    long t2 = System.nanoTime();
                    if (rep > 0) {  // the first run loads the module and warms the allocator
                        fwd = Math.min(fwd, (t1 - t0) / 1e6);
                        both = Math.min(both, (t2 - t0) / 1e6);
                    }
                    for (Tensor t : new Tensor[] {x, w, b}) t.zeroGrad();
                }
                for (Tensor t : new Tensor[] {x, w, b}) t.grad().free();  // persistent leaf gradients
                double gf = g.flops() / 1e9;
                System.out.printf("[ncsn] conv2d CUDA %s: forward %.3f ms (%.2f TFLOP/s), forward+backward %.3f ms"
                        + " (%.2f TFLOP/s over 3 passes)%n", g, fwd, gf / fwd, both, 3 * gf / both);
                assertTrue(fwd > 0 && both > 0 && Double.isFinite(both));
            }
        }
    }

    // ---- helpers ----------------------------------------------------------------------------

    private static void compare(String label, int[][] shapes, Function<Tensor[], Tensor> f, long seed) {
        double[][] gpu = run(Device.CUDA, shapes, f, seed);
        double[][] cpu = run(Device.CPU, shapes, f, seed);
        for (int k = 0; k < cpu.length; k++) {
            String what = label + (k == 0 ? " output" : " grad of input " + (k - 1));
            double max = 0, err = 0;
            int worst = -1;
            for (int i = 0; i < cpu[k].length; i++) {
                max = Math.max(max, Math.abs(cpu[k][i]));
                double e = Math.abs(gpu[k][i] - cpu[k][i]);
                if (!(e <= err)) {
                    err = e;
                    worst = i;
                }
            }
            if (!(err <= LIMIT * max + 1e-30))
                fail(what + ": worst element " + worst + ": gpu " + gpu[k][worst] + " vs cpu " + cpu[k][worst]
                        + ", error " + err + " > " + LIMIT + " x max|cpu| " + max);
        }
    }

    /** Output and the gradient of every input, as doubles: the same float32 values on either device. */
    private static double[][] run(Device dev, int[][] shapes, Function<Tensor[], Tensor> f, long seed) {
        Tensor[] in = new Tensor[shapes.length];
        try (Scope s = Scope.open()) {
            for (int k = 0; k < shapes.length; k++) {
                int count = 1;
                for (int d : shapes[k]) count *= d;
                Tensor t = Tensor.wrap(randn(count, seed * 31 + k), shapes[k]);
                in[k] = (dev == Device.CPU ? t : t.to(dev)).requiresGrad(true);
            }
            Tensor out = f.apply(in);
            Tensor gy = Tensor.wrap(randn(out.numel(), seed * 31 + 99), out.shape());
            Autograd.backward(out, dev == Device.CPU ? gy : gy.to(dev));
            double[][] r = new double[shapes.length + 1][];
            r[0] = out.toDoubleArray();
            for (int k = 0; k < shapes.length; k++) r[k + 1] = in[k].grad().toDoubleArray();
            return r;
        } finally {
            // leaf gradients are persistent: device memory is not GC'd
            for (Tensor t : in) if (t != null && t.grad() != null) t.grad().free();
        }
    }

    private static float[] randn(int n, long seed) {
        Random r = new Random(seed);
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) r.nextGaussian();
        return a;
    }
}
