package ncsn.bench;

import java.util.Collection;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import ncsn.cpu.Gemm;
import ncsn.cpu.GemmKernel;
import ncsn.cpu.Parallel;
import ncsn.cpu.Simd;
import ncsn.ops.Conv2d;
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
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.options.CommandLineOptions;

/**
 * The float32 conv kernels ({@link Conv2d.Cpu}) on NCSN's layer shapes: forward, backward-data
 * and backward-weight (+ bias) timed separately, at batch 128 by default.
 *
 * <p>Work per op: FLOPs = 2 * N * Co * Ci * kh * kw * Ho * Wo, the same for all three passes
 * (backward-data and backward-weight are GEMMs of the same size). For example, batch 128:
 * <pre>
 *   64ch_32x32_d*       2*128*64*64*9*1024    =  9.66 GFLOP per op
 *   128ch_32x32_d1      2*128*128*128*9*1024  = 38.65 GFLOP
 *   128ch_16x16_d*      2*128*128*128*9*256   =  9.66 GFLOP
 *   64to128ch_32x32_1x1 2*128*128*64*1*1024   =  2.15 GFLOP
 * </pre>
 * GFLOP/s = FLOPs / (ms per op * 1e6). Run through this class's {@link #main} to get a table with
 * GFLOP/s computed from the results:
 * <pre>
 *   java -cp benchmarks.jar ncsn.bench.ConvBench -p layer=64ch_32x32_d1,128ch_16x16_d2 -wi 2 -i 3 -f 1
 * </pre>
 * or as usual ({@code java -jar benchmarks.jar ConvBench}) for ms/op only.
 *
 * <p>Layers ({@code layer} param): {@code <C>ch_<H>x<W>_d<dilation>} is a 3x3 conv C -> C with
 * padding = dilation (ResBlocks, RefineNet convs); {@code <Ci>to<Co>ch_<H>x<W>_1x1} is the 1x1
 * shortcut with padding 0 (ConvMeanPool in res2). {@code threading}: AUTO (workers take whole
 * images when batch >= threads), IMAGES, or GEMM (images in sequence, the GEMM splits its work)
 * choose among the im2col kernels; DEFAULT runs what the engine runs (Conv2d.Cpu's default entry
 * points: Winograd F(2x2,3x3) for 3x3 convs with at least 16 channels each side, unless
 * -jvmArgsAppend "--add-modules jdk.incubator.vector -Dncsn.conv.winograd=off"). The FLOP count
 * stays the direct convolution's, so Winograd's GFLOP/s are "effective" (it does 2.25x fewer
 * multiplies in its GEMMs).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xms4g", "-Xmx4g", "-XX:+AlwaysPreTouch"})
public class ConvBench {
    @Param({"128"})
    public int batch;

    @Param({"64ch_32x32_d1", "64ch_32x32_d2", "64ch_32x32_d4", "128ch_32x32_d1",
            "128ch_16x16_d1", "128ch_16x16_d2", "128ch_16x16_d4", "64to128ch_32x32_1x1"})
    public String layer;

    @Param({"AUTO"})
    public String threading;

    private Conv2d.Dims g;
    private GemmKernel kernel;
    private Conv2d.Cpu.Threading mode;
    private float[] x, w, b, y, dy, dx, dw, db, col;

    private static final Pattern CONV3 = Pattern.compile("(\\d+)ch_(\\d+)x(\\d+)_d(\\d+)");
    private static final Pattern CONV1 = Pattern.compile("(\\d+)to(\\d+)ch_(\\d+)x(\\d+)_1x1");

    /** The conv sizes named by {@code layer} at batch {@code n}. */
    static Conv2d.Dims dims(String layer, int n) {
        Matcher m = CONV3.matcher(layer);
        if (m.matches()) {
            int c = Integer.parseInt(m.group(1)), d = Integer.parseInt(m.group(4));
            return new Conv2d.Dims(n, c, Integer.parseInt(m.group(2)), Integer.parseInt(m.group(3)), c, 3, 3, d, d);
        }
        m = CONV1.matcher(layer);
        if (m.matches()) {
            return new Conv2d.Dims(n, Integer.parseInt(m.group(1)), Integer.parseInt(m.group(3)),
                    Integer.parseInt(m.group(4)), Integer.parseInt(m.group(2)), 1, 1, 0, 1);
        }
        throw new IllegalArgumentException("layer '" + layer + "': expected <C>ch_<H>x<W>_d<dil> or <Ci>to<Co>ch_<H>x<W>_1x1");
    }

    @Setup(Level.Trial)
    public void setup() {
        g = dims(layer, batch);
        kernel = Simd.gemmKernel();
        mode = threading.equals("DEFAULT") ? null : Conv2d.Cpu.Threading.valueOf(threading);
        Random r = new Random(42);
        x = fill(r, g.n() * g.ci() * g.h() * g.w(), 1f);
        w = fill(r, g.co() * g.k(), (float) (1 / Math.sqrt(g.k())));
        b = fill(r, g.co(), 0.1f);
        dy = fill(r, g.n() * g.co() * g.p(), 1f);
        y = new float[dy.length];
        dx = new float[x.length];
        dw = new float[w.length];
        db = new float[g.co()];
        col = fill(r, g.k() * g.p(), 1f);
        System.out.printf("%n[conv] %s: %.3f GFLOP per op, gemm kernel %s, %d threads, threading %s%n",
                g, g.flops() / 1e9, kernel.name(), Parallel.threads(), mode);
    }

    private static float[] fill(Random r, int n, float scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) r.nextGaussian() * scale;
        return a;
    }

    @Benchmark
    public float[] forward() {
        if (mode == null) Conv2d.Cpu.forward(g, x, w, b, y);
        else Conv2d.Cpu.forward(kernel, mode, g, x, w, b, y);
        return y;
    }

    @Benchmark
    public float[] backwardData() {
        if (mode == null) Conv2d.Cpu.backwardData(g, dy, w, dx);
        else Conv2d.Cpu.backwardData(kernel, mode, g, dy, w, dx);
        return dx;
    }

    @Benchmark
    public float[] backwardWeight() {
        if (mode == null) Conv2d.Cpu.backwardWeight(g, x, dy, dw, db);
        else Conv2d.Cpu.backwardWeight(kernel, mode, g, x, dy, dw, db);
        return dw;
    }

    /**
     * The floor under {@link #forward}: the same per-image GEMMs (W[Co,K] * col[K,P]) on one
     * precomputed im2col matrix, images spread over the workers as in IMAGES threading, no
     * im2col and no bias. forward minus this is the conv's own overhead.
     */
    @Benchmark
    public float[] forwardGemmOnly() {
        int nImages = g.n(), co = g.co(), k = g.k(), p = g.p();
        AtomicInteger next = new AtomicInteger();
        Parallel.forRange(Math.min(Parallel.threads(), nImages), 1, (lo, hi) -> {
            for (int n; (n = next.getAndIncrement()) < nImages; )
                Gemm.sgemm(kernel, false, false, false, co, p, k, 1f, w, 0, k, col, 0, p, 0f, y, n * co * p, p);
        });
        return y;
    }

    /** Runs JMH with the given command-line options, then prints ms/op and GFLOP/s per result. */
    public static void main(String[] args) throws Exception {
        CommandLineOptions opts = new CommandLineOptions(args.length == 0 ? new String[] {"ConvBench"} : args);
        if (opts.getIncludes().isEmpty()) {
            String[] more = new String[args.length + 1];
            System.arraycopy(args, 0, more, 1, args.length);
            more[0] = ConvBench.class.getSimpleName();
            opts = new CommandLineOptions(more);
        }
        Collection<RunResult> results = new Runner(opts).run();
        System.out.printf("%n%-16s %-22s %-9s %6s %10s %9s%n", "pass", "layer", "threading", "batch", "ms/op", "GFLOP/s");
        for (RunResult rr : results) {
            var p = rr.getParams();
            String name = p.getBenchmark().substring(p.getBenchmark().lastIndexOf('.') + 1);
            int n = Integer.parseInt(p.getParam("batch"));
            Conv2d.Dims d = dims(p.getParam("layer"), n);
            double score = rr.getPrimaryResult().getScore();
            double ms = switch (rr.getPrimaryResult().getScoreUnit()) {
                case "ms/op" -> score;
                case "us/op" -> score / 1e3;
                case "ns/op" -> score / 1e6;
                case "s/op" -> score * 1e3;
                default -> Double.NaN;
            };
            System.out.printf("%-16s %-22s %-9s %6d %10.2f %9.1f%n", name, p.getParam("layer"), p.getParam("threading"),
                    n, ms, d.flops() / (ms * 1e6));
        }
    }
}
