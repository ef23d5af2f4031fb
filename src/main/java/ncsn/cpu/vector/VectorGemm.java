package ncsn.cpu.vector;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;
import ncsn.cpu.GemmKernel;
import ncsn.cpu.ScalarGemm;

/**
 * The Vector API GEMM kernel: a 12 x (2 vectors) register tile of FMAs (12 x 32 floats with
 * AVX-512, 12 x 16 with AVX2) over operands packed as {@link GemmKernel} describes, plus
 * vectorized packing. {@link ncsn.cpu.Gemm} drives it; see there for the loop structure.
 *
 * <p>Loaded by name from {@link ncsn.cpu.Simd} only when the {@code jdk.incubator.vector}
 * module is present: nothing outside this package refers to a Vector API class.
 *
 * <p>Choices, measured on the 2-core AVX-512 machine (Intel Xeon, 48 KiB L1d and 2 MiB L2 per
 * core; JDK 17 C2; ratios are to a register-only FMA loop on the same core, about 200 GFLOP/s):
 * <ul>
 *   <li>Register tile 12 x 32: 24 accumulators + 2 B vectors + 1-2 broadcast A values of the 32
 *       vector registers. With the data in L1 it runs at about 0.84 of peak; 14 x 32 and 13 x 32
 *       were no faster, 8 x 48 0.79, 6 x 64 0.57, 4 x 64 0.3. Unrolling the k loop by hand made
 *       C2 shuffle registers (slower); stepping two induction variables ({@code ai += MR,
 *       bi += NR}) instead of computing {@code a + p*MR} saved about 5%.
 *   <li>The accumulators go to a scratch tile and are merged into C by a separate method: with
 *       the C update inside the micro-kernel the method grew past what C1 can compile ("out of
 *       virtual registers"), and it then stayed in slow tier-2 code for good.
 *   <li>Loop order inside a block ({@link #macroKernel}): A sliver (12 x kc, 12 KiB at kc 256)
 *       outer and held in L1, B slivers inner and streamed from the L2-resident panel
 *       (kc x nc, 1 MiB at 256 x 1024). This beat the textbook order (B sliver in L1, A block in
 *       L2) by 0.74 to 0.63-0.69 of peak at 2048^3.
 *   <li>kc 256, nc 1024: kc 384 / nc 768 and kc 512 / nc 512 (the same 1 MiB panel) measured the
 *       same within noise; a panel of 2 MiB (nc 2048) was slower. mc 96 only sets the unit of
 *       work handed to threads (8 slivers).
 *   <li>Skinny products (C with at most {@value #SKINNY_M} rows: the convolutions' per-image
 *       GEMMs, Co = 64 or 128 rows, P = Ho*Wo columns, K = 9 Ci deep) use kc 384 / nc 384:
 *       single-thread GFLOP/s, best of 4, two interleaved rounds (2026-11-28): 72x784x576 from
 *       117-124 to 144-152, 128x196x1152 from 120-128 to 128-133, 64x3136x576 from 116-119 to
 *       122-128; kc 576 / nc 384 was the same, nc 128 and nc 1024 slower. For square products
 *       the same sizes lose (1024^3: 147 against 165), hence the split by m.
 * </ul>
 */
public final class VectorGemm implements GemmKernel {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    /** Floats per vector: 16 with AVX-512. */
    static final int L = S.length();
    /** Register tile: MR rows x NR columns of C. */
    static final int MR = 12;
    static final int NR = 2 * L;

    /** C with at most this many rows is "skinny" (see the class comment). */
    static final int SKINNY_M = 192;

    private final int kc, mc, nc, skinnyKc, skinnyNc;

    /** The tuned block sizes (see the class comment). */
    public VectorGemm() {
        this(256, 96, 1024, 384, 384);
    }

    /** Explicit block sizes for every product, for tuning experiments; mc and nc are rounded up to whole slivers. */
    public VectorGemm(int kc, int mc, int nc) {
        this(kc, mc, nc, kc, nc);
    }

