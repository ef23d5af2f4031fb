package ncsn.cuda;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Caching allocator for device memory. A training step requests the same sizes every time, so
 * freed blocks are kept in per-size-class free lists and handed out again: from the second step
 * on no {@code cuMemAlloc} happens (the {@link #rawAllocs()} counter lets tests check that).
 *
 * <p><b>Size classes</b> ({@link #sizeClass(long)}): requests are rounded up to
 * <ul>
 *   <li>a power of two, at least {@link #MIN_BLOCK} (512 bytes), up to 1 MiB;</li>
 *   <li>above 1 MiB, the next quarter step of the power-of-two octave: 2^k x {1, 1.25, 1.5, 1.75}
 *       (steps of 1.25x, 1.2x, 1.17x, 1.14x), so at most 25% of a large block is wasted while
 *       nearby sizes (batch tails, different feature maps) still share blocks.</li>
 * </ul>
 *
 * <p><b>Stream ordering.</b> The backend uses one stream; a block released while a kernel still
 * reads it can be reused at once, because every later use is queued behind that kernel on the
 * same stream (host copies use the legacy stream, which a blocking stream synchronises with).
 *
 * <p><b>Out of memory.</b> When the raw allocation reports out-of-memory, every cached block is
 * freed and the allocation retried once; if it still fails a {@link CudaError}
 * ({@code CUDA_ERROR_OUT_OF_MEMORY}) says how much was requested, in use and cached.
 *
 * <p><b>Holds</b> ({@link #hold()}): a CUDA graph bakes the device addresses of the temporaries
 * its captured work used into the graph, so those blocks must not serve anyone else while the
 * graph is replayed. While a hold is open, released blocks are kept by the hold (still counted in
 * use) instead of going back to the free lists; closing the hold returns them.
 *
 * <p>The raw memory comes from a {@link Raw} backend ({@code cuMemAlloc}/{@code cuMemFree} in
 * {@link CudaContext}); tests drive the bookkeeping with a fake backend on machines without a GPU.
 * Not thread-safe beyond its {@code synchronized} methods: one training thread drives the GPU.
 */
public final class DeviceAllocator {
    /** Smallest block (bytes); also the alignment every block gets from cuMemAlloc (256+). */
    public static final long MIN_BLOCK = 512;
    /** Above this many bytes, size classes are quarter steps of each octave instead of powers of two. */
    public static final long POW2_LIMIT = 1L << 20;

    /** Raw device memory: {@code alloc} returns a handle, or null when the device is out of memory. */
    public interface Raw {
        Object alloc(long bytes);

        void free(Object handle);
    }

    /** One device block: its handle (a {@code CUdeviceptr} for the real backend) and size class. */
    public static final class Block {
        final Object handle;
        final long bytes;
        boolean inUse;

        Block(Object handle, long bytes) {
            this.handle = handle;
            this.bytes = bytes;
        }

        public Object handle() {
            return handle;
        }

        /** Size-class bytes (>= the requested size). */
        public long bytes() {
            return bytes;
        }
    }

    /**
     * Blocks released while it was open (kept, not reusable) and blocks allocated while it was
     * open. One hold at a time; close it (try-with-resources) to return the kept blocks.
     */
    public final class Hold implements AutoCloseable {
        private final List<Block> kept = new ArrayList<>();
        private final Set<Block> allocated = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
        private final long rawAllocsAtOpen = rawAllocs;
        private boolean closed;

        private Hold() {}

        /** Blocks allocated while the hold is open and not yet released (they would escape it). */
        public int outstanding() {
            synchronized (DeviceAllocator.this) {
                int k = 0;
                for (Block b : allocated) if (b.inUse) k++;
                return k;
            }
        }

        /** Raw device allocations ({@code cuMemAlloc}) since the hold was opened. */
        public long rawAllocs() {
            synchronized (DeviceAllocator.this) {
                return rawAllocs - rawAllocsAtOpen;
            }
        }

        /** Blocks kept so far. */
        public int kept() {
            synchronized (DeviceAllocator.this) {
                return kept.size();
            }
        }

        /** Returns the kept blocks to the free lists; later releases go there directly. Idempotent. */
        @Override
        public void close() {
            synchronized (DeviceAllocator.this) {
                if (closed) return;
                closed = true;
                if (hold == this) hold = null;
                for (Block b : kept) toFreeList(b);
                kept.clear();
                allocated.clear();
            }
        }
    }

    private final Raw raw;
    private final Map<Long, ArrayDeque<Block>> free = new HashMap<>();
    private Hold hold;
    private long rawAllocs, rawFrees, hits, bytesInUse, bytesCached, peakBytes;

    public DeviceAllocator(Raw raw) {
        this.raw = raw;
    }

    /**
     * The size class that a request of {@code bytes} is served from (see the class comment).
     * Pure function: {@code sizeClass(b) >= max(b, MIN_BLOCK)}, monotone, idempotent.
     */
    public static long sizeClass(long bytes) {
        if (bytes < 0) throw new IllegalArgumentException("negative allocation size " + bytes);
        if (bytes <= MIN_BLOCK) return MIN_BLOCK;
        if (bytes <= POW2_LIMIT) return Long.highestOneBit(bytes - 1) << 1;
        long octave = Long.highestOneBit(bytes);      // 2^k <= bytes < 2^(k+1)
        long step = octave >> 2;                     // quarter of the octave
        long c = ((bytes + step - 1) / step) * step; // round up to a multiple of 2^k / 4
        if (c < bytes) throw new IllegalArgumentException("allocation size " + bytes + " overflows");
        return c;
    }

    /** A block of at least {@code bytes} bytes, from the cache when one of its class is free. */
    public synchronized Block allocate(long bytes) {
        long cls = sizeClass(bytes);
        ArrayDeque<Block> q = free.get(cls);
        Block b = q == null ? null : q.pollLast();
        if (b != null) {
            hits++;
            bytesCached -= cls;
        } else {
            Object h = raw.alloc(cls);
            if (h == null && bytesCached > 0) {
                emptyCache();
                h = raw.alloc(cls);
            }
            if (h == null) {
                throw new CudaError("CUDA_ERROR_OUT_OF_MEMORY", "CUDA error in cuMemAlloc(" + cls + " bytes for a request of "
                        + bytes + "): CUDA_ERROR_OUT_OF_MEMORY with " + mib(bytesInUse) + " in use by ncsn tensors"
                        + " (cache already emptied)" + CudaError.hint("CUDA_ERROR_OUT_OF_MEMORY"));
            }
            rawAllocs++;
            b = new Block(h, cls);
        }
        b.inUse = true;
        bytesInUse += cls;
        peakBytes = Math.max(peakBytes, bytesInUse);
        if (hold != null) hold.allocated.add(b);
        return b;
    }

    /**
     * Opens a hold (see the class comment): until it is closed, released blocks are kept instead
     * of being reused. Throws if one is already open.
     */
    public synchronized Hold hold() {
        if (hold != null) throw new IllegalStateException("device allocator: a hold is already open");
        hold = new Hold();
        return hold;
    }

    /** Returns {@code b} to its free list. Releasing a block twice is a bug and throws. */
    public synchronized void release(Block b) {
        if (!b.inUse) throw new IllegalStateException("device block of " + b.bytes + " bytes released twice");
        b.inUse = false;
        if (hold != null) {
            hold.kept.add(b); // still counted in use until the hold closes
            return;
        }
        toFreeList(b);
    }

    private void toFreeList(Block b) {
        bytesInUse -= b.bytes;
        bytesCached += b.bytes;
        free.computeIfAbsent(b.bytes, k -> new ArrayDeque<>()).addLast(b);
    }

    /** Frees every cached (unused) block back to the device. Blocks in use are untouched. */
    public synchronized void emptyCache() {
        for (ArrayDeque<Block> q : free.values()) {
            for (Block b : q) {
                raw.free(b.handle);
                rawFrees++;
            }
            q.clear();
        }
        bytesCached = 0;
    }

    /** Number of raw allocations ({@code cuMemAlloc} calls) so far. */
    public synchronized long rawAllocs() {
        return rawAllocs;
    }

    /** Number of raw frees ({@code cuMemFree} calls) so far. */
    public synchronized long rawFrees() {
        return rawFrees;
    }

    /** Allocations served from the cache. */
    public synchronized long cacheHits() {
        return hits;
    }

    public synchronized long bytesInUse() {
        return bytesInUse;
    }

    /** Bytes held in free lists (allocated on the device, not in use). */
    public synchronized long bytesCached() {
        return bytesCached;
    }

    public synchronized long peakBytesInUse() {
        return peakBytes;
    }

    /** One line for logs: "device memory: 12.0 MiB in use (peak 20.0 MiB), 8.0 MiB cached, 5 cuMemAlloc, 120 reused". */
    public synchronized String stats() {
        return "device memory: " + mib(bytesInUse) + " in use (peak " + mib(peakBytes) + "), " + mib(bytesCached)
                + " cached, " + rawAllocs + " cuMemAlloc, " + hits + " reused";
    }

    private static String mib(long bytes) {
        return String.format(java.util.Locale.ROOT, "%.1f MiB", bytes / 1048576.0);
    }
}
