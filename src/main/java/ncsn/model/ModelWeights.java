package ncsn.model;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import ncsn.io.SafeTensors;
import ncsn.io.SafeTensorsException;
import ncsn.tensor.DType;
import ncsn.tensor.Tensor;

/**
 * Score-network weights in safetensors files, interchangeable with the reference's state_dict.
 *
 * <p>A weights file maps each reference parameter name ({@code begin_conv.weight},
 * {@code res2.0.shortcut.conv.bias}, ...; see {@link CondRefineNetDilated#parameters()}) to a
 * tensor of the model's shape, F32 or F64 (converted to the model's dtype on load). Accepted as well:
 * <ul>
 *   <li>names with DataParallel's {@code module.} prefix (what the reference's
 *       {@code torch.save(score.state_dict())} writes when it trains on GPUs);</li>
 *   <li>extra entries whose names start with one of {@link #IGNORED_PREFIXES} ({@code optim.},
 *       {@code ema.}, {@code rng.}, {@code train.}): a training checkpoint keeps its Adam state,
 *       EMA weights and run state there, next to the model weights under the bare names, and
 *       its settings in the header's {@code __metadata__}. This loader skips them.</li>
 * </ul>
 * Anything else is validated against the model before a single value is copied: every missing
 * key, unexpected key, wrong shape and unusable dtype is reported together, in one message that
 * names the file ({@link SafeTensorsException}).
 *
 * <p>Optional metadata read by {@link #fromFile(Path, DType)}: {@code logit_transform} =
 * "true"/"false" (whether the model was trained on logit-space images; default false).
 */
public final class ModelWeights {
    /** DataParallel's key prefix, stripped on load. */
    public static final String DATA_PARALLEL_PREFIX = "module.";
    /** Entries under these prefixes are not model weights and are skipped by {@link #load}. */
    public static final List<String> IGNORED_PREFIXES = List.of("optim.", "ema.", "rng.", "train.");
    /** Metadata key for the input space (value "true" or "false"). */
    public static final String META_LOGIT_TRANSFORM = "logit_transform";

    private ModelWeights() {}

    /** True for names that {@link #load} skips (see {@link #IGNORED_PREFIXES}). */
    public static boolean ignored(String name) {
        for (String p : IGNORED_PREFIXES) if (name.startsWith(p)) return true;
        return false;
    }

    /**
     * Copies the file's weights into the model's parameters, after checking that the file holds
     * exactly the model's parameters (names, shapes, F32/F64). Nothing is copied when any check
     * fails.
     */
    public static void load(CondRefineNetDilated model, SafeTensors.Contents file) throws SafeTensorsException {
        LinkedHashMap<String, Tensor> params = model.parameters();
        Map<String, SafeTensors.Entry> byName = new LinkedHashMap<>();
        List<String> unexpected = new ArrayList<>(), wrongShape = new ArrayList<>(), wrongDtype = new ArrayList<>(),
                duplicate = new ArrayList<>();
        for (SafeTensors.Entry e : file.entries().values()) {
            if (ignored(e.name())) continue;
            String name = e.name().startsWith(DATA_PARALLEL_PREFIX) ? e.name().substring(DATA_PARALLEL_PREFIX.length()) : e.name();
            Tensor p = params.get(name);
            if (p == null) {
                unexpected.add(quote(e.name()) + " " + Arrays.toString(e.shape()));
                continue;
            }
            if (byName.put(name, e) != null) {
                duplicate.add(quote(name) + " (with and without '" + DATA_PARALLEL_PREFIX + "')");
                continue;
            }
            if (!sameShape(e.shape(), p.shape()))
                wrongShape.add(quote(e.name()) + " is " + Arrays.toString(e.shape()) + ", the model needs " + Arrays.toString(p.shape()));
            if (!e.dtype().equals("F32") && !e.dtype().equals("F64"))
                wrongDtype.add(quote(e.name()) + " is " + e.dtype());
        }
        List<String> missing = new ArrayList<>();
        for (String name : params.keySet()) if (!byName.containsKey(name)) missing.add(quote(name));

        if (!missing.isEmpty() || !unexpected.isEmpty() || !wrongShape.isEmpty() || !wrongDtype.isEmpty() || !duplicate.isEmpty()) {
            StringBuilder sb = new StringBuilder("does not fit the score network (" + model.config() + ", "
                    + params.size() + " parameter tensors): ");
            List<String> parts = new ArrayList<>();
            if (byName.isEmpty())
                parts.add("none of the model's parameters is present (expected names such as 'begin_conv.weight',"
                        + " 'res1.0.normalize1.embed.weight', 'end_conv.bias')");
            else if (!missing.isEmpty()) parts.add(missing.size() + " missing: " + String.join(", ", missing));
            if (!unexpected.isEmpty())
                parts.add(unexpected.size() + " unexpected: " + String.join(", ", unexpected)
                        + " (non-model entries are allowed only under the prefixes " + IGNORED_PREFIXES + ")");
            if (!wrongShape.isEmpty()) parts.add(wrongShape.size() + " with the wrong shape: " + String.join("; ", wrongShape));
            if (!wrongDtype.isEmpty()) parts.add(wrongDtype.size() + " not F32 or F64: " + String.join(", ", wrongDtype));
            if (!duplicate.isEmpty()) parts.add(duplicate.size() + " given twice: " + String.join(", ", duplicate));
            sb.append(String.join("; ", parts)).append('.');
            String hint = sizeHint(model.config(), file);
            if (hint != null) sb.append(' ').append(hint);
            throw new SafeTensorsException(file.file(), sb.toString());
        }
        for (Map.Entry<String, SafeTensors.Entry> kv : byName.entrySet())
            params.get(kv.getKey()).copyFrom(kv.getValue().toTensor(model.dtype()));
    }

