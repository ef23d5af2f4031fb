package ncsn.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/**
 * The allocator's holds (what keeps a CUDA graph's temporaries reserved), on any machine with the
 * fake raw backend: blocks released during a hold are not reused until it closes, the warm-up
 * pattern (a step under a hold, then the same step again under a hold) is served from the cache
 * without raw allocations, and escaping blocks are counted.
 */
class DeviceAllocatorHoldTest {
    private static final long KiB = 1024;

    /** One "step": a, b temporaries of two classes, each released after use (as a scope would). */
    private static void step(DeviceAllocator al) {
        DeviceAllocator.Block a = al.allocate(4 * KiB);
        DeviceAllocator.Block b = al.allocate(4 * KiB);
        al.release(a);
        DeviceAllocator.Block c = al.allocate(4 * KiB); // reuses a without a hold
        DeviceAllocator.Block d = al.allocate(64 * KiB);
        al.release(b);
        al.release(c);
        al.release(d);
    }

    @Test
    void releasedBlocksAreKeptUntilTheHoldCloses() {
        DeviceAllocatorTest.FakeRaw raw = new DeviceAllocatorTest.FakeRaw(1 << 30);
        DeviceAllocator al = new DeviceAllocator(raw);
        DeviceAllocator.Block a;
        try (DeviceAllocator.Hold h = al.hold()) {
            a = al.allocate(4 * KiB);
            al.release(a);
            DeviceAllocator.Block b = al.allocate(4 * KiB);
            assertNotSame(a, b, "a released block is not reused during a hold");
            assertEquals(1, h.outstanding(), "b is still in use");
            al.release(b);
            assertEquals(0, h.outstanding());
            assertEquals(2, h.kept());
            assertEquals(2, h.rawAllocs());
            assertEquals(8 * KiB, al.bytesInUse(), "kept blocks count as in use");
            assertThrows(IllegalStateException.class, () -> al.release(a), "double release still detected");
            assertThrows(IllegalStateException.class, al::hold, "one hold at a time");
        }
        assertEquals(0, al.bytesInUse());
        assertEquals(8 * KiB, al.bytesCached());
    }

    @Test
    void aStepUnderAHoldWarmsTheCacheForTheCapture() {
        DeviceAllocatorTest.FakeRaw raw = new DeviceAllocatorTest.FakeRaw(1 << 30);
        DeviceAllocator al = new DeviceAllocator(raw);
        step(al); // plain step: 2 blocks of 4 KiB reused, one of 64 KiB
        assertEquals(3, raw.allocs);
        try (DeviceAllocator.Hold warm = al.hold()) {
            step(al); // without reuse: three 4 KiB blocks
        }
        assertEquals(4, raw.allocs);
        DeviceAllocator.Hold capture = al.hold();
        step(al);
        assertEquals(0, capture.rawAllocs(), "the captured step is served from the cache");
        assertEquals(0, capture.outstanding());
        assertEquals(4, capture.kept());
        capture.close();
        capture.close(); // idempotent
        assertEquals(0, al.bytesInUse());
    }
}
