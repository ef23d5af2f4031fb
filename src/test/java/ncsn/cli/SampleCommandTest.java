package ncsn.cli;

import static ncsn.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;
import ncsn.io.SafeTensors;
import ncsn.sample.ImageGrid;
import ncsn.sample.TinyModels;
import ncsn.tensor.DType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ncsn sample} end to end on tiny random-weight networks (ngf 4, L 3, 8x8, 3 steps per
 * level): the files, their sizes and shapes, determinism, --batch, --gif, --denoise, plain Langevin,
 * checkpoints of both kinds, and bad input (exit 2, nothing that looks complete).
 */
class SampleCommandTest {
    @TempDir
    static Path shared;
    static Path weights, training;

    @TempDir
    Path dir;

    @BeforeAll
    static void checkpoints() throws Exception {
        weights = TinyModels.weightsFile(shared.resolve("w.safetensors"), 1, 3);
        training = TinyModels.trainingCheckpoint(shared.resolve("checkpoint_0.safetensors"), 8, 4);
    }

    /** Runs sample with the tiny defaults; options in {@code extra} replace a default of the same name. */
    private CliRun sample(Path out, String... extra) {
        java.util.LinkedHashMap<String, String> opts = new java.util.LinkedHashMap<>();
        opts.put("--image-size", "8");
        opts.put("--n", "5");
        opts.put("--steps-per-level", "3");
        opts.put("--seed", "17");
        List<String> flags = new ArrayList<>();
        for (int i = 0; i < extra.length; i++) {
            if (extra[i].equals("--gif") || extra[i].equals("--denoise") || extra[i].equals("--quiet")) flags.add(extra[i]);
            else opts.put(extra[i], extra[++i]);
        }
        List<String> a = new ArrayList<>(List.of("sample", "--checkpoint", weights.toString(), "--out", out.toString()));
        opts.forEach((k, v) -> {
            a.add(k);
            a.add(v);
        });
        a.addAll(flags);
        CliRun r = run(a.toArray(new String[0]));
        assertEquals(0, r.code(), r.err() + r.out());
        return r;
    }

    private static float[] x(Path out, String file) throws Exception {
        return SafeTensors.read(out.resolve(file)).get("x").toTensor(DType.F32).f32();
    }

    @Test
    void writesEveryFileWithTheRightShapes() throws Exception {
        Path out = dir.resolve("s");
        CliRun r = sample(out);
        assertTrue(r.out().contains("timing:") && r.out().contains("per Langevin step"), r.out());
        SafeTensors.Contents st = SafeTensors.read(out.resolve("samples.safetensors"));
        assertArrayEquals(new long[] {5, 1, 8, 8}, st.get("x").shape());
        assertEquals("17", st.metadata().get("seed"));
        assertEquals("3", st.metadata().get("steps_per_level"));
        assertEquals("2.0E-5", st.metadata().get("step_lr"));
        assertEquals(weights.toString(), st.metadata().get("checkpoint"));
        BufferedImage grid = ImageIO.read(out.resolve("samples.png").toFile());
        assertEquals(3 * 8 + 4 * ImageGrid.PAD, grid.getWidth()); // 5 samples: 3 columns, 2 rows
        assertEquals(2 * 8 + 3 * ImageGrid.PAD, grid.getHeight());
        float[] x = x(out, "samples.safetensors");
        for (int i = 0; i < 5; i++) {
            BufferedImage one = ImageIO.read(out.resolve("samples").resolve(String.format("%04d.png", i)).toFile());
            assertEquals(8, one.getWidth());
            assertEquals(8, one.getHeight());
            assertEquals(BufferedImage.TYPE_BYTE_GRAY, one.getType());
            assertEquals(ImageGrid.toByte(x[i * 64 + 3 * 8 + 5], false), one.getRaster().getSample(5, 3, 0));
        }
        assertFalse(Files.exists(out.resolve("samples").resolve("0005.png")));
        assertFalse(Files.exists(out.resolve("chain.gif")));
        JsonObject t = JsonParser.parseString(Files.readString(out.resolve("timing.json"))).getAsJsonObject();
        assertEquals(9, t.get("chain_steps").getAsInt());
        assertEquals(5, t.get("batch_size").getAsInt());
        assertTrue(t.get("seconds_per_step").getAsDouble() > 0);
        assertTrue(t.get("network_share").getAsDouble() > 0.5, "the network dominates a step: " + t);
        try (var s = Files.list(out)) {
            assertTrue(s.noneMatch(p -> p.getFileName().toString().endsWith(".tmp")), "no temporary files left");
        }
    }

    @Test
    void sameSeedSameFilesWhateverTheBatch() throws Exception {
        Path a = dir.resolve("a"), b = dir.resolve("b"), c = dir.resolve("c");
        sample(a);
        sample(b, "--batch", "2");
        sample(c, "--seed", "18");
        assertArrayEquals(x(a, "samples.safetensors"), x(b, "samples.safetensors"));
        assertArrayEquals(Files.readAllBytes(a.resolve("samples.png")), Files.readAllBytes(b.resolve("samples.png")));
        assertArrayEquals(Files.readAllBytes(a.resolve("samples/0003.png")), Files.readAllBytes(b.resolve("samples/0003.png")));
        assertFalse(Arrays.equals(x(a, "samples.safetensors"), x(c, "samples.safetensors")));
        // a rerun into the same directory replaces the files with identical ones
        sample(a);
        assertArrayEquals(x(b, "samples.safetensors"), x(a, "samples.safetensors"));
    }

