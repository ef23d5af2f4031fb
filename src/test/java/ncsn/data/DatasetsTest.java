package ncsn.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.zip.GZIPOutputStream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Opening MNIST-style IDX files, CIFAR-10 batches and image folders; the errors bad files give. */
class DatasetsTest {
    @TempDir
    Path tmp;

    // ---- fixtures -------------------------------------------------------------------------

    /** n images of 28x28 with pixel (i, y, x) = (7i + 3y + 5x) mod 256. */
    static byte[] idxPixels(int n) {
        byte[] p = new byte[n * 784];
        for (int i = 0; i < n; i++)
            for (int y = 0; y < 28; y++)
                for (int x = 0; x < 28; x++) p[i * 784 + y * 28 + x] = (byte) ((7 * i + 3 * y + 5 * x) % 256);
        return p;
    }

    static byte[] idx(int magic, int n, int rows, int cols, byte[] pixels) {
        ByteBuffer b = ByteBuffer.allocate(16 + pixels.length);
        b.putInt(magic).putInt(n).putInt(rows).putInt(cols).put(pixels);
        return b.array();
    }

    static byte[] gzip(byte[] raw) throws IOException {
        ByteArrayOutputStream bo = new ByteArrayOutputStream();
        try (OutputStream o = new GZIPOutputStream(bo)) {
            o.write(raw);
        }
        return bo.toByteArray();
    }

    static Path write(Path file, byte[] bytes) throws IOException {
        Files.createDirectories(file.getParent());
        return Files.write(file, bytes);
    }

    static float[] readAll(ImageDataset ds, int i) {
        float[] f = new float[ds.channels() * ds.height() * ds.width()];
        ds.read(i, f, 0);
        return f;
    }

    static void writePng(Path file, BufferedImage img) throws IOException {
        Files.createDirectories(file.getParent());
        assertTrue(ImageIO.write(img, "png", file.toFile()));
    }

