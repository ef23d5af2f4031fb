package ncsn.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import ncsn.autograd.Autograd;
import ncsn.ops.Reduce;
import ncsn.rng.Philox;
import ncsn.tensor.DType;
import ncsn.tensor.Scope;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;
import org.junit.jupiter.api.Test;

class CondRefineNetDilatedTest {

    private static Tensor uniform(DType dt, long seed, int... shape) {
        Tensor t = Tensor.zeros(dt, shape);
        double[] u = new double[t.numel()];
        Philox.uniform(seed, 1, 0, u, 0, u.length);
        for (int i = 0; i < u.length; i++) t.set(i, u[i]);
        return t;
    }

    /** Parameter counts of the paper's models, from the authors' module (sum of p.numel()). */
    @Test
    void paperModelSizesMatchTheReference() {
        CondRefineNetDilated mnist = new CondRefineNetDilated(ModelConfig.mnist(), DType.F32);
        assertEquals(7_638_657L, mnist.parameterCount());
        assertEquals(173, mnist.parameters().size());
        // 2 x conv MACs of one 28x28 image, counted by make_model_fixtures.py's conv calls.
        assertEquals(3_786_280_960.0, mnist.forwardFlopsPerImage(28, 28));
        CondRefineNetDilated cifar = new CondRefineNetDilated(ModelConfig.cifar10(), DType.F32);
        assertEquals(30_117_635L, cifar.parameterCount());
        assertEquals(19_786_104_832.0, cifar.forwardFlopsPerImage(32, 32));
        assertArrayEquals(new int[] {128, 3, 3, 3}, cifar.parameters().get("begin_conv.weight").shape());
        assertArrayEquals(new int[] {10, 384}, cifar.parameters().get("normalizer.embed.weight").shape());
        assertArrayEquals(new int[] {256, 128, 1, 1}, cifar.parameters().get("res2.0.shortcut.conv.weight").shape());
        assertArrayEquals(new int[] {256, 256, 3, 3}, cifar.parameters().get("res3.0.shortcut.weight").shape());
        assertArrayEquals(new int[] {128, 128, 3, 3}, cifar.parameters().get("refine4.output_convs.3_2_conv.weight").shape());
        assertFalse(cifar.parameters().containsKey("refine1.msf.convs.0.weight"), "the start block has no MSF");
    }

    @Test
    void initializationFollowsPyTorchDefaultsAndIsDeterministic() {
        ModelConfig cfg = new ModelConfig(3, 8, 5, false);
        CondRefineNetDilated a = new CondRefineNetDilated(cfg, DType.F64), b = new CondRefineNetDilated(cfg, DType.F64);
        CondRefineNetDilated f = new CondRefineNetDilated(cfg, DType.F32), c = new CondRefineNetDilated(cfg, DType.F64);
        a.initialize(42);
        b.initialize(42);
        f.initialize(42);
        c.initialize(43);
        for (Map.Entry<String, Tensor> e : a.parameters().entrySet()) {
            String name = e.getKey();
            double[] v = e.getValue().f64();
            assertArrayEquals(v, b.parameters().get(name).f64(), 0.0, name + ": same seed, same values");
            double[] vf = f.parameters().get(name).toDoubleArray();
            for (int i = 0; i < v.length; i++) assertEquals(v[i], vf[i], 1e-6, name + ": float32 model draws the same values");
            assertFalse(java.util.Arrays.equals(v, c.parameters().get(name).f64()), name + ": another seed gives other values");
            if (name.endsWith(".embed.weight")) {
                int l = e.getValue().dim(0), f3 = e.getValue().dim(1), feat = f3 / 3;
                double sum = 0, sq = 0;
                for (int r = 0; r < l; r++)
                    for (int j = 0; j < f3; j++) {
                        double x = v[r * f3 + j];
                        if (j >= 2 * feat) assertEquals(0.0, x, name + ": beta starts at 0");
                        else {
                            sum += x;
                            sq += x * x;
                        }
                    }
                int n = l * 2 * feat;
                double mean = sum / n, sd = Math.sqrt(sq / n - mean * mean);
                assertEquals(1.0, mean, 0.02, name + ": gamma, alpha ~ N(1, 0.02)");
                assertTrue(sd > 0.01 && sd < 0.03, name + ": sd " + sd);
            } else {
                int[] ws = a.parameters().get(name.endsWith(".bias") ? name.replace(".bias", ".weight") : name).shape();
                double bound = 1.0 / Math.sqrt(ws[1] * ws[2] * ws[3]);
                double max = 0;
                for (double x : v) {
                    assertTrue(Math.abs(x) <= bound, name + ": " + x + " outside U(-" + bound + ", " + bound + ")");
                    max = Math.max(max, Math.abs(x));
                }
                if (v.length >= 100) assertTrue(max > 0.9 * bound, name + ": draws fill U(-b, b), max " + max + " of " + bound);
            }
        }
        // Whole-model check: conv weights of 2ngf x 2ngf x 3 x 3 have variance bound^2 / 3.
        double[] w = a.parameters().get("res2.1.conv1.weight").f64();
        double var = 0;
        for (double x : w) var += x * x;
        var /= w.length;
        assertEquals(1.0 / (3 * 16 * 9), var, 0.15 / (3 * 16 * 9));
    }

