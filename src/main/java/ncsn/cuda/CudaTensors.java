package ncsn.cuda;

import jcuda.Pointer;
import jcuda.driver.JCudaDriver;
import ncsn.tensor.DType;
import ncsn.tensor.Device;
import ncsn.tensor.Scope;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;

/**
 * Creating CUDA tensors and moving tensors between the CPU and the GPU (float32 only on the GPU).
 * Like CPU tensors, a CUDA tensor made while a {@link Scope} is open belongs to it and is freed
 * (its block back to the {@link DeviceAllocator}) when the scope closes.
 *
 * <p>Moving is one call each way: {@link #to(Tensor, Device)}, {@link #toDevice}, {@link #toHost}.
 * The copies are synchronous ({@code cuMemcpyHtoD}/{@code DtoH} from/into the Java array), so
 * the host array may be reused as soon as the call returns. They are not recorded in autograd.
 */
public final class CudaTensors {
    private CudaTensors() {}

    /** An uninitialised float32 CUDA tensor; scope-owned when a scope is open. */
    public static Tensor empty(int... shape) {
        return allocate(shape, Scope.active());
    }

    /** A float32 CUDA tensor that no scope owns (parameters, optimizer state). Contents uninitialised. */
    public static Tensor persistent(int... shape) {
        return allocate(shape, false);
    }

    public static Tensor emptyLike(Tensor t) {
        return empty(t.shape());
    }

    private static Tensor allocate(int[] shape, boolean scopeOwned) {
        long n = 1;
        for (int d : shape) {
            if (d < 0) throw new TensorException("CUDA tensor: shape " + java.util.Arrays.toString(shape) + " has a negative size");
            n *= d;
            if (n > Integer.MAX_VALUE - 16)
                throw new TensorException("CUDA tensor: shape " + java.util.Arrays.toString(shape) + " has more than 2^31 elements");
        }
        CudaStorage st = new CudaStorage(CudaContext.get().allocator(), (int) n, scopeOwned);
        return Tensor.ofStorage(st, scopeOwned, shape);
    }

    /** Returns {@code t} itself when already on {@code device}, else a copy there (float32 on CUDA). */
    public static Tensor to(Tensor t, Device device) {
        if (t.device() == device) return t;
        return device == Device.CUDA ? toDevice(t) : toHost(t);
    }

    /** A float32 CUDA copy of a CPU tensor (a float64 tensor is converted to float32 first). */
    public static Tensor toDevice(Tensor cpu) {
        cpu.requireLive("toDevice");
        if (cpu.device() != Device.CPU) throw new TensorException("toDevice: " + cpu.describe() + " is already on " + cpu.device());
        Tensor src = cpu.dtype() == DType.F32 ? cpu : cpu.to(DType.F32);
        Tensor out = empty(cpu.shape());
        copyHostToDevice(src.f32(), out);
        if (src != cpu) src.free();
        return out;
    }

    /** A float32 CPU copy of a CUDA tensor (waits for pending kernels; reports their faults). */
    public static Tensor toHost(Tensor gpu) {
        storage("toHost", gpu);
        Tensor out = Tensor.empty(DType.F32, gpu.shape());
        copyDeviceToHost(gpu, out.f32());
        return out;
    }

    /** Copies {@code src} (length == numel) into the CUDA tensor {@code dst}. */
    public static void copyHostToDevice(float[] src, Tensor dst) {
        CudaStorage st = storage("copyHostToDevice", dst);
        TensorException.check(src.length == dst.numel(), "copyHostToDevice",
                "array of length " + src.length + " does not fill " + dst.describe());
        if (src.length == 0) return;
        CudaContext.check("cuMemcpyHtoD(" + 4L * src.length + " bytes)",
                () -> JCudaDriver.cuMemcpyHtoD(st.pointer("copyHostToDevice"), Pointer.to(src), 4L * src.length));
    }

    /** Copies the CUDA tensor {@code src} into {@code dst} (length == numel), after the stream's pending work. */
    public static void copyDeviceToHost(Tensor src, float[] dst) {
        CudaStorage st = storage("copyDeviceToHost", src);
        TensorException.check(dst.length == src.numel(), "copyDeviceToHost",
                "array of length " + dst.length + " does not match " + src.describe());
        CudaContext ctx = CudaContext.get();
        ctx.synchronize(); // surfaces a faulted kernel as its own error, before the copy
        if (dst.length == 0) return;
        CudaContext.check("cuMemcpyDtoH(" + 4L * dst.length + " bytes)",
                () -> JCudaDriver.cuMemcpyDtoH(Pointer.to(dst), st.pointer("copyDeviceToHost"), 4L * dst.length));
    }

    /** The live CUDA storage of {@code t}, or a {@link TensorException} naming {@code op}. */
    static CudaStorage storage(String op, Tensor t) {
        t.requireLive(op);
        if (!(t.storage() instanceof CudaStorage st))
            throw new TensorException(op + ": " + t.describe() + " is on " + t.device() + ", expected a CUDA tensor");
        return st;
    }
}
