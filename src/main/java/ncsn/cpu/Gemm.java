package ncsn.cpu;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * Row-major single-precision GEMM with BLAS semantics:
 * {@code C[m x n] = alpha * op(A)[m x k] * op(B)[k x n] + beta * C}, where {@code op(X)} is X or
 * its transpose. Every matrix is row-major: element (i, j) of a matrix stored at {@code off} with
 * leading dimension {@code ld} is {@code x[off + i*ld + j]}. So A is stored {@code m x k}
 * ({@code lda >= k}) when not transposed and {@code k x m} ({@code lda >= m}) when transposed;
 * likewise B is {@code k x n} ({@code ldb >= n}) or {@code n x k} ({@code ldb >= k}); C is
 * {@code m x n} ({@code ldc >= n}). {@code beta == 0} overwrites C without reading it (old NaNs
 * do not survive), as in BLAS.
 *
 * <p>Structure (GotoBLAS / BLIS): loops over column panels of C ({@code nc} wide) and depth
 * blocks ({@code kc} deep) pack a {@code kc x nc} panel of op(B) into a contiguous buffer; units
 * of work (a block of {@code mc} rows of C times a slice of the panel) are then handed out to the
 * {@link Parallel} workers one at a time from a shared counter, so a slower second core simply
 * takes fewer units. Each unit packs its {@code mc x kc} block of op(A) into the worker's own
 * buffer and calls the {@link GemmKernel}'s register-blocked macro-kernel. Transposition is
 * absorbed by packing, so all four combinations run the same inner loops. Packing buffers are
 * per-thread and grow once; in steady state no float array is allocated.
 *
 * <p>Block sizes and the register tile are the kernel's ({@link GemmKernel#kc()} etc.; the
 * Vector API kernel's measured choices are documented in {@code ncsn.cpu.vector.VectorGemm}).
 * Depth is cut into equal blocks no deeper than kc, and the contributions of later depth blocks
 * accumulate into C (beta applies to the first only).
 *
 * <p>The kernel is chosen once by {@link Simd} (Vector API when available, else plain Java);
 * tests and benchmarks pass one explicitly. Results do not depend on the thread count: every
 * element is summed in the same order however the work is split.
 */
public final class Gemm {
    private Gemm() {}

    /**
     * C = alpha * op(A) * op(B) + beta * C with the engine's kernel ({@link Simd#gemmKernel()}),
     * on all {@link Parallel#threads()} workers.
     */
    public static void sgemm(boolean transA, boolean transB, int m, int n, int k,
                             float alpha, float[] a, int offA, int lda,
                             float[] b, int offB, int ldb,
                             float beta, float[] c, int offC, int ldc) {
        sgemm(Simd.gemmKernel(), true, transA, transB, m, n, k, alpha, a, offA, lda, b, offB, ldb,
                beta, c, offC, ldc);
    }

    /**
     * As {@link #sgemm(boolean, boolean, int, int, int, float, float[], int, int, float[], int,
     * int, float, float[], int, int)} with an explicit kernel; {@code parallel == false} keeps
     * all work on the calling thread (for callers that already split work across images).
     * Inside a {@link Parallel} worker the call runs on that worker regardless.
     */
    public static void sgemm(GemmKernel kernel, boolean parallel,
                             boolean transA, boolean transB, int m, int n, int k,
                             float alpha, float[] a, int offA, int lda,
                             float[] b, int offB, int ldb,
                             float beta, float[] c, int offC, int ldc) {
        if (kernel == null) throw new IllegalArgumentException("sgemm: kernel is null");
        checkArgs(transA, transB, m, n, k, a, offA, lda, b, offB, ldb, c, offC, ldc);
        multiply(kernel, parallel, m, n, k, alpha, transA, a, offA, lda, null, panels(kernel, transB, b, offB, ldb),
                beta, c, offC, ldc);
    }

    /** Both entry points after their checks: the empty and alpha == 0 cases, else one {@link Job}. */
    private static void multiply(GemmKernel kernel, boolean parallel, int m, int n, int k, float alpha, boolean transA,
                                 float[] a, int offA, int lda, PackedA packed, PanelSource source, float beta,
                                 float[] c, int offC, int ldc) {
        if (m == 0 || n == 0) return;
        if (k == 0 || alpha == 0f) {
            scale(m, n, beta, c, offC, ldc);
            return;
        }
        new Job(kernel, parallel ? Parallel.threads() : 1, m, n, k, alpha, transA, a, offA, lda, packed, source, beta,
                c, offC, ldc).run();
    }

