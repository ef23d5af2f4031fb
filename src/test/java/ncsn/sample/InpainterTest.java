package ncsn.sample;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.imageio.ImageIO;
import ncsn.io.SafeTensors;
import ncsn.rng.Philox;
import ncsn.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Inpainting (spec section 6): the known pixels, the noise keying, masks and reference sources. */
class InpainterTest {
    private static final double[] SIGMAS = {1.0, 0.3, 0.1};

    @TempDir
    Path dir;

    /** A score that pulls towards 0.5 and records what the network would see at each level. */
    private static ScoreFunction pull(List<float[]> seen) {
        return (x, level, out) -> {
            if (seen != null) seen.add(x.f32().clone());
            float[] xs = x.f32(), o = out.f32();
            for (int j = 0; j < xs.length; j++) o[j] = (float) (-(xs[j] - 0.5) / (SIGMAS[level] * SIGMAS[level]));
        };
    }

    private static ReferenceImages refs(int k, int chw) {
        float[] r = new float[k * chw];
        for (int i = 0; i < r.length; i++) r[i] = (i * 37 % 101) / 100f;
        return new ReferenceImages(r, k, "test references");
    }

    /**
     * Every completion's known pixels end as the last c_i = r + sigma_{L-1} z' (z' from the
     * CONDITION stream at block (L-1) blocksFor(n CHW)), the network sees c_i there at every step
     * of level i, and the free pixels move away from the uniform start.
     */
    @Test
    void knownPixelsHoldTheLevelsNoisyReference() {
        int c = 2, h = 4, w = 4, chw = c * h * w, k = 2, per = 3, n = k * per, T = 3;
        List<float[]> seen = new ArrayList<>();
        ImageSampler s = new ImageSampler(pull(seen), SIGMAS, c, h, w, false);
        InpaintMask mask = InpaintMask.parse("left", h, w);
        ReferenceImages r = refs(k, chw);
        ImageSampler.Result res = Inpainter.run(s, r, mask, per, 5, T, 0.01, 100, false, null);
        float[] x = res.samples().f32();
        assertArrayEquals(new int[] {n, c, h, w}, res.samples().shape());

        long blocks = Philox.blocksFor((long) n * chw);
        float[] x0 = new float[n * chw];
        Philox.uniform(5, AnnealedLangevin.INIT_STREAM, 0, x0, 0, x0.length);
        for (int level = 0; level < SIGMAS.length; level++) {
            double[] z = new double[n * chw];
            Philox.normal(5, ImageSampler.CONDITION_STREAM, level * blocks, z, 0, z.length);
            for (int t = 0; t < T; t++) {
                float[] in = seen.get(level * T + t);
                for (int g = 0; g < n; g++)
                    for (int ch = 0; ch < c; ch++)
                        for (int yy = 0; yy < h; yy++)
                            for (int xx = 0; xx < w; xx++) {
                                int j = g * chw + ch * h * w + yy * w + xx;
                                float ci = (float) (r.pixels()[(g / per) * chw + ch * h * w + yy * w + xx] + SIGMAS[level] * z[j]);
                                if (xx < w / 2) {
                                    assertEquals(ci, in[j], "network input, level " + level + " step " + t);
                                    if (level == SIGMAS.length - 1) assertEquals(ci, x[j], "final known pixel");
                                } else if (level == SIGMAS.length - 1 && t == 0) {
                                    assertNotEquals(x0[j], x[j], "free pixel " + j + " moved");
                                }
                            }
            }
        }
    }

    @Test
    void inpaintingDoesNotDependOnTheBatchSize() {
        ImageSampler s = new ImageSampler(pull(null), SIGMAS, 1, 3, 3, false); // CHW = 9: batches rounded to 4
        InpaintMask m = InpaintMask.parse("center", 3, 3);
        ReferenceImages r = refs(3, 9);
        float[] a = Inpainter.run(s, r, m, 2, 1, 2, 0.01, 6, false, null).samples().f32();
        float[] b = Inpainter.run(s, r, m, 2, 1, 2, 0.01, 1, false, null).samples().f32();
        assertArrayEquals(a, b);
        float[] other = Inpainter.run(s, r, m, 2, 2, 2, 0.01, 6, false, null).samples().f32();
        assertFalse(java.util.Arrays.equals(a, other));
    }

    @Test
    void namedMasks() {
        InpaintMask left = InpaintMask.parse("left", 4, 6);
        assertTrue(left.known(0, 0) && left.known(3, 2) && !left.known(0, 3));
        assertEquals(12, left.knownCount());
        InpaintMask right = InpaintMask.parse("RIGHT", 4, 6);
        assertTrue(!right.known(0, 2) && right.known(0, 3) && right.known(3, 5));
        InpaintMask top = InpaintMask.parse("top", 4, 6);
        assertTrue(top.known(1, 5) && !top.known(2, 0));
        InpaintMask bottom = InpaintMask.parse("bottom", 4, 6);
        assertTrue(!bottom.known(1, 5) && bottom.known(2, 0));
        InpaintMask center = InpaintMask.parse("center", 8, 8);
        assertEquals(64 - 16, center.knownCount());
        assertTrue(!center.known(2, 2) && !center.known(5, 5) && center.known(1, 2) && center.known(6, 5) && center.known(2, 6));
        float[] e = left.expand(3);
        assertEquals(72, e.length);
        assertEquals(e[0], e[24]);
        assertEquals(e[3], e[27]);
    }

