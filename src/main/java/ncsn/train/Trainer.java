package ncsn.train;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import ncsn.autograd.Autograd;
import ncsn.cpu.Parallel;
import ncsn.cpu.Simd;
import ncsn.cuda.CudaContext;
import ncsn.cuda.CudaError;
import ncsn.data.BatchLoader;
import ncsn.data.DataException;
import ncsn.data.Datasets;
import ncsn.data.ImageDataset;
import ncsn.io.SafeTensorsException;
import ncsn.model.CondRefineNetDilated;
import ncsn.ops.AnnealedDsm;
import ncsn.ops.Elementwise;
import ncsn.optim.Adam;
import ncsn.rng.Rng;
import ncsn.tensor.DType;
import ncsn.tensor.Device;
import ncsn.tensor.Scope;
import ncsn.tensor.Tensor;

/**
 * Trains the score network with annealed denoising score matching (spec section 2), as the
 * reference's {@code AnnealRunner.train} does, in float32 on the CPU or on a CUDA GPU
 * ({@code training.device}: cpu, cuda, or auto = CUDA when usable, else the CPU with the reason
 * logged once).
 *
 * <p>One step s = 1, 2, ..., n_iters:
 * <pre>
 *   x      [B,C,H,W]  train batch s-1 (BatchLoader: shuffle, flip, dequantise, logit)
 *   y      [B]        labels ~ U{0..L-1}: Philox (seed, STREAM_LABELS, offset s &lt;&lt; 32)
 *   z      [B,C,H,W]  noise ~ N(0, I):     Philox (seed, STREAM_NOISE,  offset s &lt;&lt; 32)
 *   loss = AnnealedDsm.loss(model.score(x + sigma[y] z, y), z, y, sigmas, anneal_power)
 *   backward; Adam step (lr, (beta1, 0.999), eps 1e-8, weight_decay, amsgrad); EMA update
 * </pre>
 * All temporaries of a step live in one {@link Scope}, so from the second step on they come from
 * the buffer pool. Every draw is a pure function of (seed, stream, step) or of the test-batch
 * index, and batch k of each loader a pure function of k: a run resumed from a checkpoint
 * computes bit for bit what the uninterrupted run computed (same machine, same thread count).
 *
 * <p><b>Devices.</b> On CUDA the model, Adam's moments and the EMA weights live on the GPU for the
 * whole run; per step the batch is copied there once, the noise is drawn there by {@link Rng#normal}
 * with the same Philox keying as on the CPU (so CPU and GPU runs with one seed see the same noise
 * and labels), and the loss comes back with one {@code item()}. Checkpoints copy weights and state
 * to the host and have the same format on both devices: a run may be resumed on either.
 *
 * <p>Every {@code test_freq} steps (no gradient): one test batch t (its own loader and streams,
 * offset t &lt;&lt; 32). {@code test_loss} is the reference's {@code test_dsm_loss}: random labels,
 * mean over the batch. The per-level losses evaluate every level on that same test batch and the
 * same noise z (labels all i, perturbed x + sigma_i z), so each level's number averages the whole
 * batch rather than the ~B/L images that happened to draw it: L + 1 forward passes per test.
 * The test uses the raw weights (not the EMA), as the reference's runner does.
 *
 * <p>Every {@code snapshot_freq} steps and after the last one: a checkpoint (see
 * {@link Checkpoint}), only after checking that every weight is finite, then loss.png (also
 * redrawn at a test step when a minute has passed since the last drawing).
 * A loss that is NaN or infinite stops training before the update ({@link TrainException} with
 * exit code 3); the checkpoints already written are left as they are.
 */
public final class Trainer {
    // Philox streams, one per purpose ("DATA", "LABL", "NOIS" in ASCII; +1 for the test side).
    public static final long STREAM_TRAIN_DATA = 0x44415441_00000000L;
    public static final long STREAM_TEST_DATA = STREAM_TRAIN_DATA + 1;
    public static final long STREAM_LABELS = 0x4C41424C_00000000L;
    public static final long STREAM_TEST_LABELS = STREAM_LABELS + 1;
    public static final long STREAM_NOISE = 0x4E4F4953_00000000L;
    public static final long STREAM_TEST_NOISE = STREAM_NOISE + 1;
    static final String RNG_DESCRIPTION = "philox4x32-10 keyed by seed; step s draws labels from stream 0x4C41424C00000000"
            + " and noise from stream 0x4E4F495300000000 at block offset s<<32; test batch t uses streams +1 at offset"
            + " t<<32; train/test batches come from BatchLoader streams 0x4441544100000000 / +1";
    static final double ADAM_BETA2 = 0.999, ADAM_EPS = 1e-8;

