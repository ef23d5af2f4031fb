package ncsn.sample;

import java.util.Arrays;
import java.util.Locale;
import ncsn.autograd.Autograd;
import ncsn.cpu.Parallel;
import ncsn.cuda.CudaContext;
import ncsn.model.CondRefineNetDilated;
import ncsn.ops.Elementwise;
import ncsn.rng.Philox;
import ncsn.rng.Rng;
import ncsn.tensor.DType;
import ncsn.tensor.Device;
import ncsn.tensor.Scope;
import ncsn.tensor.Tensor;

/**
 * Image sampling with a score network (spec section 6): annealed Langevin dynamics in the released
 * code's form, plain Langevin as the baseline, NCSNv2's optional final denoising step, and (for
 * {@link Inpainter}) the masked variant. Batches of images run one after another; the result, the
 * optional chain frames and the timing come back in a {@link Result}.
 * <pre>
 *   x_0 ~ U[0,1)^(n,C,H,W)
 *   annealed:  for i in 0..L-1: step_i = step_lr (sigma_i / sigma_{L-1})^2;  T times: x += step_i s(x, i) + sqrt(2 step_i) z
 *   langevin:  S times at the fixed level (label) l:  x += step_lr s(x, l) + sqrt(2 step_lr) z
 *   denoise:   x += sigma_last^2 s(x, last)   (no noise; last = L-1, or l for plain Langevin)
 * </pre>
 * step_lr keeps the released code's meaning: the paper's x + (alpha_i/2) s + sqrt(alpha_i) z with
 * alpha_i = eps sigma_i^2 / sigma_L^2 is this with step_lr = eps / 2 (defaults 2e-5, T = 100). Plain
 * Langevin uses step_lr itself as the step, as the reference's Langevin_dynamics does.
 *
 * <p><b>Noise keying (determinism, independence of the batch size).</b> Every draw is a pure
 * function of (seed, stream, global element index): element g = sample * CHW + j of the whole
 * [n, C, H, W] chain takes Philox block {@code base + g / 4}, word {@code g % 4}, with base =
 * k * blocksFor(n CHW) for Langevin step k ({@link AnnealedLangevin#NOISE_STREAM}), 0 for the start
 * ({@link AnnealedLangevin#INIT_STREAM}) and level * blocksFor(n CHW) for inpainting's c_i
 * ({@link #CONDITION_STREAM}). A batch starting at sample s0 therefore draws exactly the numbers the
 * whole chain would, provided s0 * CHW is a multiple of 4: the batch size is rounded up to make it so
 * ({@link #effectiveBatch}; a no-op whenever H W is even). So the same seed gives the same samples
 * for any --batch and any thread count on the same backend, provided the network computes each
 * image independently of the others in its batch, which the CPU kernels do (conv per image, CIN++
 * per image; ImageSamplerTest checks bit-equality of batch 1 and batch 4 on a real network).
 *
 * <p><b>Memory.</b> x, the score buffer and (inpainting) the mask and c_i buffers are allocated once
 * per batch; each step runs the network inside a {@link Scope} under {@link Autograd#noGrad()}, so
 * its temporaries go back to the {@link ncsn.tensor.BufferPool} and are reused by the next step
 * (the pool's fresh-allocation count stops growing after the first step), the score is copied into
 * the reused buffer and the update is one fused in-place pass ({@link LangevinUpdate}).
 *
 * <p><b>Devices.</b> A sampler over a model on CUDA ({@link #forModel}, or {@link #onDevice}) keeps
 * x, the score and inpainting's buffers on the GPU for the whole chain: the start is drawn there by
 * {@link Rng#uniform} and c_i's z' by {@link Rng#normal} with the keying above, the network and the
 * fused update run there, and x comes back to the host only for a GIF frame (every
 * {@link #FRAME_EVERY} steps) and at the end of the batch. The draws are the CPU's; the results
 * differ from the CPU's only by float32 rounding in the network (and c_i, denoise: rounded per
 * operation instead of once). Timings synchronise the device after the network and after the
 * update, so they measure the GPU's work, not the launches.
 *
 * <p><b>CUDA graphs</b> ({@link #cudaGraph}, {@code -Dncsn.cuda.graph=on|off}; default on): each
 * level's steps after the first replay one captured step ({@link LangevinGraph}), bit-identical to
 * the plain launches; a replayed step's whole time counts as network time. A capture failure falls
 * back to plain launches for the rest of the run ({@link #graphFailure}).
 */