    /** A model sized from the file's shapes ({@link CondRefineNetDilated#inferConfig}) with its weights loaded. */
    public static CondRefineNetDilated fromFile(Path file, DType dtype) throws SafeTensorsException {
        SafeTensors.Contents c = SafeTensors.read(file);
        String logit = c.metadata().get(META_LOGIT_TRANSFORM);
        if (logit != null && !logit.equals("true") && !logit.equals("false"))
            throw new SafeTensorsException(file, "metadata '" + META_LOGIT_TRANSFORM + "' is '" + logit + "', expected 'true' or 'false'");
        return fromContents(c, dtype, "true".equals(logit));
    }

    /** As {@link #fromFile(Path, DType)} with the input space given explicitly (metadata not read). */
    public static CondRefineNetDilated fromFile(Path file, DType dtype, boolean logitTransform) throws SafeTensorsException {
        return fromContents(SafeTensors.read(file), dtype, logitTransform);
    }

    /** A model sized from already parsed contents, with its weights loaded. */
    public static CondRefineNetDilated fromContents(SafeTensors.Contents c, DType dtype, boolean logitTransform)
            throws SafeTensorsException {
        ModelConfig cfg;
        try {
            cfg = CondRefineNetDilated.inferConfig(shapes(c), logitTransform);
        } catch (IllegalArgumentException e) {
            throw new SafeTensorsException(c.file(), e.getMessage());
        }
        CondRefineNetDilated model = new CondRefineNetDilated(cfg, dtype);
        load(model, c);
        return model;
    }

    /** Name to shape of every entry that is not under an ignored prefix (for inferConfig). */
    public static Map<String, int[]> shapes(SafeTensors.Contents c) {
        Map<String, int[]> m = new LinkedHashMap<>();
        for (SafeTensors.Entry e : c.entries().values()) {
            if (ignored(e.name())) continue;
            int[] s = new int[e.shape().length];
            for (int i = 0; i < s.length; i++) s[i] = (int) Math.min(Integer.MAX_VALUE, e.shape()[i]);
            m.put(e.name(), s);
        }
        return m;
    }

    /** Writes the model's parameters under their reference names (float32 or float64 as held). */
    public static SafeTensors.Writer put(SafeTensors.Writer w, CondRefineNetDilated model) {
        model.parameters().forEach(w::put);
        return w;
    }

    /** "The file looks like ..." when the file's own sizes differ from the model's; else null. */
    private static String sizeHint(ModelConfig want, SafeTensors.Contents file) {
        try {
            ModelConfig got = CondRefineNetDilated.inferConfig(shapes(file), want.logitTransform());
            if (got.channels() != want.channels() || got.ngf() != want.ngf() || got.numClasses() != want.numClasses())
                return "The file's begin_conv / normalizer shapes suggest a network with " + got + ".";
        } catch (IllegalArgumentException e) {
            // not even the two sizing keys: the lists above say enough
        }
        return null;
    }

    private static boolean sameShape(long[] a, int[] b) {
        if (a.length != b.length) return false;
        for (int i = 0; i < a.length; i++) if (a[i] != b[i]) return false;
        return true;
    }

    private static String quote(String s) {
        return "'" + s + "'";
    }
}
