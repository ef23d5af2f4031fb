package ncsn.sample;

import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.IndexColorModel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import ncsn.data.DataException;
import ncsn.data.Datasets;
import ncsn.data.ImageDataset;
import ncsn.io.SafeTensors;
import ncsn.io.SafeTensorsException;
import ncsn.tensor.DType;

/**
 * The reference images r of {@code ncsn inpaint --images SOURCE}, values in [0, 1], [K, C, H, W]:
 * <ul>
 *   <li>a {@code .safetensors} file with a tensor {@code x} [N, C, H, W] (or [C, H, W]) of the
 *       model's C, H, W (e.g. the samples.safetensors of {@code ncsn sample}): its first K images;</li>
 *   <li>a folder of PNG/JPEG images of exactly H x W pixels, taken in file-name order (for a
 *       1-channel model colour images become luma, PIL's convert("L"): (19595 R + 38470 G + 7471 B
 *       + 2^15) >> 16; for 3 channels gray images are repeated);</li>
 *   <li>a data set name understood by {@link Datasets#open} (MNIST, FashionMNIST, CIFAR10, CELEBA,
 *       with {@code dataPath}; Fashion-MNIST defaults to /usr/share/datasets/fashion-mnist): the
 *       first K images of its test split, resized to H as training does.</li>
 * </ul>
 *
 * @param pixels      [K, C, H, W] in [0, 1]
 * @param count       K
 * @param description where they came from
 */
public record ReferenceImages(float[] pixels, int count, String description) {
    /** Loads at most {@code count} images of [channels, size, size]; IllegalArgumentException naming --images on problems. */
    public static ReferenceImages load(String source, Path dataPath, int count, int channels, int size) {
        if (source == null || source.isBlank()) throw new IllegalArgumentException("--images is missing");
        if (count < 1) throw new IllegalArgumentException("--count must be positive, got " + count);
        Path p = Path.of(source);
        if (source.toLowerCase(Locale.ROOT).endsWith(".safetensors") || Files.isRegularFile(p))
            return fromSafetensors(p, count, channels, size);
        if (Files.isDirectory(p)) return fromFolder(p, count, channels, size);
        return fromDataset(source, dataPath, count, channels, size);
    }

    private static ReferenceImages fromSafetensors(Path file, int count, int c, int size) {
        SafeTensors.Contents st;
        try {
            st = SafeTensors.read(file);
        } catch (SafeTensorsException e) {
            throw new IllegalArgumentException("--images " + e.getMessage());
        }
        SafeTensors.Entry x = st.get("x");
        if (x == null) throw new IllegalArgumentException("--images " + file + " has no tensor 'x' (it has " + st.entries().keySet() + ")");
        long[] s = x.shape();
        long[] want = {c, size, size};
        boolean ok = (s.length == 4 && s[0] >= 1 && Arrays.equals(Arrays.copyOfRange(s, 1, 4), want))
                || (s.length == 3 && Arrays.equals(s, want));
        if (!ok)
            throw new IllegalArgumentException("--images " + file + ": tensor 'x' has shape " + Arrays.toString(s)
                    + "; the checkpoint's model samples [N, " + c + ", " + size + ", " + size + "]");
        if (!x.dtype().startsWith("F") && !x.dtype().equals("BF16"))
            throw new IllegalArgumentException("--images " + file + ": tensor 'x' is " + x.dtype() + "; expected a float type");
        float[] all = x.toTensor(DType.F32).f32();
        int n = s.length == 4 ? (int) s[0] : 1, k = Math.min(count, n), chw = c * size * size;
        float[] px = Arrays.copyOf(all, k * chw);
        return new ReferenceImages(px, k, "the first " + k + " of " + n + " images in " + file);
    }

