package ncsn.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import ncsn.autograd.Autograd;
import ncsn.cpu.Parallel;
import ncsn.cuda.CudaContext;
import ncsn.cuda.CudaError;
import ncsn.cuda.CudaProbe;
import ncsn.io.AtomicFiles;
import ncsn.model.CondRefineNetDilated;
import ncsn.model.ModelConfig;
import ncsn.ops.AnnealedDsm;
import ncsn.optim.Adam;
import ncsn.rng.Philox;
import ncsn.rng.Rng;
import ncsn.sample.ImageSampler;
import ncsn.sample.LangevinGraph;
import ncsn.sample.LangevinUpdate;
import ncsn.tensor.BufferPool;
import ncsn.tensor.DType;
import ncsn.tensor.Device;
import ncsn.tensor.Scope;
import ncsn.tensor.Tensor;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code ncsn bench train|sample}: times the engine's training or sampling step on a
 * CondRefineNetDilated with random weights (PyTorch's default init, float32, L = 10 levels,
 * sigmas 1 .. 0.01), as bench/torch_baseline.py does for PyTorch with the same arguments and keys.
 * <pre>
 *   train   one step of ncsn.train.Trainer, inside a Scope: labels y [B] ~ U{0..9}, z [B,C,H,W] ~ N(0,1)
 *           (Philox, keyed by the step), loss = DSM(score(x + sigma[y] z, y)), backward, Adam
 *           (lr 1e-3, PyTorch's defaults). x [B,C,H,W] is one fixed U[0,1) batch (no data loading).
 *   sample  one Langevin step: score = model.score(x, level 9) under Autograd.noGrad() in a Scope, then the
 *           fused LangevinUpdate x += eps s + sqrt(2 eps) z in place on the persistent x (eps = 2e-5, the
 *           step size of the smallest level)
 * </pre>
 * After {@code --warmup} untimed steps it times {@code --steps} steps one by one and prints (and
 * with {@code --json} writes) one JSON object:
 * <pre>
 *   seconds_per_step_median, seconds_per_step_min   wall time of one step (System.nanoTime)
 *   images_per_second        batch / median
 *   forward_gflop_per_image  2 x multiply-adds of every convolution of one forward pass (no norms or pools)
 *   achieved_gflops          conv FLOPs per step / median: train counts forward + backward as 3 forwards
 *                            (backward = 2 forwards: grad input + grad weight), sample counts 1 forward
 *   peak_heap_bytes          sum over the JVM's heap memory pools of their peak usage during the timed steps
 *                            (peaks reset after the warm-up; an upper bound of the simultaneous peak; it counts
 *                            live and not-yet-collected objects, not the process's resident memory)
 * </pre>
 * plus estimated_heap_bytes (below), the run's settings (mode, ngf, channels, image_size, batch,
 * steps, warmup, threads, engine) and every timed step (seconds_per_step).
 *
 * <p>Before building anything big it estimates the heap one step needs: the parameters (x4 for
 * training: weights, gradients, Adam's two moments), the input, and the temporaries of dry-run
 * steps at 8x8 on one and two images (measured from the buffer pool), the batch-proportional part
 * scaled by batch x H x W / 64 (activations scale with the pixel count). Above
 * {@code Runtime.maxMemory()} it refuses (exit 2) naming --batch and NCSN_HEAP.
 *
 * <p>{@code --device cuda}: the same model, weights and x are copied to the GPU once; the noise is
 * drawn there with the same Philox keying. Each step is timed with a pair of CUDA events on the
 * backend's stream (after the warm-up steps and a synchronize), so seconds_per_step is GPU time from
 * the step's first launch to its last, host gaps included. The result adds device ("cpu" or
 * "cuda"; always present), gpu, peak_device_bytes (the caching allocator's peak in use) and
 * achieved_tflops; no heap estimate is made (estimated_heap_bytes 0). Without a usable GPU it
 * refuses with the probe's reason (exit 2). {@code sample --device cuda} then also times the step as
 * the sampler runs it replayed as a CUDA graph ({@link LangevinGraph}; {@code --no-cuda-graph} skips
 * it): graph ("replayed" or "failed: why"), graph_seconds_per_step_median / _min, graph_speedup
 * (plain median / graph median), graph_peak_device_bytes, graph_seconds_per_step.
 *
 * <p>{@code bench kernels --device cuda}: the kernel benchmarks of {@link KernelBench} (one JSON
 * object with a "kernels" list; exit 1 if an entry failed); {@code --device cpu} runs the same
 * entries on the float32 CPU kernels with wall-clock timing (slow: use a small --batch).
 */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Time training or sampling steps of a random-weight score network, or (kernels, --device cuda)"
                + " the CUDA kernels one by one (JSON result).")
public final class BenchCommand implements Callable<Integer> {
    /** What is timed ({@code kernels}: the kernel benchmarks of {@link KernelBench}; --device must be given). */
    public enum Mode { train, sample, kernels }

    /** Where it runs. */
    public enum DeviceKind { cpu, cuda }

    static final int LEVELS = 10;
    static final double LR = 1e-3, EPS = 2e-5;
    static final long SEED = 1234;
    static final long STREAM_X = 0x42454E43_00000000L, STREAM_LABELS = STREAM_X + 1, STREAM_NOISE = STREAM_X + 2,
            STREAM_LANGEVIN = STREAM_X + 3;
    /** JSON keys of the result, in order (bench/torch_baseline.py writes the same). */
    public static final List<String> KEYS = List.of("seconds_per_step_median", "seconds_per_step_min",
            "images_per_second", "forward_gflop_per_image", "achieved_gflops", "peak_heap_bytes");

    @Spec
    CommandSpec spec;

    @Parameters(index = "0", paramLabel = "train|sample|kernels", description = "What to time: ${COMPLETION-CANDIDATES}"
            + " (kernels: conv2d, CIN++, elementwise, Langevin and Adam kernels one by one; give --device).")
    Mode mode;

    @Option(names = "--ngf", paramLabel = "N", description = "Base width (default: ${DEFAULT-VALUE}).")
    int ngf = 64;

    @Option(names = "--channels", paramLabel = "C", description = "Image channels (default: ${DEFAULT-VALUE}).")
    int channels = 1;

    @Option(names = "--image-size", paramLabel = "S", description = "Image height = width, even (default: ${DEFAULT-VALUE}).")
    int imageSize = 28;

    @Option(names = "--batch", paramLabel = "B",
            description = "Images per step (default: 128; kernels: " + KernelBench.DEFAULT_BATCH + ").")
    Integer batchOption;

    /** --batch, or the mode's default. */
    int batch = 128;

    @Option(names = "--no-cuda-graph",
            description = "sample --device cuda: time the plain steps only (default: also the step replayed as a CUDA graph,"
                    + " graph_* keys).")
    boolean noCudaGraph;

    @Option(names = "--steps", paramLabel = "N", description = "Timed steps (default: ${DEFAULT-VALUE}).")
    int steps = 5;

    @Option(names = "--warmup", paramLabel = "N", description = "Untimed steps first (default: ${DEFAULT-VALUE}).")
    int warmup = 2;

    @Option(names = "--threads", paramLabel = "N",
            description = "Worker threads (default: available processors; more is clamped with a message).")
    Integer threads;

    @Option(names = "--device", paramLabel = "cpu|cuda",
            description = "Device (default: cpu for train and sample; kernels needs it given).")
    DeviceKind deviceOption;

    /** --device, or the mode's default (train and sample: cpu). */
    DeviceKind device = DeviceKind.cpu;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write the JSON result here (atomically).")
    Path json;

    /** A problem with the user's input: printed as one paragraph, exit code 2. */
    static final class BadInput extends Exception {
        BadInput(String message) {
            super(message);
        }
    }

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut(), err = spec.commandLine().getErr();
        batch = batchOption != null ? batchOption : mode == Mode.kernels ? KernelBench.DEFAULT_BATCH : 128;
        device = deviceOption != null ? deviceOption : DeviceKind.cpu;
        try {
            Map<String, Object> result = mode == Mode.kernels ? runKernels(err) : run(err);
            String text = toJson(result);
            out.println(text);
            out.flush();
            if (json != null) {
                try {
                    AtomicFiles.writeString(json, text + "\n");
                } catch (IOException e) {
                    throw new BadInput("bench: cannot write --json " + json + ": " + e.getMessage());
                }
            }
            // bench kernels: an entry that failed (its error is in the JSON) makes the exit code 1.
            return result.get("failed") instanceof Long f && f > 0 ? CommandLine.ExitCode.SOFTWARE : CommandLine.ExitCode.OK;
        } catch (BadInput e) {
            err.println(e.getMessage());
            err.flush();
            return CommandLine.ExitCode.USAGE;
        } catch (IllegalArgumentException e) { // TensorException included
            // e.g. a tensor over 2^31 elements on a heap large enough to pass the estimate.
            err.println("bench: these sizes cannot run: " + e.getMessage());
            err.flush();
            return CommandLine.ExitCode.USAGE;
        } catch (OutOfMemoryError e) {
            err.println("bench: ran out of heap (the estimate was too low for this run). Lower --batch, or give the JVM"
                    + " more heap with NCSN_HEAP.");
            err.flush();
            return CommandLine.ExitCode.SOFTWARE;
        }
    }

    /** The CUDA context for --device cuda, or a one-paragraph refusal naming the probe's reason. */
    private static CudaContext cuda() throws BadInput {
        if (!CudaProbe.available())
            throw new BadInput("bench: --device cuda: no usable GPU (" + CudaProbe.reason() + "); use --device cpu.");
        try {
            return CudaContext.get();
        } catch (CudaError e) {
            throw new BadInput("bench: --device cuda: the CUDA backend does not start: " + e.getMessage());
        }
    }

    private Map<String, Object> runKernels(PrintWriter err) throws BadInput {
        if (deviceOption == null)
            throw new BadInput("bench kernels: say where: --device cuda (the CUDA kernels), or --device cpu (the float32 CPU"
                    + " kernels at the same shapes: slow at batch 128, try --batch 1).");
        check(steps >= 1, "--steps must be at least 1, got " + steps);
        check(warmup >= 0, "--warmup must be at least 0, got " + warmup);
        CudaContext ctx = device == DeviceKind.cuda ? cuda() : null;
        check(batch >= 1, "--batch must be at least 1, got " + batch);
        return KernelBench.run(ctx, err, batch, steps, warmup);
    }

    private Map<String, Object> run(PrintWriter err) throws BadInput {
        CudaContext ctx = device == DeviceKind.cuda ? cuda() : null;
        check(ngf >= 2, "--ngf must be at least 2 (CIN++ needs two channels), got " + ngf);
        check(channels >= 1, "--channels must be at least 1, got " + channels);
        check(imageSize >= 2 && imageSize % 2 == 0, "--image-size must be even and at least 2 (res2 halves it), got " + imageSize);
        check(batch >= 1, "--batch must be at least 1, got " + batch);
        check(steps >= 1, "--steps must be at least 1, got " + steps);
        check(warmup >= 0, "--warmup must be at least 0, got " + warmup);
        check(threads == null || threads >= 1, "--threads must be at least 1, got " + threads);

        int max = Runtime.getRuntime().availableProcessors();
        int wanted = threads == null ? max : threads;
        if (wanted > max) {
            err.println("bench: --threads " + wanted + " is more than the " + max + " available processors; using " + max + ".");
            err.flush();
        }
        int used = Parallel.setThreads(wanted);

        ModelConfig cfg = new ModelConfig(channels, ngf, LEVELS, false);
        Device dev = ctx == null ? Device.CPU : Device.CUDA;
        // The heap estimate is about CPU activations; on CUDA they live in device memory.
        long estimate = dev == Device.CPU ? checkMemory(cfg) : 0;

        BufferPool.clear();
        Step step = null;
        double[] seconds = new double[steps], graphSeconds = new double[steps];
        long peak = 0, peakDevice = 0, graphPeakDevice = 0;
        String graphStatus = null;
        try {
            step = mode == Mode.train ? new TrainStep(cfg, batch, imageSize, dev) : new SampleStep(cfg, batch, imageSize, dev);
            for (int i = 0; i < warmup; i++) step.run(i);
            if (ctx != null) ctx.synchronize();
            System.gc();
            List<MemoryPoolMXBean> heap = heapPools();
            for (MemoryPoolMXBean p : heap) p.resetPeakUsage();
            for (int i = 0; i < steps; i++) {
                if (ctx == null) {
                    long t0 = System.nanoTime();
                    step.run(warmup + i);
                    seconds[i] = (System.nanoTime() - t0) * 1e-9;
                } else {
                    // CUDA events on the backend's stream: the GPU time from the step's first launch to
                    // its last, host gaps in between included (they are part of what a step costs).
                    try (CudaContext.EventTimer t = ctx.startTimer()) {
                        step.run(warmup + i);
                        seconds[i] = t.stopMillis() * 1e-3;
                    }
                }
            }
            for (MemoryPoolMXBean p : heap) peak += p.getPeakUsage().getUsed();
            if (ctx != null) peakDevice = ctx.allocator().peakBytesInUse();
            if (ctx != null && mode == Mode.sample && !noCudaGraph) {
                graphStatus = timeGraph(ctx, (SampleStep) step, graphSeconds, warmup + steps);
                graphPeakDevice = ctx.allocator().peakBytesInUse();
            }
        } catch (CudaError e) {
            throw new BadInput("bench: --device cuda failed: " + e.getMessage());
        } finally {
            try {
                if (step != null) step.release();
            } catch (RuntimeException e) { // a broken CUDA context: the error above (or none) is what to report
                err.println("bench: freeing device memory failed: " + e.getMessage());
            }
        }

        double[] sorted = seconds.clone();
        Arrays.sort(sorted);
        double median = sorted.length % 2 == 1 ? sorted[sorted.length / 2]
                : 0.5 * (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]);
        double gflop = step.model.forwardFlopsPerImage(imageSize, imageSize) / 1e9;
        double forwardsPerStep = mode == Mode.train ? 3 : 1;

        Map<String, Object> r = new LinkedHashMap<>();
        r.put("seconds_per_step_median", median);
        r.put("seconds_per_step_min", sorted[0]);
        r.put("images_per_second", batch / median);
        r.put("forward_gflop_per_image", gflop);
        r.put("achieved_gflops", forwardsPerStep * gflop * batch / median);
        r.put("peak_heap_bytes", peak);
        r.put("estimated_heap_bytes", estimate);
        r.put("device", device.name());
        if (ctx != null) {
            r.put("gpu", ctx.deviceName());
            r.put("peak_device_bytes", peakDevice);
            r.put("achieved_tflops", forwardsPerStep * gflop * batch / median / 1e3);
            r.put("timing", "cuda events");
            if (graphStatus != null) {
                r.put("graph", graphStatus);
                if (graphStatus.equals("replayed")) {
                    double[] gs = graphSeconds.clone();
                    Arrays.sort(gs);
                    double gm = gs.length % 2 == 1 ? gs[gs.length / 2] : 0.5 * (gs[gs.length / 2 - 1] + gs[gs.length / 2]);
                    r.put("graph_seconds_per_step_median", gm);
                    r.put("graph_seconds_per_step_min", gs[0]);
                    r.put("graph_speedup", median / gm);
                    r.put("graph_peak_device_bytes", graphPeakDevice);
                    r.put("graph_seconds_per_step", graphSeconds);
                }
            }
        }
        r.put("mode", mode.name());
        r.put("engine", "ncsn-engine");
        r.put("ngf", ngf);
        r.put("channels", channels);
        r.put("image_size", imageSize);
        r.put("batch", batch);
        r.put("steps", steps);
        r.put("warmup", warmup);
        r.put("threads", used);
        r.put("seconds_per_step", seconds);
        return r;
    }

    /**
     * bench sample --device cuda, second part: the same step as the sampler runs it (networkScore
     * into a score buffer, then the fused update) replayed as a CUDA graph ({@link LangevinGraph}):
     * one plain warm-up step, the capture, --warmup untimed replays, then --steps replays, each timed
     * with CUDA events like the plain steps. Returns "replayed", or "failed: why" when graphs were
     * given up (the plain numbers stand either way). x keeps evolving from where the plain steps left it.
     */
    private String timeGraph(CudaContext ctx, SampleStep step, double[] out, long firstStep) {
        Tensor s = Tensor.persistent(step.x.device(), DType.F32, step.x.shape());
        long blocks = step.blocksPerStep, i = firstStep;
        try (Autograd.NoGrad ng = Autograd.noGrad();
             LangevinGraph g = new LangevinGraph(ImageSampler.networkScore(step.model), step.x, LEVELS - 1)) {
            g.warmScore(s);
            LangevinUpdate.apply(step.x, s, EPS, SEED, STREAM_LANGEVIN, i++ * blocks);
            if (!g.capture(s, null, null, EPS, SEED, STREAM_LANGEVIN, i * blocks, blocks)) return "failed: " + g.failure();
            for (int w = 0; w < warmup; w++) g.replay();
            ctx.synchronize();
            for (int k = 0; k < out.length; k++) {
                try (CudaContext.EventTimer t = ctx.startTimer()) {
                    g.replay();
                    out[k] = t.stopMillis() * 1e-3;
                }
            }
            return "replayed";
        } catch (CudaError e) { // the plain numbers stand; a broken context shows up in the release after
            return "failed: " + e.getMessage();
        } finally {
            s.free();
        }
    }

    private static void check(boolean ok, String message) throws BadInput {
        if (!ok) throw new BadInput("bench: " + message + ".");
    }

    /**
     * Refuses, before allocating the batch, a step whose estimated heap ({@link #estimateHeapBytes})
     * exceeds the max heap; returns the estimate.
     */
    private long checkMemory(ModelConfig cfg) throws BadInput {
        long est = estimateHeapBytes(cfg, mode, imageSize, batch);
        long maxHeap = Runtime.getRuntime().maxMemory();
        if (est > maxHeap)
            throw new BadInput(String.format(Locale.ROOT, "bench: %s with --batch %d at %dx%dx%d, ngf %d needs about %.1f GiB"
                    + " of heap for one step, more than this JVM's max heap of %.1f GiB. Lower --batch (or --image-size / --ngf),"
                    + " or give the JVM more heap: NCSN_HEAP=%dg bin/ncsn bench ...", mode, batch, channels, imageSize, imageSize,
                    ngf, est / GIB, maxHeap / GIB, (long) Math.ceil(est * 1.25 / GIB)));
        return est;
    }

    private static final double GIB = 1024.0 * 1024 * 1024;

    /**
     * The heap estimate of {@link #checkMemory}, in bytes. Two dry runs at 8x8, of one and of two
     * images, separate the temporaries that grow with the batch (activations, their gradients,
     * im2col buffers: per8 = two - one) from those that do not (weight-gradient scratch: one - per8);
     * the former scale with batch x H x W / 64. The pool is cleared after.
     */
    static long estimateHeapBytes(ModelConfig cfg, Mode mode, int imageSize, int batch) {
        long one = dryRunBytes(cfg, mode, 1), two = dryRunBytes(cfg, mode, 2);
        long per8 = Math.max(0, two - one), fixed = Math.max(0, one - per8);
        long paramCount = new CondRefineNetDilated(cfg, DType.F32).parameterCount();
        long paramBytes = 4L * paramCount * (mode == Mode.train ? 4 : 1); // train: + grads, Adam m and v
        double scale = (double) batch * imageSize * imageSize / 64.0;
        double inputs = 4.0 * batch * cfg.channels() * imageSize * imageSize; // the persistent x [B,C,H,W]
        double total = paramBytes + fixed + per8 * scale + inputs;
        return total >= Long.MAX_VALUE ? Long.MAX_VALUE : (long) total;
    }

    /** Bytes of fresh temporaries of one step on n images of 8x8 (the pool starts and ends empty). */
    private static long dryRunBytes(ModelConfig cfg, Mode mode, int n) {
        BufferPool.clear();
        Step dry = mode == Mode.train ? new TrainStep(cfg, n, 8, Device.CPU) : new SampleStep(cfg, n, 8, Device.CPU);
        long before = BufferPool.pooledBytes();
        dry.run(0);
        long bytes = BufferPool.pooledBytes() - before;
        BufferPool.clear();
        return bytes;
    }

    private static List<MemoryPoolMXBean> heapPools() {
        List<MemoryPoolMXBean> heap = new ArrayList<>();
        for (MemoryPoolMXBean p : ManagementFactory.getMemoryPoolMXBeans())
            if (p.getType() == MemoryType.HEAP && p.isValid()) heap.add(p);
        return heap;
    }

    // ---- the two steps ---------------------------------------------------------------------------

    /**
     * A model with random weights and a persistent input x [B,C,H,W] ~ U[0,1), on the CPU or on
     * CUDA (the same weights and x: built on the CPU, then copied).
     */
    abstract static class Step {
        final CondRefineNetDilated model;
        final Tensor x;
        final double[] sigmas = AnnealedDsm.sigmas(1.0, 0.01, LEVELS);

        Step(ModelConfig cfg, int batch, int size, Device device) {
            CondRefineNetDilated m = new CondRefineNetDilated(cfg, DType.F32);
            m.initialize(SEED);
            Tensor host = Tensor.persistent(DType.F32, batch, cfg.channels(), size, size);
            Philox.uniform(SEED, STREAM_X, 0, host.f32(), 0, host.numel());
            if (device == Device.CPU) {
                model = m;
                x = host;
            } else {
                model = m.to(device);
                Tensor d = Tensor.persistent(device, DType.F32, host.shape());
                d.copyFrom(host);
                x = d;
            }
        }

        abstract void run(long i);

        /** Frees what lives outside the garbage collector's reach (device memory) now. */
        void release() {
            if (x.isCpu()) return;
            for (Tensor p : model.parameters().values()) {
                if (p.grad() != null && p.grad().isLive()) p.grad().free();
                if (p.isLive()) p.free();
            }
            if (x.isLive()) x.free();
        }
    }

    /** Trainer's step without data loading and EMA. */
    static final class TrainStep extends Step {
        final Adam adam;

        TrainStep(ModelConfig cfg, int batch, int size, Device device) {
            super(cfg, batch, size, device);
            adam = new Adam(new ArrayList<>(model.parameters().values()), LR, 0.9, 0.999, 1e-8, 0, false);
        }

        @Override
        void release() {
            super.release();
            if (x.isCpu()) return;
            adam.free();
        }

        @Override
        void run(long i) {
            int n = x.dim(0);
            int[] labels = new int[n];
            new Rng(SEED, STREAM_LABELS, i << 32).ints(labels, sigmas.length);
            try (Scope s = Scope.open()) {
                // Philox.normal(SEED, STREAM_NOISE, i << 32, ...) on either device.
                Tensor z = new Rng(SEED, STREAM_NOISE, i << 32).normal(Tensor.empty(x.device(), DType.F32, x.shape()));
                adam.zeroGrad();
                Tensor score = model.score(AnnealedDsm.perturb(x, z, labels, sigmas), labels);
                Tensor loss = AnnealedDsm.loss(score, z, labels, sigmas, 2.0);
                loss.item();
                Autograd.backward(loss);
                adam.step();
            }
        }
    }

    /** One Langevin step at the smallest level: x updated in place. */
    static final class SampleStep extends Step {
        final int[] labels;
        final long blocksPerStep;

        SampleStep(ModelConfig cfg, int batch, int size, Device device) {
            super(cfg, batch, size, device);
            labels = new int[x.dim(0)];
            Arrays.fill(labels, LEVELS - 1);
            blocksPerStep = LangevinUpdate.blocksFor(x.numel());
        }

        @Override
        void run(long i) {
            try (Autograd.NoGrad ng = Autograd.noGrad(); Scope s = Scope.open()) {
                Tensor score = model.score(x, labels);
                LangevinUpdate.apply(x, score, EPS, SEED, STREAM_LANGEVIN, i * blocksPerStep);
            }
        }
    }

    // ---- JSON (numbers, strings, arrays; kernels: a list of objects) -----------------------------------

    static String toJson(Map<String, Object> r) {
        StringBuilder sb = new StringBuilder("{");
        for (Map.Entry<String, Object> e : r.entrySet()) {
            if (sb.length() > 1) sb.append(", ");
            sb.append('"').append(e.getKey()).append("\": ").append(value(e.getValue()));
        }
        return sb.append('}').toString();
    }

    private static String value(Object v) {
        if (v instanceof String s) return SelftestCommand.str(s);
        if (v instanceof Map<?, ?> m) {
            StringBuilder sb = new StringBuilder("{");
            for (Map.Entry<?, ?> e : m.entrySet())
                sb.append(sb.length() > 1 ? ", " : "").append(SelftestCommand.str(String.valueOf(e.getKey()))).append(": ")
                        .append(value(e.getValue()));
            return sb.append('}').toString();
        }
        if (v instanceof List<?> l) {
            StringBuilder sb = new StringBuilder("[");
            for (int i = 0; i < l.size(); i++) sb.append(i == 0 ? "\n  " : ",\n  ").append(value(l.get(i)));
            return sb.append(l.isEmpty() ? "]" : "\n]").toString();
        }
        if (v instanceof Double d) return Double.isFinite(d) ? String.format(Locale.ROOT, "%.6g", d) : "null";
        if (v instanceof double[] a) {
            StringBuilder sb = new StringBuilder("[");
            for (int i = 0; i < a.length; i++) sb.append(i == 0 ? "" : ", ").append(value(a[i]));
            return sb.append(']').toString();
        }
        return String.valueOf(v);
    }
}