    /**
     * C[m x n] = alpha * A * op(B) + beta * C with A packed beforehand ({@link #packA}) and op(B)
     * [k x n] supplied by {@code b} straight into the packed panels (for a plain matrix:
     * {@link #panels}). A convolution multiplies every image by the same weights: packing them
     * once per layer call instead of once per image and panel, and writing im2col straight
     * into the panel, removes two of the three copies of the plain path.
     */
    public static void sgemm(GemmKernel kernel, boolean parallel, PackedA a, PanelSource b, int n,
                             float alpha, float beta, float[] c, int offC, int ldc) {
        if (kernel == null || a == null || b == null)
            throw new IllegalArgumentException("sgemm: kernel, packed A and panel source must be given");
        if (a.kernel != kernel)
            throw new IllegalArgumentException("sgemm: A was packed for kernel " + a.kernel.name() + ", not " + kernel.name());
        if (n < 0) throw new IllegalArgumentException("sgemm: negative dimension n=" + n);
        String problem = operandProblem("C", "m x n", c, offC, ldc, "ldc", a.m, n);
        if (problem != null)
            throw new IllegalArgumentException("sgemm: " + problem + " (m=" + a.m + ", n=" + n + ", k=" + a.k + ", A packed)");
        multiply(kernel, parallel, a.m, n, a.k, alpha, false, null, 0, 0, a, b, beta, c, offC, ldc);
    }

    /**
     * Writes slices of op(B) [k x n] in the kernel's packed-B layout ({@link GemmKernel}), so
     * that an operand which is never stored as a matrix (a convolution's im2col) can be
     * packed straight from where it lives. Called from several threads at once for disjoint
     * column ranges.
     */
    public interface PanelSource {
        /** op(B)[p0 .. p0+kc, j0 .. j0+nc] at bp[bp0 ..], zero-padded to whole slivers of nr columns. */
        void pack(int p0, int kc, int j0, int nc, float[] bp, int bp0);
    }

    /** A stored matrix as a panel source: op(B)(p, j) = b[offB + p*ldb + j], or b[offB + j*ldb + p] if transB. */
    public static PanelSource panels(GemmKernel kernel, boolean transB, float[] b, int offB, int ldb) {
        return (p0, kc, j0, nc, bp, bp0) -> kernel.packB(transB, b, offB, ldb, p0, kc, j0, nc, bp, bp0);
    }

    /**
     * B [k x n] row-major at b[offB], leading dimension ldb, for the kernel to read where it is
     * ({@link GemmKernel#macroKernelRows}) instead of packing it: for an operand the caller has
     * just written into a cache-sized buffer. Packed as {@link #panels} when the kernel cannot,
     * or when b does not extend to whole slivers past column n in its last row.
     */
    public static PanelSource rowsInPlace(GemmKernel kernel, float[] b, int offB, int ldb) {
        return new RowsInPlace(kernel, b, offB, ldb);
    }

    private record RowsInPlace(GemmKernel kernel, float[] b, int offB, int ldb) implements PanelSource {
        @Override
        public void pack(int p0, int kc, int j0, int nc, float[] bp, int bp0) {
            kernel.packB(false, b, offB, ldb, p0, kc, j0, nc, bp, bp0);
        }

        /** Whether the kernel can read k x n of it in place (see rowsInPlace). */
        boolean readable(int k, int n) {
            return kernel.readsRowsInPlace() && ldb >= n
                    && offB + (long) (k - 1) * ldb + roundUp(n, kernel.nr()) <= b.length;
        }
    }

    /**
     * C = alpha * op(A) * B + beta * C with B from a panel source ({@link #rowsInPlace},
     * {@link #panels}); A packed per unit of work as in the plain entry point.
     */
    public static void sgemm(GemmKernel kernel, boolean parallel, boolean transA, int m, int n, int k, float alpha,
                             float[] a, int offA, int lda, PanelSource b, float beta, float[] c, int offC, int ldc) {
        if (kernel == null || b == null) throw new IllegalArgumentException("sgemm: kernel and panel source must be given");
        if (m < 0 || n < 0 || k < 0)
            throw new IllegalArgumentException("sgemm: negative dimension (m=" + m + ", n=" + n + ", k=" + k + ")");
        String problem = operandProblem("A", transA ? "k x m" : "m x k", a, offA, lda, "lda", transA ? k : m, transA ? m : k);
        if (problem == null) problem = operandProblem("C", "m x n", c, offC, ldc, "ldc", m, n);
        if (problem != null)
            throw new IllegalArgumentException("sgemm: " + problem + " (m=" + m + ", n=" + n + ", k=" + k + ", B from a panel source)");
        multiply(kernel, parallel, m, n, k, alpha, transA, a, offA, lda, null, b, beta, c, offC, ldc);
    }