    /** Called after every step (for tests and tools): step number and its training loss. */
    @FunctionalInterface
    public interface StepListener {
        void onStep(long step, double loss);
    }

    /** Test hook: runs after the update of each step, before any snapshot (e.g. to poison a weight). */
    @FunctionalInterface
    interface AfterUpdate {
        void run(long step, Map<String, Tensor> params);
    }

    /** What a finished run reports. */
    public record Result(TrainConfig config, long firstStep, long lastStep, double[] losses, Path lastCheckpoint,
                         double imagesPerSecond, double secondsToFirstLine, boolean alreadyComplete) {}

    private final Path runDir;
    private final boolean resume;
    private final TrainConfig requested;       // null: resume with the stored config
    private final List<String> overrides;      // --set (resume: applied to the stored config)
    private PrintStream out = System.out;
    private Progress.Mode mode;
    private ImageDataset trainData, testData;
    private StepListener listener;
    private AfterUpdate afterUpdate;

    private Trainer(Path runDir, boolean resume, TrainConfig requested, List<String> overrides) {
        this.runDir = runDir;
        this.resume = resume;
        this.requested = requested;
        this.overrides = overrides == null ? List.of() : List.copyOf(overrides);
    }

    /** A new run of {@code cfg} in {@code runDir} (refused at {@link #run} if it holds checkpoints). */
    public static Trainer newRun(Path runDir, TrainConfig cfg) {
        if (cfg == null) throw new IllegalArgumentException("newRun: config is required");
        return new Trainer(runDir, false, cfg, List.of());
    }

    /**
     * Continues the run in {@code runDir} from its newest valid checkpoint, with the config stored
     * there. {@code requested} (may be null) is the config the user named: its resumable keys
     * (n_iters, cadence, data path, lr, ...) replace the stored ones and any other difference is an
     * error. {@code overrides} ({@code --set}) apply last and may only name resumable keys.
     */
    public static Trainer resume(Path runDir, TrainConfig requested, List<String> overrides) {
        return new Trainer(runDir, true, requested, overrides);
    }

    /** Where progress and messages go, and how (default: System.out, bar on a terminal else plain lines). */
    public Trainer output(PrintStream out, boolean silent) {
        this.out = out;
        this.mode = silent ? Progress.Mode.SILENT : null;
        return this;
    }

    /** Use these data sets instead of opening data.dataset at data.path (tests, tools). */
    public Trainer datasets(ImageDataset train, ImageDataset test) {
        this.trainData = train;
        this.testData = test;
        return this;
    }

    public Trainer onStep(StepListener l) {
        this.listener = l;
        return this;
    }

    Trainer afterUpdate(AfterUpdate h) {
        this.afterUpdate = h;
        return this;
    }

    // ---- state of one run --------------------------------------------------------------------------

    private TrainConfig cfg;
    private Device device = Device.CPU;
    private CondRefineNetDilated model;
    private LinkedHashMap<String, Tensor> params;
    private Adam adam;
    private LinkedHashMap<String, Tensor> ema;
    private double[] sigmas;
    private long seed;
    private MetricsLog metrics;
    private Progress progress;
    private long testBatchIndex;
    private Path lastCheckpoint;

    /**
     * Runs training to {@code training.n_iters}. Throws {@link ConfigException} / {@link DataException}
     * / {@link TrainException} with one-paragraph messages (exit 2; divergence exit 3).
     */
    public Result run() throws ConfigException, DataException, TrainException, IOException {
        try {
            return runToEnd();
        } finally {
            if (device != Device.CPU) freeDeviceState();
        }
    }

    /** Device memory of the run (weights, gradients, Adam's moments, EMA) goes back to the allocator. */
    private void freeDeviceState() {
        if (adam != null) adam.free();
        if (ema != null) for (Tensor t : ema.values()) t.free();
        if (model != null) model.free();
    }

