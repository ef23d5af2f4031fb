package ncsn.cuda;

import java.util.HashMap;
import java.util.Map;
import java.util.function.IntSupplier;
import java.util.logging.Logger;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.CUresult;
import jcuda.driver.CUstream;
import jcuda.driver.JCudaDriver;
import ncsn.tensor.Device;

/**
 * The CUDA backend's driver-API state, in one place (the jcuda-samples sequence): cuInit, device
 * selection ({@code -Dncsn.cuda.device=N}, default 0), the device's primary context made current
 * on each calling thread, one blocking stream, the kernel module loaded once from the fatbin that
 * kernels.mk builds ({@code cuModuleLoadData}, no run-time compilation), a cache of kernel
 * functions by name, a launch helper, event timing, and the {@link DeviceAllocator}.
 *
 * <p><b>Guard.</b> {@link #get()} consults {@link CudaProbe} first and throws a {@link CudaError}
 * naming the probe's reason when there is no usable GPU; no {@code JCudaDriver} method is called
 * before the probe has succeeded, so a machine without {@code libcuda.so.1} gets a message, never
 * a linkage error or a JVM crash.
 *
 * <p><b>Errors.</b> JCuda exceptions are switched on ({@code setExceptionsEnabled(true)}) and every
 * call goes through {@link #check}, which turns both {@code jcuda.CudaException} and non-zero
 * result codes into a {@link CudaError} naming the call and the CUDA error name. Kernel launches
 * are asynchronous: a kernel that faults is reported by the next synchronising call;
 * {@code -Dncsn.cuda.sync=true} synchronises after each launch so the error names the kernel.
 */
public final class CudaContext {
    private static final Logger LOG = Logger.getLogger(CudaContext.class.getName());
    /** Threads per block of the elementwise launchers. */
    public static final int BLOCK = 256;

    private static volatile CudaContext instance;
    private static volatile boolean autoFallbackLogged;
    private static final ThreadLocal<Boolean> CURRENT = ThreadLocal.withInitial(() -> false);

    private final int ordinal;
    private final CUdevice device;
    private final CUcontext context;
    private final CUstream stream;
    private final CUmodule module;
    private final int smCount;
    private final String name;
    private final boolean syncEachLaunch = Boolean.getBoolean("ncsn.cuda.sync");
    private final Map<String, CUfunction> functions = new HashMap<>();
    private final DeviceAllocator allocator;

    private CudaContext(int ordinal) {
        this.ordinal = ordinal;
        JCudaDriver.setExceptionsEnabled(true);
        check("cuInit", () -> JCudaDriver.cuInit(0));
        int count = CudaProbe.deviceCount();
        if (ordinal < 0 || ordinal >= count) {
            throw new CudaError("CUDA_ERROR_INVALID_DEVICE", "-Dncsn.cuda.device=" + ordinal + " is out of range: this machine has "
                    + count + (count == 1 ? " CUDA device (use 0)" : " CUDA devices (use 0.." + (count - 1) + ")"));
        }
        device = new CUdevice();
        check("cuDeviceGet(" + ordinal + ")", () -> JCudaDriver.cuDeviceGet(device, ordinal));
        context = new CUcontext();
        check("cuDevicePrimaryCtxRetain", () -> JCudaDriver.cuDevicePrimaryCtxRetain(context, device));
        check("cuCtxSetCurrent", () -> JCudaDriver.cuCtxSetCurrent(context));
        CURRENT.set(true);
        int[] sms = {0};
        check("cuDeviceGetAttribute(MULTIPROCESSOR_COUNT)", () -> JCudaDriver.cuDeviceGetAttribute(sms,
                CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device));
        smCount = Math.max(1, sms[0]);
        byte[] nameBytes = new byte[256];
        check("cuDeviceGetName", () -> JCudaDriver.cuDeviceGetName(nameBytes, nameBytes.length, device));
        int len = 0;
        while (len < nameBytes.length && nameBytes[len] != 0) len++;
        name = new String(nameBytes, 0, len, java.nio.charset.StandardCharsets.US_ASCII);
        // Blocking stream (flags 0): it synchronises with the legacy stream that the synchronous
        // cuMemcpyHtoD/DtoH use, so host copies and kernels stay ordered.
        stream = new CUstream();
        check("cuStreamCreate", () -> JCudaDriver.cuStreamCreate(stream, 0));
        byte[] fatbin;
        try {
            fatbin = CudaProbe.fatbin();
        } catch (IllegalStateException e) {
            throw new CudaError("NO_FATBIN", "CUDA kernels missing: " + e.getMessage());
        }
        module = new CUmodule();
        check("cuModuleLoadData(" + CudaProbe.FATBIN_RESOURCE + ", " + fatbin.length + " bytes) on " + name,
                () -> JCudaDriver.cuModuleLoadData(module, fatbin));
        allocator = new DeviceAllocator(new DriverMemory());
        LOG.info(() -> "CUDA backend: device " + ordinal + " " + name + ", " + smCount + " SMs, kernels "
                + CudaProbe.FATBIN_RESOURCE + " (" + fatbin.length + " bytes)");
    }

