package ncsn.cpu;

import java.lang.management.ManagementFactory;

/**
 * The plain-Java GEMM kernel: the fallback when the Vector API module is absent, and the
 * packers every kernel falls back on for ragged edges. Same blocking scheme as the vector
 * kernel (see {@link Gemm}), with a 4 x 4 register tile of scalar accumulators.
 *
 * <p>Speed: one scalar FMA per instruction, two per cycle, is about 13 GFLOP/s on this machine's
 * 3.3 GHz cores, and the 4 x 4 tile reaches it (measured 12.9 at 512^3). C2 (JDK 17) did not
 * auto-vectorize any loop shape tried for this (axpy rows over 16..512 columns: 2-5 GFLOP/s),
 * most likely because it cannot prove two windows of float[] apart; only the Vector API goes
 * faster.
 *
 * <p>{@link Math#fma} is one instruction where the CPU has FMA (HotSpot's {@code UseFMA}, true on
 * x86 since 2013 and on ARMv8) but a slow software routine where it has not; there the kernel
 * uses a separate multiply and add instead.
 */
public final class ScalarGemm implements GemmKernel {
    /** Register tile: MR rows x NR columns of C. */
    static final int MR = 4, NR = 4;
    /** Blocks: A sliver 4 x 256 (4 KiB) in L1, B panel 256 x 1024 (1 MiB) in L2. */
    static final int KC = 256, MC = 96, NC = 1024;
    static final boolean FMA = hardwareFma();

    public static final ScalarGemm INSTANCE = new ScalarGemm();

    private ScalarGemm() {}

    private static boolean hardwareFma() {
        try {
            var bean = ManagementFactory.getPlatformMXBean(
                    com.sun.management.HotSpotDiagnosticMXBean.class);
            return bean == null || !"false".equals(bean.getVMOption("UseFMA").getValue());
        } catch (RuntimeException | LinkageError e) {
            return true; // not HotSpot: assume Math.fma is intrinsic, as on OpenJ9
        }
    }

    @Override public String name() { return "scalar"; }
    @Override public String description() { return "plain Java, 4x4 register tile"; }
    @Override public int mr() { return MR; }
    @Override public int nr() { return NR; }
    @Override public int kc() { return KC; }
    @Override public int mc() { return MC; }
    @Override public int nc() { return NC; }

    @Override
    public void macroKernel(int mc, int nc, int kc, float alpha, float[] ap, int ap0,
                            float[] bp, int bp0, float beta, float[] c, int c0, int ldc,
                            float[] tile) {
        for (int ir = 0; ir < mc; ir += MR) {
            int mr = Math.min(MR, mc - ir);
            int a = ap0 + ir * kc;
            for (int jr = 0; jr < nc; jr += NR) {
                micro(kc, ap, a, bp, bp0 + jr * kc, tile);
                store(tile, mr, Math.min(NR, nc - jr), alpha, beta, c, c0 + ir * ldc + jr, ldc);
            }
        }
    }

    /** C[mr x nr] = alpha * tile + beta * C (beta == 0: C is not read). */
    static void store(float[] tile, int mr, int nr, float alpha, float beta,
                      float[] c, int c0, int ldc) {
        for (int i = 0; i < mr; i++) {
            int co = c0 + i * ldc, to = i * NR;
            if (beta == 0f) {
                for (int j = 0; j < nr; j++) c[co + j] = alpha * tile[to + j];
            } else {
                for (int j = 0; j < nr; j++) c[co + j] = alpha * tile[to + j] + beta * c[co + j];
            }
        }
    }

