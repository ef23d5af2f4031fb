package ncsn.data;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Stream;

/**
 * Opens the data sets the NCSN paper trains on, from files already on disk (nothing is downloaded).
 *
 * <table>
 *   <caption>names (case-insensitive; '_' and '-' ignored) and what root must hold</caption>
 *   <tr><td>MNIST, FashionMNIST (FASHION_MNIST)</td><td>{@code train-images-idx3-ubyte} /
 *       {@code t10k-images-idx3-ubyte}, raw or {@code .gz}, in root, root/raw or
 *       root/{MNIST,FashionMNIST}/raw. Root may be null for Fashion-MNIST: then
 *       /usr/share/datasets/fashion-mnist (Debian's {@code dataset-fashion-mnist}).
 *       1 channel; resized from 28 to imageSize when they differ.</td></tr>
 *   <tr><td>CIFAR10</td><td>{@code data_batch_1..5.bin} (train) / {@code test_batch.bin} (test) in root
 *       or root/cifar-10-batches-bin. 3 channels; resized from 32 when imageSize differs.</td></tr>
 *   <tr><td>CELEBA</td><td>JPEG/PNG files in root/img_align_celeba, root/celeba/img_align_celeba or root
 *       itself. Split: {@code list_eval_partition.txt} (or Kaggle's .csv) when present in root or
 *       root/celeba (0 = train, 2 = test; 1 = valid is unused, like the reference);
 *       otherwise the files sorted by name, the last 10% (n / 10, rounded down) being the test
 *       split. Transform: CenterCrop(140), Resize(imageSize).</td></tr>
 *   <tr><td>FOLDER</td><td>JPEG/PNG files in root/train and root/test when both exist, else in root
 *       split like CelebA without a partition file (last 10% sorted by name = test). Transform:
 *       Resize(imageSize) of the shorter side, CenterCrop(imageSize).</td></tr>
 * </table>
 * All resizing is Pillow's bilinear filter with antialiasing, reproduced exactly ({@link PilResize}).
 */
public final class Datasets {
    public static final Path FASHION_MNIST_DEFAULT = Path.of("/usr/share/datasets/fashion-mnist");
    private static final String NAMES = "MNIST, FashionMNIST, CIFAR10, CELEBA, FOLDER";
    private static final String FASHION_HINT = " Fashion-MNIST on Debian/Ubuntu: `apt-get install dataset-fashion-mnist`"
            + " installs it in " + FASHION_MNIST_DEFAULT + ".";

    private Datasets() {}

    /**
     * @param name      MNIST, FashionMNIST (FASHION_MNIST), CIFAR10, CELEBA or FOLDER, any case
     * @param root      the directory holding the files (see the class comment)
     * @param train     the training split, else the test split
     * @param imageSize output images are imageSize x imageSize
     */
    public static ImageDataset open(String name, Path root, boolean train, int imageSize) throws DataException {
        if (name == null) throw new DataException("data set name is missing; one of " + NAMES);
        String key = name.toUpperCase(Locale.ROOT).replace("_", "").replace("-", "");
        if (imageSize < 1 || imageSize > 4096)
            throw new DataException("data set " + name + ": image size must be in 1..4096, got " + imageSize);
        switch (key) {
            case "MNIST":
                return openIdx("MNIST", "MNIST", requireDir(root, name, ""), train, imageSize, "");
            case "FASHIONMNIST": {
                Path r = root == null ? FASHION_MNIST_DEFAULT : root;
                return openIdx("Fashion-MNIST", "FashionMNIST", requireDir(r, name, FASHION_HINT), train, imageSize,
                        FASHION_HINT);
            }
            case "CIFAR10":
                return openCifar(requireDir(root, name, ""), train, imageSize);
            case "CELEBA":
                return openCeleba(requireDir(root, name, ""), train, imageSize);
            case "FOLDER":
                return openFolder(requireDir(root, name, ""), train, imageSize);
            default:
                throw new DataException("unknown data set '" + name + "'; expected one of " + NAMES);
        }
    }

    private static Path requireDir(Path root, String name, String hint) throws DataException {
        if (root == null) throw new DataException("data set " + name + ": no data directory given." + hint);
        if (!Files.isDirectory(root))
            throw new DataException("data set " + name + ": data directory " + root
                    + (Files.exists(root) ? " is not a directory." : " does not exist.") + hint);
        return root;
    }