    static BufferedImage rgb(int w, int h, java.util.function.IntBinaryOperator argb) {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) img.setRGB(x, y, argb.applyAsInt(x, y));
        return img;
    }

    static String message(Throwable t) {
        return t.getMessage();
    }

    // ---- IDX ------------------------------------------------------------------------------

    @Test
    void idxRawAndGzipRoundTrip() throws Exception {
        byte[] px = idxPixels(3);
        write(tmp.resolve("raw/train-images-idx3-ubyte"), idx(0x803, 3, 28, 28, px));
        write(tmp.resolve("gz/t10k-images-idx3-ubyte.gz"), gzip(idx(0x803, 3, 28, 28, px)));
        for (ImageDataset ds : new ImageDataset[] {Datasets.open("MNIST", tmp.resolve("raw"), true, 28),
            Datasets.open("fashion_mnist", tmp.resolve("gz"), false, 28)}) {
            assertEquals(3, ds.size());
            assertEquals(1, ds.channels());
            assertEquals(28, ds.height());
            assertEquals(28, ds.width());
            float[] dst = new float[2 + 784];
            ds.read(2, dst, 2);
            for (int j = 0; j < 784; j++) assertEquals((px[2 * 784 + j] & 0xFF) / 255f, dst[2 + j]);
            assertEquals(0f, dst[0]);
            assertTrue(ds.describe().contains("3 images 1x28x28"), ds.describe());
        }
        // torchvision's layout root/MNIST/raw works too
        write(tmp.resolve("tv/MNIST/raw/t10k-images-idx3-ubyte"), idx(0x803, 3, 28, 28, px));
        assertEquals(3, Datasets.open("mnist", tmp.resolve("tv"), false, 28).size());
    }

    @Test
    void idxResizedLikePillow() throws Exception {
        byte[] px = idxPixels(2);
        write(tmp.resolve("train-images-idx3-ubyte"), idx(0x803, 2, 28, 28, px));
        ImageDataset ds = Datasets.open("MNIST", tmp, true, 32);
        assertEquals(32, ds.height());
        assertTrue(ds.describe().contains("resized 28->32"), ds.describe());
        byte[] one = Arrays.copyOfRange(px, 784, 2 * 784);
        byte[] want = PilResize.resize(one, 1, 28, 28, 32, 32);
        float[] got = readAll(ds, 1);
        for (int j = 0; j < 1024; j++) assertEquals((want[j] & 0xFF) / 255f, got[j]);
    }

    @Test
    void idxMissingFileSaysWhereItLooked() {
        DataException e = assertThrows(DataException.class, () -> Datasets.open("FashionMNIST", tmp, true, 28));
        String m = message(e);
        assertTrue(m.contains("train-images-idx3-ubyte") && m.contains("train-images-idx3-ubyte.gz"), m);
        assertTrue(m.contains(tmp.toString()) && m.contains(tmp.resolve("raw").toString()), m);
        assertTrue(m.contains("apt-get install dataset-fashion-mnist"), m);
        e = assertThrows(DataException.class, () -> Datasets.open("FashionMNIST", tmp.resolve("nope"), true, 28));
        assertTrue(message(e).contains("does not exist") && message(e).contains("apt-get install"), message(e));
    }

    @Test
    void idxTruncatedRawAndGzip() throws Exception {
        byte[] full = idx(0x803, 3, 28, 28, idxPixels(3));
        byte[] cut = Arrays.copyOf(full, full.length - 100);
        Path raw = write(tmp.resolve("a/train-images-idx3-ubyte"), cut);
        DataException e = assertThrows(DataException.class, () -> Datasets.open("MNIST", tmp.resolve("a"), true, 28));
        String m = message(e);
        assertTrue(m.startsWith(raw.toString()), m);
        assertTrue(m.contains("truncated") && m.contains("declares 3 images") && m.contains("2352")
                && m.contains("2252 bytes are present"), m);
        // header cut short
        write(tmp.resolve("b/train-images-idx3-ubyte"), Arrays.copyOf(full, 10));
        m = message(assertThrows(DataException.class, () -> Datasets.open("MNIST", tmp.resolve("b"), true, 28)));
        assertTrue(m.contains("truncated") && m.contains("10 bytes"), m);
        // a gzip stream cut in the middle
        byte[] gz = gzip(full);
        write(tmp.resolve("c/train-images-idx3-ubyte.gz"), Arrays.copyOf(gz, gz.length / 2));
        m = message(assertThrows(DataException.class, () -> Datasets.open("MNIST", tmp.resolve("c"), true, 28)));
        assertTrue(m.contains("train-images-idx3-ubyte.gz") && m.contains("truncated"), m);
        // complete gzip of a truncated file
        write(tmp.resolve("d/train-images-idx3-ubyte.gz"), gzip(cut));
        m = message(assertThrows(DataException.class, () -> Datasets.open("MNIST", tmp.resolve("d"), true, 28)));
        assertTrue(m.contains("truncated") && m.contains("declares 3 images"), m);
    }

    @Test
    void idxWrongMagicAndDimensions() throws Exception {
        write(tmp.resolve("a/train-images-idx3-ubyte"), idx(0x801, 3, 28, 28, new byte[0]));
        String m = message(assertThrows(DataException.class, () -> Datasets.open("MNIST", tmp.resolve("a"), true, 28)));
        assertTrue(m.contains("wrong magic number 0x00000801") && m.contains("labels file"), m);
        write(tmp.resolve("b/train-images-idx3-ubyte"), "<html>not found</html>".getBytes());
        m = message(assertThrows(DataException.class, () -> Datasets.open("MNIST", tmp.resolve("b"), true, 28)));
        assertTrue(m.contains("wrong magic number") && m.contains("not an IDX file"), m);
        write(tmp.resolve("c/train-images-idx3-ubyte"), idx(0x803, 2, 32, 32, new byte[2048]));
        m = message(assertThrows(DataException.class, () -> Datasets.open("MNIST", tmp.resolve("c"), true, 28)));
        assertTrue(m.contains("wrong dimensions") && m.contains("32x32") && m.contains("28x28"), m);
        write(tmp.resolve("d/train-images-idx3-ubyte"), idx(0x803, 2, 28, 28, new byte[784 * 3]));
        m = message(assertThrows(DataException.class, () -> Datasets.open("MNIST", tmp.resolve("d"), true, 28)));
        assertTrue(m.contains("784 bytes follow") || m.contains("2352 bytes follow"), m);
    }

    @Test
    void badNamesAndSizes() {
        String m = message(assertThrows(DataException.class, () -> Datasets.open("SVHN", tmp, true, 32)));
        assertTrue(m.contains("SVHN") && m.contains("CIFAR10"), m);
        m = message(assertThrows(DataException.class, () -> Datasets.open("MNIST", tmp, true, 0)));
        assertTrue(m.contains("image size") && m.contains("0"), m);
        m = message(assertThrows(DataException.class, () -> Datasets.open("CIFAR10", null, true, 32)));
        assertTrue(m.contains("no data directory"), m);
    }

    // ---- CIFAR-10 -------------------------------------------------------------------------

    /** n records: label (r % 10), pixel (c, y, x) = (r + 50c + y + 2x) mod 256. */
    static byte[] cifar(int n, int firstRecord) {
        byte[] b = new byte[n * 3073];
        for (int r = 0; r < n; r++) {
            int g = firstRecord + r;
            b[r * 3073] = (byte) (g % 10);
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < 32; y++)
                    for (int x = 0; x < 32; x++)
                        b[r * 3073 + 1 + c * 1024 + y * 32 + x] = (byte) ((g + 50 * c + y + 2 * x) % 256);
        }
        return b;
    }

    static void writeCifarTrain(Path dir, int perFile) throws IOException {
        for (int f = 1; f <= 5; f++) write(dir.resolve("data_batch_" + f + ".bin"), cifar(perFile, (f - 1) * perFile));
    }

    @Test
    void cifarRecordsParseInOrder() throws Exception {
        writeCifarTrain(tmp.resolve("cifar-10-batches-bin"), 2);
        write(tmp.resolve("cifar-10-batches-bin/test_batch.bin"), cifar(3, 100));
        ImageDataset train = Datasets.open("CIFAR10", tmp, true, 32);
        assertEquals(10, train.size());
        assertEquals(3, train.channels());
        for (int g : new int[] {0, 3, 9}) {
            float[] f = readAll(train, g);
            for (int c = 0; c < 3; c++)
                for (int y : new int[] {0, 17, 31})
                    for (int x : new int[] {0, 5, 31})
                        assertEquals(((g + 50 * c + y + 2 * x) % 256) / 255f, f[c * 1024 + y * 32 + x], "img " + g);
        }
        ImageDataset test = Datasets.open("cifar10", tmp.resolve("cifar-10-batches-bin"), false, 32);
        assertEquals(3, test.size());
        assertEquals(((101 + 50 + 2) % 256) / 255f, readAll(test, 1)[1024 + 1]);
        ImageDataset small = Datasets.open("CIFAR10", tmp, false, 16);
        assertEquals(16, small.height());
        byte[] rec = Arrays.copyOfRange(cifar(1, 102), 1, 3073);
        byte[] want = PilResize.resize(rec, 3, 32, 32, 16, 16);
        float[] got = readAll(small, 2);
        for (int j = 0; j < want.length; j++) assertEquals((want[j] & 0xFF) / 255f, got[j]);
    }

    @Test
    void cifarErrors() throws Exception {
        String m = message(assertThrows(DataException.class, () -> Datasets.open("CIFAR10", tmp, true, 32)));
        assertTrue(m.contains("data_batch_1.bin") && m.contains(tmp.resolve("cifar-10-batches-bin").toString()), m);
        writeCifarTrain(tmp, 1);
        Files.delete(tmp.resolve("data_batch_4.bin"));
        m = message(assertThrows(DataException.class, () -> Datasets.open("CIFAR10", tmp, true, 32)));
        assertTrue(m.contains("data_batch_4.bin") && m.contains("missing"), m);
        write(tmp.resolve("data_batch_4.bin"), Arrays.copyOf(cifar(2, 0), 3073 + 1000));
        m = message(assertThrows(DataException.class, () -> Datasets.open("CIFAR10", tmp, true, 32)));
        assertTrue(m.contains("data_batch_4.bin") && m.contains("truncated") && m.contains("4073 bytes"), m);
        write(tmp.resolve("data_batch_4.bin"), new byte[3074 * 2]);
        m = message(assertThrows(DataException.class, () -> Datasets.open("CIFAR10", tmp, true, 32)));
        assertTrue(m.contains("CIFAR-100"), m);
        byte[] bad = cifar(2, 0);
        bad[3073] = 42;
        write(tmp.resolve("data_batch_4.bin"), bad);
        m = message(assertThrows(DataException.class, () -> Datasets.open("CIFAR10", tmp, true, 32)));
        assertTrue(m.contains("record 1") && m.contains("label byte 42"), m);
    }

    // ---- image folders --------------------------------------------------------------------

    @Test
    void folderOfPngsAllColourTypes() throws Exception {
        Path d = tmp.resolve("imgs");
        // 0: RGB, 1: 8-bit gray (must not be brightened by a colour conversion), 2: RGBA (alpha dropped),
        // 3: palette; all 8x8 so Resize(8) + CenterCrop(8) is the identity
        writePng(d.resolve("a0.png"), rgb(8, 8, (x, y) -> (10 * x) << 16 | (20 * y) << 8 | 7));
        BufferedImage gray = new BufferedImage(8, 8, BufferedImage.TYPE_BYTE_GRAY);
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++) gray.getRaster().setSample(x, y, 0, 30 * x + y);
        writePng(d.resolve("a1.png"), gray);
        BufferedImage rgba = new BufferedImage(8, 8, BufferedImage.TYPE_INT_ARGB);
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++) rgba.setRGB(x, y, (x * 30) << 24 | 200 << 16 | 100 << 8 | 50);
        writePng(d.resolve("a2.png"), rgba);
        BufferedImage pal = new BufferedImage(8, 8, BufferedImage.TYPE_BYTE_INDEXED);
        pal.setRGB(3, 4, 0xFF0000);
        writePng(d.resolve("a3.png"), pal);
        Files.writeString(d.resolve("notes.txt"), "not an image");
        // 9 more so that the 90/10 split leaves the first 10 (sorted by name) for training
        for (int i = 0; i < 9; i++) writePng(d.resolve("b" + i + ".png"), rgb(8, 8, (x, y) -> 0x123456));
        ImageDataset train = Datasets.open("FOLDER", d, true, 8), test = Datasets.open("folder", d, false, 8);
        assertEquals(12, train.size());
        assertEquals(1, test.size());
        assertEquals(3, train.channels());
        float[] f = readAll(train, 0);
        assertEquals(10 * 5 / 255f, f[3 * 8 + 5]); // R at (y 3, x 5)
        assertEquals(20 * 3 / 255f, f[64 + 3 * 8 + 5]);
        assertEquals(7 / 255f, f[128 + 3 * 8 + 5]);
        f = readAll(train, 1);
        for (int c = 0; c < 3; c++) assertEquals((30 * 5 + 3) / 255f, f[c * 64 + 3 * 8 + 5], "gray copied to channel " + c);
        f = readAll(train, 2);
        assertEquals(200 / 255f, f[3 * 8 + 5]);
        assertEquals(50 / 255f, f[128 + 7]);
        f = readAll(train, 3);
        assertEquals(1f, f[4 * 8 + 3]);
        assertEquals(0f, f[64 + 4 * 8 + 3]);
        assertEquals(0x56 / 255f, readAll(test, 0)[128]);
        assertTrue(train.describe().contains("first 90% of 13 files"), train.describe());
    }

    @Test
    void folderTransformResizesShorterSideThenCropsLikeTorchvision() throws Exception {
        // 40 wide x 20 high, R = 6x, G = 12y, B = 255 - 6x; Resize(10) -> 20x10, CenterCrop(10) at left 5.
        Path d = tmp.resolve("train");
        writePng(d.resolve("x.png"), rgb(40, 20, (x, y) -> (6 * x) << 16 | (12 * y) << 8 | (255 - 6 * x)));
        Files.createDirectories(tmp.resolve("test"));
        writePng(tmp.resolve("test/y.png"), rgb(40, 20, (x, y) -> 0));
        ImageDataset ds = Datasets.open("FOLDER", tmp, true, 10);
        assertEquals(1, ds.size());
        float[] f = readAll(ds, 0);
        // Pillow + torchvision: img.resize((20, 10), BILINEAR).crop((5, 0, 15, 10))
        int[] rRow3 = {63, 75, 87, 99, 111, 123, 135, 147, 159, 171};
        int[] gCol0 = {9, 30, 54, 78, 102, 126, 150, 174, 198, 219};
        for (int i = 0; i < 10; i++) {
            assertEquals(rRow3[i] / 255f, f[3 * 10 + i], "R row 3 x " + i);
            assertEquals(gCol0[i] / 255f, f[100 + i * 10], "G col 0 y " + i);
        }
        assertEquals(1, Datasets.open("FOLDER", tmp, false, 10).size());
    }

    /** 178x218 like aligned CelebA: R = x, G = y, B = (x + 2y) mod 256. */
    static BufferedImage celebaPattern() {
        return rgb(178, 218, (x, y) -> x << 16 | y << 8 | ((x + 2 * y) % 256));
    }

    @Test
    void celebaCentreCropAndResize() throws Exception {
        Path d = tmp.resolve("img_align_celeba");
        writePng(d.resolve("000001.png"), celebaPattern());
        writePng(d.resolve("000002.png"), rgb(178, 218, (x, y) -> 0x808080));
        writePng(d.resolve("000003.png"), rgb(178, 218, (x, y) -> 0x404040));
        Files.writeString(tmp.resolve("list_eval_partition.txt"), "000001.png 0\n000002.png 1\n000003.png 2\n");
        ImageDataset crop = Datasets.open("CELEBA", tmp, true, 140);
        assertEquals(1, crop.size());
        float[] f = readAll(crop, 0);
        // CenterCrop(140) of 178x218 starts at x = 19, y = 39
        assertEquals(19 / 255f, f[0]);
        assertEquals((19 + 139) / 255f, f[139]);
        assertEquals(39 / 255f, f[140 * 140]);
        assertEquals((39 + 10) / 255f, f[140 * 140 + 10 * 140 + 7]);
        ImageDataset ds = Datasets.open("celeba", tmp, true, 32);
        f = readAll(ds, 0);
        // Pillow: img.crop((19, 39, 159, 179)).resize((32, 32), BILINEAR)
        int[] rRow0 = {21, 25, 29, 34, 38, 43, 47, 51, 56, 60, 64, 69, 73, 78, 82, 86, 91, 95, 99, 104, 108, 113, 117,
            121, 126, 130, 134, 139, 143, 148, 152, 156};
        int[] gCol0 = {41, 45, 49, 54, 58, 63, 67, 71, 76, 80, 84, 89, 93, 98, 102, 106, 111, 115, 119, 124, 128, 133,
            137, 141, 146, 150, 154, 159, 163, 168, 172, 176};
        int[] bDiag = {103, 115, 128, 142, 154, 168, 181, 194, 207, 220, 233, 245, 45, 17, 30, 43, 56, 69, 82, 96, 108,
            122, 135, 148, 161, 174, 187, 201, 213, 227, 240, 217};
        for (int i = 0; i < 32; i++) {
            assertEquals(rRow0[i] / 255f, f[i], "R row 0 x " + i);
            assertEquals(gCol0[i] / 255f, f[1024 + 32 * i], "G col 0 y " + i);
            assertEquals(bDiag[i] / 255f, f[2048 + 33 * i], "B diagonal " + i);
        }
        ImageDataset test = Datasets.open("CELEBA", tmp, false, 32);
        assertEquals(1, test.size());
        assertEquals(0x40 / 255f, readAll(test, 0)[500]);
        assertTrue(test.describe().contains("list_eval_partition.txt"), test.describe());
    }

    @Test
    void celebaWithoutPartitionFileUsesLastTenPercent() throws Exception {
        for (int i = 0; i < 20; i++) writePng(tmp.resolve(String.format("%06d.png", i)), rgb(150, 150, (x, y) -> 0));
        assertEquals(18, Datasets.open("CELEBA", tmp, true, 8).size());
        ImageDataset test = Datasets.open("CELEBA", tmp, false, 8);
        assertEquals(2, test.size());
        assertEquals(tmp.resolve("000018.png"), ((FolderImages) test).file(0));
        // images smaller than the 140 crop are rejected with their size
        writePng(tmp.resolve("000100.png"), rgb(100, 120, (x, y) -> 0));
        String m = message(assertThrows(DataException.class, () -> Datasets.open("CELEBA", tmp, false, 8)));
        assertTrue(m.contains("000100.png") && m.contains("100x120") && m.contains("140x140"), m);
    }

    @Test
    void celebaPartitionMismatch() throws Exception {
        writePng(tmp.resolve("img_align_celeba/000001.jpg"), rgb(150, 150, (x, y) -> 0)); // PNG bytes, .jpg name
        Files.writeString(tmp.resolve("list_eval_partition.txt"), "000001.jpg 0\n000009.jpg 0\n");
        String m = message(assertThrows(DataException.class, () -> Datasets.open("CELEBA", tmp, true, 8)));
        assertTrue(m.contains("list_eval_partition.txt") && m.contains("000009.jpg") && m.contains("1 images"), m);
    }

    @Test
    void emptyFolderAndUndecodableImage() throws Exception {
        Files.createDirectories(tmp.resolve("empty"));
        Files.writeString(tmp.resolve("empty/readme.txt"), "x");
        String m = message(assertThrows(DataException.class, () -> Datasets.open("FOLDER", tmp.resolve("empty"), true, 8)));
        assertTrue(m.contains("empty folder") && m.contains(tmp.resolve("empty").toString()), m);
        Path d = tmp.resolve("bad");
        writePng(d.resolve("a.png"), rgb(8, 8, (x, y) -> 0));
        write(d.resolve("b.png"), "definitely not a png".getBytes());
        m = message(assertThrows(DataException.class, () -> Datasets.open("FOLDER", d, true, 8)));
        assertTrue(m.contains("b.png") && m.contains("undecodable"), m);
        // a PNG cut in half
        byte[] png = Files.readAllBytes(d.resolve("a.png"));
        write(d.resolve("b.png"), Arrays.copyOf(png, png.length / 2));
        m = message(assertThrows(DataException.class, () -> Datasets.open("FOLDER", d, true, 8)));
        assertTrue(m.contains("b.png") && m.contains("undecodable"), m);
    }

    @Test
    void lazyFolderReportsUndecodableImageOnRead() throws Exception {
        Path d = tmp.resolve("lazy");
        for (int i = 0; i < 5; i++) writePng(d.resolve("a" + i + ".png"), rgb(8, 8, (x, y) -> 0x010203 * (x + 1)));
        write(d.resolve("a5.png"), "junk".getBytes());
        int old = FolderImages.eagerMax;
        FolderImages.eagerMax = 2;
        try {
            ImageDataset ds = Datasets.open("FOLDER", d, true, 8); // 6 files, 90% -> all 6 for train
            assertTrue(ds.describe().contains("lazily"), ds.describe());
            assertEquals(4 / 255f, readAll(ds, 0)[64 + 1]); // G of 0x020406 at x = 1
            DataException.Unchecked e = assertThrows(DataException.Unchecked.class, () -> readAll(ds, 5));
            assertTrue(e.getMessage().contains("a5.png") && e.getMessage().contains("undecodable"), e.getMessage());
            assertTrue(e.data().getMessage().contains("a5.png"));
        } finally {
            FolderImages.eagerMax = old;
        }
    }

    @Test
    void realFashionMnistTestSplit() throws Exception {
        Path root = Datasets.FASHION_MNIST_DEFAULT;
        if (!Files.isRegularFile(root.resolve("t10k-images-idx3-ubyte.gz")))
            System.out.println("DatasetsTest.realFashionMnistTestSplit SKIPPED: " + root
                    + " has no t10k-images-idx3-ubyte.gz (apt-get install dataset-fashion-mnist)");
        Assumptions.assumeTrue(Files.isRegularFile(root.resolve("t10k-images-idx3-ubyte.gz")),
                "Fashion-MNIST not installed in " + root);
        ImageDataset ds = Datasets.open("FashionMNIST", null, false, 28);
        assertEquals(10000, ds.size());
        assertEquals(28, ds.height());
        double sum = 0;
        float[] f = new float[784];
        for (int i = 0; i < ds.size(); i++) {
            ds.read(i, f, 0);
            for (float v : f) sum += v;
        }
        double mean = sum / (784.0 * ds.size());
        // numpy on the same file: mean of uint8 / 255 over the test split = 0.28684928 (train: 0.28604060)
        assertEquals(0.28684928, mean, 1e-6, "mean pixel of the Fashion-MNIST test split");
        System.out.println("DatasetsTest: " + ds.describe());
    }
}
