package ncsn.tensor;

/**
 * Where a tensor's storage lives. Only CPU storage exists so far; the CUDA backend adds its own
 * {@link Storage} subclass and a branch in each op's dispatch, nothing else.
 */
public enum Device {
    CPU,
    CUDA;

    @Override
    public String toString() {
        return name().toLowerCase();
    }
}