public final class ImageSampler {
    /** Philox stream of inpainting's per-level noise z' in c_i = r + sigma_i z' ("COND"). */
    public static final long CONDITION_STREAM = 0x434F4E44L;
    /** A chain frame is kept every this many Langevin steps. */
    public static final int FRAME_EVERY = 10;

    public enum Kind {
        /** Annealed Langevin dynamics over all noise levels. */
        ANNEALED,
        /** Plain Langevin at one fixed noise level (the baseline). */
        LANGEVIN
    }

    /**
     * What to sample.
     *
     * @param kind           annealed or plain Langevin
     * @param n              number of samples (> 0)
     * @param seed           Philox key of every draw
     * @param stepsPerLevel  T, annealed Langevin steps per noise level (> 0)
     * @param stepLr         step_lr (> 0): step of the last level; plain Langevin's step
     * @param batch          samples per batch (> 0; rounded up as {@link #effectiveBatch} says)
     * @param denoise        add the final denoising step x + sigma_last^2 s(x, last)
     * @param frames         keep chain frames (every {@link #FRAME_EVERY} steps)
     * @param label          plain Langevin's noise level (ignored for annealed)
     * @param langevinSteps  plain Langevin's number of steps (ignored for annealed)
     */
    public record Settings(Kind kind, int n, long seed, int stepsPerLevel, double stepLr, int batch, boolean denoise,
                           boolean frames, int label, int langevinSteps) {
        public Settings {
            if (kind == null) throw new IllegalArgumentException("sampler kind is missing");
            if (n < 1) throw new IllegalArgumentException("the number of samples must be positive, got " + n);
            if (batch < 1) throw new IllegalArgumentException("the batch size must be positive, got " + batch);
            if (!(stepLr > 0) || Double.isInfinite(stepLr))
                throw new IllegalArgumentException("step_lr must be a positive finite number, got " + stepLr);
            if (kind == Kind.ANNEALED && stepsPerLevel < 1)
                throw new IllegalArgumentException("steps per level must be positive, got " + stepsPerLevel);
            if (kind == Kind.LANGEVIN && langevinSteps < 1)
                throw new IllegalArgumentException("the number of Langevin steps must be positive, got " + langevinSteps);
        }

        /** Annealed Langevin with the spec's defaults for everything not given. */
        public static Settings annealed(int n, long seed, int stepsPerLevel, double stepLr, int batch, boolean denoise, boolean frames) {
            return new Settings(Kind.ANNEALED, n, seed, stepsPerLevel, stepLr, batch, denoise, frames, 0, 1);
        }

        /** Plain Langevin at one level. */
        public static Settings langevin(int n, long seed, int label, int steps, double stepLr, int batch, boolean denoise, boolean frames) {
            return new Settings(Kind.LANGEVIN, n, seed, 1, stepLr, batch, denoise, frames, label, steps);
        }
    }

    /** Progress of a run (see {@link SamplingProgress}); every method may be a no-op. */
    public interface Listener {
        /** Before the first step: total Langevin steps over all batches, batches, steps of one chain. */
        default void start(long totalSteps, int batches, int chainSteps) {}

        /** After every Langevin step: batch index, noise level, step within the level, steps done so far (all batches). */
        default void step(int batch, int level, int stepInLevel, long done) {}

        /** After the last batch. */
        default void finish() {}
    }

    /**
     * Inpainting's conditioning (spec section 6): sample g completes reference g / perReference.
     *
     * @param references   [K, C, H, W] reference images r in the model's input space
     * @param perReference completions per reference
     * @param mask         [C, H, W], 1 where the pixel is known (kept equal to c_i), else 0
     */
    record Conditioning(float[] references, int perReference, float[] mask) {}

