package ncsn.data;

/**
 * An in-memory data set of 8-bit images: {@code pixels} holds n images of [c, h, w] bytes back to
 * back (CHW, unsigned). Used for MNIST / Fashion-MNIST (IDX files) and CIFAR-10 (binary batches),
 * which are small enough to keep decoded: 60000 x 784 = 47 MB, 50000 x 3072 = 154 MB.
 */
final class ByteImages implements ImageDataset {
    private final byte[] pixels;
    private final int n, c, h, w, chw;
    private final String description;

    ByteImages(byte[] pixels, int n, int c, int h, int w, String description) {
        if ((long) n * c * h * w != pixels.length)
            throw new IllegalArgumentException("ByteImages: " + pixels.length + " bytes for " + n + " images of "
                    + c + "x" + h + "x" + w);
        this.pixels = pixels;
        this.n = n;
        this.c = c;
        this.h = h;
        this.w = w;
        this.chw = c * h * w;
        this.description = description;
    }

    /**
     * Resizes every image to size x size with {@link PilResize} (what torchvision's Resize(size)
     * does to a PIL image: for the square inputs here the shorter side is either side). Returns
     * this when the size already matches.
     */
    ByteImages resized(int size, String description) {
        if (h == size && w == size) return new ByteImages(pixels, n, c, h, w, description);
        int out = c * size * size;
        byte[] dst = new byte[n * out];
        PilResize.Plan plan = new PilResize.Plan(h, w, size, size);
        ncsn.cpu.Parallel.forRange(n, 256, (lo, hi) -> {
            byte[] one = new byte[chw];
            for (int i = lo; i < hi; i++) {
                System.arraycopy(pixels, i * chw, one, 0, chw);
                System.arraycopy(plan.apply(one, c), 0, dst, i * out, out);
            }
        });
        return new ByteImages(dst, n, c, size, size, description);
    }

    /** The raw bytes of image i (a copy), [c, h, w]. */
    byte[] bytes(int i) {
        byte[] b = new byte[chw];
        System.arraycopy(pixels, i * chw, b, 0, chw);
        return b;
    }

    @Override
    public int size() {
        return n;
    }

    @Override
    public int channels() {
        return c;
    }

    @Override
    public int height() {
        return h;
    }

    @Override
    public int width() {
        return w;
    }

    @Override
    public void read(int index, float[] dst, int offset) {
        if (index < 0 || index >= n)
            throw new IndexOutOfBoundsException("image " + index + " of " + n + " (" + description + ")");
        int base = index * chw;
        // float32 division by 255, as torchvision's ToTensor does (byte -> float -> div(255)).
        for (int j = 0; j < chw; j++) dst[offset + j] = (pixels[base + j] & 0xFF) / 255f;
    }

    @Override
    public String describe() {
        return description;
    }
}
