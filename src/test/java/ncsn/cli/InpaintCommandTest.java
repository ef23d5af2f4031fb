package ncsn.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;
import ncsn.io.SafeTensors;
import ncsn.sample.ImageGrid;
import ncsn.sample.TinyModels;
import ncsn.tensor.DType;
import ncsn.tensor.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ncsn inpaint} end to end on a tiny random-weight network (ngf 4, L 3, 8x8): references
 * from a safetensors file and from a folder, the grid layout, the stored tensors (known pixels
 * close to the reference, within a few sigma_{L-1}), determinism, and bad input.
 */
class InpaintCommandTest {
    @TempDir
    static Path shared;
    static Path weights, refs;

    @TempDir
    Path dir;

    @BeforeAll
    static void setUp() throws Exception {
        weights = TinyModels.weightsFile(shared.resolve("w.safetensors"), 1, 5);
        float[] r = new float[3 * 64];
        for (int i = 0; i < r.length; i++) r[i] = (i * 13 % 64) / 63f;
        refs = shared.resolve("refs.safetensors");
        new SafeTensors.Writer().put("x", Tensor.wrap(r, 3, 1, 8, 8)).write(refs);
    }

    /** Runs inpaint with the tiny defaults; options in {@code extra} replace a default of the same name. */
    private static CliRun inpaint(Path out, String images, String mask, String... extra) {
        java.util.LinkedHashMap<String, String> opts = new java.util.LinkedHashMap<>();
        opts.put("--image-size", "8");
        opts.put("--count", "2");
        opts.put("--per-image", "3");
        opts.put("--steps-per-level", "2");
        opts.put("--seed", "9");
        java.util.List<String> a = new java.util.ArrayList<>(java.util.List.of("inpaint", "--checkpoint", weights.toString(),
                "--images", images, "--mask", mask, "--out", out.toString()));
        for (int i = 0; i < extra.length; i++) {
            if (extra[i].equals("--gif") || extra[i].equals("--quiet")) a.add(extra[i]);
            else opts.put(extra[i], extra[++i]);
        }
        opts.forEach((k, v) -> {
            a.add(k);
            a.add(v);
        });
        return CliRun.run(a.toArray(new String[0]));
    }

    @Test
    void completesTheUnknownHalfAndWritesTheGrid() throws Exception {
        Path out = dir.resolve("i");
        CliRun r = inpaint(out, refs.toString(), "left", "--gif");
        assertEquals(0, r.code(), r.err() + r.out());
        assertTrue(r.out().contains("mask left (32 of 64 pixels known)"), r.out());
        SafeTensors.Contents st = SafeTensors.read(out.resolve("inpainting.safetensors"));
        assertArrayEquals(new long[] {6, 1, 8, 8}, st.get("x").shape());
        assertArrayEquals(new long[] {2, 1, 8, 8}, st.get("reference").shape());
        assertArrayEquals(new long[] {8, 8}, st.get("mask").shape());
        float[] x = st.get("x").toTensor(DType.F32).f32(), ref = st.get("reference").toTensor(DType.F32).f32();
        float[] mask = st.get("mask").toTensor(DType.F32).f32();
        double maxKnown = 0;
        for (int g = 0; g < 6; g++)
            for (int p = 0; p < 64; p++) {
                if (mask[p] == 0) continue;
                maxKnown = Math.max(maxKnown, Math.abs(x[g * 64 + p] - ref[(g / 3) * 64 + p]));
            }
        assertTrue(maxKnown > 0 && maxKnown < 6 * 0.01, "known pixels = r + 0.01 z': max |x - r| = " + maxKnown);
        BufferedImage grid = ImageIO.read(out.resolve("inpainting.png").toFile());
        assertEquals(5 * 8 + 6 * ImageGrid.PAD, grid.getWidth(), "reference | masked | 3 completions");
        assertEquals(2 * 8 + 3 * ImageGrid.PAD, grid.getHeight());
        // masked input tile of row 0: known pixel = the reference's, unknown = mid gray
        int mx = ImageGrid.PAD + 8 + ImageGrid.PAD, my = ImageGrid.PAD;
        assertEquals(ImageGrid.toByte(ref[2 * 8 + 1], false), grid.getRaster().getSample(mx + 1, my + 2, 0));
        assertEquals(ImageGrid.PAD_VALUE, grid.getRaster().getSample(mx + 6, my + 2, 0));
        try (ImageInputStream in = ImageIO.createImageInputStream(out.resolve("chain.gif").toFile())) {
            ImageReader rd = ImageIO.getImageReaders(in).next();
            rd.setInput(in);
            assertEquals(2, rd.getNumImages(true)); // 6 steps: the start and the end
            rd.dispose();
        }
        assertTrue(Files.exists(out.resolve("timing.json")));

        Path again = dir.resolve("again");
        assertEquals(0, inpaint(again, refs.toString(), "left", "--batch", "4", "--quiet").code());
        assertArrayEquals(x, SafeTensors.read(again.resolve("inpainting.safetensors")).get("x").toTensor(DType.F32).f32());
    }

