package ncsn.tensor;

/**
 * The few primitives the tensor core and autograd need from a non-CPU device: allocation, fills,
 * copies and in-place accumulation. Everything else (the ops) dispatches on {@link Tensor#device()}
 * inside each op class. The CUDA implementation is {@code ncsn.cuda.CudaBackend}, loaded by name on
 * first use so that this package never links against JCuda.
 */
public interface DeviceBackend {
    /** A new storage of {@code length} elements; zero-filled when {@code zero}; pooled (scope-owned) when {@code scopeOwned}. */
    Storage allocate(DType dtype, int length, boolean scopeOwned, boolean zero);

    /** dst = src (same numel); at least one of them lives on this backend's device, the other may be on the CPU. */
    void copy(Tensor src, Tensor dst);

    /** acc += g, both on this device, same numel. */
    void addInto(Tensor acc, Tensor g);

    /** Every element of {@code t} (on this device) set to {@code v}. */
    void fill(Tensor t, double v);

    /** The backend for {@code device} (not the CPU), created on first use. */
    static DeviceBackend of(Device device) {
        if (device != Device.CUDA) throw new TensorException("no device backend for " + device);
        return Holder.CUDA;
    }

    /** Lazy holder: the CUDA class is loaded (and the GPU probed) only when a CUDA tensor is first made. */
    final class Holder {
        private Holder() {}

        static final DeviceBackend CUDA = load("ncsn.cuda.CudaBackend");

        private static DeviceBackend load(String cls) {
            try {
                return (DeviceBackend) Class.forName(cls).getDeclaredConstructor().newInstance();
            } catch (ReflectiveOperationException e) {
                throw new TensorException("cannot load the device backend " + cls + ": " + e);
            }
        }
    }
}
