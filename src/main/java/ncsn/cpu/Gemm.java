package ncsn.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;

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
     * A call with fewer multiply-adds than this runs on the calling thread: handing work to the
     * pool costs some microseconds, 2^20 FMAs take about 8 us at vector speed.
     */
    private static final long MIN_PARALLEL_FMAS = 1L << 20;
    /** Pack a B panel as several tasks from this many floats up. */
    private static final int MIN_PARALLEL_PACK = 1 << 17;
    /** Units of work per thread per step: enough for the counter to even out unequal cores. */
    private static final int UNITS_PER_THREAD = 4;

    /**
     * One sgemm call. Loops: jc over column panels of C (nc wide), pc over depth blocks (kc
     * deep). Each (jc, pc) step is a list of tasks: first a few that pack slices of
     * op(B)[pc.., jc..] into a panel, then units (mcStep rows x partStep columns of the panel)
     * that pack their rows of op(A) into their thread's buffer and run the kernel's macro-kernel.
     * The tasks of all steps are numbered in that order and taken from one counter by every
     * participating thread, in a single {@link Parallel#forRange} per call: no thread waits at
     * the end of a step while there is work in the next. The only waits are on earlier tasks,
     * each already taken by a running thread (so there is no deadlock, and a worker that never
     * wakes up only means the others take its share):
     * <ul>
     *   <li>a unit waits for its step's panel, and (when not the first depth block) for the
     *       same unit of the previous step, which accumulated into the same block of C;
     *   <li>panels alternate between two buffers, so packing step s waits only for the units of
     *       step s - 2 that read the same buffer; packing the next panel overlaps the last
     *       units of the current one.
     * </ul>
     * Every element of C is still summed in the same order, whatever the thread count.
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
        final RowsInPlace inPlace; // B read where it is stored (no packing tasks), or null
        final int mr, nr;

        // The plan, fixed before any task runs.
        final int kcStep, ncStep, depthSteps, steps;
        final Plan fullPanel, lastPanel; // units of a panel ncStep wide, and of the last one (may be narrower)
        final int[] packStart; // tasks [packStart[s], unitStart[s]) pack step s's panel; packStart[steps] = all tasks
        final int[] unitStart; // tasks [unitStart[s], packStart[s + 1]) are step s's units
        final float[] panelBuffer; // step s packs at panelOffset(s) (two panels on several threads); null when B is read in place
        final int panelSize;

        final AtomicInteger next = new AtomicInteger();
        final AtomicIntegerArray done; // 1 once task t is finished (null on one thread: run() goes in order)
        volatile boolean failed;

        /** How one panel's columns are cut into units: mcStep rows x partStep columns, nParts across. */
        private record Plan(int mcStep, int partStep, int nParts, int units) {}

        Job(GemmKernel kernel, int threads, int m, int n, int k, float alpha, boolean transA, float[] a, int offA,
            int lda, PackedA packed, PanelSource source, float beta, float[] c, int offC, int ldc) {
            this.kernel = kernel;
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
            this.threads = threads > 1 && (long) m * n * k >= MIN_PARALLEL_FMAS ? threads : 1;

            // Equal-sized blocks (k = 300 with kc 256 runs as 150 + 150, not 256 + 44).
            kcStep = depthStep(kernel, m, k);
            depthSteps = ceilDiv(k, kcStep);
            int columnSteps = ceilDiv(n, kernel.nc(m));
            ncStep = roundUp(ceilDiv(n, columnSteps), nr);
            int panelsAcross = ceilDiv(n, ncStep);
            steps = panelsAcross * depthSteps;
            fullPanel = panelPlan(ncStep);
            lastPanel = panelPlan(n - (panelsAcross - 1) * ncStep);
            panelSize = ncStep * kcStep + GemmKernel.PACK_SLACK;
            boolean twoPanels = this.threads > 1 && steps > 1;
            // The caller's scratch: the caller outlives every task.
            panelBuffer = inPlace != null ? null : SCRATCH.get().b((twoPanels ? 2 : 1) * panelSize);
            if (this.threads == 1) { // run() steps through in order: no task numbers, nothing to wait for
                packStart = unitStart = null;
                done = null;
                return;
            }
            packStart = new int[steps + 1];
            unitStart = new int[steps];
            int tasks = 0;
            for (int s = 0; s < steps; s++) {
                packStart[s] = tasks;
                tasks += packTasks(s);
                unitStart[s] = tasks;
                tasks += stepPlan(s).units;
            }
            packStart[steps] = tasks;
            done = new AtomicIntegerArray(tasks);
        }

        private int panelOffset(int s) {
            return done == null ? 0 : (s & 1) * panelSize;
        }

        void run() {
            if (threads > 1) {
                Parallel.forRange(threads, 1, this);
                return;
            }
            Scratch scratch = SCRATCH.get();
            float[] tile = scratch.tile(mr * nr + GemmKernel.PACK_SLACK);
            for (int s = 0; s < steps; s++) {
                if (inPlace == null) packPanel(s, 0, 1);
                for (int u = 0, units = stepPlan(s).units; u < units; u++) runUnit(s, u, scratch, tile);
            }
        }

        /**
         * Splits a panel nc wide into units of mcStep rows (at most the kernel's mc) times
         * partStep columns. Rows are split first (a column split repacks the same rows of A
         * once per part); columns only when m alone gives too few units.
         */
        private Plan panelPlan(int nc) {
            int want = threads > 1 ? UNITS_PER_THREAD * threads : 1;
            int mcStep = Math.min(kernel.mc(), roundUp(m, mr));
            if (ceilDiv(m, mcStep) < want) mcStep = Math.max(mr, roundUp(ceilDiv(m, want), mr));
            int mBlocks = ceilDiv(m, mcStep);
            int partStep = roundUp(nc, nr);
            if (mBlocks < want) {
                int parts = Math.min(ceilDiv(nc, nr), ceilDiv(want, mBlocks));
                partStep = roundUp(ceilDiv(nc, parts), nr);
            }
            int nParts = ceilDiv(nc, partStep);
            return new Plan(mcStep, partStep, nParts, mBlocks * nParts);
        }

        private Plan stepPlan(int s) {
            return (s / depthSteps + 1) * ncStep < n ? fullPanel : lastPanel;
        }

        private int panelWidth(int s) {
            return Math.min(ncStep, n - s / depthSteps * ncStep);
        }

        private int depth(int s) {
            return Math.min(kcStep, k - s % depthSteps * kcStep);
        }

        /** Pack tasks of step s: none when B is read in place, several for a large panel on several threads. */
        private int packTasks(int s) {
            if (inPlace != null) return 0;
            int slivers = ceilDiv(panelWidth(s), nr);
            return threads > 1 && (long) panelWidth(s) * depth(s) >= MIN_PARALLEL_PACK ? Math.min(threads, slivers) : 1;
        }

        /** One participant (several threads only): takes tasks from the counter, in order, until none are left. */
        @Override
        public void run(int lo, int hi) {
            Scratch scratch = SCRATCH.get();
            float[] tile = scratch.tile(mr * nr + GemmKernel.PACK_SLACK);
            int total = packStart[steps];
            int s = 0;
            int t;
            try {
                while (!failed && (t = next.getAndIncrement()) < total) {
                    while (t >= packStart[s + 1]) s++;
                    if (t < unitStart[s]) packPanel(s, t - packStart[s], unitStart[s] - packStart[s]);
                    else runUnit(s, t - unitStart[s], scratch, tile);
                    done.setRelease(t, 1);
                }
            } catch (RuntimeException | Error e) {
                failed = true;
                throw e;
            }
        }

        /** Task i of the parts of step s's packing: a contiguous range of its panel's slivers. */
        private void packPanel(int s, int i, int parts) {
            if (done != null && s >= 2 && !awaitDone(unitStart[s - 2], packStart[s - 1])) return; // the last readers of this buffer
            int jc = s / depthSteps * ncStep, pc = s % depthSteps * kcStep;
            int nc = panelWidth(s), kc = depth(s);
            int slivers = ceilDiv(nc, nr);
            int lo = (int) ((long) slivers * i / parts), hi = (int) ((long) slivers * (i + 1) / parts);
            int j0 = lo * nr;
            source.pack(pc, kc, jc + j0, Math.min(hi * nr, nc) - j0, panelBuffer, panelOffset(s) + j0 * kc);
        }

        /** Unit u of step s: its rows of op(A) times its columns of the panel, into C. */
        private void runUnit(int s, int u, Scratch scratch, float[] tile) {
            int depthIndex = s % depthSteps;
            if (done != null) {
                if (!awaitDone(packStart[s], unitStart[s])) return;
                // The same block of C, accumulated by the previous depth step.
                if (depthIndex > 0 && !awaitDone(unitStart[s - 1] + u, unitStart[s - 1] + u + 1)) return;
            }
            Plan plan = stepPlan(s);
            int jc = s / depthSteps * ncStep, pc = depthIndex * kcStep;
            int nc = panelWidth(s), kc = depth(s);
            int ib = u / plan.nParts, part = u - ib * plan.nParts;
            int ic = ib * plan.mcStep, j0 = part * plan.partStep;
            int mc = Math.min(plan.mcStep, m - ic), width = Math.min(plan.partStep, nc - j0);
            float stepBeta = depthIndex == 0 ? beta : 1f; // later depth blocks accumulate
            float[] ap;
            int ap0;
            if (packed != null) {
                ap = packed.data;
                ap0 = packed.offset(pc) + ic * kc; // ic is a whole number of slivers
            } else {
                ap = scratch.a(plan.mcStep * kc + GemmKernel.PACK_SLACK);
                ap0 = 0;
                kernel.packA(transA, a, offA, lda, ic, mc, pc, kc, ap, 0);
            }
            if (inPlace != null) {
                kernel.macroKernelRows(mc, width, kc, alpha, ap, ap0, inPlace.b,
                        inPlace.offB + pc * inPlace.ldb + jc + j0, inPlace.ldb, stepBeta, c,
                        offC + ic * ldc + jc + j0, ldc, tile);
            } else {
                kernel.macroKernel(mc, width, kc, alpha, ap, ap0, panelBuffer, panelOffset(s) + j0 * kc,
                        stepBeta, c, offC + ic * ldc + jc + j0, ldc, tile);
            }
        }

        /**
         * Spins until tasks [from, to) are finished (they were taken earlier by running threads);
         * false if a task failed instead: the caller then gives up quietly, and only the
         * failure itself reaches sgemm's caller.
         */
        private boolean awaitDone(int from, int to) {
            for (int t = from; t < to; t++) {
                while (done.getAcquire(t) == 0) {
                    if (failed) return false;
                    Thread.onSpinWait();
                }
            }
            return true;
        }
    }

    static int ceilDiv(int x, int y) {
        return (int) (((long) x + y - 1) / y);
    }

    static int roundUp(int x, int multiple) {
        return ceilDiv(x, multiple) * multiple;
    }
}
