package ncsn.ops;

import java.util.Arrays;
import java.util.List;
import ncsn.autograd.Autograd;
import ncsn.cpu.Parallel;
import ncsn.cuda.Launch;
import ncsn.tensor.DType;
import ncsn.tensor.Shapes;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;

/**
 * Sums and means: ops "sum" and "mean".
 * <ul>
 *   <li>{@code sum(x)}, {@code mean(x)}: over all elements, result shape [1];</li>
 *   <li>{@code sum(x, dims...)}, {@code mean(x, dims...)}: over the given dims (negative counts
 *       from the end) with keepdim semantics: the result keeps x's rank with size 1 there.</li>
 * </ul>
 * Backward broadcasts the output gradient back over the reduced dims (divided by the count for
 * the mean).
 *
 * <p>Accuracy of the float32 kernel: every partial sum is accumulated in double. A float32 value
 * converts to double exactly, and a double sum of n terms has a rounding error of at most about
 * n * 2^-53 * sum|x|, which stays below float32's own output rounding (2^-24 relative) for any n
 * a tensor can hold when the terms do not cancel. Accumulating in float32 instead loses up to
 * n * 2^-24 relative (a 1M-element sum could be off in its 2nd digit in the worst case, its 4th
 * typically). The double accumulation costs nothing visible: the loops are memory-bound. Eight
 * independent accumulators per run keep the adds from serialising on their latency; the order of
 * the partial sums is fixed (not thread-dependent), so results are reproducible.
 */
public final class Reduce {
    private Reduce() {}

    /** Sum of all elements, shape [1]. */
    public static Tensor sum(Tensor x) {
        return reduceAll("sum", x, false);
    }

    /** Mean of all elements, shape [1]. */
    public static Tensor mean(Tensor x) {
        return reduceAll("mean", x, true);
    }

    /** Sum over {@code dims}, keeping them with size 1. */
    public static Tensor sum(Tensor x, int... dims) {
        return reduceDims("sum", x, dims, false);
    }

    /** Mean over {@code dims}, keeping them with size 1. */
    public static Tensor mean(Tensor x, int... dims) {
        return reduceDims("mean", x, dims, true);
    }

    private static Tensor reduceAll(String op, Tensor x, boolean mean) {
        OpChecks.live(op, x);
        int[] ones = new int[x.rank()];
        Arrays.fill(ones, 1);
        return reduce(op, x, ones, new int[] {1}, mean);
    }

    private static Tensor reduceDims(String op, Tensor x, int[] dims, boolean mean) {
        OpChecks.live(op, x);
        int r = x.rank();
        if (dims == null || dims.length == 0)
            throw new TensorException(op + ": no dims given for " + x.describe() + " (use " + op + "(x) to reduce everything)");
        int[] keep = x.shape();
        boolean[] seen = new boolean[r];
        for (int d : dims) {
            int dd = d < 0 ? d + r : d;
            if (dd < 0 || dd >= r)
                throw new TensorException(op + ": dim " + d + " is out of range for " + x.describe());
            if (seen[dd]) throw new TensorException(op + ": dim " + d + " given twice in " + Arrays.toString(dims));
            seen[dd] = true;
            keep[dd] = 1;
        }
        return reduce(op, x, keep, keep, mean);
    }

    /** out (shape outShape, numel of keep) = reduction of x onto keep (x's rank, 1 on reduced dims). */
    private static Tensor reduce(String op, Tensor x, int[] keep, int[] outShape, boolean mean) {
        int[] xs = x.shape();
        int count = x.numel() / Math.max(1, numel(keep));
        if (count == 0)
            throw new TensorException(op + ": " + x.describe() + " is empty along the reduced dims");
        double scale = mean ? 1.0 / count : 1.0;
        Tensor out = Tensor.empty(x.device(), x.dtype(), outShape);
        if (!x.isCpu()) Gpu.sumTo(op, out, x, xs, keep, mean ? count : 1);
        else if (x.dtype() == DType.F64) Reference.forward(out.f64(), x.f64(), xs, keep, mean ? count : 1);
        else Cpu.sumTo(out.f32(), x.f32(), xs, keep, scale);
        Autograd.record(op, out, new Tensor[] {x}, g -> {
            Tensor gx = Tensor.empty(x.device(), x.dtype(), xs);
            if (!x.isCpu()) Elementwise.Gpu.expand(op, gx, g, (float) scale); // g [1] or keep: right-aligned
            else if (x.dtype() == DType.F64) Reference.backward(gx.f64(), g.f64(), xs, keep, mean ? count : 1);
            else Elementwise.Cpu.expand(gx.f32(), xs, g.f32(), keep, (float) scale);
            return new Tensor[] {gx};
        });
        return out;
    }

