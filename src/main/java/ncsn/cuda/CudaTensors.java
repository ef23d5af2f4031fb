package ncsn.cuda;

import ncsn.tensor.DType;
import ncsn.tensor.Device;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;

/**
 * CUDA-side shorthands over the device-aware {@link Tensor} API (float32 only on the GPU), and the
 * one check every launcher uses: {@link #storage}. Copies themselves live in {@link CudaBackend}.
 */
public final class CudaTensors {
    private CudaTensors() {}

    /** An uninitialised float32 CUDA tensor; scope-owned when a scope is open. */
    public static Tensor empty(int... shape) {
        return Tensor.empty(Device.CUDA, DType.F32, shape);
    }

    /** Returns {@code t} itself when already on {@code device}, else a copy there (float32 on CUDA). */
    public static Tensor to(Tensor t, Device device) {
        return t.device() == device ? t : t.to(device);
    }

    /** A float32 CUDA copy of a CPU tensor (a float64 tensor is converted to float32 first). */
    public static Tensor toDevice(Tensor cpu) {
        cpu.requireLive("toDevice");
        if (cpu.device() != Device.CPU) throw new TensorException("toDevice: " + cpu.describe() + " is already on " + cpu.device());
        return cpu.to(Device.CUDA);
    }

    /** A float32 CPU copy of a CUDA tensor (waits for pending kernels; reports their faults). */
    public static Tensor toHost(Tensor gpu) {
        storage("toHost", gpu);
        return gpu.to(Device.CPU);
    }

    /** The live CUDA storage of {@code t}, or a {@link TensorException} naming {@code op}. */
    static CudaStorage storage(String op, Tensor t) {
        t.requireLive(op);
        if (!(t.storage() instanceof CudaStorage st))
            throw new TensorException(op + ": " + t.describe() + " is on " + t.device() + ", expected a CUDA tensor");
        return st;
    }
}
