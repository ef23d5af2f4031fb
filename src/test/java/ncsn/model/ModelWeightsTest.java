package ncsn.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.Map;
import ncsn.io.SafeTensors;
import ncsn.io.SafeTensorsException;
import ncsn.tensor.DType;
import ncsn.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelWeightsTest {
    @TempDir
    Path dir;

    private static final ModelConfig CFG = new ModelConfig(1, 4, 3, false);

    private static CondRefineNetDilated model(DType dt, long seed) {
        CondRefineNetDilated m = new CondRefineNetDilated(CFG, dt);
        m.initialize(seed);
        return m;
    }

    @Test
    void roundTripsWithPrefixesFloat64EntriesAndIgnoredTrainingState() throws Exception {
        CondRefineNetDilated src = model(DType.F64, 1);
        // A training checkpoint as another engineer writes it: bare-name weights in float64 here,
        // Adam moments and EMA weights under ignored prefixes, settings in the metadata.
        SafeTensors.Writer w = ModelWeights.put(new SafeTensors.Writer(), src)
                .put("optim.adam.m.begin_conv.weight", Tensor.zeros(DType.F32, 4, 1, 3, 3))
                .put("ema.begin_conv.weight", Tensor.zeros(DType.F32, 9))
                .putLongs("train.step", new long[] {5000})
                .meta("logit_transform", "true")
                .meta("step", "5000");
        Path f = dir.resolve("ckpt.safetensors");
        w.write(f);
        CondRefineNetDilated dst = ModelWeights.fromFile(f, DType.F32);
        assertEquals(new ModelConfig(1, 4, 3, true), dst.config(), "sizes from shapes, input space from metadata");
        for (Map.Entry<String, Tensor> e : src.parameters().entrySet()) {
            double[] a = e.getValue().f64(), b = dst.parameters().get(e.getKey()).toDoubleArray();
            for (int i = 0; i < a.length; i++) assertEquals((float) a[i], b[i], 0.0, e.getKey());
        }
        assertFalse(ModelWeights.fromFile(f, DType.F32, false).config().logitTransform(), "explicit input space wins");

        // DataParallel names: every key under `module.`.
        SafeTensors.Writer dp = new SafeTensors.Writer();
        src.parameters().forEach((k, t) -> dp.put("module." + k, t));
        Path g = dir.resolve("dp.safetensors");
        dp.write(g);
        CondRefineNetDilated fromDp = ModelWeights.fromFile(g, DType.F64);
        assertEquals(CFG, fromDp.config());
        assertArrayEquals(src.parameters().get("end_conv.bias").f64(), fromDp.parameters().get("end_conv.bias").f64(), 0.0);
    }

    @Test
    void everyMismatchIsReportedInOneMessageAndNothingIsCopied() throws Exception {
        CondRefineNetDilated src = model(DType.F32, 1);
        SafeTensors.Writer w = new SafeTensors.Writer();
        for (Map.Entry<String, Tensor> e : src.parameters().entrySet()) {
            String k = e.getKey();
            if (k.equals("res2.0.shortcut.conv.bias") || k.equals("refine4.output_convs.3_2_conv.weight")) continue; // missing
            if (k.equals("end_conv.weight")) w.put(k, Tensor.zeros(DType.F32, 1, 4, 5, 5));              // wrong shape
            else if (k.equals("res1.0.normalize1.embed.weight")) w.putLongs(k, new long[3 * 12], 3, 12);  // integer dtype
            else w.put(k, e.getValue());
        }
        w.put("res5.0.conv1.weight", Tensor.zeros(DType.F32, 2, 2));                                     // unexpected
        w.put("optim.step", Tensor.zeros(DType.F32, 1));                                                 // ignored
        Path f = dir.resolve("bad.safetensors");
        w.write(f);

        CondRefineNetDilated dst = model(DType.F32, 2);
        double before = dst.parameters().get("begin_conv.weight").get(0);
        SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> ModelWeights.load(dst, SafeTensors.read(f)));
        String m = e.getMessage();
        assertTrue(m.startsWith(f.toString()), "names the file: " + m);
        for (String part : new String[] {"2 missing", "'res2.0.shortcut.conv.bias'", "'refine4.output_convs.3_2_conv.weight'",
            "1 unexpected", "'res5.0.conv1.weight'", "'end_conv.weight' is [1, 4, 5, 5], the model needs [1, 4, 3, 3]",
            "'res1.0.normalize1.embed.weight' is I64", "optim."})
            assertTrue(m.contains(part), "mentions " + part + ": " + m);
        assertFalse(m.contains("'optim.step'"), "ignored entries are not reported: " + m);
        assertEquals(before, dst.parameters().get("begin_conv.weight").get(0), "nothing copied when validation fails");
    }

    @Test
    void aCheckpointOfAnotherSizeSaysWhatItLooksLike() throws Exception {
        Path f = dir.resolve("ngf8.safetensors");
        ModelWeights.put(new SafeTensors.Writer(), new CondRefineNetDilated(new ModelConfig(1, 8, 3, false), DType.F32)).write(f);
        SafeTensorsException e = assertThrows(SafeTensorsException.class,
                () -> ModelWeights.load(new CondRefineNetDilated(CFG, DType.F32), SafeTensors.read(f)));
        assertTrue(e.getMessage().contains("ngf 8") && e.getMessage().contains("wrong shape"), e.getMessage());

        Path g = dir.resolve("notamodel.safetensors");
        new SafeTensors.Writer().put("x", Tensor.zeros(DType.F32, 2)).write(g);
        SafeTensorsException e2 = assertThrows(SafeTensorsException.class, () -> ModelWeights.fromFile(g, DType.F32));
        assertTrue(e2.getMessage().startsWith(g.toString()) && e2.getMessage().contains("'begin_conv.weight'"), e2.getMessage());

        SafeTensorsException e3 = assertThrows(SafeTensorsException.class,
                () -> ModelWeights.fromFile(dir.resolve("absent.safetensors"), DType.F32));
        assertTrue(e3.getMessage().contains("absent.safetensors") && e3.getMessage().contains("does not exist"), e3.getMessage());
    }

    @Test
    void keysGivenWithAndWithoutTheDataParallelPrefixAreRejected() throws Exception {
        CondRefineNetDilated src = model(DType.F32, 1);
        SafeTensors.Writer w = ModelWeights.put(new SafeTensors.Writer(), src);
        w.put("module.end_conv.bias", src.parameters().get("end_conv.bias"));
        Path f = dir.resolve("twice.safetensors");
        w.write(f);
        SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> ModelWeights.fromFile(f, DType.F32));
        assertTrue(e.getMessage().contains("given twice") && e.getMessage().contains("'end_conv.bias'"), e.getMessage());
    }
}
