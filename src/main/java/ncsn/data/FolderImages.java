package ncsn.data;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * A list of PNG/JPEG files, decoded to RGB and transformed to [3, size, size] bytes on demand.
 *
 * <p>Transforms (torchvision on a PIL image, see {@link PilResize} for the resampling):
 * <ul>
 *   <li>{@link Transform#CELEBA}: CenterCrop(140), then Resize(size) (the 140x140 square goes to
 *       size x size). Images smaller than 140 on a side are rejected (aligned CelebA is 178x218).</li>
 *   <li>{@link Transform#FOLDER}: Resize(size) (shorter side to size, aspect kept), then
 *       CenterCrop(size).</li>
 * </ul>
 *
 * <p>Decoding: folders of at most {@link #EAGER_MAX} images are decoded when opened (in parallel),
 * so a bad file fails {@link Datasets#open}. Larger folders (CelebA: 162770 training images) are
 * decoded lazily on {@link #read}; the transformed bytes (3 * size^2 each, 3 KiB at 32x32) are kept
 * in a cache bounded by the system property {@code ncsn.data.cacheMB} (default 512 MiB). The cache
 * keeps the first images it sees and never evicts: access is uniformly random every epoch, so no
 * eviction policy would hit more often. A file that fails to decode lazily throws
 * {@link DataException.Unchecked} from read, naming the file.
 */
final class FolderImages implements ImageDataset {
    enum Transform { CELEBA, FOLDER }

    static final int EAGER_MAX = 4096;
    /** Folders up to this many images are decoded when opened ({@link #EAGER_MAX}; tests lower it). */
    static volatile int eagerMax = EAGER_MAX;
    static final int CELEBA_CROP = 140;

    private final List<Path> files;
    private final Transform transform;
    private final int size, chw;
    private final String description;
    private final AtomicReferenceArray<byte[]> cache;
    private final AtomicLong cachedBytes = new AtomicLong();
    private final long cacheLimit;

    FolderImages(List<Path> files, Transform transform, int size, String description) throws DataException {
        this.files = List.copyOf(files);
        this.transform = transform;
        this.size = size;
        this.chw = 3 * size * size;
        this.cache = new AtomicReferenceArray<>(files.size());
        long mb = Long.getLong("ncsn.data.cacheMB", 512);
        boolean eager = files.size() <= eagerMax;
        // Eager folders are cached whole whatever the limit (at most 4096 images).
        this.cacheLimit = eager ? Long.MAX_VALUE : Math.max(0, mb) << 20;
        this.description = description + (eager ? ", decoded when opened" : ", decoded lazily, cache "
                + (cacheLimit >> 20) + " MiB = " + Math.min(files.size(), cacheLimit / chw) + " images");
        if (eager) decodeAll();
    }

    private void decodeAll() throws DataException {
        AtomicReference<DataException> first = new AtomicReference<>();
        ncsn.cpu.Parallel.forRange(files.size(), 8, (lo, hi) -> {
            for (int i = lo; i < hi && first.get() == null; i++) {
                try {
                    cache.set(i, load(i));
                } catch (DataException e) {
                    first.compareAndSet(null, e);
                }
            }
        });
        if (first.get() != null) throw first.get();
        cachedBytes.set((long) files.size() * chw);
    }

    /** Decodes and transforms file i to [3, size, size] bytes. */
    byte[] load(int i) throws DataException {
        Path f = files.get(i);
        Images.Rgb img = Images.decode(f);
        int h = img.h(), w = img.w();
        byte[] px = img.rgb();
        if (transform == Transform.CELEBA) {
            if (h < CELEBA_CROP || w < CELEBA_CROP)
                throw DataException.at(f, "wrong dimensions: image is " + w + "x" + h + ", smaller than the "
                        + CELEBA_CROP + "x" + CELEBA_CROP + " centre crop of the CelebA transform (aligned CelebA "
                        + "images are 178x218)");
            px = Images.centerCrop(px, 3, h, w, CELEBA_CROP, CELEBA_CROP);
            return PilResize.resize(px, 3, CELEBA_CROP, CELEBA_CROP, size, size);
        }
        int[] d = Images.resizeShorterDims(h, w, size);
        px = PilResize.resize(px, 3, h, w, d[0], d[1]);
        return Images.centerCrop(px, 3, d[0], d[1], size, size);
    }

    private byte[] bytes(int i) {
        byte[] b = cache.get(i);
        if (b != null) return b;
        try {
            b = load(i);
        } catch (DataException e) {
            throw new DataException.Unchecked(e);
        }
        // Reserve room first, give it back if over the limit or another thread cached it first.
        if (cachedBytes.addAndGet(chw) > cacheLimit || !cache.compareAndSet(i, null, b)) cachedBytes.addAndGet(-chw);
        return b;
    }

    Path file(int i) {
        return files.get(i);
    }

    @Override
    public int size() {
        return files.size();
    }

    @Override
    public int channels() {
        return 3;
    }

    @Override
    public int height() {
        return size;
    }

    @Override
    public int width() {
        return size;
    }

    @Override
    public void read(int index, float[] dst, int offset) {
        if (index < 0 || index >= files.size())
            throw new IndexOutOfBoundsException("image " + index + " of " + files.size() + " (" + description + ")");
        byte[] b = bytes(index);
        for (int j = 0; j < chw; j++) dst[offset + j] = (b[j] & 0xFF) / 255f;
    }

    @Override
    public String describe() {
        return description;
    }
}
