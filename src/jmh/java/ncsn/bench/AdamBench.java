package ncsn.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import ncsn.cpu.Parallel;
import ncsn.optim.Adam;
import ncsn.rng.Philox;
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
 * One Adam step over ~1M float32 parameters split like a model (about 310 tensors: conv
 * weights of 2k to 18k elements, small biases and CIN++ embedding tables).
 *
 * <p>Memory traffic per step without amsgrad: p, g, m, v read and p, m, v written = 7 x 4 bytes
 * per parameter (9 x 4 with amsgrad: vmax read and written). {@code step} reports the time per
 * step; {@code traffic} reports steps/s and, as its {@code bytes} counter, bytes moved per second.
 *
 * <pre>
 * java -jar target/benchmarks.jar AdamBench -p threads=1,2
 * </pre>
 */
@State(Scope.Thread)
@Warmup(iterations = 5, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xms2g", "-Xmx2g", "-XX:+AlwaysPreTouch"})
public class AdamBench {
    @Param({"1048576"})
    public int params;

    @Param({"2"})
    public int threads;

    @Param({"false"})
    public boolean amsgrad;

    private Adam opt;
    private long bytesPerStep;

    /** Counts bytes moved; reported by JMH per second of the traffic benchmark. */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class Traffic {
        public long bytes;
    }

    @Setup(Level.Trial)
    public void setup() {
        Parallel.setThreads(threads);
        // A model-like mix of (conv weight, bias, CIN++ table [10, 3C]) groups, repeated until
        // `params`: ~310 tensors for 1M parameters, from 3 to 18432 elements.
        int[] pattern = {32 * 32 * 9, 32, 10 * 96, 64 * 32 * 9, 64, 10 * 192, 3 * 32 * 9, 3, 16 * 16 * 9, 16};
        List<Tensor> ps = new ArrayList<>();
        int total = 0;
        for (int k = 0; total < params; k++) {
            int n = Math.min(pattern[k % pattern.length], params - total);
            Tensor p = Tensor.parameter("p" + k, DType.F32, n);
            Tensor g = Tensor.persistent(DType.F32, n);
            fill(p.f32(), k, 0.05f);
            fill(g.f32(), k + 100_000, 1e-3f);
            p.setGrad(g);
            ps.add(p);
            total += n;
        }
        opt = new Adam(ps, 1e-3, 0.9, 0.999, 1e-8, 0.0, amsgrad);
        bytesPerStep = (long) total * Float.BYTES * (amsgrad ? 9 : 7);
        System.out.printf("%nAdamBench: %d tensors, %d parameters, %d threads, %.1f MB moved per step%n",
                ps.size(), total, Parallel.threads(), bytesPerStep / 1e6);
    }

    private static void fill(float[] a, long seed, float scale) {
        double[] d = new double[a.length];
        Philox.normal(seed, 0x6164616dL, 0, d, 0, d.length);
        for (int i = 0; i < a.length; i++) a[i] = (float) (d[i] * scale);
    }

    @Benchmark
    @BenchmarkMode(Mode.AverageTime)
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    public void step() {
        opt.step();
    }

    @Benchmark
    @BenchmarkMode(Mode.Throughput)
    @OutputTimeUnit(TimeUnit.SECONDS)
    public void traffic(Traffic t) {
        opt.step();
        t.bytes += bytesPerStep;
    }
}
