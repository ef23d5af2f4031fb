package ncsn.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The caching allocator's arithmetic and bookkeeping, on any machine: size classes are a pure
 * function, and the free lists are driven by a fake raw backend (a byte budget instead of
 * cuMemAlloc), so reuse, double release and the out-of-memory retry are checked without a GPU.
 */
class DeviceAllocatorTest {
    private static final long MiB = 1L << 20;

    /** Fake device with {@code capacity} bytes; handles are sequence numbers. */
    static final class FakeRaw implements DeviceAllocator.Raw {
        final long capacity;
        long used;
        int allocs, frees, next;

        FakeRaw(long capacity) {
            this.capacity = capacity;
        }

        @Override
        public Object alloc(long bytes) {
            if (used + bytes > capacity) return null;
            used += bytes;
            allocs++;
            return new long[] {next++, bytes};
        }

        @Override
        public void free(Object handle) {
            used -= ((long[]) handle)[1];
            frees++;
        }
    }

    @Test
    void sizeClassesKnownValues() {
        assertEquals(512, DeviceAllocator.sizeClass(0));
        assertEquals(512, DeviceAllocator.sizeClass(1));
        assertEquals(512, DeviceAllocator.sizeClass(512));
        assertEquals(1024, DeviceAllocator.sizeClass(513));
        assertEquals(4096, DeviceAllocator.sizeClass(4000));
        assertEquals(MiB, DeviceAllocator.sizeClass(MiB / 2 + 1));
        assertEquals(MiB, DeviceAllocator.sizeClass(MiB));
        // above 1 MiB: quarter steps of the octave
        assertEquals(MiB + MiB / 4, DeviceAllocator.sizeClass(MiB + 1));
        assertEquals(MiB + MiB / 4, DeviceAllocator.sizeClass(MiB + MiB / 4));
        assertEquals(MiB + MiB / 2, DeviceAllocator.sizeClass(MiB + MiB / 4 + 1));
        assertEquals(2 * MiB, DeviceAllocator.sizeClass(MiB + 3 * MiB / 4 + 1));
        assertEquals(3 * MiB, DeviceAllocator.sizeClass(3 * MiB));
        assertEquals(3 * MiB + MiB / 2, DeviceAllocator.sizeClass(3 * MiB + 1));
        assertEquals(10L << 30, DeviceAllocator.sizeClass((10L << 30) - 12345)); // 10 GiB = 8 GiB * 1.25
        assertThrows(IllegalArgumentException.class, () -> DeviceAllocator.sizeClass(-1));
    }

    @Test
    void sizeClassesAreMonotoneIdempotentAndWasteBounded() {
        java.util.Random r = new java.util.Random(7);
        long prevB = 0, prevC = DeviceAllocator.sizeClass(0);
        for (int i = 0; i < 20000; i++) {
            long b = prevB + 1 + (long) (r.nextDouble() * r.nextDouble() * 3 * MiB);
            long c = DeviceAllocator.sizeClass(b);
            assertTrue(c >= b && c >= DeviceAllocator.MIN_BLOCK, "class " + c + " < request " + b);
            assertTrue(c >= prevC, "not monotone at " + b);
            assertEquals(c, DeviceAllocator.sizeClass(c), "not idempotent at " + c);
            if (b <= MiB) assertEquals(1, Long.bitCount(c), "class below 1 MiB not a power of two: " + c);
            else assertTrue(c < b * 1.25 + 1, "more than 25% waste: " + b + " -> " + c);
            prevB = b;
            prevC = c;
        }
    }

    @Test
    void secondStepDoesNoRawAllocation() {
        FakeRaw raw = new FakeRaw(1L << 40);
        DeviceAllocator a = new DeviceAllocator(raw);
        long[] sizes = {4, 4 * 1000, 4 * 28 * 28 * 128, 4 * 28 * 28 * 128, 4 * 64 * 28 * 28 * 128, 12345678};
        for (int step = 0; step < 3; step++) {
            List<DeviceAllocator.Block> live = new ArrayList<>();
            for (long s : sizes) live.add(a.allocate(s));
            for (DeviceAllocator.Block b : live) a.release(b);
            assertEquals(sizes.length, a.rawAllocs(), "step " + step + " allocated raw memory again");
        }
        assertEquals(2L * sizes.length, a.cacheHits());
        assertEquals(0, a.bytesInUse());
        assertEquals(raw.used, a.bytesCached());
        assertTrue(a.stats().contains("6 cuMemAlloc"), a.stats());
    }

    @Test
    void releasedBlockIsReusedForSameClassOnly() {
        DeviceAllocator a = new DeviceAllocator(new FakeRaw(1L << 30));
        DeviceAllocator.Block b = a.allocate(3000);
        a.release(b);
        DeviceAllocator.Block other = a.allocate(5000); // class 8192, not 4096
        assertTrue(b != other);
        assertSame(b, a.allocate(4096));
        assertEquals(2, a.rawAllocs());
    }

    @Test
    void doubleReleaseThrows() {
        DeviceAllocator a = new DeviceAllocator(new FakeRaw(1L << 30));
        DeviceAllocator.Block b = a.allocate(100);
        a.release(b);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> a.release(b));
        assertTrue(e.getMessage().contains("released twice"), e.getMessage());
    }

    @Test
    void outOfMemoryEmptiesCacheRetriesThenNamesTheError() {
        FakeRaw raw = new FakeRaw(4 * MiB);
        DeviceAllocator a = new DeviceAllocator(raw);
        a.release(a.allocate(2 * MiB)); // 2 MiB cached
        DeviceAllocator.Block big = a.allocate(3 * MiB); // needs the cache emptied first
        assertEquals(1, raw.frees);
        assertEquals(0, a.bytesCached());
        assertEquals(3 * MiB, a.bytesInUse());
        CudaError e = assertThrows(CudaError.class, () -> a.allocate(2 * MiB));
        assertEquals("CUDA_ERROR_OUT_OF_MEMORY", e.errorName());
        assertTrue(e.getMessage().contains("CUDA_ERROR_OUT_OF_MEMORY") && e.getMessage().contains("batch size"), e.getMessage());
        a.release(big);
    }
}