    /**
     * op(A) [m x k] packed once in {@link Job}'s depth blocks (each block: m rounded up to whole
     * slivers, times the block's depth, in the kernel's packed-A layout), for several products
     * with the same A. Read-only once made, so threads share it.
     */
    public static final class PackedA {
        final GemmKernel kernel;
        final int m, k, rows, kcStep;
        final float[] data;

        private PackedA(GemmKernel kernel, int m, int k, float[] data) {
            this.kernel = kernel;
            this.m = m;
            this.k = k;
            this.rows = packedRows(kernel, m);
            this.kcStep = depthStep(kernel, m, k);
            this.data = data;
        }

        /** Where depth block pc (a multiple of the block depth) starts: every block before it holds rows x its depth. */
        int offset(int pc) {
            return rows * pc;
        }
    }

    /** Floats {@link #packA} needs for an m x k operand with this kernel (its buffer may be pooled). */
    public static int packedASize(GemmKernel kernel, int m, int k) {
        return packedRows(kernel, m) * k + GemmKernel.PACK_SLACK;
    }

    /** Rows of a packed A: m rounded up to whole slivers. */
    private static int packedRows(GemmKernel kernel, int m) {
        return roundUp(Math.max(m, 1), kernel.mr());
    }

    /**
     * Packs op(A) [m x k] (A stored m x k, or k x m when transA, at offA with leading dimension
     * lda) into {@code into} (at least {@link #packedASize} floats) for {@link #sgemm(GemmKernel,
     * boolean, PackedA, PanelSource, int, float, float, float[], int, int)}.
     */
    public static PackedA packA(GemmKernel kernel, boolean transA, int m, int k, float[] a, int offA, int lda,
                                float[] into) {
        if (kernel == null) throw new IllegalArgumentException("packA: kernel is null");
        if (m < 0 || k < 0) throw new IllegalArgumentException("packA: negative dimension (m=" + m + ", k=" + k + ")");
        String problem = operandProblem("A", transA ? "k x m" : "m x k", a, offA, lda, "lda", transA ? k : m, transA ? m : k);
        if (problem != null) throw new IllegalArgumentException("packA: " + problem + " (m=" + m + ", k=" + k + ")");
        int need = packedASize(kernel, m, k);
        if (into == null || into.length < need)
            throw new IllegalArgumentException("packA: buffer of " + (into == null ? 0 : into.length) + " floats, " + need + " needed");
        PackedA pa = new PackedA(kernel, m, k, into);
        if (m > 0) {
            for (int pc = 0; pc < k; pc += pa.kcStep)
                kernel.packA(transA, a, offA, lda, 0, m, pc, Math.min(pa.kcStep, k - pc), into, pa.offset(pc));
        }
        return pa;
    }

    /** Depth of {@link Job}'s blocks: k cut into equal blocks no deeper than the kernel's kc for m rows. */
    static int depthStep(GemmKernel kernel, int m, int k) {
        return ceilDiv(k, ceilDiv(Math.max(k, 1), kernel.kc(m)));
    }

    // ---------------------------------------------------------------------------------------
    // Argument checks: all up front, each message names sgemm, the operand and the sizes.

    static void checkArgs(boolean transA, boolean transB, int m, int n, int k,
                          float[] a, int offA, int lda, float[] b, int offB, int ldb,
                          float[] c, int offC, int ldc) {
        if (m < 0 || n < 0 || k < 0) {
            throw new IllegalArgumentException(
                    "sgemm: negative dimension (m=" + m + ", n=" + n + ", k=" + k + ")");
        }
        // Stored shapes (rows x cols) of A, B, C in row-major order.
        String problem = operandProblem("A", transA ? "k x m" : "m x k", a, offA, lda, "lda",
                transA ? k : m, transA ? m : k);
        if (problem == null) {
            problem = operandProblem("B", transB ? "n x k" : "k x n", b, offB, ldb, "ldb",
                    transB ? n : k, transB ? k : n);
        }
        if (problem == null) {
            problem = operandProblem("C", "m x n", c, offC, ldc, "ldc", m, n);
        }
        if (problem != null) {
            throw new IllegalArgumentException("sgemm: " + problem + " (m=" + m + ", n=" + n
                    + ", k=" + k + ", transA=" + transA + ", transB=" + transB + ")");
        }
    }

