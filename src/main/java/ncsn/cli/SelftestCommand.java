package ncsn.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.Callable;
import ncsn.autograd.Autograd;
import ncsn.cuda.CudaContext;
import ncsn.cuda.CudaProbe;
import ncsn.io.AtomicFiles;
import ncsn.model.CondRefineNetDilated;
import ncsn.model.ModelConfig;
import ncsn.ops.AnnealedDsm;
import ncsn.ops.OpCatalog;
import ncsn.ops.WorstError;
import ncsn.optim.Adam;
import ncsn.rng.Philox;
import ncsn.rng.Rng;
import ncsn.sample.LangevinUpdate;
import ncsn.tensor.DType;
import ncsn.tensor.Device;
import ncsn.tensor.Scope;
import ncsn.tensor.Tensor;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code ncsn selftest [--gpu] [--quick] [--json FILE]}: the engine's fast paths against its
 * float64 references, from the jar alone (no Maven, no test classes). "Fast" is the float32 CPU
 * kernels, or with {@code --gpu} the CUDA kernels.
 * <ol>
 *   <li>ops: every {@link OpCatalog} case, {@link OpCatalog#compareGpu} with --gpu, else
 *       {@link OpCatalog#compareFast} (limits: the catalog's);</li>
 *   <li>model: a tiny CondRefineNetDilated (ngf 8, 16x16; C = 1, batch 2 and C = 3, batch 3), float32
 *       fast model and float64 CPU model with the same (float32-rounded) weights: the score and
 *       every parameter gradient of sum(score * r) for a fixed random r. Error per tensor:
 *       max |fast - ref| / max |ref|, limit {@value #MODEL_LIMIT};</li>
 *   <li>train: {@value #TRAIN_STEPS} DSM training steps (Adam, lr 1e-3) on both, same weights,
 *       batch, labels and noise (Philox keyed by the step as in the Trainer: drawn on the fast
 *       side's device, and on the host for the reference): the loss curves, max over steps of |fast - ref| / |ref|, limit {@value #TRAIN_LIMIT};</li>
 *   <li>kernels outside the catalog, on odd sizes: Philox normal and uniform fills against the
 *       float64 host generator, the Langevin update (plain and masked) and Adam (plain; weight decay
 *       with AMSGrad; sizes across its 4096-element chunks, three steps: the parameter change) against
 *       their float64 references (limit {@value #KERNEL_LIMIT} of max|ref|);</li>
 *   <li>with --gpu only, graph: short annealed and plain Langevin runs of the image sampler with
 *       CUDA graph replay against the same runs without it: bit-identical samples (limit 0).</li>
 * </ol>
 * Each check is isolated: an exception (e.g. an op with no GPU kernel yet) is a FAIL row with its
 * message and the rest still run. Exit code 0 when all pass, 1 when any failed, 2 for --gpu
 * without a usable GPU. {@code --quick} keeps one case per op and the smallest model (for
 * compute-sanitizer runs).
 */
@Command(name = "selftest", mixinStandardHelpOptions = true,
        description = "Check the float32 CPU kernels (or with --gpu the CUDA kernels) against the float64 references:"
                + " every op case, whole-model forward/backward and ten training steps. Exit 0 if all pass, 1 if any fail.")
public final class SelftestCommand implements Callable<Integer> {
    static final double MODEL_LIMIT = 1e-3, TRAIN_LIMIT = 1e-3, KERNEL_LIMIT = 1e-5;
    static final int TRAIN_STEPS = 10, NGF = 8, SIZE = 16, LEVELS = 10;
    static final long SEED = 20240611L;
    static final long STREAM_X = 0x53454C46_00000000L, STREAM_R = STREAM_X + 1, STREAM_LABELS = STREAM_X + 2,
            STREAM_NOISE = STREAM_X + 3;
    /**
     * A parameter gradient's error is normalised by max(its own max|ref|, this fraction of the
     * largest max|ref| over all parameter gradients): a tensor whose reference gradient is
     * essentially zero (float64 rounding noise) would otherwise turn float32 noise into a huge
     * relative error although it has no effect on training.
     */
    static final double GRAD_FLOOR = 1e-4;

    @Spec
    CommandSpec spec;

    @Option(names = "--gpu", description = "Check the CUDA kernels (default: the float32 CPU kernels).")
    boolean gpu;

    @Option(names = "--quick", description = "One case per op and the smallest model only (e.g. under compute-sanitizer).")
    boolean quick;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write every row and the summary as JSON (atomically).")
    Path json;

    @Option(names = "--seed", paramLabel = "N", description = "Seed of the op cases' inputs (default: ${DEFAULT-VALUE}).")
    long seed = 7;

    /** Where the table goes; a row's check and variant are printed before it runs (a hang shows which). */
    private PrintWriter table;

    /** One line of the table. */
    record Row(String check, String variant, double error, double limit, boolean passed, String detail) {}

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut(), err = spec.commandLine().getErr();
        Device device = Device.CPU;
        if (gpu) {
            if (!CudaProbe.available()) {
                err.println("selftest --gpu: no usable GPU (" + CudaProbe.reason() + "). Run without --gpu to check the CPU kernels.");
                err.flush();
                return CommandLine.ExitCode.USAGE;
            }
            try {
                CudaContext c = CudaContext.get();
                out.printf("selftest on %s (device %d, %d SMs)%n", c.deviceName(), c.ordinal(), c.multiprocessorCount());
            } catch (RuntimeException | LinkageError e) {
                err.println("selftest --gpu: the CUDA backend does not start: " + e.getMessage());
                err.flush();
                return CommandLine.ExitCode.USAGE;
            }
            device = Device.CUDA;
        } else {
            out.println("selftest on the CPU: float32 kernels against the float64 references");
        }
        table = out;
        String fast = gpu ? "cuda f32" : "cpu f32";
        List<Row> rows = new ArrayList<>();
        out.printf("%-16s %-46s %10s %8s  %s%n", "check", "shape / variant", "max rel err", "limit", "result");
        out.flush();

        // (a) every op case (quick: the first case of each op).
        Set<String> seen = new HashSet<>();
        List<OpCatalog.Case> cases;
        try {
            cases = OpCatalog.all();
        } catch (RuntimeException | LinkageError e) {
            cases = List.of();
            prefix("ops", "OpCatalog.all()");
            add(rows, out, new Row("ops", "OpCatalog.all()", Double.NaN, 0, false, e.toString()));
        }
        for (OpCatalog.Case c : cases) {
            if (quick && !seen.add(c.op())) continue;
            String check = "op " + fast;
            double limit = gpu ? OpCatalog.gpuTolerance(c) : c.tolerance32();
            add(rows, out, isolated(check, c.label(), limit, () -> {
                OpCatalog.Outcome o = gpu ? OpCatalog.compareGpu(c, seed) : OpCatalog.compareFast(c, seed);
                return new Row(check, c.label(), o.error(), o.limit(), o.passed(), o.detail());
            }));
        }

        // (b) whole-model forward/backward and (c) training curves.
        int[][] shapes = quick ? new int[][] {{2, 1}} : new int[][] {{2, 1}, {3, 3}};
        for (int[] s : shapes) {
            ModelConfig cfg = new ModelConfig(s[1], NGF, LEVELS, false);
            String variant = String.format(Locale.ROOT, "ngf %d, x [%d,%d,%d,%d]", NGF, s[0], s[1], SIZE, SIZE);
            Device d = device;
            add(rows, out, isolated("model " + fast, variant, MODEL_LIMIT, () -> modelCheck(cfg, s[0], d, "model " + fast, variant)));
        }
        for (int[] s : shapes) {
            ModelConfig cfg = new ModelConfig(s[1], NGF, LEVELS, false);
            String variant = String.format(Locale.ROOT, "%d steps, x [%d,%d,%d,%d]", TRAIN_STEPS, s[0], s[1], SIZE, SIZE);
            Device d = device;
            add(rows, out, isolated("train " + fast, variant, TRAIN_LIMIT, () -> trainCheck(cfg, s[0], d, "train " + fast, variant)));
        }

        // (d) kernels outside the catalog: random fills, Langevin update, Adam.
        Device dk = device;
        String kcheck = (gpu ? "cuda" : "cpu") + " f32";
        add(rows, out, isolated("rng " + kcheck, "normal n=1001, offset 5", KERNEL_LIMIT, () -> rngCheck(dk, true, "rng " + kcheck)));
        add(rows, out, isolated("rng " + kcheck, "uniform [-2,3) n=1001, offset 5", KERNEL_LIMIT,
                () -> rngCheck(dk, false, "rng " + kcheck)));
        for (boolean masked : new boolean[] {false, true})
            add(rows, out, isolated("langevin " + kcheck, (masked ? "masked " : "") + "x [3,2,7,9]", KERNEL_LIMIT,
                    () -> langevinCheck(dk, masked, "langevin " + kcheck)));
        for (boolean decay : new boolean[] {false, true})
            add(rows, out, isolated("adam " + kcheck, (decay ? "wd 1e-2 amsgrad" : "plain") + ", 3 steps, [5,3,3,3] [7] [4099]",
                    1e-4, () -> adamCheck(dk, decay, "adam " + kcheck)));

        // (e) CUDA graph replay of the Langevin steps against plain launches: bit-identical samples.
        if (gpu)
            add(rows, out, isolated("graph cuda f32", "annealed 3x4 + plain 5 steps, x [3,1,16,16]", 0,
                    () -> graphCheck("graph cuda f32", "annealed 3x4 + plain 5 steps, x [3,1,16,16]")));

        long failed = rows.stream().filter(r -> !r.passed()).count();
        String summary = (rows.size() - failed) + " passed, " + failed + " failed";
        if (failed > 0) {
            out.println();
            out.println("Failures:");
            for (Row r : rows)
                if (!r.passed()) out.printf("FAIL %s %s: %s%n", r.check(), r.variant(), r.detail());
        }
        out.println(summary);
        out.flush();
        if (json != null) {
            try {
                AtomicFiles.writeString(json, toJson(rows, summary, device, failed) + "\n");
            } catch (IOException e) {
                err.println("selftest: cannot write --json " + json + ": " + e.getMessage());
                err.flush();
                return CommandLine.ExitCode.SOFTWARE;
            }
        }
        return failed == 0 ? CommandLine.ExitCode.OK : CommandLine.ExitCode.SOFTWARE;
    }

    /** The row's first two columns, printed before the check runs. */
    private void prefix(String check, String variant) {
        String v = variant.length() > 46 ? variant.substring(0, 45) + "~" : variant;
        table.printf(Locale.ROOT, "%-16s %-46s ", check, v);
        table.flush();
    }

    /** The rest of the row (after {@link #prefix}). */
    private static void add(List<Row> rows, PrintWriter out, Row r) {
        rows.add(r);
        out.printf(Locale.ROOT, "%10.3e %8.1e  %s%n", r.error(), r.limit(), r.passed() ? "pass" : "FAIL");
        out.flush();
    }

    private interface CheckBody {
        Row run() throws Exception;
    }

    /**
     * Runs one check; any throwable becomes a FAIL row. On the GPU the stream is synchronised
     * inside the check, so an asynchronous kernel fault is charged to the check that caused it.
     */
    private Row isolated(String check, String variant, double limit, CheckBody body) {
        prefix(check, variant);
        try {
            Row r = body.run();
            if (gpu) CudaContext.get().synchronize();
            return r;
        } catch (Throwable t) { // isolation is the point: an OOM or a missing kernel fails this row only
            String msg = t.getMessage() == null ? t.toString() : t.getClass().getSimpleName() + ": " + t.getMessage();
            StackTraceElement[] st = t.getStackTrace();
            if (st.length > 0) msg += " (at " + st[0] + ")";
            return new Row(check, variant, Double.NaN, limit, false, msg.replace('\n', ' '));
        }
    }

    // ---- model checks ------------------------------------------------------------------------------

    /** The float32 model (on {@code device}) and the float64 CPU model with identical weights. */
    private static CondRefineNetDilated[] models(ModelConfig cfg, Device device) {
        CondRefineNetDilated m32 = new CondRefineNetDilated(cfg, DType.F32);
        m32.initialize(SEED);
        CondRefineNetDilated ref = new CondRefineNetDilated(cfg, DType.F64);
        ref.copyWeightsFrom(m32); // float32-rounded weights on both sides
        CondRefineNetDilated fast = device == Device.CPU ? m32 : m32.to(device);
        if (fast != m32) release(m32);
        return new CondRefineNetDilated[] {fast, ref};
    }

    /** Frees the parameters and their gradients now (device memory is not garbage collected). */
    private static void release(CondRefineNetDilated m) {
        if (m == null) return;
        for (Tensor p : m.parameters().values()) {
            if (p.grad() != null && p.grad().isLive()) p.grad().free();
            if (p.isLive()) p.free();
        }
    }

    private static Row modelCheck(ModelConfig cfg, int batch, Device device, String check, String variant) {
        CondRefineNetDilated[] m = models(cfg, device);
        CondRefineNetDilated fast = m[0], ref = m[1];
        try (Scope s = Scope.open()) {
            int[] shape = {batch, cfg.channels(), SIZE, SIZE};
            Tensor x = Tensor.empty(DType.F32, shape);
            Philox.uniform(SEED, STREAM_X, 0, x.f32(), 0, x.numel());
            int[] labels = new int[batch];
            for (int i = 0; i < batch; i++) labels[i] = (3 * i + 1) % LEVELS;
            Tensor r = Tensor.empty(DType.F32, shape);
            Philox.normal(SEED, STREAM_R, 0, r.f32(), 0, r.numel());

            Tensor sFast = fast.score(onDevice(x, device), labels);
            Autograd.backward(sFast, onDevice(r, device));
            Tensor sRef = ref.score(x.to(DType.F64), labels);
            Autograd.backward(sRef, r.to(DType.F64));

            WorstError w = new WorstError();
            w.compare("score", sFast.toDoubleArray(), sRef.toDoubleArray(), null, 0);
            double gmax = 0;
            for (Tensor p : ref.parameters().values()) if (p.grad() != null) gmax = Math.max(gmax, maxAbs(p.grad().toDoubleArray()));
            var fp = fast.parameters();
            for (var e : ref.parameters().entrySet()) {
                Tensor gr = e.getValue().grad(), gf = fp.get(e.getKey()).grad();
                if (gr == null || gf == null) {
                    w.fail("grad " + e.getKey() + ": no gradient (" + (gf == null ? "fast" : "float64") + " model)");
                    continue;
                }
                w.compare("grad " + e.getKey(), gf.toDoubleArray(), gr.toDoubleArray(), null, GRAD_FLOOR * gmax);
            }
            return row(w, check, variant, MODEL_LIMIT);
        } finally {
            release(fast);
            release(ref);
        }
    }

    private static Row trainCheck(ModelConfig cfg, int batch, Device device, String check, String variant) {
        CondRefineNetDilated[] m = models(cfg, device);
        CondRefineNetDilated fast = m[0], ref = m[1];
        Adam adamFast = null, adamRef = null;
        try {
            adamFast = new Adam(new ArrayList<>(fast.parameters().values()), 1e-3, 0.9, 0.999, 1e-8, 0, false);
            adamRef = new Adam(new ArrayList<>(ref.parameters().values()), 1e-3, 0.9, 0.999, 1e-8, 0, false);
            double[] sigmas = AnnealedDsm.sigmas(1.0, 0.01, LEVELS);
            int[] shape = {batch, cfg.channels(), SIZE, SIZE};
            Tensor x32 = Tensor.persistent(DType.F32, shape);
            Philox.uniform(SEED, STREAM_X, 0, x32.f32(), 0, x32.numel());
            double[] lf = new double[TRAIN_STEPS], lr = new double[TRAIN_STEPS];
            double worst = 0;
            int worstAt = 0;
            try {
                for (int step = 0; step < TRAIN_STEPS; step++) {
                    int[] labels = new int[batch];
                    new Rng(SEED, STREAM_LABELS, (long) step << 32).ints(labels, LEVELS);
                    try (Scope s = Scope.open()) {
                        // The Trainer's keying: the fast side draws its noise on its own device (the
                        // Philox kernel on CUDA), the reference gets the host's float32 draws of the same keys.
                        Tensor zf = new Rng(SEED, STREAM_NOISE, (long) step << 32).normal(Tensor.empty(device, DType.F32, shape));
                        Tensor z = Tensor.empty(DType.F32, shape);
                        Philox.normal(SEED, STREAM_NOISE, (long) step << 32, z.f32(), 0, z.numel());
                        lf[step] = trainStep(fast, adamFast, onDevice(x32, device), zf, labels, sigmas);
                        lr[step] = trainStep(ref, adamRef, x32.to(DType.F64), z.to(DType.F64), labels, sigmas);
                    }
                    double e = Math.abs(lf[step] - lr[step]) / Math.max(Math.abs(lr[step]), 1e-30);
                    if (!(e <= worst)) { // NaN counts as worst
                        worst = Double.isNaN(e) ? Double.POSITIVE_INFINITY : e;
                        worstAt = step;
                    }
                }
            } finally {
                x32.free();
            }
            String detail = String.format(Locale.ROOT, "worst at step %d: fast %.8e ref %.8e; losses fast %s ref %s", worstAt,
                    lf[worstAt], lr[worstAt], curve(lf), curve(lr));
            return new Row(check, variant, worst, TRAIN_LIMIT, worst <= TRAIN_LIMIT, detail);
        } finally {
            release(fast);
            release(ref);
            if (adamFast != null) adamFast.free();
            if (adamRef != null) adamRef.free();
        }
    }

    // ---- kernels outside the catalog ---------------------------------------------------------------

    /** Rng fills of a float32 tensor on {@code device} against the float64 host draws of the same keying. */
    private static Row rngCheck(Device device, boolean normal, String check) {
        int n = 1001;
        long stream = 0x524E47L, offset = 5;
        double[] ref = new double[n];
        try (Scope s = Scope.open()) {
            Tensor t = Tensor.empty(device, DType.F32, n);
            if (normal) {
                Philox.normal(SEED, stream, offset, ref, 0, n);
                new Rng(SEED, stream, offset).normal(t);
            } else {
                Philox.uniform(SEED, stream, offset, ref, 0, n);
                for (int i = 0; i < n; i++) ref[i] = -2 + 5 * ref[i];
                new Rng(SEED, stream, offset).uniform(t, -2, 3);
            }
            WorstError w = new WorstError();
            w.compare(normal ? "normal" : "uniform", t.toDoubleArray(), ref, null, 0);
            return row(w, check, (normal ? "normal" : "uniform [-2,3)") + " n=1001, offset 5", KERNEL_LIMIT);
        }
    }

    /** LangevinUpdate on float32 (on {@code device}) against float64 on the CPU, same inputs and keying. */
    /**
     * ImageSampler on CUDA with and without CUDA graph replay (LangevinGraph), same seed: annealed
     * (3 levels x 4 steps, 3 images in batches of 2, denoised, with frames) and plain Langevin (5 steps
     * at level 1). The error is max |graph - plain| over the samples, which must be exactly 0, and the
     * graph runs must really have replayed steps (a silent fallback would compare plain with plain).
     */
    private static Row graphCheck(String check, String variant) {
        CondRefineNetDilated m32 = new CondRefineNetDilated(new ModelConfig(1, NGF, 3, false), DType.F32);
        m32.initialize(SEED);
        CondRefineNetDilated dev = m32.to(Device.CUDA);
        try {
            double[] sigmas = AnnealedDsm.sigmas(1.0, 0.05, 3);
            ncsn.sample.ImageSampler.Settings[] runs = {
                    ncsn.sample.ImageSampler.Settings.annealed(3, 7, 4, 2e-4, 2, true, true),
                    ncsn.sample.ImageSampler.Settings.langevin(3, 9, 1, 5, 1e-3, 3, false, false)};
            double worst = 0;
            StringBuilder detail = new StringBuilder();
            boolean ok = true;
            for (ncsn.sample.ImageSampler.Settings st : runs) {
                ncsn.sample.ImageSampler plain = ncsn.sample.ImageSampler.forModel(dev, sigmas, SIZE).cudaGraph(false);
                ncsn.sample.ImageSampler graph = ncsn.sample.ImageSampler.forModel(dev, sigmas, SIZE).cudaGraph(true);
                float[] a = plain.sample(st, null).samples().f32(), b = graph.sample(st, null).samples().f32();
                double d = 0;
                for (int i = 0; i < a.length; i++) {
                    double e = Math.abs((double) a[i] - b[i]);
                    if (!(e <= d)) d = Double.isNaN(e) ? Double.POSITIVE_INFINITY : e;
                }
                worst = Math.max(worst, d);
                if (graph.graphReplays() == 0) ok = false;
                detail.append(String.format(Locale.ROOT, "%s: max |graph - plain| %.3e, %d replayed steps%s; ", st.kind(), d,
                        graph.graphReplays(), graph.graphFailure() == null ? "" : " (gave up: " + graph.graphFailure() + ")"));
            }
            ok &= worst == 0;
            return new Row(check, variant, worst, 0, ok, detail.toString());
        } finally {
            release(dev);
        }
    }

    private static Row langevinCheck(Device device, boolean masked, String check) {
        int[] shape = {3, 2, 7, 9}; // 378 elements: not a multiple of the 4 draws of a Philox block
        try (Scope s = Scope.open()) {
            Tensor x = Tensor.empty(DType.F32, shape), score = Tensor.empty(DType.F32, shape);
            Philox.normal(SEED, 11, 0, x.f32(), 0, x.numel());
            Philox.normal(SEED, 12, 0, score.f32(), 0, score.numel());
            Tensor mask = Tensor.zeros(DType.F32, shape), known = Tensor.empty(DType.F32, shape);
            Philox.uniform(SEED, 13, 0, known.f32(), 0, known.numel());
            for (int i = 0; i < mask.numel(); i++) if (i % 3 == 1) mask.set(i, 1);
            double step = 0.0123;
            long seed = 5, stream = 77, offset = 3;
            Tensor x64 = x.to(DType.F64), xf = onDevice(x, device);
            if (xf == x) xf = x.copy();
            if (masked) {
                LangevinUpdate.applyMasked(x64, score.to(DType.F64), step, seed, stream, offset, mask.to(DType.F64),
                        known.to(DType.F64));
                LangevinUpdate.applyMasked(xf, onDevice(score, device), step, seed, stream, offset, onDevice(mask, device),
                        onDevice(known, device));
            } else {
                LangevinUpdate.apply(x64, score.to(DType.F64), step, seed, stream, offset);
                LangevinUpdate.apply(xf, onDevice(score, device), step, seed, stream, offset);
            }
            WorstError w = new WorstError();
            w.compare("x", xf.toDoubleArray(), x64.toDoubleArray(), null, 0);
            return row(w, check, (masked ? "masked " : "") + "x [3,2,7,9]", KERNEL_LIMIT);
        }
    }

    /**
     * Three Adam steps on float32 parameters (on {@code device}) and on float64 copies, same
     * gradients (float32-rounded); compares the change of every parameter, p - p0, so the
     * comparison is not swamped by p0.
     */
    private static Row adamCheck(Device device, boolean decay, String check) {
        int[][] shapes = {{5, 3, 3, 3}, {7}, {4099}};
        List<Tensor> fast = new ArrayList<>(), ref = new ArrayList<>(), p0 = new ArrayList<>();
        Adam af = null, ar = null;
        try {
            for (int k = 0; k < shapes.length; k++) {
                Tensor h = Tensor.persistent(DType.F32, shapes[k]);
                Philox.normal(SEED, 40 + k, 0, h.f32(), 0, h.numel());
                // |p| ~ 0.01: the float32 rounding of p itself (half an ulp per step) stays ~1e-6 of the change
                for (int i = 0; i < h.numel(); i++) h.set(i, 0.01 * h.get(i));
                p0.add(h);
                Tensor pf = Tensor.persistent(device, DType.F32, shapes[k]);
                pf.copyFrom(h);
                fast.add(pf.requiresGrad(true));
                ref.add(h.to(DType.F64).requiresGrad(true));
            }
            // to(F64) outside a scope is not scope-owned; gradients are persistent, set below.
            double wd = decay ? 1e-2 : 0;
            af = new Adam(fast, 1e-3, 0.9, 0.999, 1e-8, wd, decay);
            ar = new Adam(ref, 1e-3, 0.9, 0.999, 1e-8, wd, decay);
            for (int step = 0; step < 3; step++) {
                for (int k = 0; k < shapes.length; k++) {
                    Tensor g = Tensor.persistent(DType.F32, shapes[k]);
                    Philox.normal(SEED, 50 + k, (long) step << 32, g.f32(), 0, g.numel());
                    // a few tiny gradients: the eps and sqrt(v) paths, not only sign(g)
                    for (int i = 0; i < g.numel(); i += 5) g.set(i, g.get(i) * 1e-6);
                    setGrad(fast.get(k), g);
                    setGrad(ref.get(k), g);
                    g.free();
                }
                af.step();
                ar.step();
            }
            WorstError w = new WorstError();
            for (int k = 0; k < shapes.length; k++) {
                double[] a = fast.get(k).toDoubleArray(), b = ref.get(k).toDoubleArray(), z = p0.get(k).toDoubleArray();
                for (int i = 0; i < z.length; i++) {
                    a[i] -= z[i];
                    b[i] -= z[i];
                }
                w.compare("p" + k + " - p0", a, b, null, 0);
            }
            return row(w, check, (decay ? "wd 1e-2 amsgrad" : "plain") + ", 3 steps, [5,3,3,3] [7] [4099]", 1e-4);
        } finally {
            for (List<Tensor> l : List.of(fast, ref, p0))
                for (Tensor t : l) {
                    if (t.grad() != null && t.grad().isLive()) t.grad().free();
                    if (t.isLive()) t.free();
                }
            if (af != null) af.free();
            if (ar != null) ar.free();
        }
    }

    /** p.grad = a copy of g (float32 host values) in p's dtype and on p's device; persistent. */
    private static void setGrad(Tensor p, Tensor g) {
        Tensor acc = p.grad();
        if (acc == null) {
            acc = Tensor.persistent(p.device(), p.dtype(), p.shape());
            p.setGrad(acc);
        }
        acc.copyFrom(g);
    }

    /** One step of the Trainer's loop (no EMA): DSM loss on x + sigma z, backward, Adam. Returns the loss. */
    private static double trainStep(CondRefineNetDilated model, Adam adam, Tensor x, Tensor z, int[] labels, double[] sigmas) {
        adam.zeroGrad();
        Tensor score = model.score(AnnealedDsm.perturb(x, z, labels, sigmas), labels);
        Tensor loss = AnnealedDsm.loss(score, z, labels, sigmas, 2.0);
        double l = loss.item();
        Autograd.backward(loss);
        adam.step();
        return l;
    }

    private static Tensor onDevice(Tensor t, Device device) {
        return device == Device.CPU ? t : t.to(device);
    }

    private static String curve(double[] l) {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < l.length; i++) sb.append(i == 0 ? "" : ", ").append(String.format(Locale.ROOT, "%.6g", l[i]));
        return sb.append(']').toString();
    }

    private static double maxAbs(double[] a) {
        double m = 0;
        for (double v : a) m = Math.max(m, Math.abs(v));
        return m;
    }

    private static Row row(WorstError w, String check, String variant, double limit) {
        return new Row(check, variant, w.error(), limit, w.within(limit), w.detail());
    }

    // ---- JSON ------------------------------------------------------------------------------------

    private static String toJson(List<Row> rows, String summary, Device device, long failed) {
        StringBuilder sb = new StringBuilder("{\"device\": ").append(str(device.toString().toLowerCase(Locale.ROOT)))
                .append(device == Device.CPU ? "" : ", \"gpu\": " + str(CudaContext.get().deviceName()))
                .append(", \"passed\": ").append(rows.size() - failed).append(", \"failed\": ").append(failed)
                .append(", \"summary\": ").append(str(summary)).append(", \"rows\": [");
        for (int i = 0; i < rows.size(); i++) {
            Row r = rows.get(i);
            sb.append(i == 0 ? "\n  " : ",\n  ").append("{\"check\": ").append(str(r.check())).append(", \"variant\": ")
                    .append(str(r.variant())).append(", \"error\": ").append(num(r.error())).append(", \"limit\": ")
                    .append(num(r.limit())).append(", \"passed\": ").append(r.passed()).append(", \"detail\": ")
                    .append(str(r.detail())).append('}');
        }
        return sb.append("\n]}").toString();
    }

    private static String num(double v) {
        return Double.isFinite(v) ? String.format(Locale.ROOT, "%.6g", v) : "null";
    }

    static String str(String s) {
        if (s == null) return "null";
        StringBuilder sb = new StringBuilder("\"");
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
                    else sb.append(c);
                }
            }
        }
        return sb.append('"').toString();
    }
}