    private Result runToEnd() throws ConfigException, DataException, TrainException, IOException {
        List<String> notes = new ArrayList<>();
        Checkpoint.Loaded ck = null;
        if (resume) {
            ck = newestValidCheckpoint(notes);
            cfg = mergeForResume(ck);
        } else {
            List<Path> existing = Checkpoint.list(runDir);
            if (!existing.isEmpty())
                throw new TrainException("Run directory " + runDir + " already holds " + existing.size() + " checkpoint"
                        + (existing.size() == 1 ? "" : "s") + " (newest " + existing.get(existing.size() - 1).getFileName()
                        + "). Refusing to start a new run over them: add --resume to continue that run, or choose another"
                        + " directory with --run DIR (or delete " + Checkpoint.dir(runDir) + " to start over).",
                        TrainException.USAGE);
            cfg = requested.withOverrides(overrides);
        }
        device = resolveDevice(cfg);
        TrainConfig.Training tc = cfg.training();
        if (ck != null && ck.position().step() >= tc.nIters()) {
            out.println("Run " + runDir + " is already complete: " + ck.file().getFileName() + " is at step "
                    + ck.position().step() + " of training.n_iters = " + tc.nIters()
                    + ". To train further: --resume --set training.n_iters=N with a larger N.");
            return new Result(cfg, ck.position().step() + 1, ck.position().step(), new double[0], ck.file(),
                    Double.NaN, Double.NaN, true);
        }

        // Data first: a missing data set should fail before anything is written.
        ImageDataset train = trainData, test = testData;
        if (train == null) train = Datasets.open(cfg.data().dataset(), cfg.dataPath(), true, cfg.data().imageSize());
        if (test == null) test = Datasets.open(cfg.data().dataset(), cfg.dataPath(), false, cfg.data().imageSize());
        checkData(train, "training");
        checkData(test, "test");

        seed = tc.seed();
        sigmas = cfg.sigmas();
        model = new CondRefineNetDilated(cfg.modelConfig(), DType.F32, device);
        params = model.parameters();
        adam = new Adam(new ArrayList<>(params.values()), cfg.optim().lr(), cfg.optim().beta1(), ADAM_BETA2, ADAM_EPS,
                cfg.optim().weightDecay(), cfg.optim().amsgrad());
        if (tc.ema()) {
            ema = new LinkedHashMap<>();
            for (Map.Entry<String, Tensor> e : params.entrySet())
                ema.put(e.getKey(), Tensor.persistent(device, DType.F32, e.getValue().shape()).name("ema." + e.getKey()));
        }
        Checkpoint.Position pos;
        if (ck != null) {
            try {
                Checkpoint.restore(ck, params, adam, ema, cfg.modelConfig());
            } catch (SafeTensorsException e) {
                throw new TrainException("Cannot resume: " + e.getMessage(), TrainException.USAGE);
            }
            pos = ck.position();
            lastCheckpoint = ck.file();
        } else {
            model.initialize(seed);
            if (ema != null) for (Map.Entry<String, Tensor> e : params.entrySet()) ema.get(e.getKey()).copyFrom(e.getValue());
            pos = new Checkpoint.Position(0, 0, 0, 0);
        }
        testBatchIndex = pos.testBatch();

        Files.createDirectories(Checkpoint.dir(runDir));
        writeAtomically(runDir.resolve("config.yml"), cfg.toYaml());
        metrics = new MetricsLog(runDir.resolve("metrics.csv"), sigmas.length, ck == null ? -1 : pos.step());
        if (ck != null) {
            if (metrics.droppedRows() > 0)
                notes.add("metrics.csv: dropped " + metrics.droppedRows() + " rows after step " + pos.step()
                        + " (written after that checkpoint)");
            if (metrics.rows() < pos.step())
                notes.add("metrics.csv has " + metrics.rows() + " rows for " + pos.step() + " steps (rows were lost)");
        }
        printHeader(train, test, ck, notes);

        Progress.Mode m = mode != null ? mode : Progress.autoMode();
        long first = pos.step() + 1, last = tc.nIters();
        double[] losses = new double[(int) (last - first + 1)];
        try (BatchLoader trainLoader = loader(train, tc.batchSize(), STREAM_TRAIN_DATA, cfg.data().randomFlip(), pos.trainBatch());
             BatchLoader testLoader = loader(test, tc.testBatchSize(), STREAM_TEST_DATA, false, pos.testBatch());
             Progress pr = new Progress(m, out, first, last, tc.batchSize());
             MetricsLog ml = metrics) {
            progress = pr;
            for (long step = first; step <= last; step++) {
                BatchLoader.Batch batch = next(trainLoader);
                double loss = trainStep(step, batch.x());
                batch.x().free();
                losses[(int) (step - first)] = loss;
                double testLoss = Double.NaN;
                double[] levels = null;
                if (Double.isFinite(loss) && step % tc.testFreq() == 0) {
                    long t0 = System.nanoTime();
                    BatchLoader.Batch tb = next(testLoader);
                    levels = new double[sigmas.length];
                    testLoss = testLosses(testBatchIndex++, tb.x(), levels);
                    tb.x().free();
                    double mean = 0;
                    for (double v : levels) mean += v / levels.length;
                    pr.testLoss(step, testLoss, mean);
                    if (System.nanoTime() - lastPlotNanos > PLOT_INTERVAL_NANOS) {
                        ml.flush();
                        plot(); // an early curve, before the first snapshot
                    }
                    pr.exclude(System.nanoTime() - t0);
                }
                ml.row(step, loss, testLoss, levels);
                if (!Double.isFinite(loss)) diverged(step, "the training loss is " + loss);
                if (afterUpdate != null) afterUpdate.run(step, params);
                if (listener != null) listener.onStep(step, loss);
                if (pr.step(step, loss)) ml.flush(); // the file keeps up with what the progress line shows
                if (step % tc.snapshotFreq() == 0 || step == last) {
                    long t0 = System.nanoTime();
                    snapshot(new Checkpoint.Position(step, adam.state(0).step(), batch.index() + 1, testBatchIndex));
                    pr.exclude(System.nanoTime() - t0);
                }
            }
            double rate = pr.imagesPerSecond(), firstLine = pr.secondsToFirstLine();
            pr.close(); // the bar's last redraw comes before the summary
            if (m != Progress.Mode.SILENT)
                out.printf(Locale.ROOT, "Done: step %d of %d. Last checkpoint %s; metrics %s; plot %s.%n", last, last,
                        lastCheckpoint, runDir.resolve("metrics.csv"), runDir.resolve("loss.png"));
            return new Result(cfg, first, last, losses, lastCheckpoint, rate, firstLine, false);
        } catch (DataException.Unchecked e) {
            throw e.data();
        }
    }