    @Test
    void scoreHasTheInputShapeForOneAndThreeChannelsAndAnyEvenSize() {
        for (int[] s : new int[][] {{1, 28, 28}, {3, 32, 32}, {3, 6, 10}, {1, 2, 2}}) {
            CondRefineNetDilated m = new CondRefineNetDilated(new ModelConfig(s[0], 4, 10, false), DType.F32);
            m.initialize(1);
            try (Scope scope = Scope.open()) {
                Tensor x = uniform(DType.F32, 3, 2, s[0], s[1], s[2]);
                Tensor out = m.score(x, new int[] {0, 9});
                assertArrayEquals(x.shape(), out.shape());
                for (float v : out.f32()) assertTrue(Float.isFinite(v));
            }
        }
    }

    @Test
    void logitTransformOnlySkipsTheInputMapping() {
        ModelConfig plain = new ModelConfig(1, 4, 3, false), logit = new ModelConfig(1, 4, 3, true);
        CondRefineNetDilated a = new CondRefineNetDilated(plain, DType.F64), b = new CondRefineNetDilated(logit, DType.F64);
        a.initialize(9);
        b.initialize(9);
        try (Scope s = Scope.open(); Autograd.NoGrad ng = Autograd.noGrad()) {
            Tensor x = uniform(DType.F64, 4, 2, 1, 8, 8);
            Tensor x2 = Tensor.zerosLike(x);
            for (int i = 0; i < x.numel(); i++) x2.set(i, 2 * x.get(i) - 1);
            assertArrayEquals(a.score(x, new int[] {0, 2}).f64(), b.score(x2, new int[] {0, 2}).f64(), 1e-14);
        }
    }

    @Test
    void noGradScoringRecordsNothingAndKeepsOnlyTheResult() {
        CondRefineNetDilated m = new CondRefineNetDilated(new ModelConfig(1, 4, 3, false), DType.F32);
        m.initialize(2);
        Tensor kept;
        try (Scope s = Scope.open()) {
            Tensor x = uniform(DType.F32, 5, 2, 1, 8, 8);
            int tape = Autograd.tapeSize(), owned = s.ownedCount();
            try (Autograd.NoGrad ng = Autograd.noGrad()) {
                kept = m.score(x, new int[] {1, 2});
            }
            assertEquals(tape, Autograd.tapeSize(), "nothing recorded");
            assertEquals(owned + 1, s.ownedCount(), "only the result is left in the caller's scope (activations freed)");
            assertTrue(kept.isLive());
            // Recording: the graph reaches every parameter.
            Tensor loss = Reduce.sum(m.score(x, new int[] {1, 2}));
            assertTrue(Autograd.tapeSize() > tape + 100);
            Autograd.backward(loss);
            for (Map.Entry<String, Tensor> p : m.parameters().entrySet())
                assertTrue(p.getValue().grad() != null, p.getKey() + " has a gradient");
        }
        assertFalse(kept.isLive(), "the caller's scope frees the result");
        assertEquals(0, Autograd.tapeSize());
    }

    @Test
    void scoreWithinOneStepScopeDoesNotGrowAcrossSteps() {
        CondRefineNetDilated m = new CondRefineNetDilated(new ModelConfig(1, 4, 3, false), DType.F32);
        m.initialize(2);
        Tensor x = uniform(DType.F32, 5, 2, 1, 8, 8);
        double[] first = null;
        for (int step = 0; step < 3; step++) {
            try (Scope s = Scope.open()) {
                Tensor loss = Reduce.sum(m.score(x, new int[] {0, 1}));
                Autograd.backward(loss);
                double[] g = m.parameters().get("begin_conv.weight").grad().toDoubleArray();
                if (first == null) first = g;
                else for (int i = 0; i < g.length; i++) assertEquals((step + 1) * first[i], g[i], 1e-4 * Math.abs(g[i]) + 1e-6,
                        "gradients accumulate step after step");
            }
            assertEquals(0, Autograd.tapeSize());
        }
    }