    // ---- MNIST / Fashion-MNIST ------------------------------------------------------------

    private static ImageDataset openIdx(String label, String torchName, Path root, boolean train, int size,
            String hint) throws DataException {
        String base = (train ? "train" : "t10k") + "-images-idx3-ubyte";
        List<Path> dirs = List.of(root, root.resolve("raw"), root.resolve(torchName).resolve("raw"));
        Path found = null;
        search:
        for (Path d : dirs)
            for (String f : new String[] {base, base + ".gz"})
                if (Files.isRegularFile(d.resolve(f))) {
                    found = d.resolve(f);
                    break search;
                }
        if (found == null) {
            StringBuilder where = new StringBuilder();
            for (Path d : dirs) where.append(where.length() == 0 ? "" : ", ").append(d);
            throw new DataException(label + " " + split(train) + " images not found: looked for " + base + " and "
                    + base + ".gz in " + where + "." + hint);
        }
        ByteImages raw = Idx.readImages(found, 28, 28, "");
        String desc = label + " " + split(train) + ": " + raw.size() + " images 1x" + size + "x" + size + " from " + found
                + (size == 28 ? "" : ", resized 28->" + size + " (Pillow bilinear)");
        return raw.resized(size, desc);
    }

    // ---- CIFAR-10 -------------------------------------------------------------------------

    private static ImageDataset openCifar(Path root, boolean train, int size) throws DataException {
        String[] names = Cifar10.files(train);
        Path dir = null;
        for (Path d : List.of(root, root.resolve(Cifar10.SUBDIR)))
            if (Files.isRegularFile(d.resolve(names[0]))) {
                dir = d;
                break;
            }
        if (dir == null)
            throw new DataException("CIFAR-10 " + split(train) + " batches not found: looked for " + names[0] + " in "
                    + root + " and " + root.resolve(Cifar10.SUBDIR) + " (the binary version, cifar-10-binary.tar.gz, "
                    + "unpacked).");
        List<byte[]> parts = new ArrayList<>();
        long total = 0;
        for (String n : names) {
            Path f = dir.resolve(n);
            if (!Files.isRegularFile(f))
                throw DataException.at(f, "missing: the CIFAR-10 " + split(train) + " split needs "
                        + String.join(", ", names) + " in " + dir);
            byte[] b = Cifar10.readBatch(f);
            parts.add(b);
            total += b.length;
        }
        byte[] all = new byte[Math.toIntExact(total)];
        int at = 0;
        for (byte[] b : parts) {
            System.arraycopy(b, 0, all, at, b.length);
            at += b.length;
        }
        int n = (int) (total / Cifar10.PIXELS);
        String desc = "CIFAR-10 " + split(train) + ": " + n + " images 3x" + size + "x" + size + " from " + dir
                + (size == 32 ? "" : ", resized 32->" + size + " (Pillow bilinear)");
        return new ByteImages(all, n, 3, 32, 32, desc).resized(size, desc);
    }

    // ---- CelebA and plain folders ---------------------------------------------------------

    static boolean isImage(Path p) {
        String n = p.getFileName().toString().toLowerCase(Locale.ROOT);
        return n.endsWith(".png") || n.endsWith(".jpg") || n.endsWith(".jpeg");
    }

    /** Image files directly in dir, sorted by file name. */
    static List<Path> listImages(Path dir) throws DataException {
        try (Stream<Path> s = Files.list(dir)) {
            List<Path> out = new ArrayList<>(s.filter(p -> isImage(p) && Files.isRegularFile(p)).toList());
            out.sort((a, b) -> a.getFileName().toString().compareTo(b.getFileName().toString()));
            return out;
        } catch (IOException e) {
            throw new DataException(dir + ": cannot list the folder: " + e, e);
        }
    }

    private static List<Path> nonEmpty(List<Path> files, Path dir) throws DataException {
        if (files.isEmpty())
            throw new DataException(dir + ": empty folder: no PNG or JPEG images (*.png, *.jpg, *.jpeg) in it");
        return files;
    }

    /** First 90% (train) or last n / 10 (test) of the sorted files. */
    private static List<Path> tailSplit(List<Path> all, Path dir, boolean train) throws DataException {
        int n = all.size(), nTest = n / 10;
        if (train) return all.subList(0, n - nTest);
        if (nTest == 0)
            throw new DataException(dir + ": only " + n + " images, so the test split (the last 10% by name) is "
                    + "empty; add images, or put the splits in train/ and test/ subfolders");
        return all.subList(n - nTest, n);
    }