    // ---- one step ------------------------------------------------------------------------------------

    /** Forward, loss, backward, Adam, EMA; returns the loss (no update when it is not finite). */
    private double trainStep(long step, Tensor x) {
        int n = x.dim(0);
        int[] labels = new int[n];
        new Rng(seed, STREAM_LABELS, step << 32).ints(labels, sigmas.length);
        try (Scope s = Scope.open()) {
            if (device != Device.CPU) x = x.to(device); // the step's one host-to-device copy (scope-owned)
            // Same keying as Philox.normal(seed, STREAM_NOISE, step << 32, ...) on either device.
            Tensor z = new Rng(seed, STREAM_NOISE, step << 32).normal(Tensor.empty(device, DType.F32, x.shape()));
            adam.zeroGrad();
            Tensor perturbed = AnnealedDsm.perturb(x, z, labels, sigmas);
            Tensor score = model.score(perturbed, labels);
            Tensor loss = AnnealedDsm.loss(score, z, labels, sigmas, cfg.training().annealPower());
            double l = loss.item();
            if (!Double.isFinite(l)) return l;
            Autograd.backward(loss);
            adam.step();
            if (ema != null) emaUpdate((float) cfg.training().emaRate());
            return l;
        }
    }

    /** ema = rate * ema + (1 - rate) * param, elementwise in float32 (NCSNv2's EMAHelper). */
    private void emaUpdate(float rate) {
        float omr = 1f - rate;
        if (device != Device.CPU) {
            // On the device with the elementwise ops (products rounded, then the sum: the CPU loop's
            // float arithmetic); temporaries die with the scope, the result is copied into ema.
            try (Autograd.NoGrad ng = Autograd.noGrad()) {
                for (Map.Entry<String, Tensor> e : params.entrySet()) {
                    Tensor a = ema.get(e.getKey());
                    try (Scope s = Scope.open()) {
                        a.copyFrom(Elementwise.add(Elementwise.scale(a, rate), Elementwise.scale(e.getValue(), omr)));
                    }
                }
            }
            return;
        }
        for (Map.Entry<String, Tensor> e : params.entrySet()) {
            float[] p = e.getValue().f32(), a = ema.get(e.getKey()).f32();
            Parallel.forRange(p.length, 1 << 15, (lo, hi) -> {
                for (int i = lo; i < hi; i++) a[i] = rate * a[i] + omr * p[i];
            });
        }
    }

