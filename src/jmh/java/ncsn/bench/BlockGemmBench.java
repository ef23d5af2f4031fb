package ncsn.bench;

import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import ncsn.cpu.Gemm;
import ncsn.cpu.GemmKernel;
import ncsn.cpu.Simd;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * One of Winograd's 16 block products, M [m x n] = U [m x k] (packed once) * V [k x n], on the
 * calling thread, with V packed into panels ({@code source=panels}) or read where it lies
 * ({@code source=inPlace}, {@link Gemm#rowsInPlace}). Shapes as in the 28x28 (64 channels) and
 * 14x14 (128 channels) layers, n = tiles per block. One call is {@code 2 m n k} flops
 * (64x64x192: 1.57 MFLOP, 128x128x96: 3.15 MFLOP); V is k x n floats, read once either way, and
 * copied once more when packed.
 *
 * <pre>
 * java -jar target/benchmarks.jar BlockGemmBench -f 1 -wi 3 -i 5
 * </pre>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xms1g", "-Xmx1g"})
public class BlockGemmBench {

    /** m x k x n. */
    @Param({"64x64x192", "128x128x96"})
    public String shape;

    @Param({"panels", "inPlace"})
    public String source;

    private GemmKernel kernel;
    private Gemm.PackedA u;
    private float[] v, m;
    private int n, ld;

    @Setup
    public void setup() {
        kernel = Simd.gemmKernel();
        String[] p = shape.split("x");
        int rows = Integer.parseInt(p[0]), k = Integer.parseInt(p[1]);
        n = Integer.parseInt(p[2]);
        ld = n + 16; // as Winograd's planes: whole vectors of tiles
        SplittableRandom rnd = new SplittableRandom(3);
        float[] a = new float[rows * k];
        for (int i = 0; i < a.length; i++) a[i] = (float) (rnd.nextDouble() - 0.5);
        u = Gemm.packA(kernel, false, rows, k, a, 0, k, new float[Gemm.packedASize(kernel, rows, k)]);
        v = new float[k * ld + 64];
        for (int i = 0; i < v.length; i++) v[i] = (float) (rnd.nextDouble() - 0.5);
        m = new float[rows * ld];
    }

    @Benchmark
    public float[] product() {
        Gemm.PanelSource b = source.equals("inPlace") ? Gemm.rowsInPlace(kernel, v, 0, ld)
                : Gemm.panels(kernel, false, v, 0, ld);
        Gemm.sgemm(kernel, false, u, b, n, 1f, 0f, m, 0, ld);
        return m;
    }
}
