package ncsn.rng;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class PhiloxTest {
    /** Random123 tests/kat_vectors, philox4x32 10 rounds: counter[4] key[2] -> result[4]. */
    @Test
    void matchesPublishedKnownAnswers() {
        int[] out = new int[4];
        Philox.block(0, 0, 0, 0, 0, 0, out);
        assertArrayEquals(new int[] {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}, out);
        Philox.block(-1, -1, -1, -1, -1, -1, out);
        assertArrayEquals(new int[] {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}, out);
        Philox.block(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, out);
        assertArrayEquals(new int[] {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}, out);
    }

    @Test
    void keyingPacksSeedStreamAndBlockAsDocumented() {
        int[] a = new int[4], b = new int[4];
        long seed = 0x299f31d0a4093822L, stream = 0x0370734413198a2eL, block = 0x85a308d3243f6a88L;
        Philox.block(seed, stream, block, a);
        Philox.block(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, b);
        assertArrayEquals(b, a);
    }

    @Test
    void drawsAreAPureFunctionOfTheKeyAndOffset() {
        float[] whole = new float[103];
        Philox.normal(42, 3, 10, whole, 0, whole.length);
        // The same elements drawn in two pieces: element j sits in block offset + j/4.
        float[] tail = new float[103 - 40];
        Philox.normal(42, 3, 10 + 40 / 4, tail, 0, tail.length);
        for (int j = 40; j < 103; j++) assertEquals(whole[j], tail[j - 40]);
        double[] d = new double[103];
        Philox.normal(42, 3, 10, d, 0, d.length);
        for (int j = 0; j < 103; j++) assertEquals((float) d[j], whole[j]);
    }

    @Test
    void uniformAndNormalMomentsAreRight() {
        int n = 1 << 20;
        double[] u = new double[n], z = new double[n];
        Philox.uniform(7, 1, 0, u, 0, n);
        Philox.normal(7, 2, 0, z, 0, n);
        double su = 0, sz = 0, sz2 = 0, sz4 = 0;
        double min = 1, max = 0;
        for (int i = 0; i < n; i++) {
            su += u[i];
            min = Math.min(min, u[i]);
            max = Math.max(max, u[i]);
            sz += z[i];
            sz2 += z[i] * z[i];
            sz4 += z[i] * z[i] * z[i] * z[i];
        }
        // Standard errors at n = 2^20: mean(U) 2.8e-4, mean(Z) 1e-3, var(Z) 1.4e-3, E Z^4 0.009.
        assertEquals(0.5, su / n, 2e-3);
        assertTrue(min >= 0 && max < 1);
        assertEquals(0.0, sz / n, 5e-3);
        assertEquals(1.0, sz2 / n, 7e-3);
        assertEquals(3.0, sz4 / n, 0.05);
    }

    @Test
    void rngStateAdvancesAndResumes() {
        Rng a = new Rng(5, 9);
        float[] first = new float[10], second = new float[10];
        a.normal(ncsn.tensor.Tensor.wrap(first, 10));
        assertEquals(3, a.offset());
        Rng resumed = new Rng(5, 9, a.offset());
        a.normal(ncsn.tensor.Tensor.wrap(second, 10));
        float[] again = new float[10];
        resumed.normal(ncsn.tensor.Tensor.wrap(again, 10));
        assertArrayEquals(second, again);
        int[] labels = new int[1000];
        new Rng(1, 1).ints(labels, 10);
        int[] counts = new int[10];
        for (int l : labels) counts[l]++;
        for (int c : counts) assertTrue(c > 60 && c < 140, "label counts " + java.util.Arrays.toString(counts));
    }
}
