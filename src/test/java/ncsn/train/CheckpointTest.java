package ncsn.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.Map;
import ncsn.io.SafeTensors;
import ncsn.io.SafeTensorsException;
import ncsn.model.CondRefineNetDilated;
import ncsn.model.ModelConfig;
import ncsn.model.ModelWeights;
import ncsn.optim.Adam;
import ncsn.rng.Philox;
import ncsn.tensor.DType;
import ncsn.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointTest {
    @TempDir
    Path dir;

    /** A tiny model, an amsgrad Adam that has taken two steps on Philox gradients, and EMA weights. */
    private static final class State {
        final CondRefineNetDilated model;
        final LinkedHashMap<String, Tensor> params;
        final Adam adam;
        final LinkedHashMap<String, Tensor> ema = new LinkedHashMap<>();

        State(ModelConfig mc, long seed, int steps) {
            model = new CondRefineNetDilated(mc, DType.F32);
            model.initialize(seed);
            params = model.parameters();
            adam = new Adam(new ArrayList<>(params.values()), 1e-3, 0.9, 0.999, 1e-8, 0.01, true);
            for (int s = 0; s < steps; s++) step(s);
            int k = 0;
            for (Map.Entry<String, Tensor> e : params.entrySet()) {
                Tensor t = Tensor.persistent(DType.F32, e.getValue().shape());
                Philox.uniform(seed, 900 + k++, 0, t.f32(), 0, t.numel());
                ema.put(e.getKey(), t);
            }
        }

        /** Sets every gradient from Philox (stream 500 + s) and takes an Adam step. */
        void step(int s) {
            int k = 0;
            for (Tensor p : params.values()) {
                if (p.grad() == null) p.setGrad(Tensor.persistent(DType.F32, p.shape()));
                Philox.normal(7, 500 + s, 1000L * k++, p.grad().f32(), 0, p.numel());
            }
            adam.step();
        }
    }

    static final ModelConfig TINY = new ModelConfig(1, 4, 3, false);

    private Path write(State st, Map<String, Tensor> ema) throws Exception {
        TrainConfig cfg = TinyData.config(10, 5, 5, ema != null ? "training.ema=true" : "training.ema=false",
                "optim.amsgrad=true", "optim.weight_decay=0.01");
        Path f = Checkpoint.path(dir, 2);
        Files.createDirectories(f.getParent());
        Checkpoint.write(f, st.params, st.adam, ema, new Checkpoint.Position(2, 2, 2, 1), cfg, 42, "test rng");
        return f;
    }

    @Test
    void roundTripRestoresWeightsAdamStateAndEmaExactly() throws Exception {
        State a = new State(TINY, 1, 2);
        Path f = write(a, a.ema);
        Checkpoint.Loaded ck = Checkpoint.read(f);
        assertEquals(new Checkpoint.Position(2, 2, 2, 1), ck.position());
        assertEquals(TINY, ck.modelConfig());
        assertEquals(42, ck.seed());
        assertTrue(ck.hasEma());
        assertEquals("ncsn-engine-checkpoint", ck.contents().metadata().get("format"));
        assertEquals("1", ck.contents().metadata().get("format_version"));
        assertEquals(8, ck.config("x").training().batchSize(), "the full config is stored");
        assertNotNull(ck.contents().get("optim.begin_conv.weight.max_exp_avg_sq"));
        assertNotNull(ck.contents().get("ema.normalizer.embed.weight"));

        State b = new State(TINY, 99, 0); // other weights, no Adam state yet, other EMA
        Checkpoint.restore(ck, b.params, b.adam, b.ema, TINY);
        for (int i = 0; i < a.adam.params().size(); i++) {
            Adam.ParamState sa = a.adam.state(i), sb = b.adam.state(i);
            assertEquals(sa.step(), sb.step());
            assertArrayEquals(sa.expAvg().f32(), sb.expAvg().f32());
            assertArrayEquals(sa.expAvgSq().f32(), sb.expAvgSq().f32());
            assertArrayEquals(sa.maxExpAvgSq().f32(), sb.maxExpAvgSq().f32());
        }
        for (String n : a.params.keySet()) {
            assertArrayEquals(a.params.get(n).f32(), b.params.get(n).f32(), n);
            assertArrayEquals(a.ema.get(n).f32(), b.ema.get(n).f32(), "ema." + n);
        }
        // The optimizer state is complete: one more identical step keeps both bit-identical.
        a.step(2);
        b.step(2);
        for (String n : a.params.keySet()) assertArrayEquals(a.params.get(n).f32(), b.params.get(n).f32(), "after a step: " + n);
    }

    @Test
    void modelWeightsAndSamplingReadTheCheckpointDirectly() throws Exception {
        State a = new State(TINY, 1, 2);
        Path f = write(a, null);
        // ModelWeights ignores optim.* and reads the bare reference names.
        CondRefineNetDilated m = ModelWeights.fromFile(f, DType.F32);
        assertEquals(TINY, m.config());
        for (String n : a.params.keySet()) assertArrayEquals(a.params.get(n).f32(), m.parameters().get(n).f32(), n);
        // Without EMA, sampling gets the raw weights; with EMA, the EMA weights.
        CondRefineNetDilated raw = Checkpoint.loadForSampling(f, DType.F64);
        assertEquals(DType.F64, raw.dtype());
        assertEquals(a.params.get("end_conv.bias").f32()[0], (float) raw.parameters().get("end_conv.bias").f64()[0]);
        Path g = write(a, a.ema);
        CondRefineNetDilated withEma = Checkpoint.loadForSampling(g, DType.F32);
        for (String n : a.params.keySet()) assertArrayEquals(a.ema.get(n).f32(), withEma.parameters().get(n).f32(), n);
        // A weights-only file (no training metadata) goes through ModelWeights.
        Path w = dir.resolve("weights.safetensors");
        ModelWeights.put(new SafeTensors.Writer(), a.model).write(w);
        CondRefineNetDilated plain = Checkpoint.loadForSampling(w, DType.F32);
        for (String n : a.params.keySet()) assertArrayEquals(a.params.get(n).f32(), plain.parameters().get(n).f32(), n);
        SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> Checkpoint.read(w));
        assertTrue(e.getMessage().contains("is not an ncsn-engine training checkpoint"), e.getMessage());
    }

    @Test
    void anotherArchitectureIsRefusedClearly() throws Exception {
        State a = new State(TINY, 1, 1);
        Checkpoint.Loaded ck = Checkpoint.read(write(a, null));
        ModelConfig wider = new ModelConfig(1, 6, 3, false);
        State b = new State(wider, 2, 0);
        SafeTensorsException e = assertThrows(SafeTensorsException.class,
                () -> Checkpoint.restore(ck, b.params, b.adam, null, wider));
        assertTrue(e.getMessage().contains("was written for a different network (channels 1, ngf 4, 3 noise levels) than"
                + " this config builds (channels 1, ngf 6, 3 noise levels)"), e.getMessage());
    }

    @Test
    void everyMismatchIsReportedInOneMessageAndNothingIsCopied() throws Exception {
        State a = new State(TINY, 1, 1);
        Path f = write(a, null);
        SafeTensors.Contents c = SafeTensors.read(f);
        // Rewrite without two entries, with one wrong shape and one stranger; metadata kept (minus the checksum).
        SafeTensors.Writer w = new SafeTensors.Writer();
        for (SafeTensors.Entry e : c.entries().values()) {
            if (e.name().equals("end_conv.bias") || e.name().equals("optim.begin_conv.weight.exp_avg")) continue;
            if (e.name().equals("normalizer.embed.weight")) w.put(e.name(), Tensor.persistent(DType.F32, 2, 12));
            else w.put(e.name(), e.toTensor(DType.F32));
        }
        w.put("stranger", Tensor.persistent(DType.F32, 1));
        c.metadata().forEach((k, v) -> {
            if (!k.equals("data_crc32c")) w.meta(k, v);
        });
        Path g = dir.resolve("edited.safetensors");
        w.write(g);
        State b = new State(TINY, 2, 0);
        float[] before = b.params.get("begin_conv.weight").f32().clone();
        SafeTensorsException e = assertThrows(SafeTensorsException.class,
                () -> Checkpoint.restore(Checkpoint.read(g), b.params, b.adam, null, TINY));
        String m = e.getMessage();
        assertTrue(m.startsWith(g.toString()), m);
        assertTrue(m.contains("missing 2 tensors [") && m.contains("end_conv.bias") && m.contains("optim.begin_conv.weight.exp_avg"), m);
        assertTrue(m.contains("normalizer.embed.weight is F32 [2, 12], expected F32 [3, 12]"), m);
        assertTrue(m.contains("unexpected 1 tensors [stranger]"), m);
        assertArrayEquals(before, b.params.get("begin_conv.weight").f32(), "nothing copied on failure");
        assertTrue(b.adam.state(0) == null || b.adam.state(0).step() == 0, "Adam untouched");
    }

    @Test
    void corruptAndTruncatedFilesAreReportedNamingTheFile() throws Exception {
        State a = new State(TINY, 1, 1);
        Path f = write(a, a.ema);
        byte[] ok = Files.readAllBytes(f);
        byte[] flipped = ok.clone();
        flipped[ok.length / 2] ^= 1;
        Files.write(f, flipped);
        SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> Checkpoint.read(f));
        assertEquals(f + ": is corrupt: the checksum of its tensor data does not match the one recorded when it was"
                + " written (data_crc32c " + Checkpoint.read(write(a, a.ema)).contents().metadata().get("data_crc32c") + ")",
                e.getMessage());
        Files.write(f, java.util.Arrays.copyOf(ok, ok.length - 100));
        SafeTensorsException t = assertThrows(SafeTensorsException.class, () -> Checkpoint.loadForSampling(f, DType.F32));
        assertTrue(t.getMessage().startsWith(f + ": ") && t.getMessage().contains("outside the"), t.getMessage());
    }

    @Test
    void filesAreListedByStepAndPruned() throws Exception {
        Files.createDirectories(Checkpoint.dir(dir));
        for (long s : new long[] {10, 2, 300, 40}) Files.writeString(Checkpoint.path(dir, s), "x");
        Files.writeString(Checkpoint.dir(dir).resolve("checkpoint_7.safetensors.bak"), "x");
        assertEquals(java.util.List.of(2L, 10L, 40L, 300L), TrainerTest.steps(dir));
        Checkpoint.prune(dir, 2);
        assertEquals(java.util.List.of(40L, 300L), TrainerTest.steps(dir));
        assertFalse(Files.exists(Checkpoint.path(dir, 2)));
        assertEquals(-1, Checkpoint.stepOf(Path.of("checkpoint_x.safetensors")));
    }
}