    @Test
    void folderReferencesAndPngMasks() throws Exception {
        Path imgs = Files.createDirectories(dir.resolve("imgs"));
        for (int i = 0; i < 2; i++) {
            BufferedImage b = new BufferedImage(8, 8, BufferedImage.TYPE_BYTE_GRAY);
            b.getRaster().setSample(i, i, 0, 250);
            ImageIO.write(b, "png", imgs.resolve("img" + i + ".png").toFile());
        }
        BufferedImage m = new BufferedImage(8, 8, BufferedImage.TYPE_BYTE_GRAY);
        for (int y = 0; y < 8; y++) m.getRaster().setSample(0, y, 0, 255);
        Path maskPng = dir.resolve("mask.png");
        ImageIO.write(m, "png", maskPng.toFile());
        Path out = dir.resolve("f");
        CliRun r = inpaint(out, imgs.toString(), maskPng.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("8 of 64 pixels known"), r.out());
        float[] ref = SafeTensors.read(out.resolve("inpainting.safetensors")).get("reference").toTensor(DType.F32).f32();
        assertEquals(250 / 255f, ref[64 + 8 + 1], 0f);
    }

    @Test
    void badInputExitsTwoAndWritesNothing() throws Exception {
        Path out = dir.resolve("bad");
        BufferedImage small = new BufferedImage(6, 6, BufferedImage.TYPE_BYTE_GRAY);
        small.getRaster().setSample(0, 0, 0, 255);
        Path maskPng = dir.resolve("small.png");
        ImageIO.write(small, "png", maskPng.toFile());
        CliRun r = inpaint(out, refs.toString(), maskPng.toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains(maskPng.toString()) && r.err().contains("6x6") && r.err().contains("8x8"), r.err());

        Path empty = Files.createDirectories(dir.resolve("empty"));
        r = inpaint(out, empty.toString(), "left");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--images") && r.err().contains("empty image folder"), r.err());

        r = inpaint(out, refs.toString(), "left", "--steps-per-level", "0");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--steps-per-level must be a positive integer, got 0"), r.err());
        r = inpaint(out, refs.toString(), "left", "--per-image", "0");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--per-image must be a positive integer, got 0"), r.err());
        r = inpaint(out, refs.toString(), "sideways");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--mask sideways"), r.err());
        r = inpaint(out, "NoSuchDataSet", "left");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--images NoSuchDataSet"), r.err());
        CliRun c = CliRun.run("inpaint", "--checkpoint", dir.resolve("none.safetensors").toString(),
                "--images", refs.toString(), "--mask", "left", "--out", out.toString());
        assertEquals(2, c.code());
        assertTrue(c.err().contains("--checkpoint") && c.err().contains("does not exist"), c.err());
        assertFalse(Files.exists(out), "nothing written for bad input");
    }
}
