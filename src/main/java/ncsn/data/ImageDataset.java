package ncsn.data;

/**
 * A fixed, indexable set of images of one shape [C, H, W], already transformed (cropped, resized)
 * to the size the model trains on. Implementations are safe for concurrent {@link #read} calls
 * (the {@link BatchLoader} reads from background threads).
 */
public interface ImageDataset {
    /** Number of images. */
    int size();

    int channels();

    int height();

    int width();

    /**
     * Writes image {@code index} into dst[offset .. offset + C*H*W) in CHW order, each value the
     * 8-bit pixel divided by 255 in float32 (exactly what torchvision's ToTensor produces), so in
     * [0, 1]. A lazily decoded image that turns out to be undecodable throws
     * {@link DataException.Unchecked} naming the file.
     */
    void read(int index, float[] dst, int offset);

    /** One line: kind, where it came from, split, count and shape, the transform applied. */
    String describe();
}
