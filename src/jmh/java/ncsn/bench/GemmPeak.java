package ncsn.bench;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import ncsn.cpu.Gemm;
import ncsn.cpu.GemmKernel;
import ncsn.cpu.Parallel;
import ncsn.cpu.Simd;

/**
 * A quick table: this machine's FMA peak (a register-only FloatVector FMA loop, on 1 core and on
 * all cores at once) and sgemm GFLOP/s for square sizes, scalar / vector kernels, 1 / 2 threads,
 * with the fraction of the peak for that many cores.
 *
 * <pre>
 * mvn -Dncsn.build.dir=/tmp/build-gemm -Pbench package -DskipTests
 * java --add-modules jdk.incubator.vector -Xms2g -Xmx2g -XX:+AlwaysPreTouch \
 *      -cp /tmp/build-gemm/benchmarks.jar ncsn.bench.GemmPeak [sizes, default 512,1024,2048]
 * </pre>
 * Each cell is the best of 5 samples of at least 0.3 s after warm-up, with the median after it.
 * One sgemm call is 2 n^3 floating-point operations.
 */
public final class GemmPeak {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    private GemmPeak() {}

    /** 12 independent FMA chains (enough to cover 4-cycle latency on 2 pipes), no memory access. */
    static float fmaLoop(long iters) {
        FloatVector x = FloatVector.broadcast(S, 0.999f), y = FloatVector.broadcast(S, 0.001f);
        FloatVector c0 = FloatVector.zero(S), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
        FloatVector c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
        for (long i = 0; i < iters; i++) {
            c0 = c0.fma(x, y); c1 = c1.fma(x, y); c2 = c2.fma(x, y); c3 = c3.fma(x, y);
            c4 = c4.fma(x, y); c5 = c5.fma(x, y); c6 = c6.fma(x, y); c7 = c7.fma(x, y);
            c8 = c8.fma(x, y); c9 = c9.fma(x, y); c10 = c10.fma(x, y); c11 = c11.fma(x, y);
        }
        return c0.add(c1).add(c2).add(c3).add(c4).add(c5).add(c6).add(c7).add(c8).add(c9)
                .add(c10).add(c11).reduceLanes(VectorOperators.ADD);
    }

    static volatile float sink;

    /** Best GFLOP/s of the FMA loop over 7 samples, on {@code threads} threads at once. */
    static double peak(int threads) throws InterruptedException {
        for (int i = 0; i < 20_000; i++) sink = fmaLoop(500); // C2 compiles it
        long iters = 20_000_000;
        double flopsPerThread = iters * 12.0 * S.length() * 2;
        double best = 0;
        for (int s = 0; s < 7; s++) {
            CountDownLatch start = new CountDownLatch(1);
            List<Thread> ts = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                Thread th = new Thread(() -> {
                    try {
                        start.await();
                    } catch (InterruptedException e) {
                        return;
                    }
                    sink = fmaLoop(iters);
                });
                th.start();
                ts.add(th);
            }
            long t0 = System.nanoTime();
            start.countDown();
            for (Thread th : ts) th.join();
            double sec = (System.nanoTime() - t0) / 1e9;
            best = Math.max(best, flopsPerThread * threads / sec / 1e9);
        }
        return best;
    }

    /** {best, median} GFLOP/s of square sgemm. */
    static double[] sgemm(GemmKernel k, int n, int threads) {
        Parallel.setThreads(threads);
        SplittableRandom rnd = new SplittableRandom(7);
        float[] a = new float[n * n], b = new float[n * n], c = new float[n * n];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) (rnd.nextDouble() - 0.5);
            b[i] = (float) (rnd.nextDouble() - 0.5);
        }
        double flops = 2.0 * n * n * n;
        // warm-up: at least 3 calls and 1 s (the vector code is slow until C2 has compiled it)
        long w0 = System.nanoTime();
        for (int i = 0; i < 3 || System.nanoTime() - w0 < 1_000_000_000L; i++) {
            Gemm.sgemm(k, true, false, false, n, n, n, 1f, a, 0, n, b, 0, n, 0f, c, 0, n);
        }
        double[] samples = new double[5];
        for (int s = 0; s < samples.length; s++) {
            int calls = 0;
            long t0 = System.nanoTime();
            do {
                Gemm.sgemm(k, true, false, false, n, n, n, 1f, a, 0, n, b, 0, n, 0f, c, 0, n);
                calls++;
            } while (System.nanoTime() - t0 < 300_000_000L);
            samples[s] = flops * calls / ((System.nanoTime() - t0) / 1e9) / 1e9;
        }
        Arrays.sort(samples);
        return new double[] {samples[samples.length - 1], samples[samples.length / 2]};
    }

    public static void main(String[] args) throws InterruptedException {
        int[] sizes = Arrays.stream((args.length > 0 ? args[0] : "512,1024,2048").split(","))
                .mapToInt(Integer::parseInt).toArray();
        int cores = Runtime.getRuntime().availableProcessors();
        int maxThreads = Math.min(2, cores);
        Simd.description(); // logs the kernel choice once
        double peak1 = peak(1), peak2 = maxThreads > 1 ? peak(maxThreads) : peak1;
        System.out.printf("FMA peak (register-only FloatVector loop, %d-bit, %d floats/vector): "
                + "1 thread %.1f GFLOP/s, %d threads %.1f GFLOP/s%n",
                S.vectorBitSize(), S.length(), peak1, maxThreads, peak2);
        List<GemmKernel> kernels = new ArrayList<>();
        kernels.add(Simd.scalarGemm());
        if (Simd.vectorGemmOrNull() != null) kernels.add(Simd.vectorGemmOrNull());
        System.out.println("sgemm n x n x n, no transposes: best GFLOP/s of 5 samples (median), "
                + "% of the FMA peak for that many threads");
        StringBuilder head = new StringBuilder(String.format("%6s", "n"));
        for (GemmKernel k : kernels) {
            for (int t = 1; t <= maxThreads; t++) head.append(String.format("  %-24s", k.name() + " t=" + t));
        }
        System.out.println(head);
        for (int n : sizes) {
            StringBuilder row = new StringBuilder(String.format("%6d", n));
            for (GemmKernel k : kernels) {
                for (int t = 1; t <= maxThreads; t++) {
                    double[] g = sgemm(k, n, t);
                    double pct = 100 * g[0] / (t == 1 ? peak1 : peak2);
                    row.append(String.format("  %-24s", String.format("%.1f (%.1f) %.0f%%", g[0], g[1], pct)));
                }
            }
            System.out.println(row);
        }
        Parallel.setThreads(cores);
    }
}