    static int numel(int[] s) {
        int n = 1;
        for (int d : s) n *= d;
        return n;
    }

    // ---- float64 reference -------------------------------------------------------------------

    /** Every element added into the output element whose index has 0 on the reduced dims. */
    static final class Reference {
        static int target(int[] idx, int[] keep) {
            int flat = 0;
            for (int d = 0; d < keep.length; d++) flat = flat * keep[d] + (keep[d] == 1 ? 0 : idx[d]);
            return flat;
        }

        static void forward(double[] out, double[] x, int[] xs, int[] keep, int divisor) {
            Arrays.fill(out, 0.0);
            for (int i = 0; i < x.length; i++) out[target(Shapes.unravel(i, xs), keep)] += x[i];
            for (int j = 0; j < out.length; j++) out[j] /= divisor;
        }

        static void backward(double[] gx, double[] g, int[] xs, int[] keep, int divisor) {
            for (int i = 0; i < gx.length; i++) gx[i] = g[target(Shapes.unravel(i, xs), keep)] / divisor;
        }
    }

    // ---- float32 kernel ----------------------------------------------------------------------

    /** Sums in double over the coalesced plan of (x; target); also the backward of broadcasting. */
    static final class Cpu {
        /** Elements per parallel piece of a full reduction (fixed, so results do not depend on threads). */
        static final int PIECE = 1 << 16;
        /** Output elements accumulated together when the innermost dim is kept. */
        static final int BLOCK = 1024;

        /**
         * t (numel of tShape) = scale * sum of x (shape xs) over the dims where tShape (same rank
         * as xs, or right-aligned) has size 1 and xs does not. Sums are accumulated in double.
         */
        static void sumTo(float[] t, float[] x, int[] xs, int[] tShape, double scale) {
            Elementwise.Plan p = Elementwise.Plan.of(xs, xs, tShape);
            int r = p.rank();
            int[] size = p.size, gs = p.stride[0], ts = p.stride[1];
            int n = size[r - 1];
            boolean innerReduced = ts[r - 1] == 0 && n > 1;
            // Split dims: kept (target stride != 0) and reduced; the inner dim is handled apart.
            int outerEnd = r - 1;
            int nk = 0, nr = 0;
            for (int d = 0; d < outerEnd; d++) if (ts[d] != 0) nk++; else nr++;
            int[] kSize = new int[nk], kStride = new int[nk], rSize = new int[nr], rStride = new int[nr];
            for (int d = 0, ik = 0, ir = 0; d < outerEnd; d++) {
                if (ts[d] != 0) {
                    kSize[ik] = size[d];
                    kStride[ik++] = gs[d];
                } else {
                    rSize[ir] = size[d];
                    rStride[ir++] = gs[d];
                }
            }
            int[] roffs = offsets(rSize, rStride);
            if (innerReduced) {
                if (t.length == 1 && roffs.length == 1) {
                    t[0] = (float) (scale * sumAll(x, n));
                    return;
                }
                // Each target element: sum of contiguous runs of n, one per reduced-outer combination.
                Parallel.forRange(t.length, Math.max(1, Elementwise.Cpu.GRAIN / (n * roffs.length)), (lo, hi) -> {
                    for (int i = lo; i < hi; i++) {
                        int base = keptOffset(i, kSize, kStride);
                        double s = 0;
                        for (int ro : roffs) s += sumRun(x, base + ro, n);
                        t[i] = (float) (scale * s);
                    }
                });
            } else {
                // Inner dim kept: rows of n target elements, each the sum of rows of x.
                int rows = t.length / n;
                Parallel.forRange(t.length, Math.max(1, Elementwise.Cpu.GRAIN / roffs.length), (lo, hi) -> {
                    double[] acc = new double[Math.min(BLOCK, hi - lo)];
                    int row = lo / n, col = lo - row * n;
                    for (int pos = lo; pos < hi && row < rows; row++, col = 0) {
                        int base = keptOffset(row, kSize, kStride);
                        int rowEnd = Math.min(n, col + (hi - pos));
                        for (int c0 = col; c0 < rowEnd; c0 += BLOCK) {
                            int len = Math.min(BLOCK, rowEnd - c0);
                            Arrays.fill(acc, 0, len, 0.0);
                            for (int ro : roffs) {
                                int src = base + ro + c0;
                                for (int j = 0; j < len; j++) acc[j] += x[src + j];
                            }
                            int dst = row * n + c0;
                            for (int j = 0; j < len; j++) t[dst + j] = (float) (scale * acc[j]);
                        }
                        pos += rowEnd - col;
                    }
                });
            }
        }

        /** Offset in x of kept-outer index i (kept dims outermost first). */
        private static int keptOffset(int i, int[] kSize, int[] kStride) {
            int off = 0;
            for (int d = kSize.length - 1; d >= 0; d--) {
                int q = i / kSize[d];
                off += (i - q * kSize[d]) * kStride[d];
                i = q;
            }
            return off;
        }

