package ncsn.cuda;

import jcuda.driver.CUdeviceptr;
import ncsn.tensor.DType;
import ncsn.tensor.Device;
import ncsn.tensor.Storage;
import ncsn.tensor.TensorException;

/**
 * float32 device memory behind one or more CUDA tensors: a block of the {@link DeviceAllocator}.
 * Freeing (directly, or by the {@link ncsn.tensor.Scope} that owns it closing) returns the block
 * to the allocator's cache, so a training step's intermediates are recycled deterministically at
 * the end of the step, never by the garbage collector. Any use after that fails with a
 * {@link TensorException} naming the operation.
 *
 * <p>A storage that is never freed (a persistent tensor dropped without {@code free()}) keeps its
 * block until the process ends: device memory is not tied to garbage collection.
 */
public final class CudaStorage extends Storage {
    private final DeviceAllocator allocator;
    private DeviceAllocator.Block block;
    private final int length;

    CudaStorage(DeviceAllocator allocator, int length, boolean scopeOwned) {
        super(scopeOwned);
        if (length < 0) throw new TensorException("CUDA storage: negative length " + length);
        this.allocator = allocator;
        this.length = length;
        this.block = allocator.allocate(4L * length);
    }

    @Override
    public Device device() {
        return Device.CUDA;
    }

    @Override
    public DType dtype() {
        return DType.F32;
    }

    @Override
    public int length() {
        return length;
    }

    /** Size in bytes of the data (4 x length; the block may be larger). */
    public long bytes() {
        return 4L * length;
    }

    /** The device pointer, for kernel arguments and copies. Throws if the storage was freed. */
    public CUdeviceptr pointer(String op) {
        if (isFreed() || block == null)
            throw new TensorException(op + ": CUDA storage of " + length + " floats was freed (its scope closed or free() was called)");
        return (CUdeviceptr) block.handle();
    }

    @Override
    protected void release() {
        DeviceAllocator.Block b = block;
        block = null;
        if (b != null) allocator.release(b);
    }
}
