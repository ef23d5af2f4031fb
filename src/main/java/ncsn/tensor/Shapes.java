package ncsn.tensor;

/** Index arithmetic on contiguous row-major shapes. */
public final class Shapes {
    private Shapes() {}

    /** The multi-index of flat position {@code flat} in a contiguous tensor of {@code shape}. */
    public static int[] unravel(int flat, int[] shape) {
        int[] idx = new int[shape.length];
        for (int d = shape.length - 1; d >= 0; d--) {
            idx[d] = flat % shape[d];
            flat /= shape[d];
        }
        return idx;
    }
}
