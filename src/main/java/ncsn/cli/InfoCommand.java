package ncsn.cli;

import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.TreeSet;
import java.util.concurrent.Callable;
import ncsn.cuda.CudaProbe;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * {@code ncsn info}: what this JVM and machine offer the engine. Always exits 0.
 *
 * <p>For every GPU: name, compute capability, memory (total and free), SM count, and whether the
 * kernel fatbin loads on it ({@code cuModuleLoadData} into the device's primary context, then
 * every {@code *_f32} kernel name found in the fatbin's bytes looked up with
 * {@code cuModuleGetFunction}; kernels.mk stores the fatbin uncompressed so the names are
 * visible). Then the driver version and the cuBLAS / cuDNN status. Without a GPU it prints one
 * line with {@link CudaProbe#reason()}. JCuda is touched only after the probe succeeded, and every
 * driver call's failure becomes a line of output, never an exception.
 */
@Command(name = "info", mixinStandardHelpOptions = true,
        description = "Print Java, CPU, heap, Vector API and GPU status.")
public final class InfoCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        Runtime rt = Runtime.getRuntime();
        out.printf("ncsn-engine %s%n", Main.version());
        out.printf("Java:        %s (%s, %s) at %s%n", System.getProperty("java.version"),
                System.getProperty("java.vendor"), System.getProperty("java.vm.name"),
                System.getProperty("java.home"));
        out.printf("Processors:  %d available (%s, %s)%n", rt.availableProcessors(), System.getProperty("os.arch"),
                cpuModel());
        out.printf("CPU flags:   %s%n", cpuFlags());
        out.printf("Max heap:    %s%s%n", gib(rt.maxMemory()), heapFlags());
        out.printf("Vector API:  %s%n", vectorApi());
        out.printf("GPU kernels: %s%n", CudaProbe.fatbinPresent()
                ? "fatbin present (" + CudaProbe.FATBIN_RESOURCE + ", " + CudaProbe.fatbin().length + " bytes, "
                        + kernelNames().size() + " kernels named in it)"
                : "no fatbin in this build (built without nvcc)");
        if (!CudaProbe.available()) {
            out.printf("GPU:         none (%s)%n", CudaProbe.reason());
        } else {
            out.printf("GPU:         %s%n", CudaProbe.reason());
            try {
                for (String line : GpuInfo.describe()) out.println(line);
            } catch (LinkageError | RuntimeException e) {
                out.printf("GPU details: unavailable (%s)%n", e);
            }
        }
        out.flush();
        return CommandLine.ExitCode.OK;
    }

    /** Distinct {@code *_f32} identifiers in the fatbin's bytes (the extern "C" kernel names). */
    static List<String> kernelNames() {
        if (!CudaProbe.fatbinPresent()) return List.of();
        byte[] b = CudaProbe.fatbin();
        TreeSet<String> names = new TreeSet<>();
        int i = 0;
        while (i < b.length) {
            if (!ident(b[i])) {
                i++;
                continue;
            }
            int j = i;
            while (j < b.length && ident(b[j])) j++;
            // A whole NUL-terminated identifier (a symbol table entry), not a piece of a longer one.
            if (j - i > 4 && j - i < 200 && (j == b.length || b[j] == 0)) {
                String s = new String(b, i, j - i, StandardCharsets.US_ASCII);
                if (s.endsWith("_f32") && Character.isLetter(s.charAt(0))) names.add(s);
            }
            i = j;
        }
        return new ArrayList<>(names);
    }

    private static boolean ident(byte c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    }

    private static String gib(long bytes) {
        return String.format(Locale.ROOT, "%.1f GiB", bytes / (1024.0 * 1024 * 1024));
    }

    private static String cpuModel() {
        for (String line : cpuinfo()) {
            if (line.startsWith("model name")) return line.substring(line.indexOf(':') + 1).trim();
        }
        return "model unknown";
    }

    /** The SIMD flags the Vector API can use, from /proc/cpuinfo (Linux); "unknown" elsewhere. */
    private static String cpuFlags() {
        for (String line : cpuinfo()) {
            if (line.startsWith("flags") || line.startsWith("Features")) {
                List<String> wanted = List.of("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl",
                        "avx512_bf16", "amx_tile", "asimd", "sve", "sve2");
                TreeSet<String> have = new TreeSet<>(List.of(line.substring(line.indexOf(':') + 1).trim().split("\\s+")));
                StringBuilder sb = new StringBuilder();
                for (String f : wanted) if (have.contains(f)) sb.append(sb.length() == 0 ? "" : " ").append(f);
                return sb.length() == 0 ? "none of the SIMD flags the Vector API uses" : sb.toString();
            }
        }
        return "unknown (no /proc/cpuinfo)";
    }

    private static List<String> cpuinfo() {
        try {
            return java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/cpuinfo"), StandardCharsets.ISO_8859_1);
        } catch (java.io.IOException | RuntimeException e) {
            return List.of();
        }
    }

    private static String heapFlags() {
        try {
            List<String> args = ManagementFactory.getRuntimeMXBean().getInputArguments();
            StringBuilder sb = new StringBuilder();
            for (String a : args) {
                if (a.startsWith("-Xmx") || a.startsWith("-Xms") || a.startsWith("-XX:MaxRAMPercentage")
                        || a.equals("-XX:+AlwaysPreTouch")) {
                    sb.append(sb.length() == 0 ? " (" : " ").append(a);
                }
            }
            return sb.length() == 0 ? " (JVM default; bin/ncsn sets -Xmx, NCSN_HEAP overrides)" : sb.append(')').toString();
        } catch (RuntimeException | LinkageError e) {
            return "";
        }
    }

    private static String vectorApi() {
        if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
            return "absent (start java with --add-modules jdk.incubator.vector; bin/ncsn does)";
        }
        try {
            return "jdk.incubator.vector present, preferred float species "
                    + VectorInfo.preferredFloatLanes() + " lanes";
        } catch (LinkageError | RuntimeException e) {
            return "jdk.incubator.vector present but unusable (" + e + ")";
        }
    }

    /** Loaded only after the module check: touching FloatVector without the module throws. */
    private static final class VectorInfo {
        static int preferredFloatLanes() {
            return jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.length();
        }
    }

    /**
     * Every JCuda reference of {@code info}; loaded only after {@link CudaProbe#available()}.
     * Works on each device's primary context (pushed, then popped), so it needs no
     * {@code CudaContext} and leaves the calling thread's context as it was.
     */
    private static final class GpuInfo {
        static List<String> describe() {
            List<String> lines = new ArrayList<>();
            jcuda.driver.JCudaDriver.setExceptionsEnabled(false);
            int[] version = {0};
            int rc = jcuda.driver.JCudaDriver.cuDriverGetVersion(version);
            lines.add("Driver:      " + (rc == 0 ? "CUDA " + version[0] / 1000 + "." + version[0] % 1000 / 10
                    + " (cuDriverGetVersion " + version[0] + ")" : err("cuDriverGetVersion", rc)));
            List<String> kernels = kernelNames();
            byte[] fatbin = CudaProbe.fatbinPresent() ? CudaProbe.fatbin() : null;
            for (int i = 0; i < CudaProbe.deviceCount(); i++) lines.addAll(device(i, fatbin, kernels));
            lines.add("cuBLAS:      " + cublas());
            lines.add("cuDNN:       not integrated yet (planned via JavaCPP presets)");
            return lines;
        }

        private static List<String> device(int ordinal, byte[] fatbin, List<String> kernels) {
            List<String> lines = new ArrayList<>();
            String p = "  [" + ordinal + "] ";
            jcuda.driver.CUdevice dev = new jcuda.driver.CUdevice();
            int rc = jcuda.driver.JCudaDriver.cuDeviceGet(dev, ordinal);
            if (rc != 0) {
                lines.add(p + err("cuDeviceGet", rc));
                return lines;
            }
            byte[] name = new byte[256];
            jcuda.driver.JCudaDriver.cuDeviceGetName(name, name.length, dev);
            int len = 0;
            while (len < name.length && name[len] != 0) len++;
            int major = attr(dev, jcuda.driver.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
            int minor = attr(dev, jcuda.driver.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
            int sms = attr(dev, jcuda.driver.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
            long[] total = {0};
            jcuda.driver.JCudaDriver.cuDeviceTotalMem(total, dev);
            lines.add(String.format(Locale.ROOT, "%s%s, compute capability %d.%d, %d SMs, %s total", p,
                    new String(name, 0, len, StandardCharsets.US_ASCII), major, minor, sms, gib(total[0])));

            jcuda.driver.CUcontext ctx = new jcuda.driver.CUcontext();
            rc = jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRetain(ctx, dev);
            if (rc != 0) {
                lines.add(p + "context: " + err("cuDevicePrimaryCtxRetain", rc));
                return lines;
            }
            try {
                rc = jcuda.driver.JCudaDriver.cuCtxPushCurrent(ctx);
                if (rc != 0) {
                    lines.add(p + "context: " + err("cuCtxPushCurrent", rc));
                    return lines;
                }
                try {
                    long[] free = {0};
                    long[] tot = {0};
                    rc = jcuda.driver.JCudaDriver.cuMemGetInfo(free, tot);
                    lines.add(p + "memory: " + (rc == 0 ? gib(free[0]) + " free of " + gib(tot[0]) : err("cuMemGetInfo", rc)));
                    lines.add(p + "kernels: " + module(fatbin, kernels));
                } finally {
                    jcuda.driver.JCudaDriver.cuCtxPopCurrent(new jcuda.driver.CUcontext());
                }
            } finally {
                jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRelease(dev);
            }
            return lines;
        }

        /** Loads the fatbin on the current context and looks up every kernel name found in it. */
        private static String module(byte[] fatbin, List<String> kernels) {
            if (fatbin == null) return "no fatbin in this build (built without nvcc)";
            jcuda.driver.CUmodule m = new jcuda.driver.CUmodule();
            int rc = jcuda.driver.JCudaDriver.cuModuleLoadData(m, fatbin);
            if (rc != 0) return "fatbin did NOT load: " + err("cuModuleLoadData", rc)
                    + " (no SASS for this GPU and the PTX needs a newer driver?)";
            try {
                List<String> missing = new ArrayList<>();
                for (String k : kernels) {
                    jcuda.driver.CUfunction f = new jcuda.driver.CUfunction();
                    if (jcuda.driver.JCudaDriver.cuModuleGetFunction(f, m, k) != 0) missing.add(k);
                }
                String found = kernels.isEmpty() ? "no kernel names visible in the fatbin bytes"
                        : (kernels.size() - missing.size()) + " of " + kernels.size() + " kernels resolve";
                return "fatbin loaded (cuModuleLoadData OK), " + found + (missing.isEmpty() ? "" : ", missing: " + missing);
            } finally {
                jcuda.driver.JCudaDriver.cuModuleUnload(m);
            }
        }

        private static int attr(jcuda.driver.CUdevice dev, int attribute) {
            int[] v = {0};
            jcuda.driver.JCudaDriver.cuDeviceGetAttribute(v, attribute, dev);
            return v[0];
        }

        private static String err(String call, int rc) {
            return call + " failed: " + jcuda.driver.CUresult.stringFor(rc);
        }

        /** Whether JCublas is on the classpath and libcublas loads (cublasCreate on the current device). */
        private static String cublas() {
            try {
                Class.forName("jcuda.jcublas.JCublas2");
            } catch (ClassNotFoundException e) {
                return "not used (no JCublas dependency)";
            } catch (LinkageError e) {
                // JCublas 12.6's native library links libcublas.so.12 (CUDA 12's cuBLAS); its
                // loader error runs to dozens of lines, so keep the first.
                return "not available (" + firstLine(String.valueOf(e)) + "; JCublas 12.6 needs libcublas.so.12)"
                        + ", conv2d and linear use our own kernels";
            }
            try {
                jcuda.jcublas.JCublas2.setExceptionsEnabled(false);
                jcuda.jcublas.cublasHandle h = new jcuda.jcublas.cublasHandle();
                int rc = jcuda.jcublas.JCublas2.cublasCreate(h);
                if (rc != 0) return "library loaded but cublasCreate failed (" + jcuda.jcublas.cublasStatus.stringFor(rc) + ")";
                jcuda.jcublas.JCublas2.cublasDestroy(h);
                return "available (JCublas2 loaded libcublas, cublasCreate OK)";
            } catch (LinkageError e) {
                return "not available (" + firstLine(String.valueOf(e.getMessage())) + ")";
            } catch (RuntimeException e) {
                return "not available (" + e + ")";
            }
        }

        private static String firstLine(String s) {
            int nl = s.indexOf('\n');
            return nl < 0 ? s : s.substring(0, nl);
        }
    }
}