    private static ImageDataset openCeleba(Path root, boolean train, int size) throws DataException {
        Path dir = root;
        for (Path d : List.of(root.resolve("img_align_celeba"), root.resolve("celeba").resolve("img_align_celeba")))
            if (Files.isDirectory(d)) {
                dir = d;
                break;
            }
        List<Path> all = nonEmpty(listImages(dir), dir);
        Path partition = null;
        List<Path> candidates = new ArrayList<>();
        for (Path d : List.of(root, root.resolve("celeba")))
            for (String f : new String[] {"list_eval_partition.txt", "list_eval_partition.csv"})
                candidates.add(d.resolve(f));
        for (Path p : candidates)
            if (Files.isRegularFile(p)) {
                partition = p;
                break;
            }
        List<Path> files;
        String how;
        if (partition != null) {
            files = partitionSplit(partition, dir, all, train);
            how = "split by " + partition + " (" + (train ? "0" : "2") + ")";
        } else {
            files = tailSplit(all, dir, train);
            how = "no list_eval_partition.txt: " + (train ? "first 90%" : "last 10%") + " of " + all.size()
                    + " files sorted by name";
        }
        String desc = "CelebA " + split(train) + ": " + files.size() + " images 3x" + size + "x" + size + " from " + dir
                + ", " + how + ", CenterCrop(140) + Resize(" + size + ", Pillow bilinear)";
        return new FolderImages(files, FolderImages.Transform.CELEBA, size, desc);
    }

    /** The files of partition 0 (train) or 2 (test) listed in a CelebA list_eval_partition file. */
    private static List<Path> partitionSplit(Path partition, Path dir, List<Path> all, boolean train)
            throws DataException {
        List<String> lines;
        try {
            lines = Files.readAllLines(partition);
        } catch (IOException e) {
            throw DataException.at(partition, "cannot read: " + e, e);
        }
        Set<String> present = new HashSet<>();
        for (Path p : all) present.add(p.getFileName().toString());
        int want = train ? 0 : 2, missing = 0;
        String firstMissing = null;
        List<Path> out = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i).trim();
            if (line.isEmpty()) continue;
            String[] f = line.split("[\\s,]+");
            int part;
            try {
                if (f.length != 2) throw new NumberFormatException();
                part = Integer.parseInt(f[1]);
            } catch (NumberFormatException e) {
                if (i == 0) continue; // a CSV header such as "image_id,partition"
                throw DataException.at(partition, "line " + (i + 1) + " is '" + line
                        + "', expected '<file name> <0|1|2>'");
            }
            if (part != want) continue;
            if (!present.contains(f[0])) {
                if (missing++ == 0) firstMissing = f[0];
                continue;
            }
            out.add(dir.resolve(f[0]));
        }
        if (missing > 0)
            throw DataException.at(partition, missing + " images of the " + split(train) + " split listed here are not in "
                    + dir + " (first: " + firstMissing + "); the partition file and the image folder do not match");
        if (out.isEmpty())
            throw DataException.at(partition, "lists no images of the " + split(train) + " split (partition " + want + ")");
        return out;
    }

    private static ImageDataset openFolder(Path root, boolean train, int size) throws DataException {
        Path trainDir = root.resolve("train"), testDir = root.resolve("test");
        List<Path> files;
        String how;
        Path dir;
        if (Files.isDirectory(trainDir) && Files.isDirectory(testDir)) {
            dir = train ? trainDir : testDir;
            files = nonEmpty(listImages(dir), dir);
            how = "all files in " + dir;
        } else {
            dir = root;
            List<Path> all = nonEmpty(listImages(root), root);
            files = tailSplit(all, root, train);
            how = (train ? "first 90%" : "last 10%") + " of " + all.size() + " files sorted by name";
        }
        String desc = "image folder " + split(train) + ": " + files.size() + " images 3x" + size + "x" + size + " from "
                + dir + ", " + how + ", Resize(" + size + ", Pillow bilinear) + CenterCrop(" + size + ")";
        return new FolderImages(files, FolderImages.Transform.FOLDER, size, desc);
    }

    private static String split(boolean train) {
        return train ? "train" : "test";
    }
}
