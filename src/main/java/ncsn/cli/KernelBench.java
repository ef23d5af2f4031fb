package ncsn.cli;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import ncsn.autograd.Autograd;
import ncsn.cuda.CudaContext;
import ncsn.model.CondRefineNetDilated;
import ncsn.model.ModelConfig;
import ncsn.ops.CondInstanceNormPlus;
import ncsn.ops.Conv2d;
import ncsn.ops.Elementwise;
import ncsn.ops.Elu;
import ncsn.optim.Adam;
import ncsn.rng.Rng;
import ncsn.sample.LangevinUpdate;
import ncsn.tensor.DType;
import ncsn.tensor.Device;
import ncsn.tensor.Scope;
import ncsn.tensor.Tensor;

/**
 * {@code ncsn bench kernels --device cuda}: the engine's CUDA kernels one by one at NCSN shapes,
 * through the ops' public entry points (what the model calls), timed with CUDA events.
 * <pre>
 *   conv2d fwd / bwd-data / bwd-weight   (bwd-weight includes the bias gradient) 3x3, Ci = Co = ngf in {64, 128}, H = W in {32, 16},
 *                                        dilation = padding in {1, 2, 4}: TFLOP/s with
 *                                        FLOPs = 2 N Co Ho Wo Ci kh kw (each of the three passes)
 *   cin_pp fwd / bwd                     x [N, ngf, S, S], 10 levels: GB/s
 *   add, elu fwd, elu bwd                [N, 128, 32, 32]: GB/s
 *   langevin_update                      x [N, 3, 32, 32] in place, noise drawn in the kernel: GB/s
 *   adam                                 every parameter of the ngf 128 CIFAR-10 model: GB/s
 * </pre>
 * GB/s counts the bytes a pass must move at least (each input read once, each output written
 * once; for the backward entries including the add into the leaf gradient); TFLOP/s only for the
 * convolutions. A backward pass is timed from after its forward to the
 * end of {@code Autograd.backward}, so it includes the gradient accumulation into the (zeroed)
 * leaf, one extra add over the input or weight. Forward passes run under {@code noGrad}.
 *
 * <p>Each entry: {@code warmup} untimed calls, then a calibration call; passes shorter than a
 * millisecond are repeated {@code inner} times between one pair of events (up to 100) so the
 * timer's resolution does not matter; {@code steps} such samples give the median and the minimum,
 * reported per call. An entry that fails (e.g. out of memory, a kernel missing) is reported with
 * its error and the rest continue.
 */
final class KernelBench {
    /** Batch of the conv / norm / elementwise shapes (the paper's training batch). */
    static final int DEFAULT_BATCH = 128;
    static final long SEED = 99;

    /** Null on the CPU (then wall-clock timing with System.nanoTime). */
    private final CudaContext ctx;
    private final Device dev;
    private final PrintWriter err;

    private KernelBench(CudaContext ctx, PrintWriter err) {
        this.ctx = ctx;
        this.dev = ctx == null ? Device.CPU : Device.CUDA;
        this.err = err;
    }

    /** One timed entry of the result. */
    record Entry(String kernel, String shape, double msMedian, double msMin, int inner, double flops, double bytes,
                 String error) {}

    /** What one call does; {@code setup} runs before each call, untimed but on the same stream. */
    private interface Pass {
        /** Runs untimed work needed before the timed part (e.g. the forward of a backward); may be a no-op. */
        default void setup() {}

        /** True when {@link #setup} does work (then every timed sample is one call). */
        default boolean hasSetup() {
            return false;
        }

        void run();

        /** Frees what the call left behind (e.g. leaf gradients). */
        default void after() {}
    }

    /**
     * Runs every entry on the GPU of {@code ctx}, or with {@code ctx == null} on the CPU (the float32
     * CPU kernels, wall-clock timed: a check of the harness and a CPU comparison).
     */
    static Map<String, Object> run(CudaContext ctx, PrintWriter err, int batch, int steps, int warmup) {
        return new KernelBench(ctx, err).runAll(batch, steps, warmup);
    }

