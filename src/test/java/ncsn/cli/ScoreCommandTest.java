package ncsn.cli;

import static ncsn.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import ncsn.io.SafeTensors;
import ncsn.tensor.DType;
import ncsn.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ncsn score} on the PyTorch fixtures of make_model_fixtures.py: the weights go into a
 * checkpoint file (DataParallel-prefixed, to exercise that path), x / labels / noise into a batch
 * file, and the command's output must match torch's float32 numbers (1e-4 on score and loss, 1e-3
 * on gradients, relative to the largest magnitude) and, with --float64, torch's float64 ones (1e-9).
 */
class ScoreCommandTest {
    private static final String FIXTURE = "model_c3_ngf6_L4_10x10.safetensors";
    private static final String FIXTURE_F64 = "model_c1_ngf4_L3_8x8.safetensors";

    @TempDir
    Path dir;

    private static SafeTensors.Contents fixture(String name) throws Exception {
        return SafeTensors.read(Path.of(ScoreCommandTest.class.getResource("/fixtures/" + name).toURI()));
    }

    private static List<String> names(SafeTensors.Contents fx) {
        List<String> n = new ArrayList<>();
        for (JsonElement e : JsonParser.parseString(fx.metadata().get("state_dict")).getAsJsonArray())
            n.add(((JsonArray) e).get(0).getAsString());
        return n;
    }

    /** Writes the fixture's weights (under `module.`) and its batch; returns {checkpoint, batch}. */
    private Path[] split(SafeTensors.Contents fx, boolean withNoise) throws Exception {
        SafeTensors.Writer ck = new SafeTensors.Writer();
        for (String k : names(fx)) ck.put("module." + k, fx.get(k).toTensor(DType.F32));
        Path c = dir.resolve("ckpt.safetensors"), b = dir.resolve(withNoise ? "batch.safetensors" : "batch_nonoise.safetensors");
        ck.write(c);
        int[] labels = fx.get("labels").toIntArray();
        long[] l = Arrays.stream(labels).asLongStream().toArray();
        SafeTensors.Writer bw = new SafeTensors.Writer().put("x", fx.get("x").toTensor(DType.F32)).putLongs("labels", l);
        if (withNoise) bw.put("noise", fx.get("noise").toTensor(DType.F32));
        bw.write(b);
        return new Path[] {c, b};
    }

    private static double rel(SafeTensors.Entry got, SafeTensors.Entry want) {
        assertEquals(Arrays.toString(want.shape()), Arrays.toString(got.shape()), want.name());
        double[] g = got.toTensor(DType.F64).f64(), w = want.toTensor(DType.F64).f64();
        double maxRef = 0, maxDiff = 0;
        for (int i = 0; i < w.length; i++) {
            maxRef = Math.max(maxRef, Math.abs(w[i]));
            maxDiff = Math.max(maxDiff, Math.abs(g[i] - w[i]));
        }
        return maxRef > 0 ? maxDiff / maxRef : maxDiff;
    }

    private static void compareAll(SafeTensors.Contents out, SafeTensors.Contents fx, String tag, double tolScore, double tolGrad,
            boolean paramGrads) {
        List<String> failures = new ArrayList<>();
        double worst = 0;
        String at = "-";
        List<String> keys = new ArrayList<>(List.of("score", "loss", "grad.x"));
        if (paramGrads) for (String k : names(fx)) keys.add("grad." + k);
        for (String k : keys) {
            SafeTensors.Entry got = out.get(k);
            if (got == null) {
                failures.add(k + " missing from the output");
                continue;
            }
            double r = rel(got, fx.get(tag + "." + k));
            double tol = k.startsWith("grad.") ? tolGrad : tolScore;
            if (!(r <= tol)) failures.add(String.format(Locale.ROOT, "%s: rel %.3e > %.0e", k, r, tol));
            if (r > worst) {
                worst = r;
                at = k;
            }
        }
        System.out.printf(Locale.ROOT, "ncsn score vs torch %s: worst rel %.2e (%s) over %d tensors%n", tag, worst, at, keys.size());
        assertTrue(failures.isEmpty(), String.join("\n", failures));
    }

    @Test
    void matchesTorchInFloat32() throws Exception {
        SafeTensors.Contents fx = fixture(FIXTURE);
        Path[] in = split(fx, true);
        Path o = dir.resolve("out.safetensors");
        CliRun r = run("score", "--checkpoint", in[0].toString(), "--batch", in[1].toString(), "--out", o.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("loss "), r.out());
        SafeTensors.Contents out = SafeTensors.read(o);
        assertEquals("F32", out.get("score").dtype());
        compareAll(out, fx, "f32", 1e-4, 1e-3, true);
        assertEquals(3 + names(fx).size(), out.entries().size(), "score, loss, grad.x and one gradient per parameter");
    }

    @Test
    void matchesTorchInFloat64() throws Exception {
        SafeTensors.Contents fx = fixture(FIXTURE_F64);
        Path[] in = split(fx, true);
        Path o = dir.resolve("out64.safetensors");
        CliRun r = run("score", "--float64", "--checkpoint", in[0].toString(), "--batch", in[1].toString(), "--out", o.toString());
        assertEquals(0, r.code(), r.err());
        SafeTensors.Contents out = SafeTensors.read(o);
        assertEquals("F64", out.get("score").dtype());
        compareAll(out, fx, "f64", 1e-9, 1e-9, true);
    }

