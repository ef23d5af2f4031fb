package ncsn.sample;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.metadata.IIOMetadataNode;
import javax.imageio.stream.ImageInputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.w3c.dom.Node;

/** Pixel quantisation, grid layout, PNG round trips and the animated GIF. */
class ImageGridTest {
    @TempDir
    Path dir;

    @Test
    void quantisationClampsAndRoundsLikeTorchvision() {
        assertEquals(0, ImageGrid.toByte(-0.3, false));
        assertEquals(0, ImageGrid.toByte(Double.NaN, false));
        assertEquals(255, ImageGrid.toByte(1.7, false));
        assertEquals(128, ImageGrid.toByte(0.5, false)); // floor(127.5 + 0.5)
        assertEquals(1, ImageGrid.toByte(1 / 255.0 - 1e-9, false));
        assertEquals(128, ImageGrid.toByte(0.0, true)); // sigmoid(0) = 0.5
        assertEquals(255, ImageGrid.toByte(20, true));
    }

    @Test
    void columnsAreCeilSqrt() {
        assertEquals(1, ImageGrid.columnsFor(1));
        assertEquals(2, ImageGrid.columnsFor(2));
        assertEquals(2, ImageGrid.columnsFor(4));
        assertEquals(3, ImageGrid.columnsFor(5));
        assertEquals(10, ImageGrid.columnsFor(100));
        assertEquals(11, ImageGrid.columnsFor(101));
    }

    @Test
    void grayGridLayoutAndPngRoundTrip() throws Exception {
        int n = 5, h = 3, w = 2, chw = h * w;
        byte[] px = new byte[n * chw];
        for (int i = 0; i < px.length; i++) px[i] = (byte) (10 * (i / chw) + i % chw);
        BufferedImage g = ImageGrid.grid(px, n, 1, h, w, 3);
        assertEquals(3 * w + 4 * ImageGrid.PAD, g.getWidth());
        assertEquals(2 * h + 3 * ImageGrid.PAD, g.getHeight());
        Path f = dir.resolve("g.png");
        ImageGrid.writePng(f, g);
        BufferedImage back = ImageIO.read(f.toFile());
        assertEquals(g.getWidth(), back.getWidth());
        // tile 4 (row 1, column 1), pixel (y 2, x 1) = image 4's value 40 + 5
        int x0 = ImageGrid.PAD + (w + ImageGrid.PAD), y0 = ImageGrid.PAD + (h + ImageGrid.PAD);
        assertEquals(45, back.getRaster().getSample(x0 + 1, y0 + 2, 0));
        assertEquals(ImageGrid.PAD_VALUE, back.getRaster().getSample(0, 0, 0));
        // the empty sixth cell is padding
        assertEquals(ImageGrid.PAD_VALUE, back.getRaster().getSample(ImageGrid.PAD + 2 * (w + ImageGrid.PAD), y0, 0));
        try (var s = Files.list(dir)) {
            assertEquals(1, s.count(), "no temporary file left behind");
        }
    }

    @Test
    void colourAndOtherChannelCounts() {
        byte[] px = new byte[3 * 4];
        px[0] = (byte) 255; // R of pixel 0
        px[4 + 1] = (byte) 200; // G of pixel 1
        BufferedImage t = ImageGrid.tile(px, 0, 3, 2, 2);
        assertEquals(0xFF0000, t.getRGB(0, 0) & 0xFFFFFF);
        assertEquals(0x00C800, t.getRGB(1, 0) & 0xFFFFFF);
        BufferedImage two = ImageGrid.tile(new byte[2 * 4], 0, 2, 2, 2);
        assertEquals(4, two.getWidth(), "2 channels side by side");
        assertEquals(BufferedImage.TYPE_BYTE_GRAY, two.getType());
    }

    @Test
    void gifHasEveryFrameAndLoopsForever() throws Exception {
        Path f = dir.resolve("a.gif");
        GifWriter.write(f, 7, i -> {
            byte[] px = new byte[2 * 16];
            java.util.Arrays.fill(px, (byte) (30 * i));
            return ImageGrid.grid(px, 2, 1, 4, 4, 2);
        }, 5, 100);
        try (ImageInputStream in = ImageIO.createImageInputStream(f.toFile())) {
            ImageReader r = ImageIO.getImageReaders(in).next();
            r.setInput(in);
            assertEquals(7, r.getNumImages(true));
            BufferedImage third = r.read(2);
            assertEquals(2 * 4 + 3 * ImageGrid.PAD, third.getWidth());
            assertEquals(60, third.getRGB(ImageGrid.PAD, ImageGrid.PAD) & 0xFF, "gray frames are exact");
            IIOMetadataNode root = (IIOMetadataNode) r.getImageMetadata(0).getAsTree("javax_imageio_gif_image_1.0");
            Node app = find(root, "ApplicationExtension");
            assertNotNull(app, "NETSCAPE2.0 loop extension");
            assertEquals("NETSCAPE", ((IIOMetadataNode) app).getAttribute("applicationID"));
            byte[] loop = (byte[]) ((IIOMetadataNode) app).getUserObject();
            assertEquals(1, loop[0]);
            assertEquals(0, loop[1] | loop[2], "loop count 0 = forever");
            IIOMetadataNode last = (IIOMetadataNode) r.getImageMetadata(6).getAsTree("javax_imageio_gif_image_1.0");
            assertEquals("100", ((IIOMetadataNode) find(last, "GraphicControlExtension")).getAttribute("delayTime"));
            r.dispose();
        }
        // colour frames go through the writer's palette
        Path c = dir.resolve("c.gif");
        byte[] red = new byte[3 * 16];
        java.util.Arrays.fill(red, 0, 16, (byte) 255);
        GifWriter.write(c, 2, i -> ImageGrid.tile(i == 0 ? new byte[3 * 16] : red, 0, 3, 4, 4), 5, 5);
        try (ImageInputStream in = ImageIO.createImageInputStream(c.toFile())) {
            ImageReader r = ImageIO.getImageReaders(in).next();
            r.setInput(in);
            assertEquals(2, r.getNumImages(true));
            assertEquals(0x000000, r.read(0).getRGB(1, 1) & 0xFFFFFF);
            assertEquals(0xFF0000, r.read(1).getRGB(1, 1) & 0xFFFFFF, "pure red is in the colour palette");
            r.dispose();
        }
    }

    private static Node find(Node n, String name) {
        if (n.getNodeName().equals(name)) return n;
        for (Node ch = n.getFirstChild(); ch != null; ch = ch.getNextSibling()) {
            Node f = find(ch, name);
            if (f != null) return f;
        }
        return null;
    }
}
