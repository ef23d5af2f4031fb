package ncsn.train;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.StringJoiner;
import ncsn.model.ModelConfig;
import ncsn.ops.AnnealedDsm;
import org.snakeyaml.engine.v2.api.LoadSettings;
import org.snakeyaml.engine.v2.api.lowlevel.Compose;
import org.snakeyaml.engine.v2.exceptions.Mark;
import org.snakeyaml.engine.v2.exceptions.YamlEngineException;
import org.snakeyaml.engine.v2.nodes.MappingNode;
import org.snakeyaml.engine.v2.nodes.Node;
import org.snakeyaml.engine.v2.nodes.NodeTuple;
import org.snakeyaml.engine.v2.nodes.ScalarNode;
import org.snakeyaml.engine.v2.nodes.Tag;
import org.snakeyaml.engine.v2.schema.CoreSchema;

/**
 * A training run's configuration: the reference's {@code configs/anneal.yml} layout (sections
 * training, data, model, optim) with every key it uses, plus this engine's own keys (seed, test
 * cadence, device, snapshots kept, EMA, data path).
 *
 * <p>Loading is strict: an unknown key, a value of the wrong type or out of range is reported,
 * all of them at once, in one paragraph naming the config and each key (with its line). Keys the
 * reference has but this engine does not use ({@code training.n_epochs}, {@code training.ngpu})
 * are accepted and ignored; {@code training.n_iters} alone decides the run length.
 *
 * <p>YAML is read with the YAML 1.2 core schema (snakeyaml-engine): {@code 1e-3} is a number,
 * {@code yes} is a string. Keys missing from a file take the defaults of {@link #KEYS} (the
 * paper's settings). {@link #toYaml()} writes the complete effective configuration (every key,
 * defaults resolved), which each checkpoint and {@code RUN/config.yml} store.
 */
public final class TrainConfig {

    // ---- schema ---------------------------------------------------------------------------------

    enum Type { INT, LONG, DOUBLE, BOOL, STRING }

    /** A value check: null when fine, else what is wrong ("must be positive"). */
    @FunctionalInterface
    interface Check {
        String problem(Object value);
    }

    /**
     * One key: its type, default (null = none, or derived: see {@link #resolveDefaults}), a check,
     * whether the engine ignores it, and whether {@code --resume} may change it.
     */
    record Key(String name, Type type, Object defaultValue, Check check, boolean ignored, boolean resumable, String help) {
        String section() {
            return name.substring(0, name.indexOf('.'));
        }

        String leaf() {
            return name.substring(name.indexOf('.') + 1);
        }
    }

    static final List<String> SECTIONS = List.of("training", "data", "model", "optim");

