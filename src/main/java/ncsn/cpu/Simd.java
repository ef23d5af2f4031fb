package ncsn.cpu;

import java.util.Locale;

/**
 * Chooses the CPU kernels once, lazily, and says so once on stderr (Lucene's
 * {@code VectorizationProvider} pattern).
 *
 * <p>The Vector API kernels ({@code ncsn.cpu.vector}) are used when the
 * {@code jdk.incubator.vector} module is in the boot layer (the JVM was started with
 * {@code --add-modules jdk.incubator.vector}, as {@code bin/ncsn}, the tests and the benchmarks
 * do), unless the system property {@code ncsn.simd} says otherwise:
 * <ul>
 *   <li>{@code auto} (default): Vector API if present, else plain Java;
 *   <li>{@code scalar}: plain Java always (to compare, or to rule the vector code out);
 *   <li>{@code vector}: Vector API, and an error if the module is absent.
 * </ul>
 * The vector classes are loaded by name: without the module, touching {@code FloatVector}
 * throws {@code NoClassDefFoundError}, so no class here refers to one.
 */
public final class Simd {
    private static final String VECTOR_GEMM = "ncsn.cpu.vector.VectorGemm";
    private static final String MODULE = "jdk.incubator.vector";

    private Simd() {}

    /** The choice, made on first use. */
    private static final class Choice {
        final boolean vector;
        final GemmKernel gemm;
        final String description;

        Choice(boolean vector, GemmKernel gemm, String description) {
            this.vector = vector;
            this.gemm = gemm;
            this.description = description;
        }
    }

    private static Choice choice;          // guarded by Simd.class
    private static boolean vectorLoaded;   // guarded by Simd.class
    private static GemmKernel vectorGemm;  // guarded by Simd.class; null if unavailable
    private static String vectorProblem;   // why vectorGemm is null

    /** True when the Vector API kernels are in use. */
    public static boolean vectorEnabled() {
        return choice().vector;
    }

    /** The choice and its reason, e.g. "Vector API (jdk.incubator.vector, 512-bit, 16 floats/vector)". */
    public static String description() {
        return choice().description;
    }

    /** The GEMM kernel {@link Gemm#sgemm} uses by default. */
    public static GemmKernel gemmKernel() {
        return choice().gemm;
    }

    /** The plain-Java kernel, always available (tests and benchmarks compare against it). */
    public static GemmKernel scalarGemm() {
        return ScalarGemm.INSTANCE;
    }

    /**
     * The Vector API kernel when the module is present and usable, whatever {@code ncsn.simd}
     * says; null otherwise. For tests and benchmarks.
     */
    public static synchronized GemmKernel vectorGemmOrNull() {
        if (!vectorLoaded) {
            vectorLoaded = true;
            if (!modulePresent()) {
                vectorProblem = MODULE + " not present";
            } else {
                try {
                    Class<?> cls = Class.forName(VECTOR_GEMM);
                    String unusable = (String) cls.getMethod("unusableReason").invoke(null);
                    if (unusable != null) {
                        vectorProblem = unusable;
                    } else {
                        vectorGemm = (GemmKernel) cls.getConstructor().newInstance();
                    }
                } catch (ReflectiveOperationException | LinkageError e) {
                    Throwable cause = e.getCause() != null ? e.getCause() : e;
                    vectorProblem = "could not load " + VECTOR_GEMM + ": " + cause;
                }
            }
        }
        return vectorGemm;
    }

    private static boolean modulePresent() {
        return ModuleLayer.boot().findModule(MODULE).isPresent();
    }

    private static synchronized Choice choice() {
        if (choice == null) {
            choice = decide(System.getProperty("ncsn.simd", "auto").trim().toLowerCase(Locale.ROOT));
            System.err.println("[ncsn] CPU kernels: " + choice.description);
        }
        return choice;
    }

    private static Choice decide(String mode) {
        switch (mode) {
            case "scalar":
                return scalar("forced by -Dncsn.simd=scalar");
            case "auto":
            case "":
            case "vector": {
                GemmKernel v = vectorGemmOrNull();
                if (v != null) {
                    return new Choice(true, v, "Vector API (" + v.description() + ")");
                }
                if (mode.equals("vector")) {
                    throw new IllegalStateException("-Dncsn.simd=vector, but the Vector API is "
                            + "unavailable: " + vectorProblem + ". Start the JVM with --add-modules "
                            + MODULE + " (bin/ncsn does), or drop -Dncsn.simd=vector to run the "
                            + "slower plain-Java kernels.");
                }
                if (!modulePresent()) {
                    return scalar(MODULE + " not present; start with bin/ncsn or --add-modules "
                            + MODULE + " for the fast path");
                }
                return scalar(vectorProblem);
            }
            default:
                throw new IllegalStateException("-Dncsn.simd=" + mode
                        + " is not one of auto, scalar, vector");
        }
    }

    private static Choice scalar(String reason) {
        return new Choice(false, ScalarGemm.INSTANCE,
                "scalar path (" + reason + ")");
    }
}
