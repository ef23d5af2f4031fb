package ncsn.cpu;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * Splits an index range across the machine's cores. One fixed set of workers for the whole
 * engine; ranges too small to pay for a hand-off run on the calling thread.
 *
 * <p>Why not a ForkJoinPool: its idle workers park at once, and waking a parked thread here
 * costs 25-95 us (an empty two-way {@code invoke} measured 26 us back to back, 95 us after
 * 200 us idle), while the engine's parallel loops are often a few hundred microseconds long;
 * and its external caller only waits. Here the caller takes pieces itself, and each worker
 * spins on the next job for {@code ncsn.spinMicros} (default {@value #DEFAULT_SPIN_MICROS}) before
 * it parks, as OpenMP runtimes do; a worker that wakes late only means the caller has taken
 * its pieces, never that the caller waits for the wake-up.
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

    static final long DEFAULT_SPIN_MICROS = 200;
    private static final long SPIN_NANOS = 1000 * Math.max(0, Long.getLong("ncsn.spinMicros", DEFAULT_SPIN_MICROS));

    private static volatile int threads = Math.max(1,
            Integer.getInteger("ncsn.threads", Runtime.getRuntime().availableProcessors()));
    private static volatile Pool pool = Pool.of(threads);

    private Parallel() {}

    public static int threads() {
        return threads;
    }

    /** Sets the worker count (clamped to [1, available processors]); returns the value used. */
    public static synchronized int setThreads(int n) {
        int max = Runtime.getRuntime().availableProcessors();
        int used = Math.max(1, Math.min(n, max));
        if (used != threads) {
            Pool old = pool;
            threads = used;
            pool = Pool.of(used);
            if (old != null) old.shutdown();
        }
        return used;
    }

    /**
     * Runs body over [0, n) in at most {@code threads()} contiguous pieces, each at least
     * {@code grain} long (piece c is [n c / pieces, n (c+1) / pieces)). Blocks until all pieces
     * are done; the caller runs pieces itself. A call made while another is running (from
     * inside a body, or from a second thread) runs on its own thread.
     */
    public static void forRange(int n, int grain, Range body) {
        if (n <= 0) return;
        Pool p = pool;
        int pieces = (int) Math.min(threads, Math.max(1, (long) n / Math.max(1, grain)));
        if (pieces <= 1 || p == null || !p.busy.compareAndSet(false, true)) {
            body.run(0, n);
            return;
        }
        try {
            Job job = new Job(body, n, pieces);
            p.start(job);
            job.runPieces();
            job.awaitFinished();
        } finally {
            p.busy.set(false);
        }
    }

    /** One forRange call: its pieces are taken from a counter by the caller and the workers. */
    private static final class Job {
        final Range body;
        final int n, pieces;
        final AtomicInteger next = new AtomicInteger(), finished = new AtomicInteger();
        volatile Throwable failure;

        Job(Range body, int n, int pieces) {
            this.body = body;
            this.n = n;
            this.pieces = pieces;
        }

        void runPieces() {
            int c;
            while ((c = next.getAndIncrement()) < pieces) {
                try {
                    body.run((int) ((long) n * c / pieces), (int) ((long) n * (c + 1) / pieces));
                } catch (Throwable e) {
                    if (failure == null) failure = e;
                } finally {
                    finished.incrementAndGet();
                }
            }
        }

        /** Waits for the pieces other threads took (they are running), then rethrows a failure. */
        void awaitFinished() {
            for (int spins = 0; finished.get() < pieces; spins++) {
                if ((spins & 1023) == 1023) Thread.yield(); // the worker may have lost its core
                else Thread.onSpinWait();
            }
            Throwable e = failure;
            if (e instanceof RuntimeException r) throw r;
            if (e instanceof Error err) throw err;
            if (e != null) throw new IllegalStateException(e);
        }
    }

    /** threads - 1 daemon workers waiting for the next job. */
    private static final class Pool {
        private static final Job SHUTDOWN = new Job((lo, hi) -> {}, 0, 0);

        final AtomicBoolean busy = new AtomicBoolean();
        final Worker[] workers;
        volatile Job current;

        private Pool(int workerCount) {
            workers = new Worker[workerCount];
            for (int i = 0; i < workerCount; i++) {
                workers[i] = new Worker(this, "ncsn-worker-" + i);
                workers[i].start();
            }
        }

        static Pool of(int threads) {
            return threads <= 1 ? null : new Pool(threads - 1);
        }

        void start(Job job) {
            current = job;
            // Pairs with Worker.await: it sets sleeping before its last look at current.
            for (Worker w : workers) {
                if (w.sleeping) LockSupport.unpark(w);
            }
        }

        void shutdown() {
            start(SHUTDOWN);
        }
    }

    private static final class Worker extends Thread {
        final Pool pool;
        volatile boolean sleeping;

        Worker(Pool pool, String name) {
            super(name);
            this.pool = pool;
            setDaemon(true);
        }

        @Override
        public void run() {
            Job seen = null;
            while (true) {
                Job job = await(seen);
                if (job == Pool.SHUTDOWN) return;
                job.runPieces();
                seen = job;
            }
        }

        /** The next job after {@code seen}: spins for SPIN_NANOS, then parks until start() unparks it. */
        private Job await(Job seen) {
            long since = System.nanoTime();
            for (int spins = 0; ; spins++) {
                Job job = pool.current;
                if (job != seen && job != null) return job;
                if ((spins & 63) != 63 || System.nanoTime() - since < SPIN_NANOS) {
                    Thread.onSpinWait();
                    continue;
                }
                sleeping = true;
                job = pool.current;
                if (job == seen || job == null) LockSupport.park(this);
                sleeping = false;
                since = System.nanoTime();
            }
        }
    }
}
