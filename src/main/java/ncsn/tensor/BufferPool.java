package ncsn.tensor;

import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;

/**
 * Reuses the arrays of freed temporaries. A training step allocates the same shapes every time,
 * so arrays are kept by exact length: from the second step on, every temporary is served from
 * here and the garbage collector sees no churn. Counters let tests and benchmarks verify that.
 */
public final class BufferPool {
    private static final Map<Integer, ArrayDeque<float[]>> FLOATS = new HashMap<>();
    private static final Map<Integer, ArrayDeque<double[]>> DOUBLES = new HashMap<>();
    private static long fresh, reused, pooledBytes;
    /** Arrays beyond this many pooled bytes are left to the GC instead (a safety cap). */
    private static final long MAX_POOLED_BYTES = Long.getLong("ncsn.pool.maxBytes", 16L << 30);

    private BufferPool() {}

    static synchronized float[] takeFloats(int length) {
        ArrayDeque<float[]> q = FLOATS.get(length);
        float[] a = q == null ? null : q.pollLast();
        if (a == null) {
            fresh++;
        } else {
            reused++;
            pooledBytes -= 4L * length;
        }
        return a;
    }

    static synchronized double[] takeDoubles(int length) {
        ArrayDeque<double[]> q = DOUBLES.get(length);
        double[] a = q == null ? null : q.pollLast();
        if (a == null) {
            fresh++;
        } else {
            reused++;
            pooledBytes -= 8L * length;
        }
        return a;
    }

    static synchronized void give(float[] a) {
        if (pooledBytes + 4L * a.length > MAX_POOLED_BYTES) return;
        FLOATS.computeIfAbsent(a.length, k -> new ArrayDeque<>()).addLast(a);
        pooledBytes += 4L * a.length;
    }

    static synchronized void give(double[] a) {
        if (pooledBytes + 8L * a.length > MAX_POOLED_BYTES) return;
        DOUBLES.computeIfAbsent(a.length, k -> new ArrayDeque<>()).addLast(a);
        pooledBytes += 8L * a.length;
    }

    /** Allocations that had to create a new array (pool misses) since start. */
    public static synchronized long freshAllocations() {
        return fresh;
    }

    /** Allocations served from the pool since start. */
    public static synchronized long reusedAllocations() {
        return reused;
    }

    /** Bytes currently held by the pool, waiting for reuse. */
    public static synchronized long pooledBytes() {
        return pooledBytes;
    }

    /** Drops every pooled array (for example between benchmark configurations). */
    public static synchronized void clear() {
        FLOATS.clear();
        DOUBLES.clear();
        pooledBytes = 0;
    }
}
