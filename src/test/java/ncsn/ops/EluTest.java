package ncsn.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * The float32 ELU ({@link Elu.Cpu#elu}: expm1 by range reduction and a polynomial in float32) against
 * Math.expm1 in double over negative inputs from -1e-12 to -100, log-spaced, both sides of the
 * range reduction's switch to k != 0 near -0.35: within one float32 rounding (relative 2^-24 plus the rounding of
 * the result, so 1.2e-7), which a plain float exp(v) - 1 misses by orders of magnitude near 0.
 */
class EluTest {
    @Test
    void float32EluIsWithinOneRoundingOfExpm1() {
        double worst = 0;
        for (int e = -1200; e <= 200; e++) {
            for (double m : new double[] {1.0, 1.37, 2.9, 5.5, 9.99}) {
                float v = (float) (-m * Math.pow(10, e / 100.0));
                double ref = Math.expm1(v);
                float got = Elu.Cpu.elu(v);
                double rel = Math.abs(got - ref) / Math.abs(ref);
                assertTrue(rel <= 1.2e-7, "elu(" + v + ") = " + got + ", expm1 gives " + ref + ": relative error " + rel);
                worst = Math.max(worst, rel);
            }
        }
        assertEquals(5f, Elu.Cpu.elu(5f));
        assertEquals(0f, Elu.Cpu.elu(0f));
        assertEquals(-1f, Elu.Cpu.elu(-200f));
        assertTrue(Float.isNaN(Elu.Cpu.elu(Float.NaN)));
        assertTrue(worst > 0, "some rounding must show");
    }

    /**
     * The kernel's loop on 1001 values: same bound; and each element's value must not depend on
     * where the array is cut (thread chunks, batch sizes): every suffix computed alone agrees bit
     * for bit.
     */
    @Test
    void float32ForwardLoopIsWithinOneRoundingOfTheReference() {
        int n = 1001; // odd, so thread chunks end at uneven places
        float[] x = new float[n], out = new float[n];
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(3);
        for (int i = 0; i < n; i++) x[i] = (float) (rnd.nextDouble(-1, 1) * Math.pow(10, rnd.nextInt(-9, 3)));
        x[0] = -200f;
        x[1] = Float.NaN;
        x[2] = 0f;
        Elu.Cpu.forward(out, x, n);
        for (int i = 0; i < n; i++) {
            if (Float.isNaN(x[i])) {
                assertTrue(Float.isNaN(out[i]), "elu(NaN)");
                continue;
            }
            double ref = x[i] > 0 ? x[i] : Math.expm1(x[i]);
            double err = Math.abs(out[i] - ref);
            assertTrue(err <= 1.2e-7 * Math.abs(ref), "elu(" + x[i] + ") = " + out[i] + " vs " + ref + " at " + i);
        }
        for (int cut : new int[] {1, 3, 17, 500, 999}) {
            float[] tail = java.util.Arrays.copyOfRange(x, cut, n), got = new float[tail.length];
            Elu.Cpu.forward(got, tail, tail.length);
            for (int i = 0; i < tail.length; i++)
                assertEquals(Float.floatToRawIntBits(out[cut + i]), Float.floatToRawIntBits(got[i]),
                        "element " + (cut + i) + " computed from offset " + cut);
        }
    }

    /**
     * The Vector API loop ({@link Elu.Vec}) against the scalar {@link Elu.Cpu#elu}, bit for bit,
     * on random values of every magnitude and the special ones, repeated so that the comparison
     * also runs after C2 has compiled both.
     */
    @Test
    void vectorLoopMatchesScalarBitForBit() {
        int n = 4099;
        float[] x = new float[n], out = new float[n];
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(11);
        for (int i = 0; i < n; i++) x[i] = (float) (rnd.nextDouble(-1, 1) * Math.pow(10, rnd.nextDouble(-12, 2.5)));
        float[] special = {0f, -0f, Float.NaN, Float.NEGATIVE_INFINITY, Float.POSITIVE_INFINITY, Elu.Cpu.FLOOR,
            -Float.MIN_VALUE, -Float.MAX_VALUE, -0.3465736f, -0.3465737f, -17.3f, -1e-30f};
        System.arraycopy(special, 0, x, 5, special.length);
        for (int rep = 0; rep < 3000; rep++) {
            Elu.Cpu.forward(out, x, n);
            for (int i = 0; i < n; i += rep < 2999 ? 97 : 1)
                assertEquals(Float.floatToRawIntBits(Elu.Cpu.elu(x[i])), Float.floatToRawIntBits(out[i]),
                        "elu(" + x[i] + ") at " + i + ", repetition " + rep);
        }
    }
}
