package ncsn.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;

/**
 * Detects, once per JVM, whether a CUDA driver and at least one GPU are usable, and gives access
 * to the kernel fatbin built by {@code kernels.mk}.
 *
 * <p>This is the only class that may touch JCuda before the probe has succeeded. On a machine
 * without {@code libcuda.so.1}, the first touch of {@code jcuda.driver.JCudaDriver} throws
 * {@link UnsatisfiedLinkError} in its static initialiser and {@link NoClassDefFoundError} on every
 * later use; both are {@link LinkageError}s and are caught here. All JCuda references live in the
 * nested class {@link Driver}, which is loaded only inside the guarded call.
 *
 * <p>{@code -Dncsn.cuda=off} makes the probe report "disabled" without loading JCuda at all.
 */
public final class CudaProbe {

    /** Classpath resource written by kernels.mk; absent when the build had no nvcc. */
    public static final String FATBIN_RESOURCE = "ncsn/cuda/ncsn_kernels.fatbin";

    private static volatile Result result;

    private CudaProbe() {}

    /** True if the CUDA driver initialised and reports at least one device. Never throws. */
    public static boolean available() {
        return probe().available;
    }

    /**
     * Why the GPU is unavailable, e.g. "no CUDA driver: libcuda.so.1 not found"; when available,
     * a short description of the devices, e.g. "1 device: NVIDIA H100 80GB HBM3, driver CUDA 12.8".
     * Never empty.
     */
    public static String reason() {
        return probe().reason;
    }

    /** Number of CUDA devices, 0 when unavailable. */
    public static int deviceCount() {
        return probe().deviceCount;
    }

    /** True if the kernel fatbin resource is on the classpath (the build found nvcc). */
    public static boolean fatbinPresent() {
        return CudaProbe.class.getClassLoader().getResource(FATBIN_RESOURCE) != null;
    }

    /**
     * The kernel fatbin bytes, for {@code cuModuleLoadData}.
     *
     * @throws IllegalStateException if the jar was built without nvcc
     */
    public static byte[] fatbin() {
        try (InputStream in = CudaProbe.class.getClassLoader().getResourceAsStream(FATBIN_RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("resource " + FATBIN_RESOURCE + " not on the classpath:"
                        + " this build had no nvcc (rebuild with nvcc on PATH, see README 'Building the CUDA kernels')");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + FATBIN_RESOURCE, e);
        }
    }

    private static Result probe() {
        Result r = result;
        if (r == null) {
            synchronized (CudaProbe.class) {
                r = result;
                if (r == null) {
                    r = doProbe();
                    result = r;
                }
            }
        }
        return r;
    }

    private static Result doProbe() {
        String setting = System.getProperty("ncsn.cuda", "");
        if (setting.equalsIgnoreCase("off") || setting.equalsIgnoreCase("false")) {
            return Result.unavailable("disabled by -Dncsn.cuda=" + setting);
        }
        try {
            return Driver.probe();
        } catch (UnsatisfiedLinkError e) {
            return Result.unavailable(describeLinkError(e));
        } catch (LinkageError e) {
            // NoClassDefFoundError (JCuda missing, or its class init failed earlier) and friends.
            return Result.unavailable("CUDA unusable (" + e + ")");
        } catch (RuntimeException e) {
            // jcuda.CudaException if exceptions were enabled elsewhere, or a native-library loader failure.
            return Result.unavailable("CUDA unusable (" + e + ")");
        }
    }

    private static String describeLinkError(UnsatisfiedLinkError e) {
        String msg = String.valueOf(e.getMessage());
        if (msg.contains("libcuda.so")) {
            return "no CUDA driver: libcuda.so.1 not found";
        }
        if (msg.contains("nvcuda.dll")) {
            return "no CUDA driver: nvcuda.dll not found";
        }
        return "JCuda native library failed to load (" + firstLine(msg) + ")";
    }

    private static String firstLine(String s) {
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    private static final class Result {
        final boolean available;
        final String reason;
        final int deviceCount;

        private Result(boolean available, String reason, int deviceCount) {
            this.available = available;
            this.reason = reason;
            this.deviceCount = deviceCount;
        }

        static Result unavailable(String reason) {
            return new Result(false, reason == null || reason.isBlank() ? "CUDA unavailable" : reason, 0);
        }
    }

    /** Every JCuda reference of the probe. Loaded only from the guarded {@link #doProbe()}. */
    private static final class Driver {
        static Result probe() {
            jcuda.driver.JCudaDriver.setExceptionsEnabled(false);
            int rc = jcuda.driver.JCudaDriver.cuInit(0);
            if (rc != jcuda.driver.CUresult.CUDA_SUCCESS) {
                return Result.unavailable(describe("cuInit", rc));
            }
            int[] count = {0};
            rc = jcuda.driver.JCudaDriver.cuDeviceGetCount(count);
            if (rc != jcuda.driver.CUresult.CUDA_SUCCESS) {
                return Result.unavailable(describe("cuDeviceGetCount", rc));
            }
            if (count[0] <= 0) {
                return Result.unavailable("CUDA driver present but no GPU device");
            }
            StringBuilder sb = new StringBuilder();
            sb.append(count[0]).append(count[0] == 1 ? " device: " : " devices: ");
            for (int i = 0; i < count[0]; i++) {
                jcuda.driver.CUdevice dev = new jcuda.driver.CUdevice();
                if (jcuda.driver.JCudaDriver.cuDeviceGet(dev, i) != jcuda.driver.CUresult.CUDA_SUCCESS) {
                    continue;
                }
                byte[] name = new byte[256];
                jcuda.driver.JCudaDriver.cuDeviceGetName(name, name.length, dev);
                int len = 0;
                while (len < name.length && name[len] != 0) {
                    len++;
                }
                int[] major = {0};
                int[] minor = {0};
                jcuda.driver.JCudaDriver.cuDeviceGetAttribute(major,
                        jcuda.driver.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
                jcuda.driver.JCudaDriver.cuDeviceGetAttribute(minor,
                        jcuda.driver.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
                if (i > 0) {
                    sb.append(", ");
                }
                sb.append(new String(name, 0, len, java.nio.charset.StandardCharsets.US_ASCII))
                        .append(" (sm_").append(major[0]).append(minor[0]).append(')');
            }
            int[] version = {0};
            if (jcuda.driver.JCudaDriver.cuDriverGetVersion(version) == jcuda.driver.CUresult.CUDA_SUCCESS) {
                sb.append(", driver CUDA ").append(version[0] / 1000).append('.').append(version[0] % 1000 / 10);
            }
            return new Result(true, sb.toString(), count[0]);
        }

        private static String describe(String call, int rc) {
            if (rc == jcuda.driver.CUresult.CUDA_ERROR_NO_DEVICE) {
                return "CUDA driver present but no GPU device (" + call + ": CUDA_ERROR_NO_DEVICE)";
            }
            return "CUDA driver error (" + call + ": " + jcuda.driver.CUresult.stringFor(rc) + ")";
        }
    }
}
