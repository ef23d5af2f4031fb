package ncsn.sample;

import java.awt.image.BufferedImage;
import java.awt.image.WritableRaster;
import java.io.IOException;
import java.nio.file.Path;
import javax.imageio.ImageIO;
import ncsn.io.AtomicFiles;

/**
 * 8-bit pictures of image tensors: quantisation of samples to bytes, single tiles and grids, PNG
 * files (written atomically through {@link AtomicFiles}).
 *
 * <p>Pixels: a value v becomes {@code floor(255 clamp(v, 0, 1) + 0.5)}, what torchvision's
 * save_image / the reference's GIF frames compute (NaN becomes 0). For a model trained on
 * logit-space images the value is first mapped back with the sigmoid (the reference applies the
 * sigmoid after clamping, which squeezes every pixel into [0.5, 0.73]; here the sigmoid comes
 * first so the picture shows the image).
 *
 * <p>Tiles: one image [C, H, W] is an H x W grayscale tile for C = 1, an RGB tile for C = 3, and for
 * any other channel count its C channels side by side in grayscale (H x CW). Grids: tiles in
 * row-major order, {@link #PAD} pixels of {@link #PAD_VALUE} (mid gray, visible against both the
 * black background of MNIST-like data and bright images) between and around them, like
 * torchvision's make_grid.
 */
public final class ImageGrid {
    /** Padding between and around the tiles of a grid, in pixels (torchvision's default). */
    public static final int PAD = 2;
    /** Gray level of the padding and of empty grid cells. */
    public static final int PAD_VALUE = 128;

    static {
        if (System.getProperty("java.awt.headless") == null) System.setProperty("java.awt.headless", "true");
    }

    private ImageGrid() {}

    /** The byte for one value (see the class comment). */
    public static int toByte(double v, boolean sigmoid) {
        if (sigmoid) v = 1.0 / (1.0 + Math.exp(-v));
        if (!(v > 0)) return 0; // also NaN
        if (v >= 1) return 255;
        return (int) Math.floor(255 * v + 0.5);
    }

    /** dst[dstOff + j] = toByte(src[srcOff + j]) for j in [0, len). */
    public static void quantize(float[] src, int srcOff, byte[] dst, int dstOff, int len, boolean sigmoid) {
        for (int j = 0; j < len; j++) dst[dstOff + j] = (byte) toByte(src[srcOff + j], sigmoid);
    }

    /** Columns of a square-ish grid of n tiles: ceil(sqrt(n)). */
    public static int columnsFor(int n) {
        int c = (int) Math.ceil(Math.sqrt(n));
        while (c > 1 && (long) (c - 1) * (c - 1) >= n) c--;
        while ((long) c * c < n) c++;
        return Math.max(1, c);
    }

    /** Width of one tile of an image [C, H, W] (see the class comment). */
    public static int tileWidth(int c, int w) {
        return c == 1 || c == 3 ? w : c * w;
    }

    /** Whether tiles of C channels are drawn in colour (C = 3). */
    public static boolean colour(int c) {
        return c == 3;
    }

    /**
     * A grid of {@code count} tiles; tile t is the image [C, H, W] at pixels[t * CHW ..], in row-major
     * order over {@code cols} columns.
     */
    public static BufferedImage grid(byte[] pixels, int count, int c, int h, int w, int cols) {
        return grid(pixels, count, c, h, w, cols, null);
    }

    /**
     * As {@link #grid(byte[], int, int, int, int, int)}, with tile t drawn from image order[t] of
     * pixels (null: order[t] = t).
     */
    public static BufferedImage grid(byte[] pixels, int count, int c, int h, int w, int cols, int[] order) {
        if (count < 1 || cols < 1) throw new IllegalArgumentException("image grid: need at least one tile and one column");
        int chw = c * h * w, tw = tileWidth(c, w);
        int rows = (count + cols - 1) / cols;
        long gw = (long) cols * tw + (long) (cols + 1) * PAD, gh = (long) rows * h + (long) (rows + 1) * PAD;
        if (gw * gh > Integer.MAX_VALUE / 4)
            throw new IllegalArgumentException("image grid of " + count + " tiles " + tw + "x" + h + " would be " + gw + "x" + gh
                    + " pixels, too large for one picture");
        boolean rgb = colour(c);
        BufferedImage img = new BufferedImage((int) gw, (int) gh, rgb ? BufferedImage.TYPE_INT_RGB : BufferedImage.TYPE_BYTE_GRAY);
        WritableRaster r = img.getRaster();
        fill(img, PAD_VALUE);
        for (int t = 0; t < count; t++) {
            int src = (order == null ? t : order[t]) * chw;
            int x0 = PAD + (t % cols) * (tw + PAD), y0 = PAD + (t / cols) * (h + PAD);
            drawTile(img, r, pixels, src, c, h, w, x0, y0);
        }
        return img;
    }

    /** One image [C, H, W] at pixels[offset ..] as a picture of its own (the per-sample PNGs). */
    public static BufferedImage tile(byte[] pixels, int offset, int c, int h, int w) {
        BufferedImage img = new BufferedImage(tileWidth(c, w), h, colour(c) ? BufferedImage.TYPE_INT_RGB : BufferedImage.TYPE_BYTE_GRAY);
        drawTile(img, img.getRaster(), pixels, offset, c, h, w, 0, 0);
        return img;
    }

    private static void drawTile(BufferedImage img, WritableRaster r, byte[] px, int src, int c, int h, int w, int x0, int y0) {
        int hw = h * w;
        if (colour(c)) {
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    int p = src + y * w + x;
                    img.setRGB(x0 + x, y0 + y, (px[p] & 0xFF) << 16 | (px[p + hw] & 0xFF) << 8 | (px[p + 2 * hw] & 0xFF));
                }
        } else {
            // Gray raster samples directly: no colour-space conversion of the 8-bit values.
            for (int ch = 0; ch < c; ch++)
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                        r.setSample(x0 + ch * w + x, y0 + y, 0, px[src + ch * hw + y * w + x] & 0xFF);
        }
    }

    private static void fill(BufferedImage img, int v) {
        WritableRaster r = img.getRaster();
        int[] row = new int[img.getWidth() * r.getNumBands()];
        java.util.Arrays.fill(row, v);
        for (int y = 0; y < img.getHeight(); y++) r.setPixels(0, y, img.getWidth(), 1, row);
    }

    /** Writes a PNG atomically (temp file, fsync, rename). */
    public static void writePng(Path file, BufferedImage img) throws IOException {
        AtomicFiles.write(file, out -> {
            if (!ImageIO.write(img, "png", out)) throw new IOException("no PNG writer in this Java runtime");
        });
    }
}