    /**
     * Test batch t: the reference's test loss (random labels) and, in {@code levels}, the loss of
     * every level on the same images and noise. No gradient; temporaries freed at once.
     */
    private double testLosses(long t, Tensor x, double[] levels) {
        int n = x.dim(0);
        int[] labels = new int[n];
        new Rng(seed, STREAM_TEST_LABELS, t << 32).ints(labels, sigmas.length);
        double power = cfg.training().annealPower();
        try (Autograd.NoGrad ng = Autograd.noGrad(); Scope s = Scope.open()) {
            if (device != Device.CPU) x = x.to(device);
            Tensor z = new Rng(seed, STREAM_TEST_NOISE, t << 32).normal(Tensor.empty(device, DType.F32, x.shape()));
            double testLoss;
            try (Scope inner = Scope.open()) {
                Tensor score = model.score(AnnealedDsm.perturb(x, z, labels, sigmas), labels);
                testLoss = AnnealedDsm.loss(score, z, labels, sigmas, power).item();
            }
            int[] same = new int[n];
            for (int i = 0; i < sigmas.length; i++) {
                java.util.Arrays.fill(same, i);
                try (Scope inner = Scope.open()) {
                    Tensor score = model.score(AnnealedDsm.perturb(x, z, same, sigmas), same);
                    double[] per = AnnealedDsm.perSampleLoss(score, z, same, sigmas, power);
                    double sum = 0;
                    for (double v : per) sum += v;
                    levels[i] = sum / n;
                }
            }
            return testLoss;
        }
    }

    // ---- snapshots -----------------------------------------------------------------------------------

    private void snapshot(Checkpoint.Position pos) throws IOException, TrainException {
        String bad = firstNonFinite(params, "");
        if (bad == null && ema != null) bad = firstNonFinite(ema, "ema.");
        if (bad != null) diverged(pos.step(), "weight " + bad + " is not finite after the update");
        metrics.flush();
        Path file = Checkpoint.path(runDir, pos.step());
        Checkpoint.write(file, params, adam, ema, pos, cfg, seed, RNG_DESCRIPTION);
        lastCheckpoint = file;
        Checkpoint.prune(runDir, cfg.training().keepSnapshots());
        plot();
        progress.println("saved " + runDir.relativize(file) + "");
    }

    /** Besides every snapshot, loss.png is redrawn at a test step when this much time has passed. */
    static final long PLOT_INTERVAL_NANOS = 60_000_000_000L;
    private long lastPlotNanos = System.nanoTime();

    private void plot() {
        lastPlotNanos = System.nanoTime();
        try {
            LossPlot.write(runDir.resolve("loss.png"), "NCSN DSM loss: " + cfg.name(), metrics.train(), metrics.test(),
                    metrics.levelMean());
        } catch (IOException | RuntimeException | LinkageError e) {
            // A plot is a convenience: never stop training for it, but say why once per failure.
            progress.println("note: could not draw " + runDir.resolve("loss.png") + ": " + e);
        }
    }

    private static String firstNonFinite(Map<String, Tensor> ts, String prefix) {
        for (Map.Entry<String, Tensor> e : ts.entrySet()) {
            Tensor t = e.getValue();
            Tensor host = t.isCpu() ? t : t.to(Device.CPU); // device weights: one copy per tensor, at snapshots only
            try {
                float[] a = host.f32();
                for (int i = 0; i < a.length; i++)
                    if (!Float.isFinite(a[i])) return prefix + e.getKey() + "[" + i + "] = " + a[i];
            } finally {
                if (host != t) host.free();
            }
        }
        return null;
    }

