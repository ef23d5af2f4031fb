package ncsn.cpu;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.concurrent.RecursiveAction;

/**
 * Splits an index range across the machine's cores. One fixed pool for the whole engine; ranges
 * too small to pay for a hand-off run on the calling thread.
 *
 * <p>Thread count: system property {@code ncsn.threads} (default: available processors), or
 * {@link #setThreads(int)} (benchmarks compare 1 vs all).
 */
public final class Parallel {
    /** A body over [lo, hi). */
    @FunctionalInterface
    public interface Range {
        void run(int lo, int hi);
    }

    private static volatile int threads = Math.max(1,
            Integer.getInteger("ncsn.threads", Runtime.getRuntime().availableProcessors()));
    private static volatile ForkJoinPool pool = newPool(threads);

    private Parallel() {}

    private static ForkJoinPool newPool(int n) {
        java.util.concurrent.atomic.AtomicInteger made = new java.util.concurrent.atomic.AtomicInteger();
        return n <= 1 ? null : new ForkJoinPool(n, p -> {
            var t = ForkJoinPool.defaultForkJoinWorkerThreadFactory.newThread(p);
            // Numbered here: getPoolIndex() is still 0 when the factory runs (every worker was "ncsn-worker-0").
            t.setName("ncsn-worker-" + made.getAndIncrement());
            t.setDaemon(true);
            return t;
        }, null, false);
    }

    public static int threads() {
        return threads;
    }

    /** Sets the worker count (clamped to [1, available processors]); returns the value used. */
    public static synchronized int setThreads(int n) {
        int max = Runtime.getRuntime().availableProcessors();
        int used = Math.max(1, Math.min(n, max));
        if (used != threads) {
            ForkJoinPool old = pool;
            threads = used;
            pool = newPool(used);
            if (old != null) old.shutdown();
        }
        return used;
    }

    /**
     * Runs body over [0, n) in at most {@code threads()} contiguous chunks, each at least
     * {@code grain} long. Blocks until all chunks are done; the caller runs one chunk itself.
     */
    public static void forRange(int n, int grain, Range body) {
        if (n <= 0) return;
        int t = threads;
        ForkJoinPool p = pool;
        int chunks = (int) Math.min(t, Math.max(1, (long) n / Math.max(1, grain)));
        if (chunks <= 1 || p == null || ForkJoinTask.inForkJoinPool()) {
            body.run(0, n);
            return;
        }
        p.invoke(new Split(body, 0, n, chunks));
    }

    /** Balanced binary split into {@code chunks} pieces. */
    private static final class Split extends RecursiveAction {
        private final Range body;
        private final int lo, hi, chunks;

        Split(Range body, int lo, int hi, int chunks) {
            this.body = body;
            this.lo = lo;
            this.hi = hi;
            this.chunks = chunks;
        }

        @Override
        protected void compute() {
            if (chunks <= 1) {
                body.run(lo, hi);
                return;
            }
            int leftChunks = chunks / 2;
            int mid = lo + (int) ((long) (hi - lo) * leftChunks / chunks);
            Split right = new Split(body, mid, hi, chunks - leftChunks);
            right.fork();
            new Split(body, lo, mid, leftChunks).compute();
            right.join();
        }
    }
}