    private Map<String, Object> runAll(int batch, int steps, int warmup) {
        List<Entry> entries = new ArrayList<>();
        String where = ctx == null ? "the CPU (float32 kernels, System.nanoTime)" : ctx.deviceName();
        err.printf("bench kernels on %s, batch %d, %d samples after %d warm-up calls%n", where, batch, steps, warmup);
        err.printf("%-22s %-40s %10s %10s %9s%n", "kernel", "shape", "ms median", "ms min", "rate");
        err.flush();
        for (int ngf : new int[] {64, 128})
            for (int size : new int[] {32, 16})
                for (int dil : new int[] {1, 2, 4}) conv(entries, batch, ngf, size, dil, steps, warmup);
        for (int ngf : new int[] {64, 128})
            for (int size : new int[] {32, 16}) cin(entries, batch, ngf, size, steps, warmup);
        elementwise(entries, batch, steps, warmup);
        langevin(entries, batch, steps, warmup);
        adam(entries, steps, warmup);

        Map<String, Object> r = new LinkedHashMap<>();
        r.put("mode", "kernels");
        r.put("device", dev == Device.CPU ? "cpu" : "cuda");
        if (ctx != null) r.put("gpu", ctx.deviceName());
        r.put("engine", "ncsn-engine");
        r.put("batch", batch);
        r.put("steps", steps);
        r.put("warmup", warmup);
        r.put("timing", ctx == null ? "System.nanoTime" : "cuda events");
        List<Map<String, Object>> list = new ArrayList<>();
        for (Entry e : entries) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("kernel", e.kernel());
            m.put("shape", e.shape());
            if (e.error() != null) {
                m.put("error", e.error());
            } else {
                m.put("ms_median", e.msMedian());
                m.put("ms_min", e.msMin());
                m.put("calls_per_sample", e.inner());
                if (e.flops() > 0) m.put("tflops", e.flops() / (e.msMedian() * 1e-3) / 1e12);
                if (e.bytes() > 0) m.put("gb_per_s", e.bytes() / (e.msMedian() * 1e-3) / 1e9);
            }
            list.add(m);
        }
        r.put("kernels", list);
        long failed = entries.stream().filter(e -> e.error() != null).count();
        r.put("failed", failed);
        return r;
    }

    // ---- the entries -------------------------------------------------------------------------------

    private void conv(List<Entry> out, int n, int ngf, int size, int dil,
                             int steps, int warmup) {
        String shape = String.format(Locale.ROOT, "x[%d,%d,%d,%d] w[%d,%d,3,3] d%d", n, ngf, size, size, ngf, ngf, dil);
        double flops = 2.0 * n * ngf * size * size * ngf * 9; // padding = dilation keeps Ho = H, Wo = W
        Tensor x = null, w = null, b = null, gy = null;
        try {
            x = random(1, n, ngf, size, size);
            w = random(2, ngf, ngf, 3, 3);
            b = random(3, ngf);
            gy = random(4, n, ngf, size, size);
            Tensor fx = x, fw = w, fb = b, fgy = gy;
            out.add(time("conv2d fwd", shape, flops, 0, steps, warmup, forward(() -> Conv2d.apply(fx, fw, fb, dil, dil))));
            out.add(time("conv2d bwd-data", shape, flops, 0, steps, warmup,
                    backward(() -> Conv2d.apply(fx, fw, fb, dil, dil), fgy, fx)));
            out.add(time("conv2d bwd-weight", shape, flops, 0, steps, warmup,
                    backward(() -> Conv2d.apply(fx, fw, fb, dil, dil), fgy, fw, fb)));
        } catch (RuntimeException | OutOfMemoryError e) {
            out.add(failed("conv2d", shape, e));
        } finally {
            free(x, w, b, gy);
        }
    }

    private void cin(List<Entry> out, int n, int ngf, int size, int steps, int warmup) {
        String shape = String.format(Locale.ROOT, "x[%d,%d,%d,%d] embed[10,%d]", n, ngf, size, size, 3 * ngf);
        double bytes = 4.0 * n * ngf * size * size;
        int[] labels = new int[n];
        for (int i = 0; i < n; i++) labels[i] = i % 10;
        Tensor x = null, e = null, gy = null;
        try {
            x = random(5, n, ngf, size, size);
            e = random(6, 10, 3 * ngf);
            gy = random(7, n, ngf, size, size);
            Tensor fx = x, fe = e, fgy = gy;
            out.add(time("cin_pp fwd", shape, 0, 2 * bytes, steps, warmup,
                    forward(() -> CondInstanceNormPlus.apply(fx, fe, labels))));
            // reads x and the output gradient, writes the input gradient; the add into the leaf
            // gradient reads 2 and writes 1 more (as for elu bwd; embed's gradient is tiny)
            out.add(time("cin_pp bwd (+leaf add)", shape, 0, 6 * bytes, steps, warmup,
                    backward(() -> CondInstanceNormPlus.apply(fx, fe, labels), fgy, fx, fe)));
        } catch (RuntimeException | OutOfMemoryError ex) {
            out.add(failed("cin_pp", shape, ex));
        } finally {
            free(x, e, gy);
        }
    }

    private void elementwise(List<Entry> out, int n, int steps, int warmup) {
        String shape = String.format(Locale.ROOT, "[%d,128,32,32]", n);
        double bytes = 4.0 * n * 128 * 32 * 32;
        Tensor a = null, b = null, gy = null;
        try {
            a = random(8, n, 128, 32, 32);
            b = random(9, n, 128, 32, 32);
            gy = random(10, n, 128, 32, 32);
            Tensor fa = a, fb = b, fgy = gy;
            out.add(time("add", shape, 0, 3 * bytes, steps, warmup, forward(() -> Elementwise.add(fa, fb))));
            out.add(time("elu fwd", shape, 0, 2 * bytes, steps, warmup, forward(() -> Elu.apply(fa))));
            // elu backward reads g and the output, writes gx; the leaf add reads 2 and writes 1 more
            out.add(time("elu bwd (+leaf add)", shape, 0, 6 * bytes, steps, warmup,
                    backward(() -> Elu.apply(fa), fgy, fa)));
        } catch (RuntimeException | OutOfMemoryError e) {
            out.add(failed("elementwise", shape, e));
        } finally {
            free(a, b, gy);
        }
    }

    private void langevin(List<Entry> out, int n, int steps, int warmup) {
        String shape = String.format(Locale.ROOT, "x[%d,3,32,32]", n);
        double bytes = 3 * 4.0 * n * 3 * 32 * 32; // read x and score, write x
        Tensor x = null, score = null;
        try {
            x = random(11, n, 3, 32, 32);
            score = random(12, n, 3, 32, 32);
            Tensor fx = x, fs = score;
            long blocks = LangevinUpdate.blocksFor(fx.numel());
            long[] offset = {0};
            // a tiny step keeps x bounded over thousands of calls
            out.add(time("langevin_update", shape, 0, bytes, steps, warmup, () -> {
                LangevinUpdate.apply(fx, fs, 1e-8, SEED, 7, offset[0]);
                offset[0] += blocks;
            }));
        } catch (RuntimeException | OutOfMemoryError e) {
            out.add(failed("langevin_update", shape, e));
        } finally {
            free(x, score);
        }
    }

    private void adam(List<Entry> out, int steps, int warmup) {
        CondRefineNetDilated model = null;
        Adam adam = null;
        String shape = "ngf 128 model";
        try {
            CondRefineNetDilated host = new CondRefineNetDilated(ModelConfig.cifar10(), DType.F32);
            model = dev == Device.CPU ? host : host.to(dev);
            long count = model.parameterCount();
            shape = String.format(Locale.ROOT, "%d params (ngf 128, 3 ch)", count);
            List<Tensor> params = new ArrayList<>(model.parameters().values());
            int k = 20;
            for (Tensor p : params) p.setGrad(random(k++, p.shape()));
            adam = new Adam(params, 1e-6, 0.9, 0.999, 1e-8, 0, false);
            Adam fa = adam;
            double bytes = 7 * 4.0 * count; // reads p, g, m, v; writes p, m, v
            out.add(time("adam", shape, 0, bytes, steps, warmup, fa::step));
        } catch (RuntimeException | OutOfMemoryError e) {
            out.add(failed("adam", shape, e));
        } finally {
            if (model != null && dev != Device.CPU)
                for (Tensor p : model.parameters().values()) free(p.grad(), p);
            if (adam != null) adam.free();
        }
    }

    // ---- helpers -----------------------------------------------------------------------------------

    /** A forward pass without autograd whose temporaries are freed at once. */
    private static Pass forward(Runnable op) {
        return () -> {
            try (Autograd.NoGrad ng = Autograd.noGrad(); Scope s = Scope.open()) {
                op.run();
            }
        };
    }

    /**
     * A backward pass: {@code setup} records the forward of {@code forward} with exactly the
     * {@code leaves} requiring a gradient (so only their gradients are computed), the timed part is
     * {@code Autograd.backward(out, gy)}, {@code after} frees the leaves' gradients.
     */
    private static Pass backward(java.util.function.Supplier<Tensor> forward, Tensor gy, Tensor... leaves) {
        return new Pass() {
            Scope scope;
            Tensor out;

            @Override
            public boolean hasSetup() {
                return true;
            }

            @Override
            public void setup() {
                for (Tensor t : leaves) t.requiresGrad(true);
                scope = Scope.open();
                out = forward.get();
            }

            @Override
            public void run() {
                Autograd.backward(out, gy);
            }

            @Override
            public void after() {
                if (scope != null) scope.close();
                scope = null;
                out = null;
                for (Tensor t : leaves) {
                    if (t.grad() != null && t.grad().isLive()) t.grad().free();
                    t.setGrad(null);
                    t.requiresGrad(false);
                }
            }
        };
    }

    private Entry time(String kernel, String shape, double flops, double bytes,
                              int steps, int warmup, Pass pass) {
        try {
            for (int i = 0; i < warmup; i++) once(pass);
            sync();
            // Calibration: how many calls make a sample of at least a millisecond (1 when setup is needed).
            double one = timed(pass, 1);
            int inner = pass.hasSetup() || one >= 1f ? 1 : (int) Math.min(100, Math.ceil(1.0 / Math.max(one, 1e-3)));
            double[] ms = new double[steps];
            for (int i = 0; i < steps; i++) ms[i] = timed(pass, inner) / inner;
            double[] sorted = ms.clone();
            Arrays.sort(sorted);
            double median = sorted.length % 2 == 1 ? sorted[sorted.length / 2]
                    : 0.5 * (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]);
            Entry e = new Entry(kernel, shape, median, sorted[0], inner, flops, bytes, null);
            String rate = flops > 0 ? String.format(Locale.ROOT, "%6.2f TFLOP/s", flops / (median * 1e-3) / 1e12)
                    : String.format(Locale.ROOT, "%6.0f GB/s", bytes / (median * 1e-3) / 1e9);
            err.printf(Locale.ROOT, "%-22s %-40s %10.4f %10.4f %s%n", kernel, shape, median, sorted[0], rate);
            err.flush();
            return e;
        } catch (RuntimeException | OutOfMemoryError e) {
            pass.after();
            return failed(kernel, shape, e);
        }
    }

    private static void once(Pass pass) {
        pass.setup();
        try {
            pass.run();
        } finally {
            pass.after();
        }
    }

    /**
     * Milliseconds of {@code inner} calls between one pair of events (setup before the start
     * event); on the CPU between two System.nanoTime calls.
     */
    private double timed(Pass pass, int inner) {
        if (inner == 1) {
            pass.setup();
            try {
                if (ctx == null) {
                    long t0 = System.nanoTime();
                    pass.run();
                    return (System.nanoTime() - t0) * 1e-6;
                }
                try (CudaContext.EventTimer t = ctx.startTimer()) {
                    pass.run();
                    return t.stopMillis();
                }
            } finally {
                pass.after();
            }
        }
        if (ctx == null) {
            long t0 = System.nanoTime();
            for (int i = 0; i < inner; i++) once(pass);
            return (System.nanoTime() - t0) * 1e-6;
        }
        try (CudaContext.EventTimer t = ctx.startTimer()) {
            for (int i = 0; i < inner; i++) once(pass);
            return t.stopMillis();
        }
    }

    private void sync() {
        if (ctx != null) ctx.synchronize();
    }

    private Entry failed(String kernel, String shape, Throwable e) {
        String msg = (e.getMessage() == null ? e.toString() : e.getClass().getSimpleName() + ": " + e.getMessage()).replace('\n', ' ');
        err.printf("%-22s %-40s FAILED: %s%n", kernel, shape, msg);
        err.flush();
        return new Entry(kernel, shape, Double.NaN, Double.NaN, 0, 0, 0, msg);
    }

    /** A persistent float32 tensor on the benchmark's device with N(0,1) entries drawn there. */
    private Tensor random(long stream, int... shape) {
        Tensor t = Tensor.persistent(dev, DType.F32, shape);
        new Rng(SEED, stream).normal(t);
        return t;
    }

    /** Best effort: after a kernel fault the context may refuse even this; the entry already failed. */
    private static void free(Tensor... ts) {
        for (Tensor t : ts) {
            try {
                if (t != null && t.isLive()) t.free();
            } catch (RuntimeException e) {
                // keep going: the next entries report their own errors
            }
        }
    }
}