    @Test
    void badInputsAreReportedClearly() {
        CondRefineNetDilated m = new CondRefineNetDilated(new ModelConfig(3, 4, 3, false), DType.F32);
        try (Scope s = Scope.open()) {
            String odd = assertThrows(TensorException.class, () -> m.score(Tensor.zeros(DType.F32, 1, 3, 7, 8), new int[] {0})).getMessage();
            assertTrue(odd.contains("7x8") && odd.contains("even"), odd);
            String ch = assertThrows(TensorException.class, () -> m.score(Tensor.zeros(DType.F32, 1, 1, 8, 8), new int[] {0})).getMessage();
            assertTrue(ch.contains("[N, 3, H, W]"), ch);
            String dt = assertThrows(TensorException.class, () -> m.score(Tensor.zeros(DType.F64, 1, 3, 8, 8), new int[] {0})).getMessage();
            assertTrue(dt.contains("float64") && dt.contains("float32"), dt);
            String lab = assertThrows(TensorException.class, () -> m.score(Tensor.zeros(DType.F32, 2, 3, 8, 8), new int[] {0, 3})).getMessage();
            assertTrue(lab.contains("label 3") && lab.contains("[0, 3)"), lab);
            String cnt = assertThrows(TensorException.class, () -> m.score(Tensor.zeros(DType.F32, 2, 3, 8, 8), new int[] {0})).getMessage();
            assertTrue(cnt.contains("expected 2 labels"), cnt);
        }
        assertThrows(IllegalArgumentException.class, () -> new ModelConfig(1, 1, 10, false));
    }

    @Test
    void inferConfigReadsSizesAndNamesWhatIsMissing() {
        Map<String, int[]> shapes = new LinkedHashMap<>(new CondRefineNetDilated(new ModelConfig(3, 6, 7, false), DType.F32).parameterShapes());
        assertEquals(new ModelConfig(3, 6, 7, true), CondRefineNetDilated.inferConfig(shapes, true));
        Map<String, int[]> prefixed = new HashMap<>();
        shapes.forEach((k, v) -> prefixed.put("module." + k, v));
        assertEquals(new ModelConfig(3, 6, 7, false), CondRefineNetDilated.inferConfig(prefixed, false));
        shapes.remove("normalizer.embed.weight");
        String msg = assertThrows(IllegalArgumentException.class, () -> CondRefineNetDilated.inferConfig(shapes, false)).getMessage();
        assertTrue(msg.contains("'normalizer.embed.weight'") && !msg.contains("'begin_conv.weight'"), msg);
        shapes.put("normalizer.embed.weight", new int[] {7, 17});
        msg = assertThrows(IllegalArgumentException.class, () -> CondRefineNetDilated.inferConfig(shapes, false)).getMessage();
        assertTrue(msg.contains("[7, 17]") && msg.contains("[L, 18]"), msg);
        msg = assertThrows(IllegalArgumentException.class, () -> CondRefineNetDilated.inferConfig(Map.of(), false)).getMessage();
        assertTrue(msg.contains("'begin_conv.weight'") && msg.contains("'normalizer.embed.weight'"), msg);
    }

    @Test
    void forwardFlopsScaleWithImageArea() {
        CondRefineNetDilated m = new CondRefineNetDilated(new ModelConfig(1, 4, 3, false), DType.F32);
        assertEquals(4 * m.forwardFlopsPerImage(8, 8), m.forwardFlopsPerImage(16, 16), 1e-6);
        assertNotEquals(0.0, m.forwardFlopsPerImage(2, 2));
        assertThrows(TensorException.class, () -> m.forwardFlopsPerImage(9, 8));
    }

    @Test
    void toGivesAFloat32CopyWithTheSameWeightsAndTheSameScore() {
        ModelConfig cfg = new ModelConfig(1, 4, 3, false);
        CondRefineNetDilated ref = new CondRefineNetDilated(cfg, DType.F64);
        ref.initialize(9);
        CondRefineNetDilated f32 = ref.to(ncsn.tensor.Device.CPU);
        assertEquals(DType.F32, f32.dtype());
        assertEquals(ncsn.tensor.Device.CPU, f32.device());
        for (Map.Entry<String, Tensor> e : ref.parameters().entrySet()) {
            double[] want = e.getValue().f64();
            float[] got = f32.parameters().get(e.getKey()).f32();
            for (int i = 0; i < want.length; i++) assertEquals((float) want[i], got[i], e.getKey() + "[" + i + "]");
            assertTrue(f32.parameters().get(e.getKey()).requiresGrad());
        }
        // A float32 model initialised directly holds the same numbers as the copy of the float32 original.
        CondRefineNetDilated a = new CondRefineNetDilated(cfg, DType.F32);
        a.initialize(9);
        CondRefineNetDilated b = a.to(ncsn.tensor.Device.CPU);
        int[] labels = {0, 2};
        Tensor x = Tensor.zeros(DType.F32, 2, 1, 8, 8).fill(0.25);
        try (Autograd.NoGrad ng = Autograd.noGrad()) {
            assertArrayEquals(a.score(x, labels).f32(), b.score(x, labels).f32());
        }
        TensorException wrong = assertThrows(TensorException.class, () -> ref.score(x, labels));
        assertTrue(wrong.getMessage().contains("is F32 but the model's parameters are F64")
                || wrong.getMessage().contains("float32 but the model's parameters are float64"), wrong.getMessage());
    }
}