    private void diverged(long step, String what) throws TrainException, IOException {
        metrics.flush();
        plot();
        String where = lastCheckpoint == null
                ? "No checkpoint was written before it, so there is nothing to resume; start again with a lower optim.lr."
                : "The last good checkpoint, " + lastCheckpoint + " (step " + Checkpoint.stepOf(lastCheckpoint)
                        + "), is kept; continue from it with a lower rate: --resume --set optim.lr=" + (cfg.optim().lr() / 10) + ".";
        throw new TrainException("Training diverged at step " + step + ": " + what + " (optim.lr = " + cfg.optim().lr()
                + "). Stopped without writing a checkpoint. " + where, TrainException.DIVERGED, step);
    }

    // ---- setup ---------------------------------------------------------------------------------------

    private Checkpoint.Loaded newestValidCheckpoint(List<String> notes) throws IOException, TrainException {
        Checkpoint.removeStaleTemps(runDir);
        List<Path> all = Checkpoint.list(runDir);
        if (all.isEmpty())
            throw new TrainException("Nothing to resume: " + Checkpoint.dir(runDir) + " holds no checkpoint_<step>.safetensors"
                    + " files. Start a new run without --resume" + (Files.isDirectory(runDir) ? "." : " (the run directory "
                    + runDir + " does not exist)."), TrainException.USAGE);
        List<String> bad = new ArrayList<>();
        for (int i = all.size() - 1; i >= 0; i--) {
            try {
                Checkpoint.Loaded ck = Checkpoint.read(all.get(i));
                if (!bad.isEmpty()) notes.add("falling back to " + all.get(i).getFileName() + ": the newer "
                        + (bad.size() == 1 ? "checkpoint" : "checkpoints") + " cannot be used (" + String.join("; ", bad) + ")");
                return ck;
            } catch (SafeTensorsException e) {
                bad.add(e.getMessage());
            }
        }
        throw new TrainException("Cannot resume: no checkpoint in " + Checkpoint.dir(runDir) + " is readable: "
                + String.join("; ", bad), TrainException.USAGE);
    }

    /** The stored config, with the resumable keys of the requested config and the overrides. */
    private TrainConfig mergeForResume(Checkpoint.Loaded ck) throws ConfigException {
        String name = requested != null ? requested.name() : runDir.getFileName().toString();
        TrainConfig stored = ck.config(name);
        TrainConfig merged = stored;
        if (requested != null) {
            List<String> fixed = new ArrayList<>();
            for (String k : stored.differences(requested)) {
                if (TrainConfig.resumable(k)) merged = merged.with(k, requested.get(k));
                else fixed.add(k + " (run: " + stored.get(k) + ", " + requested.source() + ": " + requested.get(k) + ")");
            }
            if (!fixed.isEmpty())
                throw new ConfigException("Cannot resume " + runDir + " with " + requested.source() + ": it differs from the"
                        + " config the run was trained with in " + String.join(", ", fixed) + ". Only these keys may change"
                        + " on resume: " + resumableKeys() + ". Resume without --config to use the stored config, or start"
                        + " a new run in another directory.");
        }
        TrainConfig result = merged.withOverrides(overrides);
        List<String> fixed = new ArrayList<>();
        for (String k : merged.differences(result))
            if (!TrainConfig.resumable(k)) fixed.add("--set " + k + "=" + result.get(k) + " (the run has " + merged.get(k) + ")");
        if (!fixed.isEmpty())
            throw new ConfigException("Cannot resume " + runDir + " with " + String.join(", ", fixed) + ": these keys are"
                    + " fixed for a run (changing them would make the continuation a different experiment). Keys that may"
                    + " change on resume: " + resumableKeys() + ".");
        return result;
    }

    private static String resumableKeys() {
        List<String> r = new ArrayList<>();
        for (String k : TrainConfig.keys()) if (TrainConfig.resumable(k)) r.add(k);
        return String.join(", ", r);
    }

    /**
     * training.device resolved: cpu; cuda (a ConfigException, exit 2, with the probe's reason when no
     * GPU is usable); auto (CUDA when usable, else the CPU, the reason logged once by CudaContext).
     */
    private static Device resolveDevice(TrainConfig cfg) throws ConfigException {
        try {
            return CudaContext.resolve(cfg.training().device());
        } catch (CudaError e) {
            throw new ConfigException("training.device = " + cfg.training().device() + ": " + e.getMessage());
        } catch (IllegalArgumentException e) {
            throw new ConfigException("Config " + cfg.source() + ": training." + e.getMessage());
        }
    }