    /**
     * What a run produced.
     *
     * @param samples the final samples [n, C, H, W] float32, unclamped (model space)
     * @param frames  chain frames ({@link #frameCount}), each [n, C, H, W] as display bytes
     *                ({@link ImageGrid#toByte}); null unless asked for
     * @param timing  where the time went
     */
    public record Result(Tensor samples, byte[][] frames, Timing timing) {}

    /**
     * Time spent, measured with System.nanoTime around each network call (copy of the score into the
     * reused buffer included) and each fused update.
     *
     * @param batch             samples per batch (after {@link #effectiveBatch})
     * @param batches           number of batches
     * @param samples           n
     * @param chainSteps        Langevin steps of one chain (L T, or the plain Langevin steps)
     * @param steps             Langevin steps run, all batches (batches x chainSteps)
     * @param evaluations       network evaluations (steps, plus one per batch with --denoise)
     * @param networkSeconds    inside the network, over the Langevin steps
     * @param updateSeconds     inside the fused updates (and inpainting's per-level c_i and masked assignments)
     * @param denoiseSeconds    the final denoising steps (network and update; not in the per-step numbers)
     * @param totalSeconds      the whole run, frames and setup included
     * @param medianStepSeconds median over the steps of (network + update) time of one step
     * @param threads           CPU worker threads
     */
    public record Timing(int batch, int batches, int samples, int chainSteps, long steps, long evaluations,
                         double networkSeconds, double updateSeconds, double denoiseSeconds, double totalSeconds,
                         double medianStepSeconds,
                         int threads) {
        /** Mean seconds per Langevin step of one batch (network + update). */
        public double secondsPerStep() {
            return steps == 0 ? Double.NaN : (networkSeconds + updateSeconds) / steps;
        }

        /** One batch's 1000-step chain at the mean step time (extrapolated). */
        public double secondsPer1000Steps() {
            return 1000 * secondsPerStep();
        }

        /** Share of the step time spent inside the network. */
        public double networkShare() {
            double t = networkSeconds + updateSeconds;
            return t > 0 ? networkSeconds / t : Double.NaN;
        }

        public String summary() {
            return String.format(Locale.ROOT, "%.4g s per Langevin step (batch %d, median %.4g s), %.4g s per 1000-step chain"
                            + " (extrapolated), %.1f%% of the step time in the network, %.1f%% in the fused update; %d threads",
                    secondsPerStep(), batch, medianStepSeconds, secondsPer1000Steps(), 100 * networkShare(),
                    100 * (1 - networkShare()), threads);
        }

        /** The timing as a JSON object (one line per field). */
        public String toJson(String extraFields) {
            StringBuilder sb = new StringBuilder("{\n");
            field(sb, "batch_size", batch);
            field(sb, "batches", batches);
            field(sb, "samples", samples);
            field(sb, "chain_steps", chainSteps);
            field(sb, "langevin_steps", steps);
            field(sb, "network_evaluations", evaluations);
            field(sb, "seconds_per_step", secondsPerStep());
            field(sb, "median_seconds_per_step", medianStepSeconds);
            field(sb, "seconds_per_1000_steps", secondsPer1000Steps());
            field(sb, "network_seconds", networkSeconds);
            field(sb, "update_seconds", updateSeconds);
            field(sb, "network_share", networkShare());
            field(sb, "update_share", 1 - networkShare());
            field(sb, "denoise_seconds", denoiseSeconds);
            field(sb, "total_seconds", totalSeconds);
            field(sb, "threads", threads);
            if (extraFields != null && !extraFields.isEmpty()) sb.append(extraFields);
            sb.setLength(sb.length() - 2); // the last ",\n"
            return sb.append("\n}\n").toString();
        }

        private static void field(StringBuilder sb, String k, double v) {
            sb.append("  \"").append(k).append("\": ").append(Double.isFinite(v) ? String.format(Locale.ROOT, "%.6g", v) : "null").append(",\n");
        }

        private static void field(StringBuilder sb, String k, long v) {
            sb.append("  \"").append(k).append("\": ").append(v).append(",\n");
        }
    }

    private final ScoreFunction score;
    private final double[] sigmas;
    private final int channels, height, width;
    private final boolean logitSpace;
    private Device device = Device.CPU;
    private Boolean cudaGraph;
    private long graphReplays;
    private String graphFailure;

