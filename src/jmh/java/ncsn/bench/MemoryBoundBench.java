package ncsn.bench;

import java.util.Random;
import java.util.concurrent.TimeUnit;
import ncsn.autograd.Autograd;
import ncsn.cpu.Parallel;
import ncsn.ops.AvgPool5;
import ncsn.ops.Elementwise;
import ncsn.ops.Elu;
import ncsn.ops.MeanPool2;
import ncsn.tensor.Scope;
import ncsn.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;

import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The memory-bound float32 ops of a training step at NCSN's MNIST shapes, through their public
 * entry points (each call's output comes from the buffer pool inside a {@link Scope}, as in a
 * step): ELU forward and backward, the residual add, the 5x5 average pool (CRP) and the 2x2 mean
 * pool (ConvMeanPool).
 *
 * <p>Bytes each call must move at least, with E = N*C*H*W elements of 4 bytes: ELU forward
 * read x, write y: 8 E; ELU backward read dy and y, write dx: 12 E; add read a, b, write c: 12 E;
 * avgpool5 read x, write y: 8 E; meanpool2 read x, write y (E/4): 5 E. Each iteration's
 * teardown prints GB/s from those counts and the time inside the calls, to read against the
 * machine's memory bandwidth (these tensors, 25 MB at 128x64x28x28, do not fit in cache).
 * <pre>
 *   java -jar benchmarks.jar MemoryBoundBench -wi 2 -i 3 -f 1 -p shape=128x64x28x28
 * </pre>
 */
@State(org.openjdk.jmh.annotations.Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xms4g", "-Xmx4g", "-XX:+AlwaysPreTouch"})
public class MemoryBoundBench {
    /** N x C x H x W: res1 / refine4 (64 channels, 28x28) and res2-4 (128 channels, 14x14) at batch 128. */
    @Param({"128x64x28x28", "128x128x14x14"})
    public String shape;

    /** Engine worker threads; 0 = all available processors. */
    @Param({"0"})
    public int threads;

    private Tensor a, b, y, dy;
    private final ByteRate rate = new ByteRate();
    private double bytesPerCall;
    private String what;

    @Setup(Level.Trial)
    public void setup() {
        Parallel.setThreads(threads <= 0 ? Runtime.getRuntime().availableProcessors() : threads);
        String[] p = shape.split("x");
        int[] s = {Integer.parseInt(p[0]), Integer.parseInt(p[1]), Integer.parseInt(p[2]), Integer.parseInt(p[3])};
        int e = s[0] * s[1] * s[2] * s[3];
        Random r = new Random(42);
        float[] fa = new float[e], fb = new float[e];
        for (int i = 0; i < e; i++) {
            fa[i] = (float) r.nextGaussian();
            fb[i] = (float) r.nextGaussian();
        }
        a = Tensor.wrap(fa, s);
        b = Tensor.wrap(fb, s);
        dy = Tensor.wrap(fb.clone(), s);
        System.out.printf("%n[memory-bound] %s, %d elements, %d threads%n", shape, e, Parallel.threads());
    }

    @Setup(Level.Iteration)
    public void resetCounters() {
        rate.reset();
    }

    @TearDown(Level.Iteration)
    public void report() {
        rate.report(what, bytesPerCall);
    }

    private float timed(String name, double bytesPerElement, java.util.function.Supplier<Tensor> op) {
        what = name;
        bytesPerCall = bytesPerElement * a.numel();
        try (Scope scope = Scope.open(); Autograd.NoGrad ng = Autograd.noGrad()) {
            long t0 = System.nanoTime();
            Tensor out = op.get();
            rate.add(System.nanoTime() - t0);
            return out.f32()[0];
        }
    }

    @Benchmark
    public float eluForward() {
        return timed("elu forward", 8, () -> Elu.apply(a));
    }

    /** Forward (untimed) then the timed backward through autograd: dx = dy * (y > 0 ? 1 : y + 1). */
    @Benchmark
    public float eluBackward() {
        what = "elu backward";
        bytesPerCall = 12.0 * a.numel();
        try (Scope scope = Scope.open()) {
            Tensor x = a.requiresGrad(true);
            Tensor out = Elu.apply(x);
            long t0 = System.nanoTime();
            Autograd.backward(out, dy);
            rate.add(System.nanoTime() - t0);
            float g = x.grad().f32()[0];
            x.zeroGrad();
            return g;
        } finally {
            a.requiresGrad(false);
        }
    }

    @Benchmark
    public float add() {
        return timed("add", 12, () -> Elementwise.add(a, b));
    }

    @Benchmark
    public float avgPool5() {
        return timed("avgpool5", 8, () -> AvgPool5.apply(a));
    }

    @Benchmark
    public float meanPool2() {
        return timed("meanpool2", 5, () -> MeanPool2.apply(a));
    }
}
