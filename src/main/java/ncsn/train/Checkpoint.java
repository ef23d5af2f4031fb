package ncsn.train;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import java.util.zip.CRC32C;
import ncsn.io.SafeTensors;
import ncsn.io.SafeTensorsException;
import ncsn.model.CondRefineNetDilated;
import ncsn.model.ModelConfig;
import ncsn.model.ModelWeights;
import ncsn.optim.Adam;
import ncsn.tensor.DType;
import ncsn.tensor.Device;
import ncsn.tensor.Tensor;

/**
 * Training checkpoints: one safetensors file per snapshot, {@code RUN/checkpoints/checkpoint_<step>.safetensors},
 * written atomically (temp file, fsync, rename: a crash leaves the previous file intact and never a
 * half-written one under the final name).
 *
 * <p>Layout, so that {@link ModelWeights} and PyTorch users read the weights directly:
 * <pre>
 *   &lt;param&gt;                         model parameters under the reference's state_dict names, F32
 *   optim.&lt;param&gt;.exp_avg             Adam first moment m        (same shape as the parameter)
 *   optim.&lt;param&gt;.exp_avg_sq          Adam second moment v
 *   optim.&lt;param&gt;.max_exp_avg_sq      running max of v (amsgrad only)
 *   ema.&lt;param&gt;                     exponential moving average of the weights (training.ema only)
 * </pre>
 * Header metadata (strings): {@code format} = {@value #FORMAT}, {@code format_version} =
 * {@value #FORMAT_VERSION}, {@code step} (steps completed), {@code adam_step} (Adam's t),
 * {@code train_batch} / {@code test_batch} (index of the next batch each loader delivers),
 * {@code seed} and {@code rng} (the RNG keying: every draw is a pure function of (seed, stream,
 * step or test-batch index), so these numbers are the whole RNG state), {@code config} (the full
 * effective config as YAML), {@code model.channels}, {@code model.ngf}, {@code model.num_classes},
 * {@code model.logit_transform} (also as {@code logit_transform}, which {@link ModelWeights} reads),
 * {@code sigmas}, {@code ema}, and {@code data_crc32c}: CRC-32C of
 * every tensor's little-endian bytes, tensors taken in name order, which catches corruption the
 * format itself cannot see.
 *
 * <p>Devices: the file is the same whichever device trained. {@link #write} copies device tensors
 * to the host first and {@link #restore} copies into device tensors, so a checkpoint written by a
 * GPU run resumes on the CPU and the other way round.
 */
public final class Checkpoint {
    public static final String FORMAT = "ncsn-engine-checkpoint";
    public static final String FORMAT_VERSION = "1";
    public static final String OPTIM_PREFIX = "optim.";
    public static final String EMA_PREFIX = "ema.";
    private static final Pattern FILE = Pattern.compile("checkpoint_(\\d+)\\.safetensors");

    private Checkpoint() {}

    /** Where training stands at a snapshot (all counts after the step completed). */
    public record Position(long step, long adamStep, long trainBatch, long testBatch) {}

    // ---- files ------------------------------------------------------------------------------------

    public static Path dir(Path runDir) {
        return runDir.resolve("checkpoints");
    }

    public static Path path(Path runDir, long step) {
        return dir(runDir).resolve("checkpoint_" + step + ".safetensors");
    }

    /** The step in a checkpoint file name, or -1 when the name is not one. */
    public static long stepOf(Path file) {
        Matcher m = FILE.matcher(file.getFileName().toString());
        return m.matches() ? Long.parseLong(m.group(1)) : -1;
    }

    /** The run's checkpoint files, oldest (lowest step) first; empty when there are none. */
    public static List<Path> list(Path runDir) throws IOException {
        Path d = dir(runDir);
        if (!Files.isDirectory(d)) return List.of();
        try (Stream<Path> s = Files.list(d)) {
            return s.filter(p -> stepOf(p) >= 0 && Files.isRegularFile(p))
                    .sorted(Comparator.comparingLong(Checkpoint::stepOf)).toList();
        }
    }