    /**
     * @param score      s(x, level) for x [B, C, H, W] float32
     * @param sigmas     the noise levels, largest first
     * @param channels   C
     * @param height     H
     * @param width      W
     * @param logitSpace samples live in logit space (frames are shown through the sigmoid)
     */
    public ImageSampler(ScoreFunction score, double[] sigmas, int channels, int height, int width, boolean logitSpace) {
        if (score == null) throw new IllegalArgumentException("image sampler: no score function");
        if (sigmas == null || sigmas.length == 0) throw new IllegalArgumentException("image sampler: no noise levels");
        for (double s : sigmas)
            if (!(s > 0) || Double.isInfinite(s)) throw new IllegalArgumentException("image sampler: noise levels must be positive, got " + Arrays.toString(sigmas));
        if (channels < 1 || height < 1 || width < 1)
            throw new IllegalArgumentException("image sampler: bad image shape " + channels + "x" + height + "x" + width);
        this.score = score;
        this.sigmas = sigmas.clone();
        this.channels = channels;
        this.height = height;
        this.width = width;
        this.logitSpace = logitSpace;
    }

    /** A sampler over a score network at image size {@code imageSize} x {@code imageSize}. */
    public static ImageSampler forModel(CondRefineNetDilated model, double[] sigmas, int imageSize) {
        if (model.dtype() != DType.F32) throw new IllegalArgumentException("image sampler: the network must be float32");
        if (sigmas.length != model.config().numClasses())
            throw new IllegalArgumentException("image sampler: " + sigmas.length + " noise levels given, the network has "
                    + model.config().numClasses());
        return new ImageSampler(networkScore(model), sigmas, model.config().channels(), imageSize, imageSize,
                model.config().logitTransform()).onDevice(model.device());
    }

    /**
     * Runs the chains on {@code device}: x is allocated there and the score function receives
     * (and must write) tensors on it. Returns this.
     */
    public ImageSampler onDevice(Device device) {
        if (device == null) throw new IllegalArgumentException("image sampler: device is null");
        this.device = device;
        return this;
    }

    public Device device() {
        return device;
    }

    /**
     * On CUDA, replay each noise level's steps after the first as a CUDA graph ({@link LangevinGraph};
     * bit-identical samples) or not; overrides {@code -Dncsn.cuda.graph=on|off} (default on).
     * Ignored on the CPU. Returns this.
     */
    public ImageSampler cudaGraph(boolean on) {
        this.cudaGraph = on;
        return this;
    }

    /** Steps of the last run that were CUDA graph replays (0 without graphs). */
    public long graphReplays() {
        return graphReplays;
    }

    /** Why the last run gave up CUDA graphs (it then sampled without them), or null. */
    public String graphFailure() {
        return graphFailure;
    }

    /**
     * The network as a {@link ScoreFunction}: one forward pass per call inside its own {@link Scope}
     * (every temporary, the network's output included, returns to the pool when it closes), the
     * output copied into {@code out}. The labels array is reused while the batch size stays the same.
     */
    public static ScoreFunction networkScore(CondRefineNetDilated model) {
        return new ScoreFunction() {
            private int[] labels = new int[0];

            @Override
            public void score(Tensor x, int level, Tensor out) {
                if (labels.length != x.dim(0)) labels = new int[x.dim(0)];
                Arrays.fill(labels, level);
                try (Scope s = Scope.open()) {
                    out.copyFrom(model.score(x, labels));
                }
            }

            /** The level's labels go up once, so a captured forward pass uploads nothing (CIN++ reuses them). */
            @Override
            public AutoCloseable prepareCapture(Tensor x, int level) {
                int[] y = new int[x.dim(0)];
                Arrays.fill(y, level);
                Tensor t = ncsn.ops.CondInstanceNormPlus.preloadLabels(y, x.device());
                return () -> {
                    if (t != null && t.isLive()) t.free();
                };
            }
        };
    }

    public double[] sigmas() {
        return sigmas.clone();
    }

    public int channels() {
        return channels;
    }

    public int height() {
        return height;
    }