    /** Null if x holds a rows x cols matrix at off with leading dimension ld, else what is wrong. */
    private static String operandProblem(String name, String shape, float[] x, int off, int ld,
                                         String ldName, int rows, int cols) {
        if (ld < Math.max(1, cols)) {
            return ldName + "=" + ld + " is less than the " + cols + " columns of " + name
                    + " (stored " + shape + " = " + rows + " x " + cols + ")";
        }
        if (off < 0) {
            return "negative offset " + off + " for " + name;
        }
        if (rows == 0 || cols == 0) return null; // nothing of this operand is read or written
        if (x == null) {
            return "array for " + name + " is null";
        }
        long need = off + (long) (rows - 1) * ld + cols;
        if (need > x.length) {
            return name + " (stored " + shape + " = " + rows + " x " + cols + ", offset " + off
                    + ", " + ldName + "=" + ld + ") needs " + need + " elements but its array has "
                    + x.length;
        }
        return null;
    }

    /** C = beta * C over m x n (beta == 0 writes zeros). */
    private static void scale(int m, int n, float beta, float[] c, int offC, int ldc) {
        if (beta == 1f) return;
        for (int i = 0; i < m; i++) {
            int row = offC + i * ldc;
            if (beta == 0f) {
                java.util.Arrays.fill(c, row, row + n, 0f);
            } else {
                for (int j = 0; j < n; j++) c[row + j] *= beta;
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Per-thread packing buffers, grown on demand and kept: after the first calls at a given
    // size no float array is allocated.

    private static final class Scratch {
        float[] a = new float[0];
        float[] b = new float[0];
        float[] tile = new float[0];

        float[] a(int n) {
            if (a.length < n) a = new float[n];
            return a;
        }

        float[] b(int n) {
            if (b.length < n) b = new float[n];
            return b;
        }

        float[] tile(int n) {
            if (tile.length < n) tile = new float[n];
            return tile;
        }
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    /**
     * A (jc, pc) step with fewer multiply-adds than this runs on the calling thread: a fork-join
     * hand-off costs some microseconds, 2^20 FMAs take about 8 us at vector speed.
     */
    private static final long MIN_PARALLEL_FMAS = 1L << 20;
    /** Pack the B panel on several threads from this many floats up. */
    private static final int MIN_PARALLEL_PACK = 1 << 17;
    /** Units of work per thread per step: enough for the counter to even out unequal cores. */
    private static final int UNITS_PER_THREAD = 4;

    /**
     * One sgemm call. Loops: jc over column panels of C (nc wide), pc over depth blocks
     * (kc deep); per (jc, pc) step, phase 1 packs op(B)[pc.., jc..] into the panel {@code bp}
     * (shared, read-only afterwards) and phase 2 hands out units (mcStep rows x partStep
     * columns of the panel) from the counter {@code next}; a unit packs its rows of op(A) into
     * its thread's buffer and runs the kernel's macro-kernel. Each phase ends in
     * {@link Parallel#forRange}'s join, which also publishes the panel to the workers.
     */
    private static final class Job implements Parallel.Range {
        final GemmKernel kernel;
        final int threads;
        final int m, n, k;
        final float alpha, beta;
        final boolean transA;
        final float[] a, c;
        final int offA, lda, offC, ldc;
        final PackedA packed; // op(A) packed beforehand, or null: each unit packs its rows of a
        final PanelSource source;
        final RowsInPlace inPlace; // B read where it is stored (no packing phase), or null
        final int mr, nr;

        // The current (jc, pc) step, written by the calling thread between phases.
        float[] bp;
        int jc, nc, pc, kc;
        float stepBeta;
        int mcStep, partStep, nParts, units;
        boolean packingB; // which phase run(lo, hi) executes
        final AtomicInteger next = new AtomicInteger();

        Job(GemmKernel kernel, int threads, int m, int n, int k, float alpha, boolean transA, float[] a, int offA,
            int lda, PackedA packed, PanelSource source, float beta, float[] c, int offC, int ldc) {
            this.kernel = kernel;
            this.threads = threads;
            this.m = m;
            this.n = n;
            this.k = k;
            this.alpha = alpha;
            this.transA = transA;
            this.a = a;
            this.offA = offA;
            this.lda = lda;
            this.packed = packed;
            this.source = source;
            this.inPlace = source instanceof RowsInPlace r && r.readable(k, n) ? r : null;
            this.beta = beta;
            this.c = c;
            this.offC = offC;
            this.ldc = ldc;
            this.mr = kernel.mr();
            this.nr = kernel.nr();
        }

        void run() {
            // Equal-sized blocks (k = 300 with kc 256 runs as 150 + 150, not 256 + 44).
            int kcStep = depthStep(kernel, m, k);
            int nSteps = ceilDiv(n, kernel.nc(m));
            int ncStep = roundUp(ceilDiv(n, nSteps), nr);
            bp = inPlace != null ? null : SCRATCH.get().b(ncStep * kcStep + GemmKernel.PACK_SLACK);
            for (jc = 0; jc < n; jc += ncStep) {
                nc = Math.min(ncStep, n - jc);
                int slivers = ceilDiv(nc, nr);
                for (pc = 0; pc < k; pc += kcStep) {
                    kc = Math.min(kcStep, k - pc);
                    stepBeta = pc == 0 ? beta : 1f; // later depth blocks accumulate
                    boolean par = threads > 1 && (long) m * nc * kc >= MIN_PARALLEL_FMAS;
                    planUnits(par ? threads : 1);

                    if (inPlace == null) { // (B read in place: nothing to pack)
                        packingB = true;
                        if (par && slivers > 1 && (long) nc * kc >= MIN_PARALLEL_PACK) {
                            Parallel.forRange(slivers, 1, this);
                        } else {
                            run(0, slivers);
                        }
                    }

                    packingB = false;
                    next.set(0);
                    if (par && units > 1) {
                        Parallel.forRange(Math.min(threads, units), 1, this);
                    } else {
                        run(0, 1);
                    }
                }
            }
        }

        /**
         * Splits the current step into units of mcStep rows (at most the kernel's mc) times
         * partStep columns. Rows are split first (a column split repacks the same rows of A
         * once per part); columns only when m alone gives too few units.
         */
        private void planUnits(int workers) {
            int want = workers > 1 ? UNITS_PER_THREAD * workers : 1;
            mcStep = Math.min(kernel.mc(), roundUp(m, mr));
            if (ceilDiv(m, mcStep) < want) {
                mcStep = Math.max(mr, roundUp(ceilDiv(m, want), mr));
            }
            int mBlocks = ceilDiv(m, mcStep);
            partStep = roundUp(nc, nr);
            if (mBlocks < want) {
                int parts = Math.min(ceilDiv(nc, nr), ceilDiv(want, mBlocks));
                partStep = roundUp(ceilDiv(nc, parts), nr);
            }
            nParts = ceilDiv(nc, partStep);
            units = mBlocks * nParts;
        }

        /** Phase body: packs B slivers [lo, hi), or takes units from the counter until none are left. */
        @Override
        public void run(int lo, int hi) {
            if (packingB) {
                int j0 = lo * nr;
                source.pack(pc, kc, jc + j0, Math.min(hi * nr, nc) - j0, bp, j0 * kc);
                return;
            }
            Scratch s = SCRATCH.get();
            float[] ap = packed != null ? packed.data : s.a(mcStep * kc + GemmKernel.PACK_SLACK);
            float[] tile = s.tile(mr * nr + GemmKernel.PACK_SLACK);
            int u;
            while ((u = next.getAndIncrement()) < units) {
                int ib = u / nParts, part = u - ib * nParts;
                int ic = ib * mcStep, j0 = part * partStep;
                int mc = Math.min(mcStep, m - ic);
                int ap0 = 0;
                if (packed != null) ap0 = packed.offset(pc) + ic * kc; // ic is a whole number of slivers
                else kernel.packA(transA, a, offA, lda, ic, mc, pc, kc, ap, 0);
                if (inPlace != null) {
                    kernel.macroKernelRows(mc, Math.min(partStep, nc - j0), kc, alpha, ap, ap0, inPlace.b,
                            inPlace.offB + pc * inPlace.ldb + jc + j0, inPlace.ldb, stepBeta, c,
                            offC + ic * ldc + jc + j0, ldc, tile);
                } else {
                    kernel.macroKernel(mc, Math.min(partStep, nc - j0), kc, alpha, ap, ap0, bp, j0 * kc,
                            stepBeta, c, offC + ic * ldc + jc + j0, ldc, tile);
                }
            }
        }
    }

    static int ceilDiv(int x, int y) {
        return (int) (((long) x + y - 1) / y);
    }

    static int roundUp(int x, int multiple) {
        return ceilDiv(x, multiple) * multiple;
    }
}
