package ncsn.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ncsn.rng.Philox;
import ncsn.rng.Rng;
import ncsn.tensor.DType;
import ncsn.tensor.Device;
import ncsn.tensor.Scope;
import ncsn.tensor.Tensor;
import org.junit.jupiter.api.Test;

/**
 * Philox on the GPU (src/main/cuda/philox.cuh, rng.cu) against the CPU generator: the Random123
 * known answers of the raw generator; {@link Rng} fills of CUDA tensors against the same fills of
 * CPU tensors for awkward sizes (1, 3, 5: a partial last block; 255, 257: around the thread
 * block; 100003; and beyond one full grid, so the grid-stride loop wraps), non-zero offsets
 * (including above 2^32, so the counter's high word is used) and streams (including negative).
 *
 * <p>Tolerances: uniforms bit-identical (integer arithmetic and one exact scaling); uniform(lo, hi)
 * bit-identical (the same double operations, one rounding); normals within 1 float ulp (Box-Muller
 * in double on both sides, but CUDA's double log/sin/cos may differ from Java's by a double ulp,
 * which changes the rounded float only when it sits on a rounding boundary). Offsets advance by
 * the same number of blocks. Skipped, with the probe's reason, without a usable GPU.
 */
@RequiresGpu
class PhiloxGpuTest {
    private static final long[][] KEYS = {
            // seed, stream, offset
            {0L, 0L, 0L},
            {0x123456789abcdefL, -7L, 12345L},
            {-1L, 0x100000001L, (1L << 32) + 3},
    };


    /** Awkward sizes, plus one whose 4-element blocks exceed a full grid of threads. */
    static int[] sizes() {
        int fullGridThreads = 32 * CudaContext.get().multiprocessorCount() * CudaContext.BLOCK;
        return new int[] {1, 3, 5, 255, 257, 100003, 4 * fullGridThreads + 5};
    }

    @Test
    void knownAnswersOnTheDevice() {
        assertArrayEquals(new int[] {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}, Philox.Gpu.block(0, 0, 0, 0, 0, 0));
        assertArrayEquals(new int[] {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}, Philox.Gpu.block(-1, -1, -1, -1, -1, -1));
        assertArrayEquals(new int[] {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
                Philox.Gpu.block(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0));
    }

    @Test
    void uniformFillsAreBitIdentical() {
        for (long[] k : KEYS) {
            for (int n : sizes()) {
                try (Scope s = Scope.open()) {
                    Rng cpu = new Rng(k[0], k[1], k[2]), gpu = new Rng(k[0], k[1], k[2]);
                    float[] want = cpu.uniform(Tensor.empty(DType.F32, n)).f32();
                    float[] got = host(gpu.uniform(Tensor.empty(Device.CUDA, DType.F32, n)));
                    assertEquals(cpu.offset(), gpu.offset(), "offset after uniform, n=" + n);
                    assertUlps(want, got, 0, "uniform n=" + n + " key " + java.util.Arrays.toString(k));
                    // A second draw continues from the advanced offset on both.
                    want = cpu.uniform(Tensor.empty(DType.F32, n), -0.3, 1.7).f32();
                    got = host(gpu.uniform(Tensor.empty(Device.CUDA, DType.F32, n), -0.3, 1.7));
                    assertEquals(cpu.offset(), gpu.offset(), "offset after uniform(lo, hi), n=" + n);
                    assertUlps(want, got, 0, "uniform(-0.3, 1.7) n=" + n + " key " + java.util.Arrays.toString(k));
                }
            }
        }
    }

    @Test
    void normalFillsWithinOneUlp() {
        for (long[] k : KEYS) {
            for (int n : sizes()) {
                try (Scope s = Scope.open()) {
                    Rng cpu = new Rng(k[0], k[1], k[2]), gpu = new Rng(k[0], k[1], k[2]);
                    for (int draw = 0; draw < 2; draw++) {
                        float[] want = cpu.normal(Tensor.empty(DType.F32, n)).f32();
                        float[] got = host(gpu.normal(Tensor.empty(Device.CUDA, DType.F32, n)));
                        assertEquals(cpu.offset(), gpu.offset(), "offset after normal, n=" + n);
                        assertUlps(want, got, 1, "normal draw " + draw + " n=" + n + " key " + java.util.Arrays.toString(k));
                    }
                }
            }
        }
    }

    @Test
    void emptyTensorDrawsNothing() {
        Rng gpu = new Rng(5, 6, 7);
        try (Scope s = Scope.open()) {
            gpu.normal(Tensor.empty(Device.CUDA, DType.F32, 0));
            gpu.uniform(Tensor.empty(Device.CUDA, DType.F32, 0));
        }
        assertEquals(7, gpu.offset());
    }

    static float[] host(Tensor t) {
        return t.to(Device.CPU).f32();
    }

    /** Distance in float ulps (0 for equal bits; large across signs or for NaN vs number). */
    static long ulps(float a, float b) {
        if (Float.floatToRawIntBits(a) == Float.floatToRawIntBits(b)) return 0;
        if (Float.isNaN(a) || Float.isNaN(b)) return Long.MAX_VALUE;
        long ia = Float.floatToIntBits(a), ib = Float.floatToIntBits(b);
        if (ia < 0) ia = Integer.MIN_VALUE - ia;
        if (ib < 0) ib = Integer.MIN_VALUE - ib;
        return Math.abs(ia - ib);
    }

    /** Asserts every element within maxUlps; the message names the worst element side by side. */
    static void assertUlps(float[] want, float[] got, long maxUlps, String what) {
        assertEquals(want.length, got.length, what + ": length");
        long worst = 0;
        int at = -1, differing = 0;
        for (int i = 0; i < want.length; i++) {
            long u = ulps(want[i], got[i]);
            if (u > 0) differing++;
            if (u > worst) {
                worst = u;
                at = i;
            }
        }
        if (differing > 0)
            System.err.println("[ncsn] " + what + ": " + differing + " of " + want.length + " elements differ, worst " + worst + " ulp");
        final long w = worst;
        final int a = at;
        assertTrue(worst <= maxUlps, () -> what + ": worst " + w + " ulp > " + maxUlps + " at [" + a + "]: expected "
                + want[a] + " got " + got[a]);
    }
}