    /** Removes temp files a killed writer left behind (".checkpoint_N.safetensors.*.tmp"). */
    static void removeStaleTemps(Path runDir) throws IOException {
        Path d = dir(runDir);
        if (!Files.isDirectory(d)) return;
        try (Stream<Path> s = Files.list(d)) {
            for (Path p : s.toList()) {
                String n = p.getFileName().toString();
                if (n.startsWith(".checkpoint_") && n.endsWith(".tmp")) Files.deleteIfExists(p);
            }
        }
    }

    /** Deletes all but the newest {@code keep} checkpoints. */
    static void prune(Path runDir, int keep) throws IOException {
        List<Path> all = list(runDir);
        for (int i = 0; i < all.size() - keep; i++) Files.deleteIfExists(all.get(i));
    }

    // ---- writing ----------------------------------------------------------------------------------

    /**
     * Writes a training checkpoint. {@code params} in the model's order (Adam's parameter i is
     * params' i-th value); {@code ema} null when EMA is off.
     */
    public static void write(Path file, Map<String, Tensor> params, Adam adam, Map<String, Tensor> ema,
                             Position pos, TrainConfig cfg, long seed, String rngDescription) throws IOException {
        List<Tensor> copies = new ArrayList<>();
        try {
            writeHost(file, onHost(params, copies), adam, ema == null ? null : onHost(ema, copies), copies, pos, cfg, seed,
                    rngDescription);
        } finally {
            for (Tensor t : copies) t.free();
        }
    }