        /** Offsets of every combination of the given dims (outermost first), in order. */
        private static int[] offsets(int[] size, int[] stride) {
            int count = numel(size);
            int[] out = new int[count];
            for (int i = 0; i < count; i++) out[i] = keptOffset(i, size, stride);
            return out;
        }

        /** Sum of x[0, n) in fixed pieces summed in order (parallel, thread-count independent). */
        static double sumAll(float[] x, int n) {
            int pieces = (n + PIECE - 1) / PIECE;
            if (pieces <= 1) return sumRun(x, 0, n);
            double[] partial = new double[pieces];
            Parallel.forRange(pieces, 1, (lo, hi) -> {
                for (int p = lo; p < hi; p++) {
                    int a = p * PIECE;
                    partial[p] = sumRun(x, a, Math.min(PIECE, n - a));
                }
            });
            double s = 0;
            for (double v : partial) s += v;
            return s;
        }

        /** Sum of x[off, off+len) in double with eight independent accumulators. */
        static double sumRun(float[] x, int off, int len) {
            double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
            int i = off, end = off + len, end8 = off + (len & ~7);
            for (; i < end8; i += 8) {
                s0 += x[i];
                s1 += x[i + 1];
                s2 += x[i + 2];
                s3 += x[i + 3];
                s4 += x[i + 4];
                s5 += x[i + 5];
                s6 += x[i + 6];
                s7 += x[i + 7];
            }
            for (; i < end; i++) s0 += x[i];
            return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
        }
    }

    // ---- CUDA launchers (src/main/cuda/reduce.cu) --------------------------------------------

    /**
     * Deterministic float32 sums on the GPU (double accumulation, fixed order, no atomics). The
     * input's {@link Elementwise.Plan} against the target shape splits into kept dims (the M
     * output elements) and reduced dims (K inputs per output), at most 4 of each after merging.
     * <ul>
     *   <li>kept innermost dim and many outputs (or few inputs each): {@code reduce_rows_f32},
     *       a thread per output looping over K (neighbouring threads read neighbouring floats);</li>
     *   <li>otherwise {@code reduce_block_f32}, a block per output (threads over K, block tree);
     *       when K is large each output is split into {@code parts} fixed chunks of about
     *       {@link #PART} inputs, written to a [M, parts] buffer that {@code reduce_parts_f32}
     *       sums (two passes: one block per output would leave most of the GPU idle).</li>
     * </ul>
     * parts depends on K alone, so the result is the same on every GPU.
     */
    static final class Gpu {
        static final int MAX_DIMS = 4;
        /**
         * Inputs per block of the two-pass sum (block of 256 threads: 8 per thread). Small parts
         * give many blocks and so many loads in flight: on an H200 PART 8192 (1024 parts) summed
         * 2^24 floats at 0.59 TB/s.
         */
        static final int PART = 2048;
        static final int MAX_PARTS = 4096;

        /**
         * t (shape tShape, broadcastable to xs) = (sum of x over the dims where t has size 1) / div.
         * x contiguous of shape xs; t's numel is the product of the kept sizes.
         */
        static void sumTo(String op, Tensor t, Tensor x, int[] xs, int[] tShape, int div) {
            Elementwise.Plan p = Elementwise.Plan.of(xs, xs, tShape);
            int r = p.rank();
            int[] kSize = new int[MAX_DIMS], kStride = new int[MAX_DIMS], rSize = new int[MAX_DIMS], rStride = new int[MAX_DIMS];
            java.util.Arrays.fill(kSize, 1);
            java.util.Arrays.fill(rSize, 1);
            int nk = 0, nr = 0;
            long m = 1, k = 1;
            for (int d = r - 1; d >= 0; d--) { // innermost first
                int size = p.size[d];
                if (size == 1) continue; // only the one-element plan has a size-1 dim
                boolean kept = p.stride[1][d] != 0;
                if ((kept ? nk : nr) == MAX_DIMS)
                    throw new TensorException(op + ": reducing " + java.util.Arrays.toString(xs) + " to "
                            + java.util.Arrays.toString(tShape) + " alternates kept and reduced dims more than "
                            + MAX_DIMS + " times (the CUDA kernel's limit)");
                if (kept) {
                    kSize[nk] = size;
                    kStride[nk++] = p.stride[0][d];
                    m *= size;
                } else {
                    rSize[nr] = size;
                    rStride[nr++] = p.stride[0][d];
                    k *= size;
                }
            }
            int M = (int) m, K = (int) k;
            if (M == 0 || t.numel() == 0) return;
            if (M != t.numel())
                throw new TensorException(op + ": internal: " + M + " outputs planned for " + t.describe());
            boolean innerKept = nk > 0 && kStride[0] == 1;
            if (innerKept && (M >= 4096 || K <= 64)) {
                Launch l = Launch.kernel("reduce_rows_f32").ptr(x).ptr(t).i(M).i(K).i(div);
                dims(l, nk, kSize, kStride, nr, rSize, rStride).elements(M).run();
                return;
            }
            int parts = (int) Math.min(MAX_PARTS, (K + (long) PART - 1) / PART);
            parts = Math.max(1, parts);
            int block = blockFor(parts > 1 ? (K + parts - 1) / parts : K);
            Tensor dst = parts == 1 ? t : Tensor.empty(x.device(), DType.F32, M, parts);
            Launch l = Launch.kernel("reduce_block_f32").ptr(x).ptr(dst).i(M).i(K).i(parts).i(parts == 1 ? div : 1);
            dims(l, nk, kSize, kStride, nr, rSize, rStride).grid(gridFor((long) M * parts)).block(block).run();
            if (parts > 1) {
                Launch.kernel("reduce_parts_f32").ptr(dst).ptr(t).i(M).i(parts).i(div)
                        .grid(gridFor(M)).block(blockFor(parts)).run();
                dst.free(); // queued behind the kernels on the one stream: safe to reuse
            }
        }