    /** The device the run uses (after resolving training.device); CPU before {@link #run}. */
    public Device device() {
        return device;
    }

    private void checkData(ImageDataset ds, String split) throws ConfigException {
        TrainConfig.Data d = cfg.data();
        if (ds.channels() != d.channels() || ds.height() != d.imageSize() || ds.width() != d.imageSize())
            throw new ConfigException("Config " + cfg.source() + ": data.channels = " + d.channels() + " and data.image_size = "
                    + d.imageSize() + " do not match the " + split + " data (" + ds.channels() + "x" + ds.height() + "x"
                    + ds.width() + ": " + ds.describe() + ").");
        int need = split.equals("test") ? cfg.training().testBatchSize() : cfg.training().batchSize();
        if (ds.size() < need)
            throw new ConfigException("Config " + cfg.source() + ": training." + (split.equals("test") ? "test_batch_size" : "batch_size")
                    + " = " + need + " is larger than the " + split + " split (" + ds.size() + " images: " + ds.describe()
                    + "); incomplete batches are dropped, so there would be none.");
    }

    private BatchLoader loader(ImageDataset ds, int b, long stream, boolean flip, long start) {
        return new BatchLoader(ds, b, seed, stream, flip, cfg.data().logitTransform(), start);
    }

    private static BatchLoader.Batch next(BatchLoader l) {
        return l.next(); // DataException.Unchecked propagates to run(), which unwraps it
    }

    private void printHeader(ImageDataset train, ImageDataset test, Checkpoint.Loaded ck, List<String> notes) {
        if (mode == Progress.Mode.SILENT) return;
        TrainConfig.Training tc = cfg.training();
        Runtime rt = Runtime.getRuntime();
        out.printf(Locale.ROOT, "ncsn train: config %s (%s), run directory %s%n", cfg.name(), cfg.source(), runDir);
        out.printf(Locale.ROOT, "data:  train %s%n       test  %s%n", train.describe(), test.describe());
        double gflop = model.forwardFlopsPerImage(cfg.data().imageSize(), cfg.data().imageSize()) / 1e9;
        out.printf(Locale.ROOT, "model: CondRefineNetDilated (%s), %,d parameters, %.2f GFLOP forward per image%n",
                cfg.modelConfig(), model.parameterCount(), gflop);
        out.printf(Locale.ROOT, "cpu:   %s, %d threads, max heap %.1f GiB%n", Simd.description(), Parallel.threads(),
                rt.maxMemory() / (1024.0 * 1024 * 1024));
        if (device != Device.CPU) {
            CudaContext c = CudaContext.get();
            out.printf(Locale.ROOT, "gpu:   %s (device %d, %d SMs): model, Adam and EMA on the GPU%n", c.deviceName(), c.ordinal(),
                    c.multiprocessorCount());
        } else {
            out.printf(Locale.ROOT, "device: cpu (training.device = %s)%n", tc.device());
        }
        out.printf(Locale.ROOT, "train: steps %d..%d, batch %d, Adam lr %s, %d noise levels %s..%s, test every %d steps"
                        + " (batch %d), checkpoint every %d (keep %d), seed %d%s%n",
                (ck == null ? 1 : ck.position().step() + 1), tc.nIters(), tc.batchSize(), cfg.optim().lr(), sigmas.length,
                (float) sigmas[0], (float) sigmas[sigmas.length - 1], tc.testFreq(), tc.testBatchSize(), tc.snapshotFreq(),
                tc.keepSnapshots(), tc.seed(), tc.ema() ? ", EMA " + tc.emaRate() : "");
        if (ck != null) out.printf(Locale.ROOT, "resuming from %s (step %d)%n", ck.file(), ck.position().step());
        for (String n : notes) out.println("note: " + n);
        out.flush();
    }

    static void writeAtomically(Path file, String text) throws IOException {
        Path tmp = file.resolveSibling("." + file.getFileName() + ".tmp");
        Files.writeString(tmp, text, StandardCharsets.UTF_8);
        try {
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
        }
    }
}