    /**
     * The process-wide context, created on first use and made current on the calling thread.
     *
     * @throws CudaError {@code UNAVAILABLE} with {@link CudaProbe#reason()} when there is no usable
     *     GPU; otherwise the failing driver call and its CUDA error name
     */
    public static CudaContext get() {
        if (!CudaProbe.available()) throw CudaError.unavailable(CudaProbe.reason());
        CudaContext c = instance;
        if (c == null) {
            synchronized (CudaContext.class) {
                c = instance;
                if (c == null) {
                    c = new CudaContext(deviceOrdinal());
                    instance = c;
                }
            }
        }
        if (!CURRENT.get()) {
            CUcontext ctx = c.context;
            check("cuCtxSetCurrent", () -> JCudaDriver.cuCtxSetCurrent(ctx));
            CURRENT.set(true);
        }
        return c;
    }

    /**
     * Resolves a backend request: {@code "cpu"}, {@code "cuda"} (stops with a {@link CudaError} when
     * CUDA cannot be used) or {@code "auto"} (CUDA when usable, else the CPU, with the reason
     * logged once).
     */
    public static Device resolve(String requested) {
        String r = requested == null ? "auto" : requested.trim().toLowerCase(java.util.Locale.ROOT);
        switch (r) {
            case "cpu":
                return Device.CPU;
            case "cuda":
            case "gpu":
                get();
                return Device.CUDA;
            case "auto":
                try {
                    get();
                    return Device.CUDA;
                } catch (CudaError e) {
                    if (!autoFallbackLogged) {
                        autoFallbackLogged = true;
                        LOG.info(() -> "device auto: using the CPU (" + e.getMessage() + ")");
                    }
                    return Device.CPU;
                }
            default:
                throw new IllegalArgumentException("device '" + requested + "' is not one of cpu, cuda, auto");
        }
    }

    private static int deviceOrdinal() {
        String p = System.getProperty("ncsn.cuda.device", "0").trim();
        try {
            return Integer.parseInt(p);
        } catch (NumberFormatException e) {
            throw new CudaError("CUDA_ERROR_INVALID_DEVICE", "-Dncsn.cuda.device=" + p + " is not a device number (0, 1, ...)");
        }
    }

    // ---- error translation ----------------------------------------------------------------

    /**
     * Runs one driver call and turns a failure (an exception from JCuda, or a non-zero result
     * when exceptions are off) into a {@link CudaError} naming {@code call} and the error name.
     */
    static void check(String call, IntSupplier driverCall) {
        int rc;
        try {
            rc = driverCall.getAsInt();
        } catch (jcuda.CudaException e) {
            throw CudaError.of(call, errorName(e.getMessage()));
        }
        if (rc != CUresult.CUDA_SUCCESS) throw CudaError.of(call, CUresult.stringFor(rc));
    }

    /** JCuda's exception message starts with the CUresult name; keep that token. */
    static String errorName(String jcudaMessage) {
        if (jcudaMessage == null || jcudaMessage.isBlank()) return "CUDA_ERROR_UNKNOWN";
        String s = jcudaMessage.trim();
        int sp = 0;
        while (sp < s.length() && (Character.isLetterOrDigit(s.charAt(sp)) || s.charAt(sp) == '_')) sp++;
        return sp == 0 ? s : s.substring(0, sp);
    }

    // ---- kernels ---------------------------------------------------------------------------

    /** The kernel {@code name} (an extern "C" name in src/main/cuda), looked up once. */
    public synchronized CUfunction function(String kernel) {
        CUfunction f = functions.get(kernel);
        if (f == null) {
            CUfunction nf = new CUfunction();
            check("cuModuleGetFunction(\"" + kernel + "\")", () -> JCudaDriver.cuModuleGetFunction(nf, module, kernel));
            functions.put(kernel, nf);
            f = nf;
        }
        return f;
    }

    /**
     * Launches {@code kernel} on the backend's stream with a 1-D grid. Each argument is a
     * {@link Pointer} to the value (device pointers: {@code Pointer.to(devPtr)}; scalars:
     * {@code Pointer.to(new long[] {n})}), in the kernel's parameter order.
     */
    public void launch(String kernel, int grid, int block, Pointer... args) {
        launch(kernel, grid, 1, 1, block, 1, 1, 0, args);
    }

