package ncsn.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

class ParallelTest {
    private static final int SAVED_THREADS = Parallel.threads();

    @AfterAll
    static void restoreThreads() {
        Parallel.setThreads(SAVED_THREADS);
    }

    /** Every index is visited exactly once, in contiguous pieces of at least grain, for many n and grains. */
    @Test
    void piecesCoverTheRangeOnce() {
        Parallel.setThreads(2);
        for (int n : new int[] {1, 2, 3, 7, 64, 1001}) {
            for (int grain : new int[] {1, 2, 5, 1000}) {
                for (int rep = 0; rep < 50; rep++) {
                    AtomicIntegerArray hits = new AtomicIntegerArray(n);
                    List<int[]> pieces = java.util.Collections.synchronizedList(new ArrayList<>());
                    Parallel.forRange(n, grain, (lo, hi) -> {
                        pieces.add(new int[] {lo, hi});
                        for (int i = lo; i < hi; i++) hits.incrementAndGet(i);
                    });
                    for (int i = 0; i < n; i++) assertEquals(1, hits.get(i), "n=" + n + " grain=" + grain + " index " + i);
                    assertTrue(pieces.size() <= Parallel.threads(), "at most one piece per thread");
                    if (pieces.size() > 1) {
                        for (int[] p : pieces) assertTrue(p[1] - p[0] >= grain, "piece shorter than the grain");
                    }
                }
            }
        }
    }

    /** A large enough range is shared: over many calls both the caller and a worker take pieces. */
    @Test
    void workIsSharedWithTheWorkers() {
        int used = Parallel.setThreads(2);
        if (used < 2) {
            System.out.println("[ncsn] ParallelTest.workIsSharedWithTheWorkers skipped: one core");
            return;
        }
        ConcurrentHashMap<String, Integer> byThread = new ConcurrentHashMap<>();
        for (int call = 0; call < 200 && byThread.size() < 2; call++) {
            Parallel.forRange(2, 1, (lo, hi) -> {
                byThread.merge(Thread.currentThread().getName(), 1, Integer::sum);
                long until = System.nanoTime() + 200_000; // long enough for a parked worker to wake up
                while (System.nanoTime() < until) Thread.onSpinWait();
            });
        }
        assertEquals(2, byThread.size(), "threads that ran pieces: " + byThread);
    }

    /** A call from inside a body (or while another runs) runs whole on its own thread. */
    @Test
    void nestedCallsRunOnTheirThread() {
        Parallel.setThreads(2);
        AtomicIntegerArray hits = new AtomicIntegerArray(100);
        Parallel.forRange(10, 1, (lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                int row = i;
                String outer = Thread.currentThread().getName();
                Parallel.forRange(10, 1, (lo2, hi2) -> {
                    assertEquals(0, lo2);
                    assertEquals(10, hi2);
                    assertEquals(outer, Thread.currentThread().getName());
                    for (int j = lo2; j < hi2; j++) hits.incrementAndGet(row * 10 + j);
                });
            }
        });
        for (int i = 0; i < 100; i++) assertEquals(1, hits.get(i));
    }

    /** A body's exception reaches the caller, whichever thread ran the piece, and the pool still works after it. */
    @Test
    void failuresReachTheCaller() {
        Parallel.setThreads(2);
        IllegalStateException boom = new IllegalStateException("boom");
        for (int failing = 0; failing < 2; failing++) {
            int bad = failing;
            IllegalStateException got = assertThrows(IllegalStateException.class,
                    () -> Parallel.forRange(2, 1, (lo, hi) -> {
                        if (lo == bad) throw boom;
                    }));
            assertSame(boom, got);
        }
        AtomicIntegerArray hits = new AtomicIntegerArray(8);
        Parallel.forRange(8, 1, (lo, hi) -> {
            for (int i = lo; i < hi; i++) hits.incrementAndGet(i);
        });
        for (int i = 0; i < 8; i++) assertEquals(1, hits.get(i));
    }

    /** Two threads calling at once both get their whole range done (one of them on its own thread). */
    @Test
    void concurrentCallersBothComplete() throws InterruptedException {
        Parallel.setThreads(2);
        int n = 5000;
        AtomicIntegerArray a = new AtomicIntegerArray(n), b = new AtomicIntegerArray(n);
        Thread other = new Thread(() -> {
            for (int rep = 0; rep < 200; rep++) Parallel.forRange(n, 1, (lo, hi) -> {
                for (int i = lo; i < hi; i++) b.incrementAndGet(i);
            });
        });
        other.start();
        for (int rep = 0; rep < 200; rep++) Parallel.forRange(n, 1, (lo, hi) -> {
            for (int i = lo; i < hi; i++) a.incrementAndGet(i);
        });
        other.join();
        for (int i = 0; i < n; i++) {
            assertEquals(200, a.get(i));
            assertEquals(200, b.get(i));
        }
    }

    /** Changing the thread count replaces the workers; calls keep working at every count. */
    @Test
    void threadCountChanges() {
        int max = Runtime.getRuntime().availableProcessors();
        assertEquals(1, Parallel.setThreads(0));
        assertEquals(max, Parallel.setThreads(max + 5));
        for (int t = 1; t <= Math.min(max, 3); t++) {
            assertEquals(t, Parallel.setThreads(t));
            AtomicIntegerArray hits = new AtomicIntegerArray(33);
            Parallel.forRange(33, 1, (lo, hi) -> {
                for (int i = lo; i < hi; i++) hits.incrementAndGet(i);
            });
            for (int i = 0; i < 33; i++) assertEquals(1, hits.get(i));
        }
    }
}
