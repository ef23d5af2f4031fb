package ncsn.sample;

import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.awt.image.IndexColorModel;
import java.awt.image.WritableRaster;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.function.IntFunction;
import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageTypeSpecifier;
import javax.imageio.ImageWriter;
import javax.imageio.metadata.IIOMetadata;
import javax.imageio.metadata.IIOMetadataNode;
import javax.imageio.stream.ImageOutputStream;
import javax.imageio.stream.MemoryCacheImageOutputStream;
import ncsn.io.AtomicFiles;

/**
 * Animated GIFs with Java's own GIF writer (javax.imageio): every frame full size with its own delay,
 * the NETSCAPE2.0 application extension on the first frame asking viewers to loop forever.
 * Grayscale frames ({@link BufferedImage#TYPE_BYTE_GRAY}) are stored exactly through a 256-level
 * gray palette; colour frames are reduced to Java2D's default 256-colour palette (dithered, so
 * CIFAR-like grids lose some colour fidelity in the GIF; the PNGs are exact). The file is
 * written atomically ({@link AtomicFiles}), frames rendered one at a time (only one in memory).
 */
public final class GifWriter {
    private static final IndexColorModel GRAYS;

    static {
        if (System.getProperty("java.awt.headless") == null) System.setProperty("java.awt.headless", "true");
        byte[] g = new byte[256];
        for (int i = 0; i < 256; i++) g[i] = (byte) i;
        GRAYS = new IndexColorModel(8, 256, g, g, g);
    }

    private GifWriter() {}

    /**
     * Writes {@code frames} frames, frame i = {@code frame.apply(i)} (all of one size), each shown
     * {@code delayCs} hundredths of a second, the last one {@code lastDelayCs}.
     */
    public static void write(Path file, int frames, IntFunction<BufferedImage> frame, int delayCs, int lastDelayCs)
            throws IOException {
        if (frames < 1) throw new IllegalArgumentException("GIF " + file + ": no frames");
        Iterator<ImageWriter> it = ImageIO.getImageWritersByFormatName("gif");
        if (!it.hasNext()) throw new IOException("no GIF writer in this Java runtime");
        ImageWriter writer = it.next();
        try {
            AtomicFiles.write(file, out -> {
                ImageOutputStream ios = new MemoryCacheImageOutputStream(out);
                writer.setOutput(ios);
                writer.prepareWriteSequence(null);
                for (int i = 0; i < frames; i++) {
                    BufferedImage img = indexed(frame.apply(i));
                    IIOMetadata meta = writer.getDefaultImageMetadata(ImageTypeSpecifier.createFromRenderedImage(img),
                            writer.getDefaultWriteParam());
                    decorate(meta, (IndexColorModel) img.getColorModel(), i == frames - 1 ? lastDelayCs : delayCs, i == 0);
                    writer.writeToSequence(new IIOImage(img, null, meta), null);
                }
                writer.endWriteSequence();
                ios.flush();
            });
        } finally {
            writer.dispose();
        }
    }

    /**
     * Every frame as an 8-bit indexed image: gray frames on a 256-level gray palette (exact), colour
     * frames drawn by Java2D onto its default 256-colour palette (6x6x6 cube plus grays, dithered).
     */
    private static BufferedImage indexed(BufferedImage img) {
        if (img.getType() == BufferedImage.TYPE_BYTE_INDEXED) return img;
        if (img.getType() == BufferedImage.TYPE_BYTE_GRAY) {
            BufferedImage out = new BufferedImage(img.getWidth(), img.getHeight(), BufferedImage.TYPE_BYTE_INDEXED, GRAYS);
            WritableRaster dst = out.getRaster();
            int[] row = new int[img.getWidth()];
            for (int y = 0; y < img.getHeight(); y++)
                dst.setPixels(0, y, row.length, 1, img.getRaster().getPixels(0, y, row.length, 1, row));
            return out;
        }
        BufferedImage out = new BufferedImage(img.getWidth(), img.getHeight(), BufferedImage.TYPE_BYTE_INDEXED);
        Graphics2D g = out.createGraphics();
        try {
            g.drawImage(img, 0, 0, null);
        } finally {
            g.dispose();
        }
        return out;
    }

    /**
     * The frame's own palette as its local colour table (the writer's default image metadata
     * carries a fixed default palette instead), its delay, no disposal, and on the first frame the
     * loop-forever extension.
     */
    private static void decorate(IIOMetadata meta, IndexColorModel palette, int delayCs, boolean first) throws IOException {
        String fmt = meta.getNativeMetadataFormatName(); // javax_imageio_gif_image_1.0
        IIOMetadataNode root = (IIOMetadataNode) meta.getAsTree(fmt);
        IIOMetadataNode lct = child(root, "LocalColorTable");
        while (lct.getFirstChild() != null) lct.removeChild(lct.getFirstChild());
        int size = 2;
        while (size < palette.getMapSize()) size <<= 1; // a GIF colour table has 2^k entries
        lct.setAttribute("sizeOfLocalColorTable", Integer.toString(size));
        lct.setAttribute("sortFlag", "FALSE");
        for (int i = 0; i < size; i++) {
            IIOMetadataNode e = new IIOMetadataNode("ColorTableEntry");
            int k = Math.min(i, palette.getMapSize() - 1);
            e.setAttribute("index", Integer.toString(i));
            e.setAttribute("red", Integer.toString(palette.getRed(k)));
            e.setAttribute("green", Integer.toString(palette.getGreen(k)));
            e.setAttribute("blue", Integer.toString(palette.getBlue(k)));
            lct.appendChild(e);
        }
        IIOMetadataNode gce = child(root, "GraphicControlExtension");
        gce.setAttribute("disposalMethod", "none");
        gce.setAttribute("userInputFlag", "FALSE");
        gce.setAttribute("transparentColorFlag", "FALSE");
        gce.setAttribute("delayTime", Integer.toString(Math.max(0, delayCs)));
        gce.setAttribute("transparentColorIndex", "0");
        if (first) {
            IIOMetadataNode apps = child(root, "ApplicationExtensions");
            IIOMetadataNode app = new IIOMetadataNode("ApplicationExtension");
            app.setAttribute("applicationID", "NETSCAPE");
            app.setAttribute("authenticationCode", "2.0");
            app.setUserObject(new byte[] {1, 0, 0}); // sub-block 1: loop count 0 = forever
            apps.appendChild(app);
        }
        meta.setFromTree(fmt, root);
    }

    private static IIOMetadataNode child(IIOMetadataNode root, String name) {
        for (int i = 0; i < root.getLength(); i++)
            if (root.item(i).getNodeName().equalsIgnoreCase(name)) return (IIOMetadataNode) root.item(i);
        IIOMetadataNode n = new IIOMetadataNode(name);
        root.appendChild(n);
        return n;
    }
}