    public int width() {
        return width;
    }

    public boolean logitSpace() {
        return logitSpace;
    }

    /**
     * The batch size actually used: {@code requested} capped at n and, when C H W is not a multiple
     * of 4, rounded up so that every batch starts on a Philox block boundary (see the class comment).
     */
    public static int effectiveBatch(int requested, int n, int chw) {
        int b = Math.min(requested, n);
        int unit = chw % 4 == 0 ? 1 : chw % 2 == 0 ? 2 : 4;
        if (b % unit != 0) b = Math.min(n, (b / unit + 1) * unit);
        return b;
    }

    /** Langevin steps of one chain. */
    public int chainSteps(Settings s) {
        return s.kind() == Kind.ANNEALED ? sigmas.length * s.stepsPerLevel() : s.langevinSteps();
    }

    /**
     * Frames of a chain of {@code steps} steps: the start, the state after every
     * {@link #FRAME_EVERY}-th step, the final state when steps is not a multiple of it, and the
     * denoised result.
     */
    public static int frameCount(int steps, boolean denoise) {
        return steps / FRAME_EVERY + 1 + (steps % FRAME_EVERY != 0 ? 1 : 0) + (denoise ? 1 : 0);
    }

    /** Samples as {@code s} says. */
    public Result sample(Settings s, Listener listener) {
        return run(s, null, listener);
    }