        private static Launch dims(Launch l, int nk, int[] kSize, int[] kStride, int nr, int[] rSize, int[] rStride) {
            l.i(nk);
            for (int v : kSize) l.i(v);
            for (int v : kStride) l.i(v);
            l.i(nr);
            for (int v : rSize) l.i(v);
            for (int v : rStride) l.i(v);
            return l;
        }

        /** Threads per block for n inputs: a power of two in [32, 256] (warp multiples for the block sum). */
        static int blockFor(long n) {
            int b = 32;
            while (b < 256 && b < n) b <<= 1;
            return b;
        }

        /** Blocks for a block-per-item kernel that loops over items: capped (grid x < 2^31). */
        static int gridFor(long items) {
            return (int) Math.max(1, Math.min(items, Integer.MAX_VALUE));
        }
    }

    // ---- catalog cases -----------------------------------------------------------------------

    static List<OpCatalog.Case> cases() {
        return List.of(
                OpCatalog.Case.of("sum", "all [2,3,5,7]", seed -> new Tensor[] {OpCatalog.normal(seed, 2, 3, 5, 7).name("x")},
                        in -> sum(in[0])),
                OpCatalog.Case.of("mean", "all [1,1,1,1]", seed -> new Tensor[] {OpCatalog.normal(seed, 1, 1, 1, 1).name("x")},
                        in -> mean(in[0])),
                OpCatalog.Case.of("mean", "all [3,5,7]", seed -> new Tensor[] {OpCatalog.normal(seed, 3, 5, 7).name("x")},
                        in -> mean(in[0])),
                OpCatalog.Case.of("sum", "dims 2,3 [2,3,5,7]", seed -> new Tensor[] {OpCatalog.normal(seed, 2, 3, 5, 7).name("x")},
                        in -> sum(in[0], 2, 3)),
                OpCatalog.Case.of("sum", "dims 0,2,3 [2,3,5,7]", seed -> new Tensor[] {OpCatalog.normal(seed, 2, 3, 5, 7).name("x")},
                        in -> sum(in[0], 0, 2, 3)),
                OpCatalog.Case.of("sum", "dim 0 [3,5,7]", seed -> new Tensor[] {OpCatalog.normal(seed, 3, 5, 7).name("x")},
                        in -> sum(in[0], 0)),
                OpCatalog.Case.of("sum", "dims 0,2 [3,5,7]", seed -> new Tensor[] {OpCatalog.normal(seed, 3, 5, 7).name("x")},
                        in -> sum(in[0], 0, 2)),
                OpCatalog.Case.of("mean", "dims 1,2,3 [3,5,4,3]", seed -> new Tensor[] {OpCatalog.normal(seed, 3, 5, 4, 3).name("x")},
                        in -> mean(in[0], 1, 2, 3)),
                OpCatalog.Case.of("mean", "dim -1 [5,2]", seed -> new Tensor[] {OpCatalog.normal(seed, 5, 2).name("x")},
                        in -> mean(in[0], -1)),
                OpCatalog.Case.of("mean", "dims 0,3 [2,3,5,7]", seed -> new Tensor[] {OpCatalog.normal(seed, 2, 3, 5, 7).name("x")},
                        in -> mean(in[0], 0, 3)),
                OpCatalog.Case.of("sum", "dim 1 of size 1 [3,1,5]", seed -> new Tensor[] {OpCatalog.normal(seed, 3, 1, 5).name("x")},
                        in -> sum(in[0], 1)));
    }
}