    private VectorGemm(int kc, int mc, int nc, int skinnyKc, int skinnyNc) {
        if (kc < 1 || mc < 1 || nc < 1 || skinnyKc < 1 || skinnyNc < 1) {
            throw new IllegalArgumentException("VectorGemm: block sizes must be positive (kc=" + kc
                    + ", mc=" + mc + ", nc=" + nc + ")");
        }
        this.kc = kc;
        this.mc = roundUp(mc, MR);
        this.nc = roundUp(nc, NR);
        this.skinnyKc = skinnyKc;
        this.skinnyNc = roundUp(skinnyNc, NR);
    }

    private static int roundUp(int x, int m) {
        return (x + m - 1) / m * m;
    }

    /** Null when this kernel is worth using here, else why not (for the log line). */
    public static String unusableReason() {
        if (S.vectorBitSize() < 128) {
            return "preferred vector size is only " + S.vectorBitSize() + " bits";
        }
        return null;
    }

    @Override public String name() { return "vector"; }
    @Override public String description() {
        return "jdk.incubator.vector, " + S.vectorBitSize() + "-bit, " + L + " floats/vector";
    }
    @Override public int mr() { return MR; }
    @Override public int nr() { return NR; }
    @Override public int kc() { return kc; }
    @Override public int mc() { return mc; }
    @Override public int nc() { return nc; }
    @Override public int kc(int m) { return m <= SKINNY_M ? skinnyKc : kc; }
    @Override public int nc(int m) { return m <= SKINNY_M ? skinnyNc : nc; }

    @Override
    public void macroKernel(int mc, int nc, int kc, float alpha, float[] ap, int ap0,
                            float[] bp, int bp0, float beta, float[] c, int c0, int ldc,
                            float[] tile) {
        blocks(mc, nc, kc, alpha, ap, ap0, bp, bp0, kc, NR, beta, c, c0, ldc, tile);
    }

    @Override public boolean readsRowsInPlace() { return true; }

    @Override
    public void macroKernelRows(int mc, int nc, int kc, float alpha, float[] ap, int ap0,
                                float[] b, int b0, int ldb, float beta, float[] c, int c0, int ldc,
                                float[] tile) {
        blocks(mc, nc, kc, alpha, ap, ap0, b, b0, 1, ldb, beta, c, c0, ldc, tile);
    }

    /**
     * Both macro-kernels: B sliver jr (a column index) starts at b[b0 + jr * colScale] and its
     * rows are rowStep apart (packed: kc and NR; in place: 1 and ldb).
     */
    private static void blocks(int mc, int nc, int kc, float alpha, float[] ap, int ap0, float[] b, int b0,
                               int colScale, int rowStep, float beta, float[] c, int c0, int ldc, float[] tile) {
        for (int ir = 0; ir < mc; ir += MR) {
            int mr = Math.min(MR, mc - ir);
            int a = ap0 + ir * kc;
            for (int jr = 0; jr < nc; jr += NR) {
                micro(kc, ap, a, b, b0 + jr * colScale, rowStep, tile);
                store(tile, mr, Math.min(NR, nc - jr), alpha, beta, c, c0 + ir * ldc + jr, ldc);
            }
        }
    }

    /** C[mr x nr] = alpha * tile + beta * C (beta == 0: C is not read). */
    private static void store(float[] tile, int mr, int nr, float alpha, float beta,
                              float[] c, int c0, int ldc) {
        if (nr == NR) {
            FloatVector va = FloatVector.broadcast(S, alpha), vb = FloatVector.broadcast(S, beta);
            for (int i = 0; i < mr; i++) {
                int co = c0 + i * ldc, to = i * NR;
                FloatVector t0 = FloatVector.fromArray(S, tile, to).mul(va);
                FloatVector t1 = FloatVector.fromArray(S, tile, to + L).mul(va);
                if (beta != 0f) {
                    t0 = FloatVector.fromArray(S, c, co).fma(vb, t0);
                    t1 = FloatVector.fromArray(S, c, co + L).fma(vb, t1);
                }
                t0.intoArray(c, co);
                t1.intoArray(c, co + L);
            }
        } else { // ragged right edge: scalar, as in ScalarGemm
            for (int i = 0; i < mr; i++) {
                int co = c0 + i * ldc, to = i * NR;
                if (beta == 0f) {
                    for (int j = 0; j < nr; j++) c[co + j] = alpha * tile[to + j];
                } else {
                    for (int j = 0; j < nr; j++) c[co + j] = alpha * tile[to + j] + beta * c[co + j];
                }
            }
        }
    }

