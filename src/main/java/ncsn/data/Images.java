package ncsn.data;

import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.ComponentColorModel;
import java.awt.image.DataBuffer;
import java.awt.image.Raster;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;
import javax.imageio.stream.MemoryCacheImageInputStream;

/**
 * Image decoding to 8-bit RGB and the torchvision geometric transforms (CenterCrop, Resize on a
 * PIL image), on planar [3, h, w] byte arrays.
 */
final class Images {
    private Images() {}

    /** A decoded image: rgb is [3, h, w], unsigned bytes. */
    record Rgb(int w, int h, byte[] rgb) {}

    /**
     * Decodes a PNG or JPEG (anything Java's ImageIO reads) to 8-bit RGB, like PIL's
     * {@code convert("RGB")}: grayscale is copied to all three channels, alpha is dropped (not
     * composited), palettes are expanded. 8-bit rasters are read sample by sample (no colour
     * conversion: ImageIO would otherwise treat 8-bit gray as linear and brighten it); other
     * layouts go through {@code getRGB} (sRGB). 16-bit samples keep their top 8 bits (PIL would
     * clip them instead; such images are rare in these data sets).
     *
     * <p>JPEG decoding: Java's decoder derives from IJG libjpeg like PIL's (libjpeg-turbo, default
     * integer IDCT and fancy upsampling); on 50 test JPEGs (4:2:0, quality 95, written by PIL 9.4)
     * every decoded pixel, and every pixel after the CelebA crop and resize, equalled PIL's. That is
     * measured, not guaranteed for every JPEG variant (progressive, other IDCTs); PNG is exact.
     */
    static Rgb decode(Path file) throws DataException {
        byte[] data;
        try {
            data = Files.readAllBytes(file);
        } catch (IOException e) {
            throw DataException.at(file, "cannot read: " + e, e);
        }
        BufferedImage img;
        try (ImageInputStream in = new MemoryCacheImageInputStream(new ByteArrayInputStream(data))) {
            Iterator<ImageReader> readers = ImageIO.getImageReaders(in);
            if (!readers.hasNext())
                throw DataException.at(file, "undecodable image: not a format Java's ImageIO can read (PNG, JPEG, "
                        + "BMP, GIF); " + data.length + " bytes starting " + hexStart(data));
            ImageReader r = readers.next();
            try {
                r.setInput(in, true, true);
                img = r.read(0);
            } finally {
                r.dispose();
            }
        } catch (IOException | RuntimeException e) {
            throw DataException.at(file, "undecodable image (" + e.getMessage() + "): corrupt or truncated file, "
                    + "or an unsupported variant such as a CMYK JPEG", e);
        }
        int w = img.getWidth(), h = img.getHeight();
        if (w <= 0 || h <= 0) throw DataException.at(file, "undecodable image: size " + w + "x" + h);
        return new Rgb(w, h, toRgb(img));
    }

    private static String hexStart(byte[] b) {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < Math.min(8, b.length); i++) s.append(String.format("%02x ", b[i] & 0xFF));
        return s.toString().trim();
    }

    static byte[] toRgb(BufferedImage img) {
        int w = img.getWidth(), h = img.getHeight(), plane = w * h;
        byte[] out = new byte[3 * plane];
        Raster r = img.getRaster();
        boolean byteComponents = img.getColorModel() instanceof ComponentColorModel
                && r.getTransferType() == DataBuffer.TYPE_BYTE;
        int csType = img.getColorModel().getColorSpace().getType();
        int[] row = new int[w];
        if (byteComponents && csType == ColorSpace.TYPE_GRAY) {
            for (int y = 0; y < h; y++) {
                r.getSamples(0, y, w, 1, 0, row);
                for (int x = 0; x < w; x++) out[y * w + x] = out[plane + y * w + x] = out[2 * plane + y * w + x] = (byte) row[x];
            }
        } else if (byteComponents && csType == ColorSpace.TYPE_RGB && r.getNumBands() >= 3) {
            // Raster bands follow the colour model's component order (R, G, B[, A]) whatever the
            // byte layout in memory (e.g. TYPE_3BYTE_BGR).
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < h; y++) {
                    r.getSamples(0, y, w, 1, c, row);
                    for (int x = 0; x < w; x++) out[c * plane + y * w + x] = (byte) row[x];
                }
        } else if (r.getTransferType() == DataBuffer.TYPE_USHORT && img.getColorModel() instanceof ComponentColorModel
                && csType == ColorSpace.TYPE_GRAY) {
            for (int y = 0; y < h; y++) {
                r.getSamples(0, y, w, 1, 0, row);
                for (int x = 0; x < w; x++) out[y * w + x] = out[plane + y * w + x] = out[2 * plane + y * w + x] = (byte) (row[x] >>> 8);
            }
        } else {
            for (int y = 0; y < h; y++) {
                img.getRGB(0, y, w, 1, row, 0, w);
                for (int x = 0; x < w; x++) {
                    int p = row[x];
                    out[y * w + x] = (byte) (p >>> 16);
                    out[plane + y * w + x] = (byte) (p >>> 8);
                    out[2 * plane + y * w + x] = (byte) p;
                }
            }
        }
        return out;
    }

    /**
     * torchvision's CenterCrop offset: round((in - out) / 2) with Python's round (half to even),
     * e.g. in - out = 5 gives 2, 7 gives 4.
     */
    static int cropOffset(int in, int out) {
        int d = in - out, half = d >> 1;
        return (d & 1) == 0 ? half : (half & 1) == 0 ? half : half + 1;
    }

    /** Crops [c, h, w] to [c, ch, cw] at (top, left). */
    static byte[] crop(byte[] src, int c, int h, int w, int top, int left, int ch, int cw) {
        if (top < 0 || left < 0 || top + ch > h || left + cw > w)
            throw new IllegalArgumentException("crop " + cw + "x" + ch + " at (" + left + "," + top + ") of " + w + "x" + h);
        byte[] out = new byte[c * ch * cw];
        for (int k = 0; k < c; k++)
            for (int y = 0; y < ch; y++)
                System.arraycopy(src, (k * h + top + y) * w + left, out, (k * ch + y) * cw, cw);
        return out;
    }

    /** torchvision CenterCrop(ch, cw) for an image at least that large. */
    static byte[] centerCrop(byte[] src, int c, int h, int w, int ch, int cw) {
        return crop(src, c, h, w, cropOffset(h, ch), cropOffset(w, cw), ch, cw);
    }

    /**
     * torchvision Resize(size) output dimensions {h, w}: the shorter side becomes size, the longer
     * one int(size * long / short) (truncated); unchanged when the shorter side already is size.
     */
    static int[] resizeShorterDims(int h, int w, int size) {
        if (w <= h) return w == size ? new int[] {h, w} : new int[] {(int) ((double) size * h / w), size};
        return h == size ? new int[] {h, w} : new int[] {size, (int) ((double) size * w / h)};
    }
}