    /** Every accepted key, in the order {@link #toYaml()} writes them. */
    static final List<Key> KEYS = List.of(
            key("training.batch_size", Type.INT, 128, positive(), false, false, "images per training step"),
            key("training.n_epochs", Type.INT, null, nonNegative(), true, true,
                    "accepted for compatibility with the reference and ignored: n_iters decides the run length"),
            key("training.n_iters", Type.INT, 200000, positive(), false, true, "training steps in all"),
            key("training.ngpu", Type.INT, null, nonNegative(), true, true, "accepted and ignored"),
            key("training.snapshot_freq", Type.INT, 5000, positive(), false, true, "steps between checkpoints"),
            key("training.algo", Type.STRING, "dsm", v -> v.equals("dsm") ? null
                    : v.equals("ssm") ? "'ssm' (sliced score matching) is not supported: it needs second derivatives,"
                            + " which this engine's autograd does not provide; use 'dsm'"
                    : "must be 'dsm' (denoising score matching), got '" + v + "'", false, false, "objective"),
            key("training.anneal_power", Type.DOUBLE, 2.0, finite(), false, false, "loss weight sigma^anneal_power"),
            key("training.seed", Type.LONG, 1234L, null, false, false,
                    "seed of the initialisation, data order, labels and noise"),
            key("training.test_freq", Type.INT, 100, positive(), false, true, "steps between test-loss evaluations"),
            key("training.test_batch_size", Type.INT, null, positive(), false, false,
                    "images per test batch (default: batch_size)"),
            key("training.device", Type.STRING, "auto", oneOf("cpu", "cuda", "auto"), false, true, "cpu, cuda or auto"),
            key("training.keep_snapshots", Type.INT, 3, positive(), false, true, "checkpoints kept (the newest ones)"),
            key("training.ema", Type.BOOL, false, null, false, false, "keep an exponential moving average of the weights"),
            key("training.ema_rate", Type.DOUBLE, 0.999, v -> ((Double) v) > 0 && ((Double) v) < 1 ? null
                    : "must be in (0, 1), got " + v, false, false, "EMA decay per step"),

            key("data.dataset", Type.STRING, null, null, false, false, "MNIST, FashionMNIST, CIFAR10, CELEBA or FOLDER"),
            key("data.image_size", Type.INT, null, v -> {
                int s = (Integer) v;
                return s < 4 ? "must be at least 4, got " + s
                        : s % 2 != 0 ? "must be even (the network halves the resolution once), got " + s : null;
            }, false, false, "height = width of the training images"),
            key("data.channels", Type.INT, null, oneOfInt(1, 3), false, false, "1 (grey) or 3 (RGB)"),
            key("data.logit_transform", Type.BOOL, false, null, false, false, "train in logit space"),
            key("data.random_flip", Type.BOOL, false, null, false, false, "random horizontal flips"),
            key("data.path", Type.STRING, null, v -> ((String) v).isBlank() ? "must not be empty" : null, false, true,
                    "dataset folder (default per dataset, e.g. /usr/share/datasets/fashion-mnist)"),

            key("model.sigma_begin", Type.DOUBLE, 1.0, positiveFinite(), false, false, "largest noise level"),
            key("model.sigma_end", Type.DOUBLE, 0.01, positiveFinite(), false, false, "smallest noise level"),
            key("model.num_classes", Type.INT, 10, positive(), false, false, "number of noise levels L"),
            key("model.batch_norm", Type.BOOL, false, v -> ((Boolean) v) ? "must be false (the reference's"
                    + " CondRefineNetDilated has no batch-norm variant)" : null, false, false, "must be false"),
            key("model.ngf", Type.INT, 64, v -> ((Integer) v) >= 2 ? null : "must be at least 2, got " + v, false, false,
                    "base channel count of the score network"),

            key("optim.weight_decay", Type.DOUBLE, 0.0, nonNegativeFinite(), false, false, "Adam weight decay"),
            key("optim.optimizer", Type.STRING, "Adam", v -> v.equals("Adam") ? null
                    : "must be 'Adam' (the only optimizer this engine implements), got '" + v + "'", false, false, "Adam"),
            key("optim.lr", Type.DOUBLE, 0.001, positiveFinite(), false, true, "learning rate"),
            key("optim.beta1", Type.DOUBLE, 0.9, v -> ((Double) v) >= 0 && ((Double) v) < 1 ? null
                    : "must be in [0, 1), got " + v, false, false, "Adam beta1 (beta2 is 0.999)"),
            key("optim.amsgrad", Type.BOOL, false, null, false, false, "AMSGrad variant of Adam"));

    /** Datasets: canonical name, channels, default image size, default folder. */
    record DatasetInfo(String name, int channels, int imageSize, String defaultPath) {}

    static final List<DatasetInfo> DATASETS = List.of(
            new DatasetInfo("MNIST", 1, 28, "/usr/share/datasets/mnist"),
            new DatasetInfo("FashionMNIST", 1, 28, "/usr/share/datasets/fashion-mnist"),
            new DatasetInfo("CIFAR10", 3, 32, "/usr/share/datasets/cifar10"),
            new DatasetInfo("CELEBA", 3, 32, "/usr/share/datasets/celeba"),
            new DatasetInfo("FOLDER", 3, 32, null));

    /** Configs shipped in the jar under {@code configs/NAME.yml}. */
    public static final List<String> BUNDLED = List.of("fashion_mnist_small", "cifar10_small", "mnist", "cifar10", "celeba");

    /** The config {@code ncsn train} uses without --config. */
    public static final String DEFAULT_NAME = "fashion_mnist_small";

    private static final Map<String, Key> BY_NAME = new LinkedHashMap<>();

    static {
        for (Key k : KEYS) BY_NAME.put(k.name, k);
    }

    // ---- typed view -----------------------------------------------------------------------------

    public record Training(int batchSize, int nIters, int snapshotFreq, String algo, double annealPower, long seed,
                           int testFreq, int testBatchSize, String device, int keepSnapshots, boolean ema, double emaRate) {}