    /**
     * tile[MR x NR] = A sliver (MR x kc at ap[a], column by column) * B sliver (kc x NR at
     * bp[b], row by row, rows rowStep apart). The 24 accumulators stay in registers for the whole
     * k loop; each k step is 2 vector loads of B, 12 broadcast loads of A (vbroadcastss from
     * memory) and 24 FMAs.
     */
    static void micro(int kc, float[] ap, int a, float[] bp, int b, int rowStep, float[] tile) {
        FloatVector c0_0 = FloatVector.zero(S), c0_1 = FloatVector.zero(S);
        FloatVector c1_0 = FloatVector.zero(S), c1_1 = FloatVector.zero(S);
        FloatVector c2_0 = FloatVector.zero(S), c2_1 = FloatVector.zero(S);
        FloatVector c3_0 = FloatVector.zero(S), c3_1 = FloatVector.zero(S);
        FloatVector c4_0 = FloatVector.zero(S), c4_1 = FloatVector.zero(S);
        FloatVector c5_0 = FloatVector.zero(S), c5_1 = FloatVector.zero(S);
        FloatVector c6_0 = FloatVector.zero(S), c6_1 = FloatVector.zero(S);
        FloatVector c7_0 = FloatVector.zero(S), c7_1 = FloatVector.zero(S);
        FloatVector c8_0 = FloatVector.zero(S), c8_1 = FloatVector.zero(S);
        FloatVector c9_0 = FloatVector.zero(S), c9_1 = FloatVector.zero(S);
        FloatVector c10_0 = FloatVector.zero(S), c10_1 = FloatVector.zero(S);
        FloatVector c11_0 = FloatVector.zero(S), c11_1 = FloatVector.zero(S);
        FloatVector av;
        for (int ai = a, bi = b, end = a + kc * MR; ai < end; ai += MR, bi += rowStep) {
            FloatVector b0 = FloatVector.fromArray(S, bp, bi);
            FloatVector b1 = FloatVector.fromArray(S, bp, bi + L);
            av = FloatVector.broadcast(S, ap[ai + 0]);
            c0_0 = av.fma(b0, c0_0); c0_1 = av.fma(b1, c0_1);
            av = FloatVector.broadcast(S, ap[ai + 1]);
            c1_0 = av.fma(b0, c1_0); c1_1 = av.fma(b1, c1_1);
            av = FloatVector.broadcast(S, ap[ai + 2]);
            c2_0 = av.fma(b0, c2_0); c2_1 = av.fma(b1, c2_1);
            av = FloatVector.broadcast(S, ap[ai + 3]);
            c3_0 = av.fma(b0, c3_0); c3_1 = av.fma(b1, c3_1);
            av = FloatVector.broadcast(S, ap[ai + 4]);
            c4_0 = av.fma(b0, c4_0); c4_1 = av.fma(b1, c4_1);
            av = FloatVector.broadcast(S, ap[ai + 5]);
            c5_0 = av.fma(b0, c5_0); c5_1 = av.fma(b1, c5_1);
            av = FloatVector.broadcast(S, ap[ai + 6]);
            c6_0 = av.fma(b0, c6_0); c6_1 = av.fma(b1, c6_1);
            av = FloatVector.broadcast(S, ap[ai + 7]);
            c7_0 = av.fma(b0, c7_0); c7_1 = av.fma(b1, c7_1);
            av = FloatVector.broadcast(S, ap[ai + 8]);
            c8_0 = av.fma(b0, c8_0); c8_1 = av.fma(b1, c8_1);
            av = FloatVector.broadcast(S, ap[ai + 9]);
            c9_0 = av.fma(b0, c9_0); c9_1 = av.fma(b1, c9_1);
            av = FloatVector.broadcast(S, ap[ai + 10]);
            c10_0 = av.fma(b0, c10_0); c10_1 = av.fma(b1, c10_1);
            av = FloatVector.broadcast(S, ap[ai + 11]);
            c11_0 = av.fma(b0, c11_0); c11_1 = av.fma(b1, c11_1);
        }
        c0_0.intoArray(tile, 0 * NR); c0_1.intoArray(tile, 0 * NR + L);
        c1_0.intoArray(tile, 1 * NR); c1_1.intoArray(tile, 1 * NR + L);
        c2_0.intoArray(tile, 2 * NR); c2_1.intoArray(tile, 2 * NR + L);
        c3_0.intoArray(tile, 3 * NR); c3_1.intoArray(tile, 3 * NR + L);
        c4_0.intoArray(tile, 4 * NR); c4_1.intoArray(tile, 4 * NR + L);
        c5_0.intoArray(tile, 5 * NR); c5_1.intoArray(tile, 5 * NR + L);
        c6_0.intoArray(tile, 6 * NR); c6_1.intoArray(tile, 6 * NR + L);
        c7_0.intoArray(tile, 7 * NR); c7_1.intoArray(tile, 7 * NR + L);
        c8_0.intoArray(tile, 8 * NR); c8_1.intoArray(tile, 8 * NR + L);
        c9_0.intoArray(tile, 9 * NR); c9_1.intoArray(tile, 9 * NR + L);
        c10_0.intoArray(tile, 10 * NR); c10_1.intoArray(tile, 10 * NR + L);
        c11_0.intoArray(tile, 11 * NR); c11_1.intoArray(tile, 11 * NR + L);
    }

