package ncsn.tensor;

import java.util.concurrent.atomic.AtomicLong;

/**
 * The memory behind one or more tensors (a tensor and its reshape views share one storage).
 * Device-specific: {@link CpuStorage} now; the CUDA backend adds a device-memory subclass.
 * Freeing is explicit and idempotent; every later access fails with a message naming the op.
 */
public abstract class Storage {
    private static final AtomicLong MADE = new AtomicLong();

    private boolean freed;
    /** Whether freeing hands the memory back to a pool for reuse (scope-owned temporaries). */
    final boolean pooled;
    /** Creation order: a storage made later has a larger serial ({@link #madeSoFar}). */
    private final long serial = MADE.incrementAndGet();

    /** The serial of the last storage made so far: storages made after this call have larger ones. */
    public static long madeSoFar() {
        return MADE.get();
    }

    public final long serial() {
        return serial;
    }

    /** Whether this is a scope-owned temporary whose memory goes back to the pool when freed. */
    public final boolean isPooled() {
        return pooled;
    }

    protected Storage(boolean pooled) {
        this.pooled = pooled;
    }

    public abstract Device device();

    public abstract DType dtype();

    /** Number of elements. */
    public abstract int length();

    public final boolean isFreed() {
        return freed;
    }

    /** Releases the memory (to the pool when pooled). Safe to call twice. */
    public final void free() {
        if (freed) return;
        freed = true;
        release();
    }

    protected abstract void release();
}