    @Test
    void gifFramesAndDenoise() throws Exception {
        Path g = dir.resolve("g"), plain = dir.resolve("p");
        sample(g, "--steps-per-level", "4", "--gif", "--denoise"); // 12 steps: start, 10, 12, denoised
        sample(plain, "--steps-per-level", "4");
        try (ImageInputStream in = ImageIO.createImageInputStream(g.resolve("chain.gif").toFile())) {
            ImageReader r = ImageIO.getImageReaders(in).next();
            r.setInput(in);
            assertEquals(4, r.getNumImages(true));
            assertEquals(3 * 8 + 4 * ImageGrid.PAD, r.read(0).getWidth());
            r.dispose();
        }
        assertFalse(Arrays.equals(x(g, "samples.safetensors"), x(plain, "samples.safetensors")), "--denoise changes the samples");
        assertEquals("true", SafeTensors.read(g.resolve("samples.safetensors")).metadata().get("denoise"));
    }

    @Test
    void plainLangevinAndTrainingCheckpoints() throws Exception {
        Path p = dir.resolve("p");
        CliRun r = sample(p, "--sampler", "langevin", "--label", "1", "--steps", "4");
        assertTrue(r.out().contains("plain Langevin"), r.out());
        SafeTensors.Contents st = SafeTensors.read(p.resolve("samples.safetensors"));
        assertEquals("1", st.metadata().get("label"));
        assertEquals(4, JsonParser.parseString(Files.readString(p.resolve("timing.json"))).getAsJsonObject().get("chain_steps").getAsInt());

        // A training checkpoint: image size (8) and sigmas (1 -> 0.05) from its stored config.
        Path t = dir.resolve("t");
        CliRun tr = run("sample", "--checkpoint", training.toString(), "--out", t.toString(), "--n", "2", "--steps-per-level", "1",
                "--quiet");
        assertEquals(0, tr.code(), tr.err());
        assertTrue(tr.out().contains("image size 8 from the checkpoint's data.image_size"), tr.out());
        assertFalse(tr.out().contains("sampling: step"), "--quiet: no progress lines");
        SafeTensors.Contents ts = SafeTensors.read(t.resolve("samples.safetensors"));
        assertArrayEquals(new long[] {2, 1, 8, 8}, ts.get("x").shape());
        String[] sig = ts.metadata().get("sigmas").split(",");
        assertEquals(3, sig.length);
        assertEquals((float) 0.05, (float) Double.parseDouble(sig[2]), ts.metadata().get("sigmas"));
    }

    @Test
    void badInputExitsTwoAndLeavesNothingThatLooksComplete() throws Exception {
        Path out = dir.resolve("bad");
        String[][] cases = {
            {"--steps-per-level", "0"},
            {"--n", "-1"},
            {"--step-lr", "0"},
            {"--batch", "0"},
            {"--sampler", "langevin", "--steps", "0"},
            {"--sampler", "langevin", "--label", "3"},
            {"--label", "1"},
            {"--image-size", "7"},
        };
        String[] names = {"--steps-per-level", "--n", "--step-lr", "--batch", "--steps", "--label 3", "--label", "--image-size 7"};
        for (int i = 0; i < cases.length; i++) {
            List<String> a = new ArrayList<>(List.of("sample", "--checkpoint", weights.toString(), "--out", out.toString()));
            a.addAll(List.of(cases[i]));
            CliRun r = run(a.toArray(new String[0]));
            assertEquals(2, r.code(), Arrays.toString(cases[i]) + ": " + r.err());
            assertTrue(r.err().contains(names[i]), r.err());
            assertEquals(1, r.err().strip().lines().count(), "one line: " + r.err());
            assertFalse(Files.exists(out), "nothing written for " + Arrays.toString(cases[i]));
        }
        CliRun missing = run("sample", "--checkpoint", dir.resolve("nope.safetensors").toString(), "--out", out.toString());
        assertEquals(2, missing.code());
        assertTrue(missing.err().contains("--checkpoint") && missing.err().contains("nope.safetensors")
                && missing.err().contains("does not exist"), missing.err());

        // A safetensors file that is not a score network of this kind.
        Path wrong = dir.resolve("wrong.safetensors");
        new SafeTensors.Writer().put("begin_conv.weight", ncsn.tensor.Tensor.zeros(DType.F32, 4, 1, 3, 3)).write(wrong);
        CliRun mism = run("sample", "--checkpoint", wrong.toString(), "--out", out.toString());
        assertEquals(2, mism.code());
        assertTrue(mism.err().contains("--checkpoint") && mism.err().contains(wrong.toString()), mism.err());
        Path garbage = Files.writeString(dir.resolve("garbage.safetensors"), "not a safetensors file at all");
        CliRun g = run("sample", "--checkpoint", garbage.toString(), "--out", out.toString());
        assertEquals(2, g.code(), g.err());
        assertFalse(Files.exists(out));

        // An --out that is a file.
        Path file = Files.writeString(dir.resolve("file"), "x");
        CliRun f = run("sample", "--checkpoint", weights.toString(), "--out", file.toString(), "--image-size", "8");
        assertEquals(2, f.code());
        assertTrue(f.err().contains("--out"), f.err());

        // A directory holding an earlier complete run loses its completion marker before it is rewritten.
        Path old = dir.resolve("old");
        sample(old);
        Files.writeString(old.resolve("samples").resolve("0099.png"), "stale");
        sample(old, "--n", "3");
        assertFalse(Files.exists(old.resolve("samples").resolve("0099.png")));
        assertFalse(Files.exists(old.resolve("samples").resolve("0003.png")));
        assertTrue(Files.exists(old.resolve("timing.json")));
    }
}
