package ncsn.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonParser;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import ncsn.autograd.Autograd;
import ncsn.autograd.GradCheck;
import ncsn.io.SafeTensors;
import ncsn.ops.AnnealedDsm;
import ncsn.rng.Philox;
import ncsn.tensor.DType;
import ncsn.tensor.Scope;
import ncsn.tensor.Shapes;
import ncsn.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The whole score network against PyTorch. src/test/python/make_model_fixtures.py built tiny
 * networks from the spec (and checked them against the authors' module when it ran), and stored
 * weights, a batch, scores, the annealed DSM loss and every gradient computed by torch in
 * float32 and in float64. Here the engine computes the same in both dtypes.
 *
 * <p>Tolerances (relative = max|engine - torch| / max|torch| per tensor): float32 scores and
 * loss 1e-4, float32 gradients 1e-3 (the two float32 computations round differently through
 * ~60 layers of convs and CIN++; the measured errors sit one to two orders below these);
 * float64 everything 1e-9 (both sides exact to ~1e-13 here; what is left is summation order).
 */
class ModelFixtureTest {
    static final String[] FIXTURES = {
        "model_c1_ngf4_L3_8x8.safetensors",
        "model_c3_ngf6_L4_10x10.safetensors",
        "model_c1_ngf4_L10_28x28_logit.safetensors",
    };
    private static final double TOL32_SCORE = 1e-4, TOL32_GRAD = 1e-3, TOL64 = 1e-9;

    static SafeTensors.Contents fixture(String name) {
        try {
            return SafeTensors.read(Path.of(ModelFixtureTest.class.getResource("/fixtures/" + name).toURI()));
        } catch (Exception e) {
            throw new AssertionError("cannot read fixture " + name + ": " + e.getMessage(), e);
        }
    }

    /** The reference state_dict (name, shape) list the fixture script stored. */
    static LinkedHashMap<String, int[]> stateDict(SafeTensors.Contents fx) {
        LinkedHashMap<String, int[]> m = new LinkedHashMap<>();
        for (JsonElement e : JsonParser.parseString(fx.metadata().get("state_dict")).getAsJsonArray()) {
            JsonArray pair = e.getAsJsonArray();
            JsonArray s = pair.get(1).getAsJsonArray();
            int[] shape = new int[s.size()];
            for (int i = 0; i < shape.length; i++) shape[i] = s.get(i).getAsInt();
            m.put(pair.get(0).getAsString(), shape);
        }
        return m;
    }

    /** Only the weight entries, as a checkpoint file would hold them. */
    static SafeTensors.Contents weightsOnly(SafeTensors.Contents fx) {
        Map<String, SafeTensors.Entry> w = new LinkedHashMap<>();
        for (String k : stateDict(fx).keySet()) w.put(k, fx.get(k));
        return new SafeTensors.Contents(fx.file(), w, fx.metadata());
    }

    static boolean logit(SafeTensors.Contents fx) {
        return Boolean.parseBoolean(fx.metadata().get("logit_transform"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"model_c1_ngf4_L3_8x8.safetensors", "model_c3_ngf6_L4_10x10.safetensors",
        "model_c1_ngf4_L10_28x28_logit.safetensors"})
    void parameterNamesOrderShapesAndSizesMatchTheReference(String name) throws Exception {
        SafeTensors.Contents fx = fixture(name);
        Map<String, String> meta = fx.metadata();
        ModelConfig cfg = new ModelConfig(Integer.parseInt(meta.get("channels")), Integer.parseInt(meta.get("ngf")),
                Integer.parseInt(meta.get("num_classes")), logit(fx));
        CondRefineNetDilated model = new CondRefineNetDilated(cfg, DType.F32);
        LinkedHashMap<String, int[]> want = stateDict(fx);
        List<String> got = new ArrayList<>(), ref = new ArrayList<>();
        model.parameterShapes().forEach((k, v) -> got.add(k + " " + Arrays.toString(v)));
        want.forEach((k, v) -> ref.add(k + " " + Arrays.toString(v)));
        assertEquals(String.join("\n", ref), String.join("\n", got), "state_dict names, order and shapes");
        model.parameters().forEach((k, t) -> assertEquals(k, t.name(), "parameter tensors carry their names"));
        assertEquals(cfg, CondRefineNetDilated.inferConfig(want, logit(fx)));
        long count = 0;
        for (int[] s : want.values()) count += Arrays.stream(s).asLongStream().reduce(1, (a, b) -> a * b);
        assertEquals(count, model.parameterCount());
        assertEquals(Double.parseDouble(meta.get("flops_per_image")),
                model.forwardFlopsPerImage(Integer.parseInt(meta.get("height")), Integer.parseInt(meta.get("width"))),
                "2 x conv MACs per image, as counted by the fixture script's conv calls");
        System.out.printf(Locale.ROOT, "%s: reference module check at generation: %s%n", name, meta.get("reference_checked"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"model_c1_ngf4_L3_8x8.safetensors", "model_c3_ngf6_L4_10x10.safetensors",
        "model_c1_ngf4_L10_28x28_logit.safetensors"})
    void scoresLossAndEveryGradientMatchTorchInFloat32AndFloat64(String name) throws Exception {
        SafeTensors.Contents fx = fixture(name);
        List<String> failures = new ArrayList<>();
        for (DType dt : DType.values()) {
            String tag = dt == DType.F32 ? "f32" : "f64";
            CondRefineNetDilated model = ModelWeights.fromContents(weightsOnly(fx), dt, logit(fx));
            Worst scoreW = new Worst(), gradW = new Worst();
            try (Scope s = Scope.open()) {
                Result r = run(model, fx, dt);
                double tolScore = dt == DType.F64 ? TOL64 : TOL32_SCORE, tolGrad = dt == DType.F64 ? TOL64 : TOL32_GRAD;
                compare(tag + ".score", r.score, fx.get(tag + ".score"), tolScore, failures, scoreW);
                compare(tag + ".loss", r.loss, fx.get(tag + ".loss"), tolScore, failures, scoreW);
                compare(tag + ".grad.x", r.gradX, fx.get(tag + ".grad.x"), tolGrad, failures, gradW);
                int compared = 0;
                for (Map.Entry<String, Tensor> p : model.parameters().entrySet()) {
                    SafeTensors.Entry want = fx.get(tag + ".grad." + p.getKey());
                    if (want == null) continue; // the largest fixture stores no float64 parameter gradients
                    compare(tag + ".grad." + p.getKey(), p.getValue().grad(), want, tolGrad, failures, gradW);
                    compared++;
                }
                assertTrue(dt == DType.F64 || compared == model.parameters().size(), "every float32 gradient is stored");
                System.out.printf(Locale.ROOT, "%s %s: score/loss worst rel %.2e (%s), gradients worst rel %.2e (%s) over %d parameter tensors + x%n",
                        name, tag, scoreW.rel, scoreW.where, gradW.rel, gradW.where, compared);
                if (dt == DType.F32) {
                    // The engine's float32 against torch's float64 (the exact answer), same limits.
                    Worst truth = new Worst();
                    compare("f32 vs torch f64 score", r.score, fx.get("f64.score"), TOL32_SCORE, failures, truth);
                    compare("f32 vs torch f64 loss", r.loss, fx.get("f64.loss"), TOL32_SCORE, failures, truth);
                    compare("f32 vs torch f64 grad.x", r.gradX, fx.get("f64.grad.x"), TOL32_GRAD, failures, truth);
                    for (Map.Entry<String, Tensor> p : model.parameters().entrySet()) {
                        SafeTensors.Entry want = fx.get("f64.grad." + p.getKey());
                        if (want != null) compare("f32 vs torch f64 grad." + p.getKey(), p.getValue().grad(), want, TOL32_GRAD, failures, truth);
                    }
                    System.out.printf(Locale.ROOT, "%s f32 vs torch f64: worst rel %.2e (%s)%n", name, truth.rel, truth.where);
                }
            }
        }
        assertTrue(failures.isEmpty(), name + ":\n" + String.join("\n", failures));
    }

    record Result(Tensor score, Tensor loss, Tensor gradX) {}

    /** score(x) without gradient; loss at x + sigma * noise with backward into the parameters and x. */
    static Result run(CondRefineNetDilated model, SafeTensors.Contents fx, DType dt) {
        Tensor x = fx.get("x").toTensor(dt).name("x");
        Tensor noise = fx.get("noise").toTensor(dt);
        int[] labels = fx.get("labels").toIntArray();
        double[] sigmas = AnnealedDsm.sigmas(1.0, 0.01, model.config().numClasses());
        double[] stored = fx.get("sigmas").toTensor(DType.F64).f64();
        assertArrayEquals(stored, sigmas, 0.0, "the engine's default sigmas equal the fixture's float32 sigmas");
        Tensor score;
        try (Autograd.NoGrad ng = Autograd.noGrad()) {
            score = model.score(x, labels);
        }
        x.requiresGrad(true);
        for (Tensor p : model.parameters().values()) p.setGrad(null);
        Tensor perturbed = AnnealedDsm.perturb(x, noise, labels, sigmas);
        Tensor loss = AnnealedDsm.loss(model.score(perturbed, labels), noise, labels, sigmas, 2.0);
        Autograd.backward(loss);
        return new Result(score, loss, x.grad());
    }

    static final class Worst {
        double rel;
        String where = "-";
    }

    /** Relative error max|got - want| / max|want|; records failures with the worst element side by side. */
    static double compare(String what, Tensor got, SafeTensors.Entry wantEntry, double tol, List<String> failures, Worst worst) {
        if (wantEntry == null) {
            failures.add(what + ": not in the fixture");
            return Double.NaN;
        }
        Tensor want = wantEntry.toTensor(DType.F64);
        if (got == null || !Arrays.equals(got.shape(), want.shape())) {
            failures.add(what + ": engine shape " + (got == null ? "none (no gradient)" : Arrays.toString(got.shape()))
                    + " vs torch " + Arrays.toString(want.shape()));
            return Double.NaN;
        }
        double maxRef = 0, maxDiff = 0;
        int at = 0;
        for (int i = 0; i < want.numel(); i++) maxRef = Math.max(maxRef, Math.abs(want.get(i)));
        for (int i = 0; i < want.numel(); i++) {
            double d = Math.abs(got.get(i) - want.get(i));
            if (!(d <= maxDiff)) {
                maxDiff = d;
                at = i;
            }
        }
        double rel = maxRef > 0 ? maxDiff / maxRef : maxDiff;
        if (!(rel <= worst.rel)) {
            worst.rel = rel;
            worst.where = what;
        }
        if (!(rel <= tol))
            failures.add(String.format(Locale.ROOT, "%s: rel %.3e > %.0e; worst at %s engine %.9e torch %.9e (max|torch| %.3e)",
                    what, rel, tol, Arrays.toString(Shapes.unravel(at, want.shape())), got.get(at), want.get(at), maxRef));
        return rel;
    }

    /**
     * Finite differences through the whole network in float64: the score of a tiny model
     * (1 channel, ngf 2, 2 levels, 4x4, batch 2) contracted with a random tensor, differentiated by
     * autograd and by central differences for a sample of elements of x and of every parameter.
     */
    @Test
    void gradCheckOfTheWholeNetworkInFloat64() {
        CondRefineNetDilated model = new CondRefineNetDilated(new ModelConfig(1, 2, 2, false), DType.F64);
        model.initialize(5);
        randomiseEmbeddings(model, 6);
        List<Tensor> inputs = new ArrayList<>();
        double[] xs = new double[2 * 16];
        Philox.uniform(7, 0, 0, xs, 0, xs.length);
        inputs.add(Tensor.wrap(xs, 2, 1, 4, 4).requiresGrad(true).name("x"));
        inputs.addAll(model.parameters().values());
        int[] labels = {1, 0};
        GradCheck.Options opt = GradCheck.Options.defaults().withMaxElements(3);
        GradCheck.Result r = GradCheck.check("CondRefineNetDilated", in -> model.score(in[0], labels), opt,
                inputs.toArray(new Tensor[0]));
        System.out.println(r.report());
        assertTrue(r.passed(), r.report());
        assertTrue(r.checked() > 400, "checked " + r.checked() + " elements");
    }

    /** gamma ~ 1 + 0.3 z, alpha ~ 0.5 z, beta ~ 0.3 z: every part of CIN++ then matters. */
    static void randomiseEmbeddings(CondRefineNetDilated model, long seed) {
        long stream = 0;
        for (Map.Entry<String, Tensor> e : model.parameters().entrySet()) {
            if (!e.getKey().endsWith(".embed.weight")) continue;
            Tensor t = e.getValue();
            double[] z = new double[t.numel()];
            Philox.normal(seed, stream++, 0, z, 0, z.length);
            int f = t.dim(1) / 3;
            for (int i = 0; i < z.length; i++) {
                int part = (i % t.dim(1)) / f;
                t.set(i, part == 0 ? 1 + 0.3 * z[i] : part == 1 ? 0.5 * z[i] : 0.3 * z[i]);
            }
        }
    }
}