    /** tile[4 x 4] = A sliver (4 x kc at ap[a]) * B sliver (kc x 4 at bp[b]). */
    static void micro(int kc, float[] ap, int a, float[] bp, int b, float[] tile) {
        float c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        float c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
        if (FMA) {
            for (int ai = a, bi = b, end = a + kc * MR; ai < end; ai += MR, bi += NR) {
                float a0 = ap[ai], a1 = ap[ai + 1], a2 = ap[ai + 2], a3 = ap[ai + 3];
                float b0 = bp[bi], b1 = bp[bi + 1], b2 = bp[bi + 2], b3 = bp[bi + 3];
                c00 = Math.fma(a0, b0, c00); c01 = Math.fma(a0, b1, c01);
                c02 = Math.fma(a0, b2, c02); c03 = Math.fma(a0, b3, c03);
                c10 = Math.fma(a1, b0, c10); c11 = Math.fma(a1, b1, c11);
                c12 = Math.fma(a1, b2, c12); c13 = Math.fma(a1, b3, c13);
                c20 = Math.fma(a2, b0, c20); c21 = Math.fma(a2, b1, c21);
                c22 = Math.fma(a2, b2, c22); c23 = Math.fma(a2, b3, c23);
                c30 = Math.fma(a3, b0, c30); c31 = Math.fma(a3, b1, c31);
                c32 = Math.fma(a3, b2, c32); c33 = Math.fma(a3, b3, c33);
            }
        } else {
            for (int ai = a, bi = b, end = a + kc * MR; ai < end; ai += MR, bi += NR) {
                float a0 = ap[ai], a1 = ap[ai + 1], a2 = ap[ai + 2], a3 = ap[ai + 3];
                float b0 = bp[bi], b1 = bp[bi + 1], b2 = bp[bi + 2], b3 = bp[bi + 3];
                c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
                c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
                c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
                c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
            }
        }
        tile[0] = c00; tile[1] = c01; tile[2] = c02; tile[3] = c03;
        tile[4] = c10; tile[5] = c11; tile[6] = c12; tile[7] = c13;
        tile[8] = c20; tile[9] = c21; tile[10] = c22; tile[11] = c23;
        tile[12] = c30; tile[13] = c31; tile[14] = c32; tile[15] = c33;
    }

    /**
     * Packs op(A)[i0 .. i0+mc, p0 .. p0+kc] into mr-row slivers (layout in {@link GemmKernel}),
     * padding the last sliver with zero rows.
     */
    public static void packA(int mr, boolean transA, float[] a, int offA, int lda, int i0, int mc,
                             int p0, int kc, float[] ap, int ap0) {
        int dst = ap0;
        for (int s = 0; s < mc; s += mr) {
            int rows = Math.min(mr, mc - s);
            if (!transA) {
                // op(A)(i, p) = a[offA + i*lda + p]: read each row sequentially.
                for (int r = 0; r < rows; r++) {
                    int src = offA + (i0 + s + r) * lda + p0;
                    for (int p = 0, d = dst + r; p < kc; p++, d += mr) ap[d] = a[src + p];
                }
            } else {
                // op(A)(i, p) = a[offA + p*lda + i]: each column of op(A) is contiguous.
                int src = offA + p0 * lda + i0 + s;
                for (int p = 0, d = dst; p < kc; p++, d += mr, src += lda) {
                    for (int r = 0; r < rows; r++) ap[d + r] = a[src + r];
                }
            }
            if (rows < mr) {
                for (int p = 0, d = dst; p < kc; p++, d += mr) {
                    for (int r = rows; r < mr; r++) ap[d + r] = 0f;
                }
            }
            dst += mr * kc;
        }
    }

    /**
     * Packs op(B)[p0 .. p0+kc, j0 .. j0+nc] into nr-column slivers (layout in
     * {@link GemmKernel}), padding the last sliver with zero columns.
     */
    public static void packB(int nr, boolean transB, float[] b, int offB, int ldb, int p0, int kc,
                             int j0, int nc, float[] bp, int bp0) {
        if (!transB) {
            // op(B)(p, j) = b[offB + p*ldb + j]: rows of each sliver are contiguous.
            packBRows(nr, b, offB + p0 * ldb + j0, ldb, kc, nc, kc, bp, bp0);
            return;
        }
        for (int s = 0; s < nc; s += nr) {
            int cols = Math.min(nr, nc - s);
            int dst = bp0 + s * kc;
            // op(B)(p, j) = b[offB + j*ldb + p]: read each stored row sequentially.
            for (int j = 0; j < cols; j++) {
                int src = offB + (j0 + s + j) * ldb + p0;
                for (int p = 0, d = dst + j; p < kc; p++, d += nr) bp[d] = b[src + p];
            }
            if (cols < nr) {
                for (int p = 0, d = dst; p < kc; p++, d += nr) {
                    for (int j = cols; j < nr; j++) bp[d + j] = 0f;
                }
            }
        }
    }

    /** {@link GemmKernel#packBRows} in plain Java. */
    public static void packBRows(int nr, float[] src, int off, int ld, int rows, int nc, int depth, float[] bp, int bp0) {
        for (int s = 0; s < nc; s += nr) {
            int cols = Math.min(nr, nc - s);
            for (int r = 0, from = off + s, d = bp0 + s * depth; r < rows; r++, from += ld, d += nr) {
                for (int j = 0; j < cols; j++) bp[d + j] = src[from + j];
                for (int j = cols; j < nr; j++) bp[d + j] = 0f;
            }
        }
    }
}
