package ncsn.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * {@link Gemm#sgemm} with every kernel present (plain Java always; the Vector API one when the
 * test JVM has the module, which the surefire configuration adds) against a float64 triple loop,
 * over the four transpose combinations, alpha/beta variants, offsets and padded leading
 * dimensions, awkward sizes around the register tiles and cache blocks, and 1 vs 2 threads.
 *
 * <p>Tolerance, per element: {@code |c - ref| <= 1e-5 * sqrt(k) * (|alpha| * sum_p |a_ip||b_pj|
 * + |beta * c_old|) + 1e-30}. Each float32 product and sum rounds with relative error at most
 * 2^-24 (6e-8); summing k terms in a blocked order accumulates at most about k such errors in
 * the worst case and typically about sqrt(k) (errors of random sign), each scaled by the size of
 * the terms, bounded by sum |a||b|. 1e-5 * sqrt(k) is sqrt(k) errors of 6e-8 with a 150x margin:
 * loose enough for any summation order or FMA use, tight enough that a dropped, doubled or
 * misplaced term (an error of order |a||b|, at least 1/k of the bound's scale times 1e5/sqrt(k))
 * fails for every size tested here.
 */
class GemmTest {

    private static final int SAVED_THREADS = Parallel.threads();

    @AfterAll
    static void restoreThreads() {
        Parallel.setThreads(SAVED_THREADS);
    }

    private static List<GemmKernel> kernels() {
        List<GemmKernel> ks = new ArrayList<>();
        ks.add(Simd.scalarGemm());
        if (Simd.vectorGemmOrNull() != null) ks.add(Simd.vectorGemmOrNull());
        return ks;
    }

    /** One test problem: C = alpha op(A) op(B) + beta C with its own storage layout. */
    private static final class Case {
        final boolean ta, tb;
        final int m, n, k, offA, offB, offC, lda, ldb, ldc;
        final float alpha, beta;
        final float[] a, b, c0;

        Case(SplittableRandom rnd, boolean ta, boolean tb, int m, int n, int k, float alpha,
             float beta, int pad, int off) {
            this.ta = ta;
            this.tb = tb;
            this.m = m;
            this.n = n;
            this.k = k;
            this.alpha = alpha;
            this.beta = beta;
            lda = (ta ? m : k) + pad;
            ldb = (tb ? k : n) + pad;
            ldc = n + pad;
            offA = off;
            offB = 2 * off;
            offC = 3 * off;
            a = random(rnd, offA + (ta ? k : m) * lda + pad);
            b = random(rnd, offB + (tb ? n : k) * ldb + pad);
            c0 = random(rnd, offC + m * ldc + pad);
        }

        private static float[] random(SplittableRandom rnd, int len) {
            float[] x = new float[len];
            for (int i = 0; i < len; i++) x[i] = (float) (rnd.nextDouble() * 2 - 1);
            return x;
        }

        float opA(int i, int p) {
            return a[offA + (ta ? p * lda + i : i * lda + p)];
        }

        float opB(int p, int j) {
            return b[offB + (tb ? j * ldb + p : p * ldb + j)];
        }

        /** Runs the kernel on a copy of C (old contents poisoned with NaN when beta == 0). */
        float[] run(GemmKernel kernel, boolean parallel) {
            float[] c = c0.clone();
            if (beta == 0f) {
                for (int i = 0; i < m; i++) {
                    for (int j = 0; j < n; j++) c[offC + i * ldc + j] = Float.NaN;
                }
            }
            Gemm.sgemm(kernel, parallel, ta, tb, m, n, k, alpha, a, offA, lda, b, offB, ldb,
                    beta, c, offC, ldc);
            return c;
        }

        /**
         * The same product through {@link Gemm#packA} (A packed once, reused for two calls) and
         * {@link Gemm#panels}: must equal {@link #run} bit for bit (same packed data, same blocking).
         */
        float[] runPacked(GemmKernel kernel, boolean parallel) {
            float[] buf = new float[Gemm.packedASize(kernel, m, k)];
            java.util.Arrays.fill(buf, Float.NaN); // every float the kernel reads must be packed
            Gemm.PackedA pa = Gemm.packA(kernel, ta, m, k, a, offA, lda, buf);
            float[] c = null;
            for (int rep = 0; rep < 2; rep++) {
                c = c0.clone();
                if (beta == 0f) {
                    for (int i = 0; i < m; i++) {
                        for (int j = 0; j < n; j++) c[offC + i * ldc + j] = Float.NaN;
                    }
                }
                Gemm.sgemm(kernel, parallel, pa, Gemm.panels(kernel, tb, b, offB, ldb), n, alpha, beta, c, offC, ldc);
            }
            return c;
        }

        /** Checks c against the float64 reference; elements outside the m x n window must be untouched. */
        void check(String what, float[] c) {
            double worst = 0;
            String worstAt = null;
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    double sum = 0, mag = 0;
                    for (int p = 0; p < k; p++) {
                        double t = (double) opA(i, p) * opB(p, j);
                        sum += t;
                        mag += Math.abs(t);
                    }
                    double old = c0[offC + i * ldc + j];
                    double ref = alpha * sum + (beta == 0f ? 0 : beta * old);
                    double tol = 1e-5 * Math.sqrt(Math.max(1, k))
                            * (Math.abs(alpha) * mag + Math.abs(beta * old)) + 1e-30;
                    float got = c[offC + i * ldc + j];
                    double err = Math.abs(got - ref);
                    if (!(err <= tol)) { // also catches NaN
                        fail(what + ": C[" + i + "][" + j + "] = " + got + ", float64 reference "
                                + ref + ", error " + err + " > tolerance " + tol);
                    }
                    if (err / tol > worst) {
                        worst = err / tol;
                        worstAt = "C[" + i + "][" + j + "] = " + got + " vs " + ref;
                    }
                }
            }
            for (int idx = 0; idx < c.length; idx++) {
                int rel = idx - offC;
                boolean inside = rel >= 0 && rel / ldc < m && rel % ldc < n;
                if (!inside && Float.floatToRawIntBits(c[idx]) != Float.floatToRawIntBits(c0[idx])) {
                    fail(what + ": wrote outside C's m x n window at index " + idx);
                }
            }
            assertTrue(worst <= 1, what + ": worst " + worstAt);
        }

        @Override
        public String toString() {
            return (ta ? "T" : "N") + (tb ? "T" : "N") + " m=" + m + " n=" + n + " k=" + k
                    + " alpha=" + alpha + " beta=" + beta + " lda=" + lda + " ldb=" + ldb
                    + " ldc=" + ldc + " off=" + offA;
        }
    }

    private static void checkAll(Case cs) {
        for (GemmKernel kernel : kernels()) {
            cs.check(kernel.name() + " " + cs, cs.run(kernel, true));
        }
    }

    @Test
    void allTransposesAndAlphaBetaVariants() {
        SplittableRandom rnd = new SplittableRandom(1);
        float[][] alphaBeta = {{1f, 0f}, {1f, 1f}, {0.5f, 0f}, {0.5f, -0.75f}, {-2f, 0.25f}};
        for (boolean ta : new boolean[] {false, true}) {
            for (boolean tb : new boolean[] {false, true}) {
                for (float[] ab : alphaBeta) {
                    checkAll(new Case(rnd, ta, tb, 17, 33, 65, ab[0], ab[1], 0, 0));
                }
            }
        }
    }

    @Test
    void awkwardSizes() {
        SplittableRandom rnd = new SplittableRandom(2);
        int[][] sizes = {
            {1, 1, 1}, {1, 50, 1}, {1, 1, 70}, {50, 1, 3}, {17, 33, 65}, {127, 5, 300},
            {3, 200, 31}, {2, 3, 4},
            // around the register tiles (vector 12 x 32 at AVX-512, scalar 4 x 4)
            {11, 31, 7}, {12, 32, 8}, {13, 33, 9}, {24, 64, 16}, {25, 65, 17},
            // around the depth block (kc 256: 257 splits as 129 + 128) and the unit split
            {12, 32, 255}, {12, 32, 256}, {12, 32, 257}, {97, 47, 513}, {95, 97, 40},
        };
        for (int[] s : sizes) {
            for (boolean ta : new boolean[] {false, true}) {
                for (boolean tb : new boolean[] {false, true}) {
                    checkAll(new Case(rnd, ta, tb, s[0], s[1], s[2], 1f, 0.5f, 0, 0));
                }
            }
        }
    }

    @Test
    void columnPanelBoundary() {
        // n past the vector kernel's column panel (nc 1024) and the scalar one's (1024):
        // two panels, the second ragged.
        SplittableRandom rnd = new SplittableRandom(3);
        checkAll(new Case(rnd, false, false, 5, 1030, 20, 1f, 0f, 0, 0));
        checkAll(new Case(rnd, true, true, 5, 1030, 20, 1f, 1f, 0, 0));
    }

    /**
     * B read in place ({@link Gemm#rowsInPlace}) must give the plain path's bits (same products in
     * the same order), with A packed per unit or beforehand. Padding 16 makes the vector
     * kernel's transposed partial A sliver (m = 64: 5 slivers + 4 rows) take its vector copy;
     * padding 0 leaves B without whole slivers past column n, so it is packed after all.
     */
    @Test
    void rowsInPlaceMatchesThePlainPath() {
        SplittableRandom rnd = new SplittableRandom(12);
        int[][] sizes = {{1, 1, 1}, {13, 33, 7}, {64, 187, 64}, {64, 45, 400}, {25, 70, 300}, {97, 41, 513}};
        for (int[] sz : sizes) {
            for (boolean ta : new boolean[] {false, true}) {
                for (int pad : new int[] {0, 16}) {
                    Case cs = new Case(rnd, ta, false, sz[0], sz[1], sz[2], 1f, 0.5f, pad, 3);
                    for (GemmKernel kernel : kernels()) {
                        for (boolean parallel : new boolean[] {false, true}) {
                            float[] plain = cs.run(kernel, parallel);
                            cs.check(kernel.name() + " " + cs, plain);
                            float[] c = cs.c0.clone();
                            Gemm.sgemm(kernel, parallel, ta, cs.m, cs.n, cs.k, cs.alpha, cs.a, cs.offA, cs.lda,
                                    Gemm.rowsInPlace(kernel, cs.b, cs.offB, cs.ldb), cs.beta, c, cs.offC, cs.ldc);
                            float[] buf = new float[Gemm.packedASize(kernel, cs.m, cs.k)];
                            Gemm.PackedA pa = Gemm.packA(kernel, ta, cs.m, cs.k, cs.a, cs.offA, cs.lda, buf);
                            float[] c2 = cs.c0.clone();
                            Gemm.sgemm(kernel, parallel, pa, Gemm.rowsInPlace(kernel, cs.b, cs.offB, cs.ldb), cs.n,
                                    cs.alpha, cs.beta, c2, cs.offC, cs.ldc);
                            for (int i = 0; i < plain.length; i++) {
                                if (Float.floatToRawIntBits(plain[i]) != Float.floatToRawIntBits(c[i]))
                                    fail(kernel.name() + " B in place " + cs + ": differs from the plain path at " + i);
                                if (Float.floatToRawIntBits(plain[i]) != Float.floatToRawIntBits(c2[i]))
                                    fail(kernel.name() + " B in place, A packed " + cs + ": differs at " + i);
                            }
                        }
                    }
                }
            }
        }
        assertMessage(() -> Gemm.sgemm(Simd.scalarGemm(), false, false, 2, 2, 2, 1f, new float[4], 0, 2,
                Gemm.rowsInPlace(Simd.scalarGemm(), new float[4], 0, 2), 0f, new float[3], 0, 2), "C");
    }

    /** Pre-packed A (a convolution's weights) over awkward sizes, both A layouts, 1 and 2 threads. */
    @Test
    void prePackedAMatchesThePlainPath() {
        SplittableRandom rnd = new SplittableRandom(11);
        int[][] sizes = {{1, 1, 1}, {13, 33, 7}, {64, 784, 576}, {25, 70, 300}, {12, 32, 257}, {97, 41, 513}};
        for (int[] sz : sizes) {
            for (boolean ta : new boolean[] {false, true}) {
                for (boolean tb : new boolean[] {false, true}) {
                    Case cs = new Case(rnd, ta, tb, sz[0], sz[1], sz[2], 1f, tb ? 0f : 0.5f, ta ? 3 : 0, 5);
                    for (GemmKernel kernel : kernels()) {
                        for (boolean parallel : new boolean[] {false, true}) {
                            float[] packed = cs.runPacked(kernel, parallel);
                            cs.check(kernel.name() + " packed " + cs, packed);
                            float[] plain = cs.run(kernel, parallel);
                            for (int i = 0; i < plain.length; i++) {
                                if (Float.floatToRawIntBits(plain[i]) != Float.floatToRawIntBits(packed[i]))
                                    fail(kernel.name() + " packed " + cs + ": differs from the plain path at " + i);
                            }
                        }
                    }
                }
            }
        }
        float[] small = new float[3];
        assertThrows(IllegalArgumentException.class, () -> Gemm.packA(Simd.scalarGemm(), false, 4, 4, new float[16], 0, 4, small));
        Gemm.PackedA pa = Gemm.packA(Simd.scalarGemm(), false, 4, 4, new float[16], 0, 4,
                new float[Gemm.packedASize(Simd.scalarGemm(), 4, 4)]);
        if (Simd.vectorGemmOrNull() != null) {
            GemmKernel v = Simd.vectorGemmOrNull();
            assertMessage(() -> Gemm.sgemm(v, false, pa, Gemm.panels(v, false, new float[16], 0, 4), 4, 1f, 0f,
                    new float[16], 0, 4), "packed for kernel scalar");
        }
        assertMessage(() -> Gemm.sgemm(Simd.scalarGemm(), false, pa, Gemm.panels(Simd.scalarGemm(), false, new float[16], 0, 4), 4,
                1f, 0f, new float[15], 0, 4), "C", "needs 16");
    }

    @Test
    void offsetsAndPaddedLeadingDimensions() {
        SplittableRandom rnd = new SplittableRandom(4);
        for (boolean ta : new boolean[] {false, true}) {
            for (boolean tb : new boolean[] {false, true}) {
                checkAll(new Case(rnd, ta, tb, 29, 45, 38, 0.5f, 1f, 7, 5));
                checkAll(new Case(rnd, ta, tb, 13, 70, 21, 1f, 0f, 3, 1));
            }
        }
    }

    @Test
    void twoThreadsMatchOneThread() {
        // Large enough that the driver splits it (>= 2^20 multiply-adds per step) into units of
        // rows and, for the small-m case, of columns. The kernels are deterministic per
        // element whatever the split, so 1 and 2 threads must agree bit for bit.
        SplittableRandom rnd = new SplittableRandom(5);
        Case[] cases = {
            new Case(rnd, false, false, 150, 130, 120, 1f, 0f, 1, 2),
            new Case(rnd, true, true, 150, 130, 120, 1f, 0.5f, 0, 0),
            new Case(rnd, false, true, 7, 700, 300, 1f, 0f, 0, 0), // small m: column parts
            // 3 column panels (the last narrower) x 3 depth blocks: steps overlap across the two
            // panel buffers and each unit waits for its block of C from the step before
            new Case(rnd, false, false, 200, 2100, 600, 1f, 0.5f, 0, 0),
        };
        for (GemmKernel kernel : kernels()) {
            for (Case cs : cases) {
                Parallel.setThreads(1);
                float[] one = cs.run(kernel, true);
                int used = Parallel.setThreads(2);
                float[] two = cs.run(kernel, true);
                for (int again = 0; again < 3; again++) { // an ordering bug shows up only sometimes
                    float[] more = cs.run(kernel, true);
                    for (int i = 0; i < two.length; i++) {
                        if (Float.floatToRawIntBits(more[i]) != Float.floatToRawIntBits(two[i]))
                            fail(kernel.name() + " " + cs + ": 2-thread runs differ at element " + i);
                    }
                }
                Parallel.setThreads(SAVED_THREADS);
                float[] notParallel = cs.run(kernel, false);
                cs.check(kernel.name() + " 1 thread " + cs, one);
                cs.check(kernel.name() + " " + used + " threads " + cs, two);
                for (int i = 0; i < one.length; i++) {
                    if (Float.floatToRawIntBits(one[i]) != Float.floatToRawIntBits(two[i])
                            || Float.floatToRawIntBits(one[i]) != Float.floatToRawIntBits(notParallel[i])) {
                        fail(kernel.name() + " " + cs + ": element " + i + " differs: 1 thread "
                                + one[i] + ", " + used + " threads " + two[i] + ", parallel=false "
                                + notParallel[i]);
                    }
                }
            }
        }
    }

    /**
     * A panel source that fails in a later depth step, on two threads: its own exception reaches
     * the caller (not the other thread's giving up), and the next call works.
     */
    @Test
    void failureInsideAParallelCallReachesTheCaller() {
        int used = Parallel.setThreads(2);
        try {
            GemmKernel kernel = Simd.gemmKernel();
            int m = 300, n = 200, k = 900;
            float[] a = new float[m * k], b = new float[k * n], c = new float[m * n];
            Gemm.PanelSource plain = Gemm.panels(kernel, false, b, 0, n);
            Gemm.PanelSource failing = (p0, kc, j0, nc, bp, bp0) -> {
                if (p0 > 0) throw new IllegalStateException("boom at depth " + p0);
                plain.pack(p0, kc, j0, nc, bp, bp0);
            };
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> Gemm.sgemm(kernel, true, false,
                    m, n, k, 1f, a, 0, k, failing, 0f, c, 0, n));
            assertTrue(e.getMessage().startsWith("boom at depth"), used + " threads: " + e.getMessage());
            java.util.Arrays.fill(a, 1f);
            java.util.Arrays.fill(b, 2f);
            Gemm.sgemm(kernel, true, false, m, n, k, 1f, a, 0, k, plain, 0f, c, 0, n);
            for (float v : c) assertEquals(2f * k, v);
        } finally {
            Parallel.setThreads(SAVED_THREADS);
        }
    }

    @Test
    void defaultEntryPointUsesChosenKernel() {
        SplittableRandom rnd = new SplittableRandom(6);
        Case cs = new Case(rnd, false, true, 9, 10, 11, 1f, 0f, 0, 0);
        float[] c = cs.c0.clone();
        Gemm.sgemm(cs.ta, cs.tb, cs.m, cs.n, cs.k, cs.alpha, cs.a, cs.offA, cs.lda, cs.b,
                cs.offB, cs.ldb, cs.beta, c, cs.offC, cs.ldc);
        cs.check("default kernel (" + Simd.description() + ")", c);
        assertNotNull(Simd.gemmKernel());
        assertEquals(Simd.vectorEnabled(), Simd.gemmKernel() != Simd.scalarGemm());
    }

    @Test
    void alphaZeroOrEmptyKScalesC() {
        for (GemmKernel kernel : kernels()) {
            float[] c = {1f, 2f, Float.NaN, 4f};
            float[] a = {Float.NaN, Float.NaN}, b = {Float.NaN, Float.NaN};
            Gemm.sgemm(kernel, true, false, false, 2, 2, 1, 0f, a, 0, 1, b, 0, 2, 0f, c, 0, 2);
            assertEquals(List.of(0f, 0f, 0f, 0f), asList(c), kernel.name() + ": alpha 0, beta 0");
            float[] d = {1f, 2f, 3f, 4f};
            Gemm.sgemm(kernel, true, false, false, 2, 2, 0, 1f, null, 0, 1, null, 0, 2, 2f, d, 0, 2);
            assertEquals(List.of(2f, 4f, 6f, 8f), asList(d), kernel.name() + ": k 0, beta 2");
            Gemm.sgemm(kernel, true, false, false, 0, 0, 5, 1f, null, 0, 5, null, 0, 1, 0f, null, 0, 1);
        }
    }

    private static List<Float> asList(float[] x) {
        List<Float> l = new ArrayList<>();
        for (float v : x) l.add(v);
        return l;
    }

    @Test
    void badArgumentsAreNamed() {
        float[] a = new float[6], b = new float[6], c = new float[4];
        // m=2 x k=3 A, k=3 x n=2 B, 2 x 2 C: valid
        Gemm.sgemm(false, false, 2, 2, 3, 1f, a, 0, 3, b, 0, 2, 0f, c, 0, 2);

        assertMessage(() -> Gemm.sgemm(false, false, -1, 2, 3, 1f, a, 0, 3, b, 0, 2, 0f, c, 0, 2),
                "sgemm", "negative dimension", "m=-1");
        assertMessage(() -> Gemm.sgemm(false, false, 2, 2, 3, 1f, a, 0, 2, b, 0, 2, 0f, c, 0, 2),
                "sgemm", "lda=2", "3 columns of A");
        assertMessage(() -> Gemm.sgemm(true, false, 2, 2, 3, 1f, a, 0, 1, b, 0, 2, 0f, c, 0, 2),
                "sgemm", "lda=1", "2 columns of A", "k x m");
        assertMessage(() -> Gemm.sgemm(false, true, 2, 2, 3, 1f, a, 0, 3, b, 0, 2, 0f, c, 0, 2),
                "sgemm", "ldb=2", "3 columns of B", "n x k");
        assertMessage(() -> Gemm.sgemm(false, false, 2, 2, 3, 1f, a, 1, 3, b, 0, 2, 0f, c, 0, 2),
                "sgemm", "A", "needs 7 elements", "has 6");
        assertMessage(() -> Gemm.sgemm(false, false, 2, 3, 3, 1f, a, 0, 3, b, 0, 3, 0f, c, 0, 3),
                "sgemm", "B", "needs 9 elements", "has 6");
        assertMessage(() -> Gemm.sgemm(false, false, 2, 2, 3, 1f, a, 0, 3, b, 0, 2, 0f, c, 0, 1),
                "sgemm", "ldc=1", "C");
        assertMessage(() -> Gemm.sgemm(false, false, 2, 2, 3, 1f, a, 0, 3, b, 0, 2, 0f, null, 0, 2),
                "sgemm", "C", "null");
        assertMessage(() -> Gemm.sgemm(false, false, 2, 2, 3, 1f, a, -1, 3, b, 0, 2, 0f, c, 0, 2),
                "sgemm", "negative offset", "A");
        assertMessage(() -> Gemm.sgemm(null, true, false, false, 2, 2, 3, 1f, a, 0, 3, b, 0, 2,
                0f, c, 0, 2), "sgemm", "kernel");
    }

    private static void assertMessage(Runnable call, String... parts) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call::run);
        for (String p : parts) {
            assertTrue(e.getMessage().contains(p), "message '" + e.getMessage() + "' lacks '" + p + "'");
        }
    }

    @Test
    void providerReportsItsChoice() {
        String d = Simd.description();
        assertNotNull(d);
        if (Simd.vectorEnabled()) {
            assertTrue(d.startsWith("Vector API (jdk.incubator.vector"), d);
        } else {
            assertTrue(d.startsWith("scalar path ("), d);
            assertFalse(Simd.gemmKernel() != Simd.scalarGemm());
        }
        boolean module = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();
        if (!module) assertEquals(null, Simd.vectorGemmOrNull(), "no vector kernel without the module");
    }
}
