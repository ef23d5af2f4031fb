package ncsn.sample;

import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.Raster;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import javax.imageio.ImageIO;

/**
 * Which pixels inpainting keeps (spec section 6): an [H, W] map, 1 = known (held equal to
 * c_i = r + sigma_i z'), 0 = to be filled, shared by every channel.
 * <ul>
 *   <li>{@code left}: columns 0 .. W/2-1 known (the reference's convention, which keeps {@code [..., :16]}
 *       of 32-wide images); {@code right}: columns W/2 .. W-1; {@code top}: rows 0 .. H/2-1;
 *       {@code bottom}: rows H/2 .. H-1;</li>
 *   <li>{@code center}: everything known except the centred (H/2) x (W/2) square, rows H/4 .. H/4+H/2-1
 *       and columns likewise;</li>
 *   <li>a PNG file of exactly H x W pixels: a pixel is known where it is non-zero (gray images: the
 *       gray sample; others: any of R, G, B; alpha ignored).</li>
 * </ul>
 * A mask must leave at least one pixel known and one to fill.
 */
public final class InpaintMask {
    public static final String NAMES = "left, right, top, bottom, center";

    private final float[] known;
    private final int height, width;
    private final String description;

    private InpaintMask(float[] known, int height, int width, String description) {
        this.known = known;
        this.height = height;
        this.width = width;
        this.description = description;
    }

    /** Parses --mask: a name of {@link #NAMES} or a PNG file; IllegalArgumentException naming --mask on any problem. */
    public static InpaintMask parse(String spec, int height, int width) {
        if (spec == null || spec.isBlank()) throw new IllegalArgumentException("--mask is missing: give one of " + NAMES + " or a PNG file");
        float[] m = new float[height * width];
        String key = spec.toLowerCase(Locale.ROOT);
        int h2 = height / 2, w2 = width / 2;
        switch (key) {
            case "left" -> fill(m, width, 0, height, 0, w2, 1);
            case "right" -> fill(m, width, 0, height, w2, width, 1);
            case "top" -> fill(m, width, 0, h2, 0, width, 1);
            case "bottom" -> fill(m, width, h2, height, 0, width, 1);
            case "center", "centre" -> {
                fill(m, width, 0, height, 0, width, 1);
                int top = height / 4, left = width / 4;
                fill(m, width, top, top + h2, left, left + w2, 0);
            }
            default -> {
                return fromPng(Path.of(spec), height, width);
            }
        }
        return checked(new InpaintMask(m, height, width, key + " (" + describeCounts(m) + ")"), spec);
    }

    private static void fill(float[] m, int width, int r0, int r1, int c0, int c1, float v) {
        for (int y = r0; y < r1; y++)
            for (int x = c0; x < c1; x++) m[y * width + x] = v;
    }

    private static InpaintMask fromPng(Path file, int height, int width) {
        if (!Files.isRegularFile(file))
            throw new IllegalArgumentException("--mask " + file + ": not one of " + NAMES + ", and no such file"
                    + (Files.isDirectory(file) ? " (it is a directory)" : ""));
        BufferedImage img;
        try {
            img = ImageIO.read(file.toFile());
        } catch (IOException e) {
            throw new IllegalArgumentException("--mask " + file + ": cannot be read as an image: " + e.getMessage());
        }
        if (img == null) throw new IllegalArgumentException("--mask " + file + ": not an image Java can decode (use a PNG)");
        if (img.getWidth() != width || img.getHeight() != height)
            throw new IllegalArgumentException("--mask " + file + " is " + img.getWidth() + "x" + img.getHeight()
                    + " pixels (width x height) but the samples are " + width + "x" + height + "; the mask must have the image size");
        float[] m = new float[height * width];
        Raster r = img.getRaster();
        boolean gray = img.getColorModel().getColorSpace().getType() == ColorSpace.TYPE_GRAY
                && !(img.getColorModel() instanceof java.awt.image.IndexColorModel);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++) {
                boolean on = gray ? r.getSample(x, y, 0) != 0 : (img.getRGB(x, y) & 0xFFFFFF) != 0;
                m[y * width + x] = on ? 1 : 0;
            }
        return checked(new InpaintMask(m, height, width, file + " (" + describeCounts(m) + ")"), file.toString());
    }

    private static InpaintMask checked(InpaintMask mask, String spec) {
        int k = mask.knownCount();
        if (k == 0) throw new IllegalArgumentException("--mask " + spec + ": no pixel is known (all zero); nothing to condition on");
        if (k == mask.known.length)
            throw new IllegalArgumentException("--mask " + spec + ": every pixel is known; nothing to fill in");
        return mask;
    }

    private static String describeCounts(float[] m) {
        int k = 0;
        for (float v : m) if (v != 0) k++;
        return k + " of " + m.length + " pixels known";
    }

    public int knownCount() {
        int k = 0;
        for (float v : known) if (v != 0) k++;
        return k;
    }

    public boolean known(int y, int x) {
        return known[y * width + x] != 0;
    }

    /** The [H, W] map (a copy), 1 = known. */
    public float[] map() {
        return known.clone();
    }

    /** The map repeated over C channels: [C, H, W]. */
    public float[] expand(int channels) {
        float[] out = new float[channels * known.length];
        for (int c = 0; c < channels; c++) System.arraycopy(known, 0, out, c * known.length, known.length);
        return out;
    }

    public int height() {
        return height;
    }

    public int width() {
        return width;
    }

    public String describe() {
        return description;
    }
}