    @Test
    void logitSpaceCheckpointWithTheFlag() throws Exception {
        SafeTensors.Contents fx = fixture("model_c1_ngf4_L10_28x28_logit.safetensors");
        Path[] in = split(fx, true);
        Path o = dir.resolve("logit.safetensors");
        CliRun r = run("score", "--logit-transform", "--checkpoint", in[0].toString(), "--batch", in[1].toString(), "--out", o.toString());
        assertEquals(0, r.code(), r.err());
        compareAll(SafeTensors.read(o), fx, "f32", 1e-4, 1e-3, true);
        CliRun plain = run("score", "--checkpoint", in[0].toString(), "--batch", in[1].toString(), "--out", o.toString());
        assertEquals(0, plain.code(), plain.err());
        assertTrue(rel(SafeTensors.read(o).get("score"), fx.get("f32.score")) > 1e-2, "without the flag x is mapped to 2x - 1");
    }

    @Test
    void withoutNoiseWritesOnlyTheScore() throws Exception {
        SafeTensors.Contents fx = fixture(FIXTURE_F64);
        Path[] in = split(fx, false);
        Path o = dir.resolve("s.safetensors");
        CliRun r = run("score", "--checkpoint", in[0].toString(), "--batch", in[1].toString(), "--out", o.toString());
        assertEquals(0, r.code(), r.err());
        SafeTensors.Contents out = SafeTensors.read(o);
        assertNull(out.get("loss"));
        assertEquals(1, out.entries().size());
        assertTrue(rel(out.get("score"), fx.get("f32.score")) < 1e-4);
    }

    private void assertUsageError(CliRun r, String... fragments) {
        assertEquals(2, r.code(), r.out() + r.err());
        for (String f : fragments) assertTrue(r.err().contains(f), "stderr mentions " + f + ": " + r.err());
        assertFalse(r.err().contains("\tat ") || r.err().contains("Exception"), "no stack trace: " + r.err());
        assertEquals(1, r.err().strip().lines().count(), "one message: " + r.err());
    }

    @Test
    void badInputsGiveOneClearMessageAndExitCode2() throws Exception {
        SafeTensors.Contents fx = fixture(FIXTURE_F64);
        Path[] in = split(fx, true);
        String ck = in[0].toString(), b = in[1].toString(), o = dir.resolve("o.safetensors").toString();

        assertUsageError(run("score", "--checkpoint", dir.resolve("nope.safetensors").toString(), "--batch", b, "--out", o),
                "--checkpoint", "nope.safetensors", "does not exist");
        assertUsageError(run("score", "--checkpoint", ck, "--batch", dir.resolve("nobatch.safetensors").toString(), "--out", o),
                "--batch", "nobatch.safetensors", "does not exist");

        Path noX = dir.resolve("nox.safetensors");
        new SafeTensors.Writer().putLongs("labels", new long[] {0, 1}).write(noX);
        assertUsageError(run("score", "--checkpoint", ck, "--batch", noX.toString(), "--out", o), "nox.safetensors", "no tensor 'x'");

        Path wrongC = dir.resolve("c3.safetensors");
        new SafeTensors.Writer().put("x", Tensor.zeros(DType.F32, 2, 3, 8, 8)).putLongs("labels", new long[] {0, 1}).write(wrongC);
        assertUsageError(run("score", "--checkpoint", ck, "--batch", wrongC.toString(), "--out", o), "c3.safetensors", "[2, 3, 8, 8]", "[N, 1, H, W]");

        Path oddSize = dir.resolve("odd.safetensors");
        new SafeTensors.Writer().put("x", Tensor.zeros(DType.F32, 2, 1, 7, 8)).putLongs("labels", new long[] {0, 1}).write(oddSize);
        assertUsageError(run("score", "--checkpoint", ck, "--batch", oddSize.toString(), "--out", o), "odd.safetensors", "even");

        Path badLabel = dir.resolve("label.safetensors");
        new SafeTensors.Writer().put("x", Tensor.zeros(DType.F32, 2, 1, 8, 8)).putLongs("labels", new long[] {0, 3}).write(badLabel);
        assertUsageError(run("score", "--checkpoint", ck, "--batch", badLabel.toString(), "--out", o), "label.safetensors", "label 3", "[0, 3)");

        Path floatLabels = dir.resolve("flabels.safetensors");
        new SafeTensors.Writer().put("x", Tensor.zeros(DType.F32, 2, 1, 8, 8)).put("labels", Tensor.zeros(DType.F32, 2)).write(floatLabels);
        assertUsageError(run("score", "--checkpoint", ck, "--batch", floatLabels.toString(), "--out", o), "flabels.safetensors", "labels");

        Path noiseShape = dir.resolve("noise.safetensors");
        new SafeTensors.Writer().put("x", Tensor.zeros(DType.F32, 2, 1, 8, 8)).putLongs("labels", new long[] {0, 1})
                .put("noise", Tensor.zeros(DType.F32, 2, 1, 8, 6)).write(noiseShape);
        assertUsageError(run("score", "--checkpoint", ck, "--batch", noiseShape.toString(), "--out", o), "noise.safetensors", "'noise'");

        // The batch file is not a checkpoint: every model key is missing, x etc. are unexpected.
        assertUsageError(run("score", "--checkpoint", b, "--batch", b, "--out", o), "--checkpoint", "batch.safetensors", "begin_conv.weight");

        assertFalse(Files.exists(Path.of(o)), "nothing written on error");
        CliRun missingOpt = run("score", "--checkpoint", ck);
        assertEquals(2, missingOpt.code());
        assertTrue(missingOpt.err().contains("--batch") && missingOpt.err().contains("--out"), missingOpt.err());
    }
}
