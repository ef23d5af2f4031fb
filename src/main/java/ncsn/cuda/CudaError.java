package ncsn.cuda;

/**
 * A CUDA failure turned into one readable paragraph: which call failed, the CUDA error name
 * ({@code CUDA_ERROR_OUT_OF_MEMORY}, ...) and what to do about it. Thrown instead of JCuda's own
 * {@code jcuda.CudaException}, and also when CUDA is requested on a machine that cannot run it
 * (error name {@code "UNAVAILABLE"}, message carrying {@link CudaProbe#reason()}).
 *
 * <p>Holds no JCuda types, so callers may catch it on any machine.
 */
public final class CudaError extends RuntimeException {
    /** Error name used when there is no usable GPU/driver at all. */
    public static final String UNAVAILABLE = "UNAVAILABLE";

    private final String errorName;

    public CudaError(String errorName, String message) {
        super(message);
        this.errorName = errorName;
    }

    /** The CUDA error name, e.g. {@code CUDA_ERROR_OUT_OF_MEMORY}, or {@link #UNAVAILABLE}. */
    public String errorName() {
        return errorName;
    }

    /** "CUDA requested but unavailable: reason" (the probe's reason, never empty). */
    static CudaError unavailable(String reason) {
        return new CudaError(UNAVAILABLE, "CUDA requested but unavailable on this machine: " + reason
                + ". Use the CPU backend (device 'cpu' or 'auto'), or run on a machine with an NVIDIA GPU and driver.");
    }

    /** The message for a failed driver call {@code call} that returned {@code name}. */
    static CudaError of(String call, String name) {
        return new CudaError(name, "CUDA error in " + call + ": " + name + hint(name));
    }

    /** A short suggestion per error family; empty for the rest. */
    static String hint(String name) {
        switch (name) {
            case "CUDA_ERROR_OUT_OF_MEMORY":
                return " (device memory exhausted: lower the batch size or the model width, or free other GPU processes)";
            case "CUDA_ERROR_NO_BINARY_FOR_GPU":
            case "CUDA_ERROR_UNSUPPORTED_PTX_VERSION":
            case "CUDA_ERROR_INVALID_PTX":
            case "CUDA_ERROR_INVALID_IMAGE":
                return " (the kernel fatbin has SASS for sm_75/80/86/89/90 and compute_90 PTX of ISA 9.0;"
                        + " other GPUs need the PTX JIT of an R580+ (CUDA 13) driver: update the driver or"
                        + " rebuild the kernels with kernels.mk for this GPU)";
            case "CUDA_ERROR_ILLEGAL_ADDRESS":
            case "CUDA_ERROR_LAUNCH_FAILED":
            case "CUDA_ERROR_ILLEGAL_INSTRUCTION":
            case "CUDA_ERROR_MISALIGNED_ADDRESS":
                return " (a kernel faulted; the CUDA context is unusable from now on, restart the process;"
                        + " -Dncsn.cuda.sync=true synchronises after every launch to name the kernel)";
            case "CUDA_ERROR_INVALID_VALUE":
                return " (an argument was out of range: a bug in the launcher, please report it)";
            default:
                return "";
        }
    }
}