    public record Data(String dataset, int imageSize, int channels, boolean logitTransform, boolean randomFlip, String path) {}

    public record Model(double sigmaBegin, double sigmaEnd, int numClasses, boolean batchNorm, int ngf) {}

    public record Optim(double weightDecay, String optimizer, double lr, double beta1, boolean amsgrad) {}

    private final String name;
    private final String source;
    /** Effective values by full key ("training.batch_size"), defaults resolved; ignored keys only when given. */
    private final LinkedHashMap<String, Object> values;
    private final Training training;
    private final Data data;
    private final Model model;
    private final Optim optim;

    private TrainConfig(String name, String source, LinkedHashMap<String, Object> values) {
        this.name = name;
        this.source = source;
        this.values = values;
        this.training = new Training(i("training.batch_size"), i("training.n_iters"), i("training.snapshot_freq"),
                s("training.algo"), d("training.anneal_power"), (Long) values.get("training.seed"),
                i("training.test_freq"), i("training.test_batch_size"), s("training.device"),
                i("training.keep_snapshots"), b("training.ema"), d("training.ema_rate"));
        this.data = new Data(s("data.dataset"), i("data.image_size"), i("data.channels"), b("data.logit_transform"),
                b("data.random_flip"), s("data.path"));
        this.model = new Model(d("model.sigma_begin"), d("model.sigma_end"), i("model.num_classes"),
                b("model.batch_norm"), i("model.ngf"));
        this.optim = new Optim(d("optim.weight_decay"), s("optim.optimizer"), d("optim.lr"), d("optim.beta1"),
                b("optim.amsgrad"));
    }

    private int i(String k) {
        return (Integer) values.get(k);
    }

    private double d(String k) {
        return (Double) values.get(k);
    }

    private boolean b(String k) {
        return (Boolean) values.get(k);
    }

    private String s(String k) {
        return (String) values.get(k);
    }

    public Training training() {
        return training;
    }

    public Data data() {
        return data;
    }

    public Model model() {
        return model;
    }

    public Optim optim() {
        return optim;
    }

    /** Short name: the bundled name or the file name without extension (default run dir runs/NAME). */
    public String name() {
        return name;
    }

    /** Where it came from, for messages ("bundled config 'mnist'", a file path, a checkpoint). */
    public String source() {
        return source;
    }

    /** The effective value of a key ("training.n_iters"), or null for an ignored key not given. */
    public Object get(String key) {
        return values.get(key);
    }

    /** The noise levels sigma_0 > ... > sigma_{L-1} (spec section 1). */
    public double[] sigmas() {
        return AnnealedDsm.sigmas(model.sigmaBegin(), model.sigmaEnd(), model.numClasses());
    }

    /** The score network's shape parameters. */
    public ModelConfig modelConfig() {
        return new ModelConfig(data.channels(), model.ngf(), model.numClasses(), data.logitTransform());
    }

    /** The dataset folder ({@code data.path}, relative paths against the working directory). */
    public Path dataPath() {
        return Path.of(data.path());
    }

    /**
     * Keys that {@code --resume} may change: run length, cadence, bookkeeping, data location and
     * the learning rate (to continue after a divergence). Changing any other key would make the
     * resumed run a different experiment, so resume refuses it.
     */
    public static boolean resumable(String key) {
        Key k = BY_NAME.get(key);
        return k != null && k.resumable;
    }

    /** Every accepted key, "section.key", in file order. */
    public static List<String> keys() {
        List<String> out = new ArrayList<>();
        for (Key k : KEYS) out.add(k.name);
        return out;
    }

    // ---- loading --------------------------------------------------------------------------------

