package ncsn.tensor;

/** Element type of a tensor's storage. float64 is the reference path; float32 the fast one. */
public enum DType {
    F32("float32", 4),
    F64("float64", 8);

    private final String label;
    private final int bytes;

    DType(String label, int bytes) {
        this.label = label;
        this.bytes = bytes;
    }

    public int bytes() {
        return bytes;
    }

    @Override
    public String toString() {
        return label;
    }
}