    // ---------------------------------------------------------------------------------------
    // Packing. Contiguous sources are copied a vector at a time; transposing sources use
    // gathers (about 0.35 ns per float from L3 against 0.5 for the scalar loop). Ragged
    // slivers go to the plain-Java packer.

    /** Per-thread gather index maps: [0] and [1] hold ld + 1 of the cached maps, then A, then B. */
    private static final int A_GROUP = lcm(L, MR);
    private static final ThreadLocal<int[]> INDEX =
            ThreadLocal.withInitial(() -> new int[2 + A_GROUP + L]);

    private static int lcm(int x, int y) {
        int g = x, h = y;
        while (h != 0) {
            int t = g % h;
            g = h;
            h = t;
        }
        return x / g * y;
    }

    /** Offsets for gathering an A group ({@code which == 0}) or a B vector (1) at this ld. */
    private static int[] indexMap(int ld, int which) {
        int[] idx = INDEX.get();
        if (idx[which] != ld + 1) {
            idx[which] = ld + 1;
            if (which == 0) {
                // Lane e of a group of A_GROUP floats is row e % MR, column e / MR.
                for (int e = 0; e < A_GROUP; e++) idx[2 + e] = (e % MR) * ld + e / MR;
            } else {
                for (int l = 0; l < L; l++) idx[2 + A_GROUP + l] = l * ld;
            }
        }
        return idx;
    }

