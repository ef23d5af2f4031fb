package ncsn.bench;

import java.util.concurrent.TimeUnit;
import ncsn.cpu.Parallel;
import ncsn.ops.CondInstanceNormPlus;
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
 * CIN++ float32 kernels at NCSN shapes (batch 128; ngf 64 / 128 channels; 32x32 and 16x16).
 *
 * <p>Bytes moved per call, with E = N*C*H*W elements of 4 bytes (what the kernel does, not a lower
 * bound it hopes for: each image's planes are read from memory once and re-read from L2):
 * <ul>
 *   <li>forward: read x, write out: 8 E bytes (e.g. 128x64x32x32: 67.1 MB);</li>
 *   <li>backward: read x and dout, write dx: 12 E bytes (100.7 MB). The embedding gradient
 *       and statistics are O(N*C).</li>
 * </ul>
 * Each iteration's teardown prints the achieved GB/s from the time spent inside the kernel calls
 * (write-allocate traffic for out/dx is not counted). Run:
 * <pre>
 *   java -jar benchmarks.jar CondInstanceNormPlusBench -wi 2 -i 3 -f 1 -p channels=64 -p size=32
 * </pre>
 * {@code -p threads=1} pins the engine to one worker (0 = all cores).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xms4g", "-Xmx4g"})
public class CondInstanceNormPlusBench {
    @Param({"128"})
    public int batch;

    @Param({"64", "128"})
    public int channels;

    @Param({"32", "16"})
    public int size;

    /** Engine worker threads; 0 = all available processors. */
    @Param({"0"})
    public int threads;

    private static final int LEVELS = 10;

    private float[] x, out, dout, dx, embed;
    private double[] stats, rs, partial;
    private int[] labels;
    private int plane;

    private final ByteRate rate = new ByteRate();
    private double bytesPerCall;

    @Setup(Level.Trial)
    public void setup() {
        Parallel.setThreads(threads <= 0 ? Runtime.getRuntime().availableProcessors() : threads);
        plane = size * size;
        int e = batch * channels * plane;
        x = new float[e];
        out = new float[e];
        dout = new float[e];
        dx = new float[e];
        java.util.Random r = new java.util.Random(42);
        for (int i = 0; i < e; i++) {
            x[i] = (float) (r.nextGaussian() * 0.7 + 0.1);
            dout[i] = (float) r.nextGaussian();
        }
        embed = new float[LEVELS * 3 * channels];   // gamma, alpha ~ N(1, 0.02), beta = 0, as the spec's init
        for (int row = 0; row < LEVELS; row++)
            for (int k = 0; k < 2 * channels; k++) embed[row * 3 * channels + k] = 1f + 0.02f * (float) r.nextGaussian();
        labels = new int[batch];
        for (int n = 0; n < batch; n++) labels[n] = r.nextInt(LEVELS);
        stats = new double[batch * 3 * channels];
        rs = new double[batch];
        partial = new double[batch * 3 * channels];
        // backward needs the forward's statistics
        CondInstanceNormPlus.Cpu.forward(out, x, embed, labels, batch, channels, plane, stats, rs);
        System.out.printf("%n[cin_pp] reductions: %s; threads %d; elements %d%n",
                CondInstanceNormPlus.kernelName(), Parallel.threads(), e);
    }

    @Setup(Level.Iteration)
    public void resetCounters() {
        rate.reset();
    }

    @TearDown(Level.Iteration)
    public void report() {
        rate.report("cin_pp", bytesPerCall);
    }

    /** Statistics, across-channel step and normalisation: reads x, writes out (8 bytes per element). */
    @Benchmark
    public float forward() {
        bytesPerCall = 8.0 * x.length;
        long t0 = System.nanoTime();
        CondInstanceNormPlus.Cpu.forward(out, x, embed, labels, batch, channels, plane, stats, rs);
        rate.add(System.nanoTime() - t0);
        return out[out.length - 1];
    }

    /** dx and per-image dgamma/dalpha/dbeta: reads x and dout, writes dx (12 bytes per element). */
    @Benchmark
    public float backward() {
        bytesPerCall = 12.0 * x.length;
        long t0 = System.nanoTime();
        CondInstanceNormPlus.Cpu.backward(dx, partial, dout, x, embed, labels, batch, channels, plane, stats, rs);
        rate.add(System.nanoTime() - t0);
        return dx[dx.length - 1];
    }
}
