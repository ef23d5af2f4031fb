package ncsn.bench;

import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import ncsn.cpu.Parallel;
import ncsn.rng.Philox;
import ncsn.sample.LangevinUpdate;
import ncsn.tensor.DType;
import ncsn.tensor.Tensor;
import org.openjdk.jmh.annotations.AuxCounters;
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
import org.openjdk.jmh.annotations.Warmup;

/**
 * The fused Langevin update x += step * score + sqrt(2 step) z (z from Philox inside the kernel)
 * on float32 image batches: MNIST-sized [25,1,28,28] (the reference's sampling grid) and
 * CIFAR-sized [128,3,32,32].
 *
 * <p>Memory traffic: x and score read, x written = 12 bytes per element; on top of that every 4
 * elements cost one Philox4x32-10 block and every 2 elements one Box-Muller pair (log, sqrt, cos,
 * sin in double), which is what bounds the kernel on a CPU. {@code step} reports the time per
 * update; {@code traffic} reports updates/s with the counters {@code elements} (elements/s: ns
 * per element = 1e9 / this) and {@code bytes} (bytes/s, i.e. GB/s x 1e9). {@code unfused} is the
 * obvious alternative for comparison: Philox normals into a reused buffer (one more 4-byte write
 * and read per element), then a separate axpy pass.
 *
 * <pre>
 * java -jar target/benchmarks.jar LangevinBench -p threads=1,2
 * </pre>
 */
@State(Scope.Thread)
@Warmup(iterations = 5, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xms1g", "-Xmx1g", "-XX:+AlwaysPreTouch"})
public class LangevinBench {
    @Param({"25,1,28,28", "128,3,32,32"})
    public String shape;

    @Param({"2"})
    public int threads;

    private Tensor x, score, z;
    private long offset, blocks;
    private int n;

    /** Elements and bytes moved; JMH reports them per second of the traffic benchmark. */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class Traffic {
        public long bytes;
        public long elements;
    }

    @Setup(Level.Trial)
    public void setup() {
        Parallel.setThreads(threads);
        int[] s = Arrays.stream(shape.split(",")).mapToInt(Integer::parseInt).toArray();
        x = Tensor.persistent(DType.F32, s);
        score = Tensor.persistent(DType.F32, s);
        z = Tensor.persistent(DType.F32, s);
        n = x.numel();
        Philox.uniform(1, 2, 0, x.f32(), 0, n);
        Philox.normal(1, 3, 0, score.f32(), 0, n);
        blocks = LangevinUpdate.blocksFor(n);
        System.out.printf("%nLangevinBench: %s = %d elements, %d threads, %.2f MB moved per update%n",
                shape, n, Parallel.threads(), 12.0 * n / 1e6);
    }

    /** A tiny step keeps x bounded however long the benchmark runs. */
    private static final double STEP = 1e-6;

    @Benchmark
    @BenchmarkMode(Mode.AverageTime)
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    public void step() {
        LangevinUpdate.apply(x, score, STEP, 7, 11, offset);
        offset += blocks;
    }

    @Benchmark
    @BenchmarkMode(Mode.Throughput)
    @OutputTimeUnit(TimeUnit.SECONDS)
    public void traffic(Traffic t) {
        LangevinUpdate.apply(x, score, STEP, 7, 11, offset);
        offset += blocks;
        t.bytes += 12L * n;
        t.elements += n;
    }

    @Benchmark
    @BenchmarkMode(Mode.AverageTime)
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    public void unfused() {
        float[] zs = z.f32(), xs = x.f32(), ss = score.f32();
        Philox.normal(7, 11, offset, zs, 0, n);
        offset += blocks;
        float step = (float) STEP, c = (float) Math.sqrt(2 * STEP);
        Parallel.forRange(n, 1 << 15, (lo, hi) -> {
            for (int j = lo; j < hi; j++) xs[j] = xs[j] + step * ss[j] + c * zs[j];
        });
    }
}