    @Override
    public void packA(boolean transA, float[] a, int offA, int lda, int i0, int mc, int p0, int kc,
                      float[] ap, int ap0) {
        int done = 0; // rows packed by the vector paths (whole slivers)
        if (!transA) {
            // op(A)(i, p) = a[offA + i*lda + p]: a transpose. G = A_GROUP / MR consecutive k
            // steps of a sliver are A_GROUP / L gathered vectors (4 steps = 3 vectors at L = 16).
            int g = A_GROUP / MR;
            int[] idx = indexMap(lda, 0);
            for (; done + MR <= mc; done += MR) {
                int base = offA + (i0 + done) * lda + p0;
                int dst = ap0 + done * kc, p = 0;
                for (; p + g <= kc; p += g) {
                    for (int e = 0; e < A_GROUP; e += L, dst += L) {
                        FloatVector.fromArray(S, a, base + p, idx, 2 + e).intoArray(ap, dst);
                    }
                }
                for (; p < kc; p++) {
                    for (int r = 0; r < MR; r++) ap[dst++] = a[base + r * lda + p];
                }
            }
        } else if (L >= MR && L - MR <= PACK_SLACK) {
            // op(A)(i, p) = a[offA + p*lda + i]: each k step copies MR floats with one L-float
            // load and store; the L - MR extra floats land where the next step (or the
            // buffer's slack) overwrites them.
            for (; done + MR <= mc; done += MR) {
                int src = offA + p0 * lda + i0 + done;
                if ((long) src + (long) (kc - 1) * lda + L > a.length) break; // would overrun a
                for (int p = 0, dst = ap0 + done * kc; p < kc; p++, dst += MR, src += lda) {
                    FloatVector.fromArray(S, a, src).intoArray(ap, dst);
                }
            }
            int rest = mc - done;
            int src = offA + p0 * lda + i0 + done;
            if (rest > 0 && rest < MR && (long) src + (long) (kc - 1) * lda + L <= a.length) {
                // The last, partial sliver (Co = 64 is 5 slivers + 4 rows): the same copies with
                // the lanes past its rows zeroed (scalar, this sliver cost 3.3% of a training step
                // in JFR samples against 0.6% for all the whole ones).
                VectorMask<Float> rows = VectorMask.fromLong(S, (1L << rest) - 1);
                FloatVector zero = FloatVector.zero(S);
                for (int p = 0, dst = ap0 + done * kc; p < kc; p++, dst += MR, src += lda) {
                    zero.blend(FloatVector.fromArray(S, a, src), rows).intoArray(ap, dst);
                }
                done = mc;
            }
        }
        if (done < mc) {
            ScalarGemm.packA(MR, transA, a, offA, lda, i0 + done, mc - done, p0, kc, ap,
                    ap0 + done * kc);
        }
    }

    @Override
    public void packBRows(float[] src, int off, int ld, int rows, int nc, int depth, float[] bp, int bp0) {
        // Row by row (sequential reads), two vectors per sliver.
        int full = nc - nc % NR; // columns in whole slivers
        for (int r = 0; r < rows && full > 0; r++) {
            int from = off + r * ld;
            for (int j = 0, dst = bp0 + r * NR; j < full; j += NR, dst += NR * depth) {
                FloatVector.fromArray(S, src, from + j).intoArray(bp, dst);
                FloatVector.fromArray(S, src, from + j + L).intoArray(bp, dst + L);
            }
        }
        if (full < nc) ScalarGemm.packBRows(NR, src, off + full, ld, rows, nc - full, depth, bp, bp0 + full * depth);
    }

    @Override
    public void packB(boolean transB, float[] b, int offB, int ldb, int p0, int kc, int j0, int nc,
                      float[] bp, int bp0) {
        if (!transB) {
            // op(B)(p, j) = b[offB + p*ldb + j]: rows of each sliver are contiguous.
            packBRows(b, offB + p0 * ldb + j0, ldb, kc, nc, kc, bp, bp0);
            return;
        }
        // op(B)(p, j) = b[offB + j*ldb + p]: lane l of a vector gathers stored row j + l.
        int full = nc - nc % NR; // columns in whole slivers
        int[] idx = indexMap(ldb, 1);
        for (int j = 0; j < full; j += NR) {
            for (int v = 0; v < NR; v += L) {
                int base = offB + (j0 + j + v) * ldb + p0;
                for (int p = 0, dst = bp0 + j * kc + v; p < kc; p++, dst += NR) {
                    FloatVector.fromArray(S, b, base + p, idx, 2 + A_GROUP).intoArray(bp, dst);
                }
            }
        }
        if (full < nc) {
            ScalarGemm.packB(NR, transB, b, offB, ldb, p0, kc, j0 + full, nc - full, bp,
                    bp0 + full * kc);
        }
    }
}