    private static ReferenceImages fromFolder(Path dir, int count, int c, int size) {
        if (c != 1 && c != 3)
            throw new IllegalArgumentException("--images " + dir + ": a folder of pictures gives 1- or 3-channel images, the model has "
                    + c + " channels; pass a .safetensors file with 'x' instead");
        List<Path> files;
        try (Stream<Path> s = Files.list(dir)) {
            files = new ArrayList<>(s.filter(f -> {
                String n = f.getFileName().toString().toLowerCase(Locale.ROOT);
                return Files.isRegularFile(f) && (n.endsWith(".png") || n.endsWith(".jpg") || n.endsWith(".jpeg"));
            }).toList());
        } catch (IOException e) {
            throw new IllegalArgumentException("--images " + dir + ": cannot list the folder: " + e.getMessage());
        }
        if (files.isEmpty())
            throw new IllegalArgumentException("--images " + dir + ": empty image folder (no *.png, *.jpg or *.jpeg files in it)");
        files.sort((a, b) -> a.getFileName().toString().compareTo(b.getFileName().toString()));
        int k = Math.min(count, files.size()), hw = size * size;
        float[] px = new float[k * c * hw];
        for (int i = 0; i < k; i++) {
            Path f = files.get(i);
            BufferedImage img;
            try {
                img = ImageIO.read(f.toFile());
            } catch (IOException e) {
                throw new IllegalArgumentException("--images " + f + ": cannot be decoded: " + e.getMessage());
            }
            if (img == null) throw new IllegalArgumentException("--images " + f + ": not an image Java can decode");
            if (img.getWidth() != size || img.getHeight() != size)
                throw new IllegalArgumentException("--images " + f + " is " + img.getWidth() + "x" + img.getHeight()
                        + " pixels but the model samples " + size + "x" + size + "; resize the images first");
            boolean gray = img.getColorModel().getColorSpace().getType() == ColorSpace.TYPE_GRAY
                    && !(img.getColorModel() instanceof IndexColorModel) && img.getSampleModel().getSampleSize(0) == 8;
            int base = i * c * hw;
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++) {
                    int r, g, b;
                    if (gray) r = g = b = img.getRaster().getSample(x, y, 0); // 8-bit gray as stored, no colour conversion
                    else {
                        int rgb = img.getRGB(x, y);
                        r = rgb >> 16 & 0xFF;
                        g = rgb >> 8 & 0xFF;
                        b = rgb & 0xFF;
                    }
                    int o = y * size + x;
                    if (c == 1) px[base + o] = ((19595 * r + 38470 * g + 7471 * b + 0x8000) >> 16) / 255f;
                    else {
                        px[base + o] = r / 255f;
                        px[base + hw + o] = g / 255f;
                        px[base + 2 * hw + o] = b / 255f;
                    }
                }
        }
        return new ReferenceImages(px, k, "the first " + k + " of " + files.size() + " images in " + dir + " (by file name)");
    }

    private static ReferenceImages fromDataset(String name, Path root, int count, int c, int size) {
        ImageDataset ds;
        try {
            ds = Datasets.open(name, root, false, size);
        } catch (DataException e) {
            throw new IllegalArgumentException("--images " + name + ": not a .safetensors file or a folder, and as a data set: "
                    + e.getMessage());
        }
        if (ds.channels() != c)
            throw new IllegalArgumentException("--images " + name + " has " + ds.channels() + "-channel images but the checkpoint's"
                    + " model has " + c + " channels");
        if (ds.size() == 0) throw new IllegalArgumentException("--images " + name + ": the test split is empty (" + ds.describe() + ")");
        int k = Math.min(count, ds.size()), chw = c * size * size;
        float[] px = new float[k * chw];
        try {
            for (int i = 0; i < k; i++) ds.read(i, px, i * chw);
        } catch (DataException.Unchecked e) {
            throw new IllegalArgumentException("--images " + name + ": " + e.data().getMessage());
        }
        return new ReferenceImages(px, k, "the first " + k + " test images of " + ds.describe());
    }
}