    @Test
    void pngMasks() throws Exception {
        BufferedImage img = new BufferedImage(4, 2, BufferedImage.TYPE_BYTE_GRAY);
        img.getRaster().setSample(1, 0, 0, 1); // dark but non-zero: known
        img.getRaster().setSample(3, 1, 0, 255);
        Path f = dir.resolve("m.png");
        ImageIO.write(img, "png", f.toFile());
        InpaintMask m = InpaintMask.parse(f.toString(), 2, 4);
        assertEquals(2, m.knownCount());
        assertTrue(m.known(0, 1) && m.known(1, 3) && !m.known(0, 0));

        BufferedImage rgb = new BufferedImage(4, 2, BufferedImage.TYPE_INT_RGB);
        rgb.setRGB(2, 1, 0x000100);
        Path g = dir.resolve("rgb.png");
        ImageIO.write(rgb, "png", g.toFile());
        assertTrue(InpaintMask.parse(g.toString(), 2, 4).known(1, 2));

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> InpaintMask.parse(f.toString(), 8, 8));
        assertTrue(e.getMessage().contains(f.toString()) && e.getMessage().contains("4x2") && e.getMessage().contains("8x8"), e.getMessage());
        ImageIO.write(new BufferedImage(4, 2, BufferedImage.TYPE_BYTE_GRAY), "png", dir.resolve("zero.png").toFile());
        e = assertThrows(IllegalArgumentException.class, () -> InpaintMask.parse(dir.resolve("zero.png").toString(), 2, 4));
        assertTrue(e.getMessage().contains("no pixel is known"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> InpaintMask.parse("diagonal", 2, 4));
        assertTrue(e.getMessage().contains("--mask diagonal") && e.getMessage().contains("left, right"), e.getMessage());
    }

    @Test
    void referencesFromSafetensorsAndFolders() throws Exception {
        float[] v = new float[3 * 16];
        for (int i = 0; i < v.length; i++) v[i] = i / 64f;
        Path st = dir.resolve("r.safetensors");
        new SafeTensors.Writer().put("x", Tensor.wrap(v, 3, 1, 4, 4)).write(st);
        ReferenceImages a = ReferenceImages.load(st.toString(), null, 2, 1, 4);
        assertEquals(2, a.count());
        assertArrayEquals(java.util.Arrays.copyOf(v, 32), a.pixels());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ReferenceImages.load(st.toString(), null, 2, 3, 4));
        assertTrue(e.getMessage().contains("[3, 1, 4, 4]"), e.getMessage());

        Path folder = Files.createDirectories(dir.resolve("imgs"));
        e = assertThrows(IllegalArgumentException.class, () -> ReferenceImages.load(folder.toString(), null, 2, 1, 4));
        assertTrue(e.getMessage().contains("empty image folder") && e.getMessage().contains(folder.toString()), e.getMessage());
        BufferedImage g = new BufferedImage(4, 4, BufferedImage.TYPE_BYTE_GRAY);
        g.getRaster().setSample(1, 2, 0, 200);
        ImageIO.write(g, "png", folder.resolve("b.png").toFile());
        BufferedImage c = new BufferedImage(4, 4, BufferedImage.TYPE_INT_RGB);
        c.setRGB(0, 0, 0xFF0000);
        ImageIO.write(c, "png", folder.resolve("a.png").toFile());
        ReferenceImages f = ReferenceImages.load(folder.toString(), null, 5, 1, 4);
        assertEquals(2, f.count());
        assertEquals(((19595 * 255 + 0x8000) >> 16) / 255f, f.pixels()[0], 0f, "a.png first: red as luma");
        assertEquals(200 / 255f, f.pixels()[16 + 2 * 4 + 1], 0f, "b.png: gray as stored");
        ReferenceImages rgb = ReferenceImages.load(folder.toString(), null, 1, 3, 4);
        assertEquals(1f, rgb.pixels()[0]);
        assertEquals(0f, rgb.pixels()[16]);
        e = assertThrows(IllegalArgumentException.class, () -> ReferenceImages.load(folder.toString(), null, 1, 1, 8));
        assertTrue(e.getMessage().contains("4x4") && e.getMessage().contains("8x8"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ReferenceImages.load("NoSuchSet", null, 1, 1, 8));
        assertTrue(e.getMessage().contains("--images NoSuchSet"), e.getMessage());
    }

    @Test
    void logitModelsSeeLogitReferences() {
        float[] m = Inpainter.modelSpace(new float[] {0f, 0.5f, 1f}, true);
        assertEquals(0.0, m[1], 1e-6);
        assertEquals(Math.log(1e-6 / (1 - 1e-6)), m[0], 1e-3);
        assertEquals(-m[0], m[2], 1e-3);
        assertArrayEquals(new float[] {0.25f}, Inpainter.modelSpace(new float[] {0.25f}, false));
    }

    @Test
    void maskOfAnotherSizeIsRefused() {
        ImageSampler s = new ImageSampler(pull(null), SIGMAS, 1, 4, 4, false);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Inpainter.run(s, refs(1, 16), InpaintMask.parse("left", 6, 6), 1, 0, 1, 0.01, 1, false, null));
        assertTrue(e.getMessage().contains("6x6") && e.getMessage().contains("4x4"), e.getMessage());
    }
}