    /** The map with every device tensor replaced by a host copy (recorded in {@code copies} to free). */
    private static LinkedHashMap<String, Tensor> onHost(Map<String, Tensor> m, List<Tensor> copies) {
        LinkedHashMap<String, Tensor> out = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : m.entrySet()) out.put(e.getKey(), onHost(e.getValue(), copies));
        return out;
    }

    private static Tensor onHost(Tensor t, List<Tensor> copies) {
        if (t.isCpu()) return t;
        Tensor h = t.to(Device.CPU);
        copies.add(h);
        return h;
    }

    private static void writeHost(Path file, Map<String, Tensor> params, Adam adam, Map<String, Tensor> ema,
                                  List<Tensor> copies, Position pos, TrainConfig cfg, long seed, String rngDescription)
            throws IOException {
        SafeTensors.Writer w = new SafeTensors.Writer();
        TreeMap<String, Tensor> all = new TreeMap<>(); // name order, for the checksum
        int i = 0;
        List<String> names = new ArrayList<>(params.keySet());
        for (String n : names) all.put(n, params.get(n));
        for (String n : names) {
            Adam.ParamState s = adam.state(i++);
            if (s == null) continue;
            all.put(OPTIM_PREFIX + n + ".exp_avg", onHost(s.expAvg(), copies));
            all.put(OPTIM_PREFIX + n + ".exp_avg_sq", onHost(s.expAvgSq(), copies));
            if (s.maxExpAvgSq() != null) all.put(OPTIM_PREFIX + n + ".max_exp_avg_sq", onHost(s.maxExpAvgSq(), copies));
        }
        if (ema != null) for (String n : names) all.put(EMA_PREFIX + n, ema.get(n));
        // File order: weights first in the model's order (readers that stream the file see the model
        // as PyTorch lists it), then optimizer state, then EMA.
        for (String n : names) w.put(n, params.get(n));
        for (Map.Entry<String, Tensor> e : all.entrySet())
            if (e.getKey().startsWith(OPTIM_PREFIX)) w.put(e.getKey(), e.getValue());
        if (ema != null) for (String n : names) w.put(EMA_PREFIX + n, ema.get(n));

        ModelConfig mc = cfg.modelConfig();
        w.meta("format", FORMAT).meta("format_version", FORMAT_VERSION)
                .meta("step", Long.toString(pos.step())).meta("adam_step", Long.toString(pos.adamStep()))
                .meta("train_batch", Long.toString(pos.trainBatch())).meta("test_batch", Long.toString(pos.testBatch()))
                .meta("seed", Long.toString(seed)).meta("rng", rngDescription)
                .meta("config", cfg.toYaml())
                .meta("model.channels", Integer.toString(mc.channels())).meta("model.ngf", Integer.toString(mc.ngf()))
                .meta("model.num_classes", Integer.toString(mc.numClasses()))
                .meta("model.logit_transform", Boolean.toString(mc.logitTransform()))
                .meta(ModelWeights.META_LOGIT_TRANSFORM, Boolean.toString(mc.logitTransform()))
                .meta("sigmas", joinSigmas(cfg.sigmas()))
                .meta("ema", Boolean.toString(ema != null))
                .meta("data_crc32c", crcOfTensors(all));
        w.write(file);
    }

    private static String joinSigmas(double[] s) {
        StringBuilder sb = new StringBuilder();
        for (double v : s) sb.append(sb.length() == 0 ? "" : ",").append((float) v);
        return sb.toString();
    }

    /** CRC-32C of each tensor's little-endian bytes, tensors in the map's (name) order. */
    private static String crcOfTensors(TreeMap<String, Tensor> all) {
        CRC32C crc = new CRC32C();
        ByteBuffer chunk = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
        for (Tensor t : all.values()) {
            if (t.dtype() == DType.F32) {
                float[] a = t.f32();
                for (int off = 0; off < a.length; ) {
                    int n = Math.min(a.length - off, chunk.capacity() / 4);
                    chunk.clear();
                    chunk.asFloatBuffer().put(a, off, n);
                    chunk.limit(4 * n);
                    crc.update(chunk);
                    off += n;
                }
            } else {
                double[] a = t.f64();
                for (int off = 0; off < a.length; ) {
                    int n = Math.min(a.length - off, chunk.capacity() / 8);
                    chunk.clear();
                    chunk.asDoubleBuffer().put(a, off, n);
                    chunk.limit(8 * n);
                    crc.update(chunk);
                    off += n;
                }
            }
        }
        return String.format(Locale.ROOT, "%08x", crc.getValue());
    }

    private static String crcOfEntries(SafeTensors.Contents c) {
        CRC32C crc = new CRC32C();
        for (String n : new TreeMap<>(c.entries()).keySet()) crc.update(c.get(n).data().duplicate());
        return String.format(Locale.ROOT, "%08x", crc.getValue());
    }

    // ---- reading ----------------------------------------------------------------------------------

    /** A parsed checkpoint whose format, metadata and checksum were verified. */
    public static final class Loaded {
        private final SafeTensors.Contents contents;
        private final Position position;
        private final ModelConfig modelConfig;
        private final long seed;

        Loaded(SafeTensors.Contents contents, Position position, ModelConfig modelConfig, long seed) {
            this.contents = contents;
            this.position = position;
            this.modelConfig = modelConfig;
            this.seed = seed;
        }

        public Path file() {
            return contents.file();
        }

        public SafeTensors.Contents contents() {
            return contents;
        }

        public Position position() {
            return position;
        }

        public ModelConfig modelConfig() {
            return modelConfig;
        }

        public long seed() {
            return seed;
        }

        public boolean hasEma() {
            return Boolean.parseBoolean(contents.metadata().get("ema"));
        }

        public String configYaml() {
            return contents.metadata().get("config");
        }

        /** The effective config the run was trained with (name = the run's config name). */
        public TrainConfig config(String name) throws ConfigException {
            return TrainConfig.parse(configYaml(), "the config stored in " + file(), name, List.of());
        }
    }

    /** True when the file's header says it is one of our training checkpoints. */
    public static boolean isTrainingCheckpoint(SafeTensors.Contents c) {
        return FORMAT.equals(c.metadata().get("format"));
    }

    /** Reads and verifies a training checkpoint (format, version, metadata, checksum). */
    public static Loaded read(Path file) throws SafeTensorsException {
        SafeTensors.Contents c = SafeTensors.read(file);
        Map<String, String> m = c.metadata();
        if (!isTrainingCheckpoint(c))
            throw new SafeTensorsException(file, "is not an ncsn-engine training checkpoint (its header has no"
                    + " format = " + FORMAT + "; a weights-only file can be sampled from but not resumed)");
        if (!FORMAT_VERSION.equals(m.get("format_version")))
            throw new SafeTensorsException(file, "has checkpoint format_version " + m.get("format_version")
                    + "; this engine reads version " + FORMAT_VERSION);
        String crc = m.get("data_crc32c");
        if (crc != null && !crc.equals(crcOfEntries(c)))
            throw new SafeTensorsException(file, "is corrupt: the checksum of its tensor data does not match the one"
                    + " recorded when it was written (data_crc32c " + crc + ")");
        Position pos = new Position(num(c, "step"), num(c, "adam_step"), num(c, "train_batch"), num(c, "test_batch"));
        ModelConfig mc = new ModelConfig((int) num(c, "model.channels"), (int) num(c, "model.ngf"),
                (int) num(c, "model.num_classes"), Boolean.parseBoolean(m.get("model.logit_transform")));
        if (m.get("config") == null) throw new SafeTensorsException(file, "has no 'config' in its metadata");
        return new Loaded(c, pos, mc, num(c, "seed"));
    }

    private static long num(SafeTensors.Contents c, String key) throws SafeTensorsException {
        String v = c.metadata().get(key);
        if (v == null) throw new SafeTensorsException(c.file(), "has no '" + key + "' in its metadata");
        try {
            return Long.parseLong(v);
        } catch (NumberFormatException e) {
            throw new SafeTensorsException(c.file(), "has metadata " + key + " = '" + v + "', not an integer");
        }
    }

    static String describe(ModelConfig mc) {
        return "channels " + mc.channels() + ", ngf " + mc.ngf() + ", " + mc.numClasses() + " noise levels"
                + (mc.logitTransform() ? ", logit transform" : "");
    }

    /**
     * Copies a checkpoint into a training state: the model's parameters, Adam's moments and step,
     * the EMA weights (when {@code ema} is not null). Everything is validated first (architecture,
     * then every name, shape and dtype), and all mismatches are reported in one message, so a
     * failed restore leaves the targets untouched.
     */
    public static void restore(Loaded ck, Map<String, Tensor> params, Adam adam, Map<String, Tensor> ema,
                               ModelConfig expected) throws SafeTensorsException {
        Path file = ck.file();
        if (!ck.modelConfig().equals(expected))
            throw new SafeTensorsException(file, "was written for a different network (" + describe(ck.modelConfig())
                    + ") than this config builds (" + describe(expected) + ")");
        if (ema != null && !ck.hasEma())
            throw new SafeTensorsException(file, "has no EMA weights, but training.ema is on");
        // Expected entries: name -> target tensor.
        LinkedHashMap<String, Tensor> want = new LinkedHashMap<>();
        int i = 0;
        for (Map.Entry<String, Tensor> e : params.entrySet()) {
            want.put(e.getKey(), e.getValue());
            Tensor p = adam.params().get(i);
            if (p != e.getValue()) throw new IllegalStateException("Adam's parameter " + i + " is not " + e.getKey());
            Adam.ParamState s = adam.initState(i++);
            want.put(OPTIM_PREFIX + e.getKey() + ".exp_avg", s.expAvg());
            want.put(OPTIM_PREFIX + e.getKey() + ".exp_avg_sq", s.expAvgSq());
            if (s.maxExpAvgSq() != null) want.put(OPTIM_PREFIX + e.getKey() + ".max_exp_avg_sq", s.maxExpAvgSq());
        }
        if (ema != null) for (Map.Entry<String, Tensor> e : ema.entrySet()) want.put(EMA_PREFIX + e.getKey(), e.getValue());

        SafeTensors.Contents c = ck.contents();
        List<String> missing = new ArrayList<>(), wrong = new ArrayList<>(), unexpected = new ArrayList<>();
        for (Map.Entry<String, Tensor> e : want.entrySet()) {
            SafeTensors.Entry en = c.get(e.getKey());
            if (en == null) {
                missing.add(e.getKey());
                continue;
            }
            Tensor t = e.getValue();
            String dt = t.dtype() == DType.F32 ? "F32" : "F64";
            if (!Arrays.equals(shapeOf(en), t.shape()) || !en.dtype().equals(dt))
                wrong.add(e.getKey() + " is " + en.dtype() + " " + Arrays.toString(en.shape()) + ", expected " + dt + " "
                        + Arrays.toString(t.shape()));
        }
        for (String n : c.entries().keySet()) {
            if (want.containsKey(n)) continue;
            // EMA weights in a checkpoint resumed without EMA are a config mismatch, reported as unexpected.
            unexpected.add(n);
        }
        if (!missing.isEmpty() || !wrong.isEmpty() || !unexpected.isEmpty()) {
            StringBuilder sb = new StringBuilder("does not match this training state:");
            if (!missing.isEmpty()) sb.append(" missing ").append(missing.size()).append(" tensors ").append(abbrev(missing)).append(';');
            if (!wrong.isEmpty()) sb.append(" wrong shape or dtype: ").append(String.join("; ", wrong)).append(';');
            if (!unexpected.isEmpty()) sb.append(" unexpected ").append(unexpected.size()).append(" tensors ").append(abbrev(unexpected)).append(';');
            sb.setLength(sb.length() - 1);
            throw new SafeTensorsException(file, sb.toString());
        }
        for (Map.Entry<String, Tensor> e : want.entrySet()) copyInto(c.get(e.getKey()), e.getValue());
        for (int k = 0; k < adam.params().size(); k++) adam.initState(k).setStep(ck.position().adamStep());
    }

    /** The entry's shape as ints, or null when a dimension does not fit (never equal to a tensor's). */
    private static int[] shapeOf(SafeTensors.Entry en) {
        long[] s = en.shape();
        int[] out = new int[s.length];
        for (int i = 0; i < s.length; i++) {
            if (s[i] > Integer.MAX_VALUE) return null;
            out[i] = (int) s[i];
        }
        return out;
    }

    private static String abbrev(List<String> names) {
        if (names.size() <= 12) return names.toString();
        return names.subList(0, 12) + " and " + (names.size() - 12) + " more";
    }

    /** Exact copy of an entry's values into a tensor of the same shape (bits preserved for F32 -> F32), any device. */
    static void copyInto(SafeTensors.Entry en, Tensor t) {
        if (!t.isCpu()) {
            Tensor host = Tensor.persistent(DType.F32, t.shape());
            try {
                copyInto(en, host);
                t.copyFrom(host);
            } finally {
                host.free();
            }
            return;
        }
        ByteBuffer b = en.data().duplicate().order(ByteOrder.LITTLE_ENDIAN);
        if (t.dtype() == DType.F32 && en.dtype().equals("F32")) b.asFloatBuffer().get(t.f32());
        else if (t.dtype() == DType.F64 && en.dtype().equals("F64")) b.asDoubleBuffer().get(t.f64());
        else t.copyFrom(en.toTensor(t.dtype()));
    }

    // ---- sampling -----------------------------------------------------------------------------------

    /**
     * The score network for sampling: from a training checkpoint the EMA weights when it has them
     * (else the raw weights), built with the checkpoint's model config; from a weights-only
     * safetensors file (e.g. converted from the reference's PyTorch checkpoint) via
     * {@link ModelWeights#fromFile}.
     */
    public static CondRefineNetDilated loadForSampling(Path file, DType dtype) throws SafeTensorsException {
        SafeTensors.Contents c = SafeTensors.read(file);
        if (!isTrainingCheckpoint(c)) return ModelWeights.fromFile(file, dtype);
        Loaded ck = read(file);
        CondRefineNetDilated model = new CondRefineNetDilated(ck.modelConfig(), dtype);
        ModelWeights.load(model, ck.contents());
        if (ck.hasEma()) {
            List<String> problems = new ArrayList<>();
            for (Map.Entry<String, Tensor> e : model.parameters().entrySet()) {
                SafeTensors.Entry en = ck.contents().get(EMA_PREFIX + e.getKey());
                if (en == null) problems.add("missing " + EMA_PREFIX + e.getKey());
                else if (!Arrays.equals(shapeOf(en), e.getValue().shape()))
                    problems.add(EMA_PREFIX + e.getKey() + " has shape " + Arrays.toString(en.shape()) + ", expected "
                            + Arrays.toString(e.getValue().shape()));
            }
            if (!problems.isEmpty())
                throw new SafeTensorsException(file, "says it has EMA weights but they do not fit the model: "
                        + String.join("; ", problems));
            for (Map.Entry<String, Tensor> e : model.parameters().entrySet())
                copyInto(ck.contents().get(EMA_PREFIX + e.getKey()), e.getValue());
        }
        return model;
    }
}