    /** Launches with a 3-D grid and block and {@code sharedBytes} of dynamic shared memory (see {@link Launch}). */
    public void launch(String kernel, int gx, int gy, int gz, int bx, int by, int bz, int sharedBytes, Pointer... args) {
        CUfunction f = function(kernel);
        Pointer params = Pointer.to(args);
        check("cuLaunchKernel(" + kernel + ", grid " + gx + "x" + gy + "x" + gz + ", block " + bx + "x" + by + "x" + bz + ")",
                () -> JCudaDriver.cuLaunchKernel(f, gx, gy, gz, bx, by, bz, sharedBytes, stream, params, null));
        if (syncEachLaunch) check("kernel " + kernel + " (cuStreamSynchronize after launch)",
                () -> JCudaDriver.cuStreamSynchronize(stream));
    }

    /** Grid for an elementwise kernel over n elements: min(ceil(n / block), 32 blocks per SM), at least 1. */
    public static int gridFor(long n, int block, int sms) {
        long blocks = (n + block - 1) / block;
        return (int) Math.max(1, Math.min(blocks, 32L * sms));
    }

    public int gridFor(long n) {
        return gridFor(n, BLOCK, smCount);
    }

    /** Waits for all work on the stream; reports asynchronous kernel faults. */
    public void synchronize() {
        check("cuStreamSynchronize", () -> JCudaDriver.cuStreamSynchronize(stream));
    }

    // ---- timing ----------------------------------------------------------------------------

    /** A pair of CUDA events around GPU work on the backend's stream. */
    public final class EventTimer implements AutoCloseable {
        private final CUevent start = new CUevent();
        private final CUevent stop = new CUevent();

        private EventTimer() {
            check("cuEventCreate", () -> JCudaDriver.cuEventCreate(start, CUevent_flags.CU_EVENT_DEFAULT));
            check("cuEventCreate", () -> JCudaDriver.cuEventCreate(stop, CUevent_flags.CU_EVENT_DEFAULT));
            check("cuEventRecord", () -> JCudaDriver.cuEventRecord(start, stream));
        }

        /** Records the stop event, waits for it and returns the elapsed GPU time in milliseconds. */
        public float stopMillis() {
            check("cuEventRecord", () -> JCudaDriver.cuEventRecord(stop, stream));
            check("cuEventSynchronize", () -> JCudaDriver.cuEventSynchronize(stop));
            float[] ms = {0f};
            check("cuEventElapsedTime", () -> JCudaDriver.cuEventElapsedTime(ms, start, stop));
            return ms[0];
        }

        @Override
        public void close() {
            check("cuEventDestroy", () -> JCudaDriver.cuEventDestroy(start));
            check("cuEventDestroy", () -> JCudaDriver.cuEventDestroy(stop));
        }
    }

    /** Starts timing now (records the start event on the stream). Close the timer when done. */
    public EventTimer startTimer() {
        return new EventTimer();
    }

    // ---- memory ----------------------------------------------------------------------------

    public DeviceAllocator allocator() {
        return allocator;
    }

    /** cuMemAlloc / cuMemFree; out-of-memory is reported as null so the allocator can empty its cache and retry. */
    private static final class DriverMemory implements DeviceAllocator.Raw {
        @Override
        public Object alloc(long bytes) {
            CUdeviceptr p = new CUdeviceptr();
            int rc;
            try {
                rc = JCudaDriver.cuMemAlloc(p, bytes);
            } catch (jcuda.CudaException e) {
                String name = errorName(e.getMessage());
                if (name.equals("CUDA_ERROR_OUT_OF_MEMORY")) return null;
                throw CudaError.of("cuMemAlloc(" + bytes + ")", name);
            }
            if (rc == CUresult.CUDA_ERROR_OUT_OF_MEMORY) return null;
            if (rc != CUresult.CUDA_SUCCESS) throw CudaError.of("cuMemAlloc(" + bytes + ")", CUresult.stringFor(rc));
            return p;
        }

        @Override
        public void free(Object handle) {
            check("cuMemFree", () -> JCudaDriver.cuMemFree((CUdeviceptr) handle));
        }
    }

    /** Free and total device memory in bytes ({@code cuMemGetInfo}). */
    public long[] memInfo() {
        long[] free = {0};
        long[] total = {0};
        check("cuMemGetInfo", () -> JCudaDriver.cuMemGetInfo(free, total));
        return new long[] {free[0], total[0]};
    }

    public CUstream stream() {
        return stream;
    }

    public int ordinal() {
        return ordinal;
    }

    public int multiprocessorCount() {
        return smCount;
    }

    public String deviceName() {
        return name;
    }
}
