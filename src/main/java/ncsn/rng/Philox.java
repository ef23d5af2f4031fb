package ncsn.rng;

import ncsn.cpu.Parallel;
import ncsn.cuda.Launch;
import ncsn.tensor.Tensor;

/**
 * Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC11): a
 * counter-based generator, so element j of any draw is a pure function of (seed, stream, offset, j)
 * and every backend (this CPU code, the CUDA kernels) produces the same numbers for the same key.
 *
 * <p>Keying used throughout the engine: key = seed (64 bits as two words, low first); counter =
 * (block low, block high, stream low, stream high) with block = offset + j / 4; element j takes
 * word j % 4 of that block. Uniforms are {@code (w >>> 8) * 2^-24} in [0, 1), identical in float32
 * and float64. Normals use Box-Muller on the word pairs (0,1) and (2,3) of a block: u1 = (w0 + 1)
 * * 2^-32 in (0, 1], u2 = w1 * 2^-32, r = sqrt(-2 ln u1); the even word of a pair gives r cos(2 pi
 * u2), the odd one r sin(2 pi u2), computed in double.
 */
public final class Philox {
    private static final int M0 = 0xD2511F53, M1 = 0xCD9E8D57;
    private static final int W0 = 0x9E3779B9, W1 = 0xBB67AE85;
    private static final double TWO_POW_M24 = 0x1p-24, TWO_POW_M32 = 0x1p-32, TWO_PI = 2 * Math.PI;
    /** Blocks per parallel chunk: below this a fill stays on one thread. */
    private static final int GRAIN_BLOCKS = 1 << 14;

    private Philox() {}

    /** The raw generator: 10 rounds on counter (c0..c3) with key (k0, k1); writes 4 words into out. */
    public static void block(int c0, int c1, int c2, int c3, int k0, int k1, int[] out) {
        for (int r = 0; r < 10; r++) {
            if (r > 0) {
                k0 += W0;
                k1 += W1;
            }
            long p0 = (M0 & 0xFFFFFFFFL) * (c0 & 0xFFFFFFFFL);
            long p1 = (M1 & 0xFFFFFFFFL) * (c2 & 0xFFFFFFFFL);
            int hi0 = (int) (p0 >>> 32), lo0 = (int) p0;
            int hi1 = (int) (p1 >>> 32), lo1 = (int) p1;
            c0 = hi1 ^ c1 ^ k0;
            c1 = lo1;
            c2 = hi0 ^ c3 ^ k1;
            c3 = lo0;
        }
        out[0] = c0;
        out[1] = c1;
        out[2] = c2;
        out[3] = c3;
    }

    /** Block {@code block} of the (seed, stream) sequence. */
    public static void block(long seed, long stream, long block, int[] out) {
        block((int) block, (int) (block >>> 32), (int) stream, (int) (stream >>> 32), (int) seed, (int) (seed >>> 32), out);
    }

    /** Number of 4-word blocks a draw of n elements consumes (the offset advances by this). */
    public static long blocksFor(long n) {
        return (n + 3) >>> 2;
    }

    public static double uniformOf(int w) {
        return (w >>> 8) * TWO_POW_M24;
    }

    /** Normal from word {@code lane} (0..3) of a block. */
    public static double normalOf(int[] words, int lane) {
        int pair = lane & ~1;
        double r = boxMullerRadius(words[pair]), t = boxMullerAngle(words[pair + 1]);
        return (lane & 1) == 0 ? r * Math.cos(t) : r * Math.sin(t);
    }

    /** Box-Muller radius sqrt(-2 ln u1) from the even word of a pair, u1 = (w + 1) 2^-32 in (0, 1]. */
    public static double boxMullerRadius(int evenWord) {
        return Math.sqrt(-2.0 * Math.log(((evenWord & 0xFFFFFFFFL) + 1) * TWO_POW_M32));
    }

    /** Box-Muller angle 2 pi u2 from the odd word of a pair, u2 = w 2^-32. */
    public static double boxMullerAngle(int oddWord) {
        return TWO_PI * ((oddWord & 0xFFFFFFFFL) * TWO_POW_M32);
    }

    /** Fills out[off .. off+n) with U[0,1) draws j = 0..n-1 of (seed, stream) starting at block offset. */
    public static void uniform(long seed, long stream, long offset, float[] out, int off, int n) {
        fill(seed, stream, offset, n, (j, w) -> out[off + j] = (float) uniformOf(w[j & 3]));
    }

    public static void uniform(long seed, long stream, long offset, double[] out, int off, int n) {
        fill(seed, stream, offset, n, (j, w) -> out[off + j] = uniformOf(w[j & 3]));
    }

    /** Fills out[off .. off+n) with N(0,1) draws j = 0..n-1 of (seed, stream) starting at block offset. */
    public static void normal(long seed, long stream, long offset, float[] out, int off, int n) {
        fill(seed, stream, offset, n, (j, w) -> out[off + j] = (float) normalOf(w, j & 3));
    }

    public static void normal(long seed, long stream, long offset, double[] out, int off, int n) {
        fill(seed, stream, offset, n, (j, w) -> out[off + j] = normalOf(w, j & 3));
    }

    private interface Sink {
        void put(int j, int[] words);
    }

    private static void fill(long seed, long stream, long offset, int n, Sink sink) {
        int blocks = (int) blocksFor(n);
        Parallel.forRange(blocks, GRAIN_BLOCKS, (lo, hi) -> {
            int[] w = new int[4];
            for (int b = lo; b < hi; b++) {
                block(seed, stream, offset + b, w);
                int j0 = b << 2, j1 = Math.min(n, j0 + 4);
                for (int j = j0; j < j1; j++) sink.put(j, w);
            }
        });
    }

    /** CUDA launchers for src/main/cuda/rng.cu: one thread per 4-element Philox block, grid-stride, any size. */
    public static final class Gpu {
        private Gpu() {}

        /** out[j] = (float) (lo + scale * U_j), the affine map in double (lo 0, scale 1: plain U[0,1)). */
        public static void uniform(long seed, long stream, long offset, Tensor out, double lo, double scale) {
            long n = out.numel();
            Launch.kernel("philox_uniform_f32").ptr(out).l(n).l(seed).l(stream).l(offset)
                    .l(Double.doubleToRawLongBits(lo)).l(Double.doubleToRawLongBits(scale)).elements(blocksFor(n)).run();
        }

        /** out[j] = (float) N_j (Box-Muller in double, as {@link #normalOf}). */
        public static void normal(long seed, long stream, long offset, Tensor out) {
            long n = out.numel();
            Launch.kernel("philox_normal_f32").ptr(out).l(n).l(seed).l(stream).l(offset).elements(blocksFor(n)).run();
        }

        /**
         * The raw generator on the device, for known-answer tests: the 4 words of counter (c0..c3),
         * key (k0, k1). Synchronising (copies 8 floats back); not for hot paths.
         */
        public static int[] block(int c0, int c1, int c2, int c3, int k0, int k1) {
            Tensor t = Tensor.persistent(ncsn.tensor.Device.CUDA, ncsn.tensor.DType.F32, 8);
            try {
                Launch.kernel("philox_kat_f32").ptr(t).i(c0).i(c1).i(c2).i(c3).i(k0).i(k1).grid(1).block(32).run();
                double[] h = t.toDoubleArray();
                int[] out = new int[4];
                for (int k = 0; k < 4; k++) out[k] = (int) h[2 * k] | (int) h[2 * k + 1] << 16;
                return out;
            } finally {
                t.free();
            }
        }
    }
}