    /**
     * A bundled config by name ({@link #BUNDLED}) or a YAML file path, then the overrides
     * ({@code section.key=value}, applied in order).
     */
    public static TrainConfig load(String nameOrPath, List<String> overrides) throws ConfigException {
        String bundled = bundledText(nameOrPath);
        Path file = Path.of(nameOrPath);
        if (bundled != null && !Files.isRegularFile(file)) {
            return parse(bundled, "bundled config '" + nameOrPath + "' (configs/" + nameOrPath + ".yml)", nameOrPath, overrides);
        }
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new ConfigException("Config " + nameOrPath + ": no such file, and not the name of a bundled config"
                    + " (bundled: " + String.join(", ", BUNDLED) + ").");
        } catch (IOException e) {
            throw new ConfigException("Config " + file + ": cannot be read (" + e.getMessage() + ").");
        }
        String fileName = file.getFileName().toString();
        String base = fileName.replaceFirst("\\.(ya?ml)$", "");
        return parse(text, file.toString(), base, overrides);
    }

    /** The text of bundled config {@code name}, or null. */
    static String bundledText(String name) {
        if (!BUNDLED.contains(name)) return null;
        try (InputStream in = TrainConfig.class.getResourceAsStream("/configs/" + name + ".yml")) {
            return in == null ? null : new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            return null;
        }
    }

    /**
     * Parses YAML text. {@code source} names it in messages; {@code name} becomes {@link #name()}.
     * Overrides ({@code section.key=value}) are applied after the file and validated the same way.
     */
    public static TrainConfig parse(String yaml, String source, String name, List<String> overrides) throws ConfigException {
        List<String> problems = new ArrayList<>();
        LinkedHashMap<String, Object> given = new LinkedHashMap<>();
        Map<String, Integer> lines = new LinkedHashMap<>();
        readYaml(yaml, source, given, lines, problems);
        applyOverrides(overrides, given, lines, problems);
        return build(source, name, given, lines, problems);
    }

    /** This config with further overrides (e.g. for {@code --resume}); source and name kept. */
    public TrainConfig withOverrides(List<String> overrides) throws ConfigException {
        if (overrides == null || overrides.isEmpty()) return this;
        List<String> problems = new ArrayList<>();
        LinkedHashMap<String, Object> given = new LinkedHashMap<>(values);
        Map<String, Integer> lines = new LinkedHashMap<>();
        applyOverrides(overrides, given, lines, problems);
        return build(source, name, given, lines, problems);
    }

    /** This config with one key set to an already typed value (used to merge configs on resume). */
    TrainConfig with(String key, Object value) throws ConfigException {
        LinkedHashMap<String, Object> given = new LinkedHashMap<>(values);
        if (value == null) given.remove(key);
        else given.put(key, value);
        return build(source, name, given, new LinkedHashMap<>(), new ArrayList<>());
    }

    private static void readYaml(String yaml, String source, Map<String, Object> given, Map<String, Integer> lines,
                                 List<String> problems) throws ConfigException {
        LoadSettings settings = LoadSettings.builder().setLabel(source).setSchema(new CoreSchema())
                .setAllowDuplicateKeys(false).setUseMarks(true).build();
        Optional<Node> root;
        try {
            root = new Compose(settings).composeString(yaml);
        } catch (YamlEngineException e) {
            throw new ConfigException("Config " + source + " is not valid YAML: "
                    + e.getMessage().replaceAll("\\s*\\n\\s*", " ").trim());
        }
        if (root.isEmpty()) return; // an empty file: all defaults (data.dataset then reports itself missing)
        if (!(root.get() instanceof MappingNode top)) {
            throw new ConfigException("Config " + source + ": expected a mapping with the sections "
                    + String.join(", ", SECTIONS) + ", got " + describe(root.get()) + ".");
        }
        Map<String, Integer> sectionLines = new LinkedHashMap<>();
        for (NodeTuple sec : top.getValue()) {
            String secName = keyText(sec.getKeyNode());
            int secLine = line(sec.getKeyNode());
            if (secName == null || !SECTIONS.contains(secName)) {
                problems.add("unknown section '" + (secName == null ? describe(sec.getKeyNode()) : secName) + "'"
                        + at(secLine) + " (valid sections: " + String.join(", ", SECTIONS) + ")");
                continue;
            }
            Integer before = sectionLines.put(secName, secLine);
            if (before != null) {
                problems.add("section '" + secName + "' appears twice (lines " + before + " and " + secLine + ")");
                continue;
            }
            Node body = sec.getValueNode();
            if (body instanceof ScalarNode sn && sn.getTag().equals(Tag.NULL)) continue; // "optim:" with nothing below
            if (!(body instanceof MappingNode map)) {
                problems.add("section '" + secName + "'" + at(secLine) + " must be a mapping of keys, got " + describe(body));
                continue;
            }
            for (NodeTuple kv : map.getValue()) {
                String leaf = keyText(kv.getKeyNode());
                String full = secName + "." + leaf;
                int ln = line(kv.getKeyNode());
                Key k = BY_NAME.get(full);
                if (leaf == null || k == null) {
                    problems.add("unknown key '" + full + "'" + at(ln) + " (valid keys in '" + secName + "': "
                            + String.join(", ", leaves(secName)) + ")");
                    continue;
                }
                Integer first = lines.put(full, ln);
                if (first != null) {
                    problems.add("key '" + full + "' is given twice (lines " + first + " and " + ln + ")");
                    continue;
                }
                Object v = typed(k, kv.getValueNode(), problems, ln);
                if (v != null) given.put(full, v);
            }
        }
    }

    private static void applyOverrides(List<String> overrides, Map<String, Object> given, Map<String, Integer> lines,
                                       List<String> problems) {
        if (overrides == null) return;
        for (String o : overrides) {
            int eq = o.indexOf('=');
            if (eq <= 0) {
                problems.add("override '--set " + o + "' is not of the form section.key=value");
                continue;
            }
            String key = o.substring(0, eq).trim(), text = o.substring(eq + 1).trim();
            Key k = BY_NAME.get(key);
            if (k == null) {
                int dot = key.indexOf('.');
                String sec = dot > 0 ? key.substring(0, dot) : "";
                problems.add("override '--set " + o + "' names unknown key '" + key + "'" + (SECTIONS.contains(sec)
                        ? " (valid keys in '" + sec + "': " + String.join(", ", leaves(sec)) + ")"
                        : " (keys are section.key with sections " + String.join(", ", SECTIONS) + ")"));
                continue;
            }
            lines.remove(key);
            Object v = typedText(k, text, "override '--set " + o + "'", problems);
            if (v != null) given.put(key, v);
        }
    }

    private static TrainConfig build(String source, String name, Map<String, Object> given, Map<String, Integer> lines,
                                     List<String> problems) throws ConfigException {
        LinkedHashMap<String, Object> v = new LinkedHashMap<>();
        // Dataset first: other defaults depend on it.
        Object ds = given.get("data.dataset");
        DatasetInfo info = null;
        if (ds == null) {
            if (!hasProblemFor(problems, "data.dataset"))
                problems.add("key 'data.dataset' is missing (one of " + datasetNames() + ")");
        } else {
            info = dataset((String) ds);
            if (info == null) problems.add("key 'data.dataset'" + at(lines.get("data.dataset")) + " must be one of "
                    + datasetNames() + ", got '" + ds + "'");
        }
        for (Key k : KEYS) {
            Object val = given.get(k.name);
            if (val == null) val = k.defaultValue;
            if (val == null) {
                switch (k.name) {
                    case "training.test_batch_size" -> val = given.getOrDefault("training.batch_size", 128);
                    case "data.image_size" -> val = info == null ? null : info.imageSize();
                    case "data.channels" -> val = info == null ? null : info.channels();
                    case "data.path" -> {
                        val = info == null ? null : info.defaultPath();
                        if (info != null && val == null)
                            problems.add("key 'data.path' is missing (dataset FOLDER needs the folder of images)");
                    }
                    default -> { }
                }
            }
            if (k.name.equals("data.dataset") && info != null) val = info.name();
            if (val == null) continue;
            if (k.check != null && given.containsKey(k.name)) {
                String p = k.check.problem(val);
                if (p != null) problems.add("key '" + k.name + "'" + at(lines.get(k.name)) + " " + p);
            }
            v.put(k.name, val);
        }
        // Cross-key checks.
        if (info != null && v.get("data.channels") instanceof Integer c && c != info.channels())
            problems.add("key 'data.channels'" + at(lines.get("data.channels")) + " is " + c + " but " + info.name()
                    + " images have " + info.channels() + " channel" + (info.channels() == 1 ? "" : "s"));
        if (v.get("model.sigma_begin") instanceof Double sb && v.get("model.sigma_end") instanceof Double se
                && v.get("model.num_classes") instanceof Integer l && l > 1 && !(sb > se))
            problems.add("keys 'model.sigma_begin' (" + sb + ") and 'model.sigma_end' (" + se
                    + ") must decrease: level 0 is the largest noise");
        if (!problems.isEmpty()) {
            StringJoiner j = new StringJoiner("; ", "Config " + source + ": ", ".");
            for (String p : problems) j.add(p);
            throw new ConfigException(j.toString());
        }
        return new TrainConfig(name, source, v);
    }

    private static boolean hasProblemFor(List<String> problems, String key) {
        for (String p : problems) if (p.contains("'" + key + "'")) return true;
        return false;
    }

    static DatasetInfo dataset(String name) {
        String n = name.toLowerCase(Locale.ROOT).replace("_", "").replace("-", "");
        for (DatasetInfo d : DATASETS) if (d.name().toLowerCase(Locale.ROOT).equals(n)) return d;
        return null;
    }

    private static String datasetNames() {
        StringJoiner j = new StringJoiner(", ");
        for (DatasetInfo d : DATASETS) j.add(d.name());
        return j.toString();
    }

    private static List<String> leaves(String section) {
        List<String> out = new ArrayList<>();
        for (Key k : KEYS) if (k.section().equals(section)) out.add(k.leaf());
        return out;
    }

    // ---- scalar typing --------------------------------------------------------------------------

    private static Object typed(Key k, Node node, List<String> problems, int line) {
        String where = "key '" + k.name + "'" + at(line);
        if (!(node instanceof ScalarNode sn)) {
            problems.add(where + " must be " + typeName(k.type) + ", got " + describe(node));
            return null;
        }
        Tag tag = sn.getTag();
        String text = sn.getValue();
        if (tag.equals(Tag.NULL)) {
            problems.add(where + " has no value (expected " + typeName(k.type) + ")");
            return null;
        }
        switch (k.type) {
            case STRING:
                return text; // any scalar's text: a path may look like a number
            case BOOL:
                if (tag.equals(Tag.BOOL)) return Boolean.parseBoolean(text.toLowerCase(Locale.ROOT));
                break;
            case INT:
            case LONG:
                if (tag.equals(Tag.INT)) return integer(k, text, where, problems);
                break;
            case DOUBLE:
                if (tag.equals(Tag.INT) || tag.equals(Tag.FLOAT)) return number(text, where, problems);
                break;
            default:
                break;
        }
        problems.add(where + " must be " + typeName(k.type) + ", got " + describe(node));
        return null;
    }

    /** An override's text typed by the key's schema. */
    private static Object typedText(Key k, String text, String where, List<String> problems) {
        if (text.isEmpty()) {
            problems.add(where + " has no value (expected " + typeName(k.type) + ")");
            return null;
        }
        switch (k.type) {
            case STRING:
                return unquote(text);
            case BOOL:
                if (text.equalsIgnoreCase("true") || text.equalsIgnoreCase("false")) return Boolean.parseBoolean(text.toLowerCase(Locale.ROOT));
                break;
            case INT:
            case LONG:
                if (text.matches("[-+]?(0x[0-9a-fA-F]+|0o[0-7]+|[0-9]+)")) return integer(k, text, where, problems);
                break;
            case DOUBLE:
                if (text.matches("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?")) return number(text, where, problems);
                break;
            default:
                break;
        }
        problems.add(where + " must be " + typeName(k.type) + ", got '" + text + "'");
        return null;
    }

    private static String unquote(String t) {
        if (t.length() >= 2 && (t.startsWith("'") && t.endsWith("'") || t.startsWith("\"") && t.endsWith("\"")))
            return t.substring(1, t.length() - 1);
        return t;
    }

    private static Object integer(Key k, String text, String where, List<String> problems) {
        String t = text.startsWith("+") ? text.substring(1) : text;
        boolean neg = t.startsWith("-");
        if (neg) t = t.substring(1);
        long v;
        try {
            if (t.startsWith("0x")) v = Long.parseLong(t.substring(2), 16);
            else if (t.startsWith("0o")) v = Long.parseLong(t.substring(2), 8);
            else v = Long.parseLong(t);
        } catch (NumberFormatException e) {
            problems.add(where + " is out of range: " + text);
            return null;
        }
        if (neg) v = -v;
        if (k.type == Type.LONG) return v;
        if (v != (int) v) {
            problems.add(where + " is out of range for a 32-bit integer: " + text);
            return null;
        }
        return (int) v;
    }

    private static Object number(String text, String where, List<String> problems) {
        String t = text.toLowerCase(Locale.ROOT);
        if (t.contains(".inf") || t.contains(".nan")) {
            problems.add(where + " must be a finite number, got " + text);
            return null;
        }
        try {
            return Double.parseDouble(text);
        } catch (NumberFormatException e) {
            problems.add(where + " must be a number, got " + text);
            return null;
        }
    }

    private static String typeName(Type t) {
        return switch (t) {
            case INT, LONG -> "an integer";
            case DOUBLE -> "a number";
            case BOOL -> "true or false";
            case STRING -> "a string";
        };
    }

    private static String keyText(Node n) {
        return n instanceof ScalarNode s ? s.getValue() : null;
    }

    private static String describe(Node n) {
        if (n instanceof ScalarNode s) {
            String what = s.getTag().equals(Tag.INT) ? "integer" : s.getTag().equals(Tag.FLOAT) ? "number"
                    : s.getTag().equals(Tag.BOOL) ? "boolean" : s.getTag().equals(Tag.NULL) ? "nothing" : "string";
            return what.equals("nothing") ? "nothing" : what + " '" + s.getValue() + "'";
        }
        return n instanceof MappingNode ? "a mapping" : "a list";
    }

    private static int line(Node n) {
        Optional<Mark> m = n.getStartMark();
        return m.map(mark -> mark.getLine() + 1).orElse(-1);
    }

    private static String at(Integer line) {
        return line == null || line < 0 ? "" : " (line " + line + ")";
    }

    // ---- checks -----------------------------------------------------------------------------------

    private static Key key(String name, Type type, Object def, Check check, boolean ignored, boolean resumable, String help) {
        return new Key(name, type, def, check, ignored, resumable, help);
    }

    private static Check positive() {
        return v -> ((Number) v).longValue() > 0 ? null : "must be a positive integer, got " + v;
    }

    private static Check nonNegative() {
        return v -> ((Number) v).longValue() >= 0 ? null : "must be >= 0, got " + v;
    }

    private static Check finite() {
        return v -> Double.isFinite((Double) v) ? null : "must be a finite number, got " + v;
    }

    private static Check positiveFinite() {
        return v -> (Double) v > 0 && Double.isFinite((Double) v) ? null : "must be a positive number, got " + v;
    }

    private static Check nonNegativeFinite() {
        return v -> (Double) v >= 0 && Double.isFinite((Double) v) ? null : "must be >= 0, got " + v;
    }

    private static Check oneOf(String... options) {
        return v -> List.of(options).contains(v) ? null
                : "must be one of " + String.join(", ", options) + ", got '" + v + "'";
    }

    private static Check oneOfInt(int... options) {
        return v -> {
            for (int o : options) if (o == (Integer) v) return null;
            StringJoiner j = new StringJoiner(" or ");
            for (int o : options) j.add(Integer.toString(o));
            return "must be " + j + ", got " + v;
        };
    }

    // ---- output -------------------------------------------------------------------------------------

    /** The complete effective configuration as YAML (every key; the reference's section layout). */
    public String toYaml() {
        StringBuilder sb = new StringBuilder();
        sb.append("# Effective ncsn-engine training config (from ").append(source.replace('\n', ' ')).append(")\n");
        for (String sec : SECTIONS) {
            sb.append(sec).append(":\n");
            for (Key k : KEYS) {
                if (!k.section().equals(sec)) continue;
                Object v = values.get(k.name);
                if (v == null) continue;
                sb.append("  ").append(k.leaf()).append(": ").append(yamlScalar(v)).append('\n');
            }
        }
        return sb.toString();
    }

    private static String yamlScalar(Object v) {
        if (v instanceof String s) {
            return "'" + s.replace("'", "''") + "'";
        }
        if (v instanceof Double d) {
            String t = Double.toString(d); // shortest round-trip form: reloading gives the same double
            return t.contains(".") || t.contains("E") ? t.replace("E", "e") : t + ".0";
        }
        return String.valueOf(v);
    }

    /** Keys whose values differ between two configs (for resume checks). */
    public List<String> differences(TrainConfig other) {
        List<String> out = new ArrayList<>();
        for (Key k : KEYS) {
            Object a = values.get(k.name), b = other.values.get(k.name);
            if (a == null ? b != null : !a.equals(b)) out.add(k.name);
        }
        return out;
    }

    @Override
    public String toString() {
        return "TrainConfig " + name + " (" + source + ")";
    }
}
