package ncsn.bench;

import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import ncsn.cpu.Gemm;
import ncsn.cpu.GemmKernel;
import ncsn.cpu.Parallel;
import ncsn.cpu.Simd;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Square sgemm, C[n x n] = A[n x n] * B[n x n] (no transposes, beta 0), per kernel and thread
 * count. Reports time per call; one call is {@code 2 * n^3} floating-point operations, so
 * GFLOP/s = 2 n^3 / (ms/op * 1e6): 256 -> 0.0336 GFLOP per op, 512 -> 0.268, 1024 -> 2.15,
 * 2048 -> 17.2. Each measurement iteration also prints its own GFLOP/s line ("# GFLOP/s ..."),
 * from the calls it counted and its wall time.
 *
 * <pre>
 * mvn -Dncsn.build.dir=/tmp/build-gemm -Pbench package -DskipTests
 * java -jar /tmp/build-gemm/benchmarks.jar GemmBench -wi 3 -i 5 -f 1
 * </pre>
 * For a quick table with the core's FMA peak instead, run {@link GemmPeak}.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xms2g", "-Xmx2g",
        "-XX:+AlwaysPreTouch"})
public class GemmBench {

    @Param({"256", "512", "1024", "2048"})
    public int size;

    @Param({"scalar", "vector"})
    public String kernel;

    @Param({"1", "2"})
    public int threads;

    private GemmKernel k;
    private float[] a, b, c;
    private long calls, iterationStart;
    private double best;

    @Setup(Level.Trial)
    public void setup() {
        k = kernel.equals("scalar") ? Simd.scalarGemm() : Simd.vectorGemmOrNull();
        if (k == null) {
            throw new IllegalStateException("kernel=vector needs --add-modules jdk.incubator.vector");
        }
        int used = Parallel.setThreads(threads);
        if (used != threads) {
            System.out.println("# note: asked for " + threads + " threads, this machine gives " + used);
        }
        SplittableRandom rnd = new SplittableRandom(42);
        a = new float[size * size];
        b = new float[size * size];
        c = new float[size * size];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) (rnd.nextDouble() - 0.5);
            b[i] = (float) (rnd.nextDouble() - 0.5);
        }
    }

    @Setup(Level.Iteration)
    public void startIteration() {
        calls = 0;
        iterationStart = System.nanoTime();
    }

    @TearDown(Level.Iteration)
    public void endIteration() {
        double seconds = (System.nanoTime() - iterationStart) / 1e9;
        double gflops = 2.0 * size * size * size * calls / seconds / 1e9;
        best = Math.max(best, gflops);
        System.out.printf("# GFLOP/s %s n=%d threads=%d: %.1f (best so far %.1f)%n",
                kernel, size, threads, gflops, best);
    }

    @Benchmark
    public float[] sgemm() {
        Gemm.sgemm(k, true, false, false, size, size, size, 1f, a, 0, size, b, 0, size, 0f, c, 0, size);
        calls++;
        return c;
    }
}