    Result run(Settings st, Conditioning cond, Listener listener) {
        if (listener == null) listener = new Listener() {};
        int levels = sigmas.length;
        if (st.kind() == Kind.LANGEVIN && (st.label() < 0 || st.label() >= levels))
            throw new IllegalArgumentException("plain Langevin: label " + st.label() + " is outside 0.." + (levels - 1));
        if (cond != null && (st.kind() != Kind.ANNEALED || st.denoise()))
            throw new IllegalArgumentException("inpainting runs annealed Langevin without the denoising step");
        long t0 = System.nanoTime();
        int n = st.n(), chw = channels * height * width;
        if ((long) n * chw > Integer.MAX_VALUE - 16)
            throw new IllegalArgumentException(n + " samples of " + channels + "x" + height + "x" + width + " exceed 2^31 values; sample fewer");
        int batch = effectiveBatch(st.batch(), n, chw);
        int batches = (n + batch - 1) / batch;
        int chain = chainSteps(st);
        long stepBlocks = Philox.blocksFor((long) n * chw);
        int frameCount = frameCount(chain, st.denoise());
        byte[][] frames = null;
        if (st.frames()) {
            long bytes = (long) frameCount * n * chw;
            if (bytes > Runtime.getRuntime().maxMemory() / 2)
                throw new IllegalArgumentException("keeping " + frameCount + " chain frames of " + n + " samples needs "
                        + (bytes >> 20) + " MiB, more than half the heap; sample fewer images or leave out the GIF");
            frames = new byte[frameCount][n * chw];
        }
        float[] all = new float[n * chw];
        long[] stepNanos = new long[(int) Math.min(Integer.MAX_VALUE - 16, (long) batches * chain)];
        long netNanos = 0, updNanos = 0, denoiseNanos = 0, evaluations = 0;
        int stepCount = 0;
        listener.start((long) batches * chain, batches, chain);
        long done = 0;
        boolean gpu = device != Device.CPU;
        boolean graphs = gpu && (cudaGraph != null ? cudaGraph : LangevinGraph.enabledByProperty());
        long replays = 0;
        String failure = null;
        try (Autograd.NoGrad ng = Autograd.noGrad()) {
            for (int bi = 0; bi < batches; bi++) {
                int s0 = bi * batch, b = Math.min(batch, n - s0), len = b * chw;
                long base = (long) s0 * chw / 4; // block of this batch's first element (s0 * chw % 4 == 0)
                // Per-batch buffers, outside any scope: x, the score, and for inpainting mask / r / c_i
                // (on a device: persistent there, freed at the end of the batch).
                Tensor x, s;
                Tensor mask = null, known = null, refDev = null, zDev = null;
                float[] ref = null;
                double[] zScratch = null; // z' of c_i in double, so c_i is rounded once
                if (gpu) {
                    x = Tensor.persistent(device, DType.F32, b, channels, height, width);
                    s = Tensor.persistent(device, DType.F32, b, channels, height, width);
                    new Rng(st.seed(), AnnealedLangevin.INIT_STREAM, base).uniform(x);
                } else {
                    x = Tensor.wrap(new float[len], b, channels, height, width);
                    s = Tensor.wrap(new float[len], b, channels, height, width);
                    Philox.uniform(st.seed(), AnnealedLangevin.INIT_STREAM, base, x.f32(), 0, len);
                }
                if (cond != null) {
                    float[] m = new float[len];
                    ref = new float[len];
                    for (int i = 0; i < b; i++) {
                        System.arraycopy(cond.mask(), 0, m, i * chw, chw);
                        System.arraycopy(cond.references(), ((s0 + i) / cond.perReference()) * chw, ref, i * chw, chw);
                    }
                    if (gpu) {
                        mask = upload(m, b);
                        refDev = upload(ref, b);
                        known = Tensor.persistent(device, DType.F32, b, channels, height, width);
                        zDev = Tensor.persistent(device, DType.F32, b, channels, height, width);
                    } else {
                        mask = Tensor.wrap(m, b, channels, height, width);
                        known = Tensor.wrap(new float[len], b, channels, height, width);
                        zScratch = new double[len];
                    }
                }
                try {
                    if (frames != null) quantize(x, frames[0], s0 * chw, len);
                    int k = 0; // steps done in this chain
                    int nLevels = st.kind() == Kind.ANNEALED ? levels : 1;
                    for (int li = 0; li < nLevels; li++) {
                        int level = st.kind() == Kind.ANNEALED ? li : st.label();
                        double step = st.kind() == Kind.ANNEALED ? stepSize(st.stepLr(), level) : st.stepLr();
                        int steps = st.kind() == Kind.ANNEALED ? st.stepsPerLevel() : st.langevinSteps();
                        if (cond != null) {
                            // c_i = r + sigma_i z', drawn once per level; x[m] = c_i before the level.
                            long a = System.nanoTime();
                            double sig = sigmas[level];
                            if (gpu) {
                                new Rng(st.seed(), CONDITION_STREAM, level * stepBlocks + base).normal(zDev);
                                try (Scope sc = Scope.open()) {
                                    known.copyFrom(Elementwise.add(refDev, Elementwise.scale(zDev, sig)));
                                }
                            } else {
                                float[] c = known.f32();
                                Philox.normal(st.seed(), CONDITION_STREAM, level * stepBlocks + base, zScratch, 0, len);
                                for (int j = 0; j < len; j++) c[j] = (float) (ref[j] + sig * zScratch[j]);
                            }
                            LangevinUpdate.assignMasked(x, mask, known);
                            sync();
                            updNanos += System.nanoTime() - a;
                        }
                        // CUDA graphs: the level's first step runs plainly (warming the allocator), the rest replay it.
                        LangevinGraph lg = graphs && steps > 1 ? new LangevinGraph(score, x, level) : null;
                        try {
                            for (int t = 0; t < steps; t++) {
                                long a = System.nanoTime(), m, e;
                                if (lg != null && lg.captured()) {
                                    lg.replay(); // score + update in one launch: counted as network time
                                    sync();
                                    m = e = System.nanoTime();
                                    replays++;
                                } else {
                                    if (lg != null && t == 0) lg.warmScore(s);
                                    else score.score(x, level, s);
                                    sync();
                                    m = System.nanoTime();
                                    long offset = (long) k * stepBlocks + base;
                                    if (cond == null) LangevinUpdate.apply(x, s, step, st.seed(), AnnealedLangevin.NOISE_STREAM, offset);
                                    else LangevinUpdate.applyMasked(x, s, step, st.seed(), AnnealedLangevin.NOISE_STREAM, offset, mask, known);
                                    sync();
                                    e = System.nanoTime();
                                }
                                netNanos += m - a;
                                updNanos += e - m;
                                if (stepCount < stepNanos.length) stepNanos[stepCount] = e - a;
                                stepCount++;
                                evaluations++;
                                k++;
                                if (frames != null && (k % FRAME_EVERY == 0 || k == chain))
                                    quantize(x, frames[k % FRAME_EVERY == 0 ? k / FRAME_EVERY : chain / FRAME_EVERY + 1], s0 * chw, len);
                                listener.step(bi, level, t, ++done);
                                if (lg != null && t == 0 && !lg.capture(s, mask, known, step, st.seed(), AnnealedLangevin.NOISE_STREAM,
                                        (long) k * stepBlocks + base, stepBlocks)) {
                                    graphs = false; // given up for the rest of the run (one logged line)
                                    failure = lg.failure();
                                }
                            }
                        } finally {
                            if (lg != null) lg.close();
                        }
                    }
                    if (st.denoise()) {
                        // NCSNv2's last step: x + sigma_last^2 s(x, last), no noise.
                        int last = st.kind() == Kind.ANNEALED ? levels - 1 : st.label();
                        long a = System.nanoTime();
                        score.score(x, last, s);
                        double s2 = sigmas[last] * sigmas[last];
                        if (gpu) {
                            try (Scope sc = Scope.open()) {
                                x.copyFrom(Elementwise.add(x, Elementwise.scale(s, s2)));
                            }
                            sync();
                        } else {
                            float[] xs = x.f32(), ss = s.f32();
                            for (int j = 0; j < len; j++) xs[j] = (float) (xs[j] + s2 * ss[j]);
                        }
                        denoiseNanos += System.nanoTime() - a;
                        evaluations++;
                        if (frames != null) quantize(x, frames[frameCount - 1], s0 * chw, len);
                    }
                    if (gpu) {
                        Tensor h = x.to(Device.CPU); // the batch's one device-to-host copy of the result
                        try {
                            System.arraycopy(h.f32(), 0, all, s0 * chw, len);
                        } finally {
                            h.free();
                        }
                    } else {
                        System.arraycopy(x.f32(), 0, all, s0 * chw, len);
                    }
                } finally {
                    if (gpu) for (Tensor t : new Tensor[] {x, s, mask, known, refDev, zDev}) if (t != null) t.free();
                }
            }
        }
        listener.finish();
        graphReplays = replays;
        graphFailure = failure;
        long[] timed = Arrays.copyOf(stepNanos, Math.min(stepCount, stepNanos.length));
        Arrays.sort(timed);
        double median = timed.length == 0 ? Double.NaN
                : (timed.length % 2 == 1 ? timed[timed.length / 2] : (timed[timed.length / 2 - 1] + timed[timed.length / 2]) / 2.0) / 1e9;
        Timing timing = new Timing(batch, batches, n, chain, stepCount, evaluations, netNanos / 1e9, updNanos / 1e9,
                denoiseNanos / 1e9, (System.nanoTime() - t0) / 1e9, median, Parallel.threads());
        return new Result(Tensor.wrap(all, n, channels, height, width), frames, timing);
    }

    /** Display bytes of x's len values into frame[off..]: from the host array, or a host copy of a device x. */
    private void quantize(Tensor x, byte[] frame, int off, int len) {
        if (x.isCpu()) {
            ImageGrid.quantize(x.f32(), 0, frame, off, len, logitSpace);
            return;
        }
        Tensor h = x.to(Device.CPU);
        try {
            ImageGrid.quantize(h.f32(), 0, frame, off, len, logitSpace);
        } finally {
            h.free();
        }
    }

    /** A host array [b, C, H, W] as a persistent tensor on this sampler's device. */
    private Tensor upload(float[] a, int b) {
        Tensor t = Tensor.persistent(device, DType.F32, b, channels, height, width);
        t.copyFrom(Tensor.wrap(a, b, channels, height, width));
        return t;
    }

    /** Waits for the device's queued work so the timings measure it (no-op on the CPU). */
    private void sync() {
        if (device != Device.CPU) CudaContext.get().synchronize();
    }

    /** step_i = step_lr (sigma_i / sigma_{L-1})^2, in double as the reference's numpy computes it. */
    public double stepSize(double stepLr, int level) {
        double r = sigmas[level] / sigmas[sigmas.length - 1];
        return stepLr * r * r;
    }
}
