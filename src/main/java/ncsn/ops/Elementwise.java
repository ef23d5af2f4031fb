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
 * Elementwise arithmetic with numpy broadcasting: ops "add" (a + b), "mul" (a * b) and "scale"
 * (alpha * x + beta).
 *
 * <p>Broadcasting (numpy rules): shapes are aligned on the right, missing leading dimensions count
 * as 1, and each pair of sizes must be equal or one of them 1; the output takes the larger size.
 * Typical uses: [N,C,H,W] with [1,C,1,1] or [C,1,1] (per-channel), [N,C,1,1] (per image and
 * channel), [N,1,1,1] (per image). Backward sums the output gradient over the dimensions an
 * operand was broadcast along ({@link Reduce.Cpu#sumTo} for float32), so every returned gradient
 * has its input's shape.
 *
 * <p>float32 kernels: same shapes run one flat parallel loop the JIT vectorises. Broadcast shapes
 * are first reduced to an iteration {@link Plan}: size-1 dimensions dropped and adjacent
 * dimensions merged wherever every operand is contiguous (or broadcast) across both, so
 * [N,C,H,W] + [1,C,1,1] becomes rows [N*C] of length H*W where b is one value per row. The
 * innermost run is then a contiguous loop in which each operand either advances (stride 1) or
 * stays (stride 0); the multi-index is only updated once per run, never per element.
 */
public final class Elementwise {
    private Elementwise() {}

    // ---- add / mul ---------------------------------------------------------------------------

    /** a + b with broadcasting; out has the broadcast shape. */
    public static Tensor add(Tensor a, Tensor b) {
        return binary("add", false, a, b);
    }

    /** a * b with broadcasting; out has the broadcast shape. */
    public static Tensor mul(Tensor a, Tensor b) {
        return binary("mul", true, a, b);
    }

    private static Tensor binary(String op, boolean mul, Tensor a, Tensor b) {
        if (a == null || b == null) throw new TensorException(op + ": operand is null");
        OpChecks.live(op, a, b);
        int[] as = a.shape(), bs = b.shape();
        int[] os = broadcastShape(as, bs);
        if (os == null)
            throw new TensorException(op + ": cannot broadcast " + a.describe() + " with " + b.describe()
                    + " (sizes must match or be 1, aligned on the right)");
        Tensor out = Tensor.empty(a.device(), a.dtype(), os);
        boolean same = Arrays.equals(as, bs);
        if (!a.isCpu()) {
            Gpu.binary(op, mul, out, a, b);
        } else if (a.dtype() == DType.F64) {
            Reference.forward(mul, out.f64(), a.f64(), as, b.f64(), bs, os);
        } else if (same) {
            Cpu.sameShape(mul, out.f32(), a.f32(), b.f32(), out.numel());
        } else {
            Cpu.broadcast(mul, out.f32(), a.f32(), b.f32(), Plan.of(os, as, bs));
        }
        Autograd.record(op, out, new Tensor[] {a, b}, g -> {
            Tensor ga = null, gb = null;
            if (!a.isCpu()) {
                if (a.requiresGrad()) ga = Gpu.gradOperand(op, mul, g, os, b, as);
                if (b.requiresGrad()) gb = Gpu.gradOperand(op, mul, g, os, a, bs);
            } else if (a.dtype() == DType.F64) {
                if (a.requiresGrad()) {
                    ga = Tensor.zeros(DType.F64, as);
                    Reference.backward(mul, ga.f64(), as, g.f64(), os, b.f64(), bs);
                }
                if (b.requiresGrad()) {
                    gb = Tensor.zeros(DType.F64, bs);
                    Reference.backward(mul, gb.f64(), bs, g.f64(), os, a.f64(), as);
                }
            } else {
                if (a.requiresGrad()) ga = Cpu.gradOperand(mul, g, os, b, as);
                if (b.requiresGrad()) gb = Cpu.gradOperand(mul, g, os, a, bs);
            }
            return new Tensor[] {ga, gb};
        });
        return out;
    }

    // ---- scale -------------------------------------------------------------------------------

    /** alpha * x. */
    public static Tensor scale(Tensor x, double alpha) {
        return scale(x, alpha, 0.0);
    }

    /** alpha * x + beta (any shape); backward alpha * gradOut. float32 rounds alpha, beta to float. */
    public static Tensor scale(Tensor x, double alpha, double beta) {
        OpChecks.live("scale", x);
        Tensor out = Tensor.emptyLike(x);
        int n = x.numel();
        if (!x.isCpu()) Gpu.scale(out, x, (float) alpha, (float) beta);
        else if (x.dtype() == DType.F64) Reference.scale(out.f64(), x.f64(), alpha, beta, n);
        else Cpu.scale(out.f32(), x.f32(), (float) alpha, (float) beta, n);
        Autograd.record("scale", out, new Tensor[] {x}, g -> {
            Tensor gx = Tensor.emptyLike(x);
            if (!x.isCpu()) Gpu.scale(gx, g, (float) alpha, 0f);
            else if (x.dtype() == DType.F64) Reference.scale(gx.f64(), g.f64(), alpha, 0.0, n);
            else Cpu.scale(gx.f32(), g.f32(), (float) alpha, 0f, n);
            return new Tensor[] {gx};
        });
        return out;
    }

    // ---- shapes ------------------------------------------------------------------------------

    /** numpy broadcast of two shapes (right-aligned), or null when they are incompatible. */
    static int[] broadcastShape(int[] a, int[] b) {
        int r = Math.max(a.length, b.length);
        int[] out = new int[r];
        for (int i = 0; i < r; i++) {
            int da = i < r - a.length ? 1 : a[i - (r - a.length)];
            int db = i < r - b.length ? 1 : b[i - (r - b.length)];
            if (da != db && da != 1 && db != 1) return null;
            out[i] = da == 1 ? db : da;
        }
        return out;
    }

    /**
     * An iteration plan over an output shape for operands broadcastable to it: dims of size 1
     * dropped, adjacent dims merged where every operand's strides allow it. {@code size} is
     * outermost first (never empty: a one-element output is one dim of size 1);
     * {@code stride[k][d]} is operand k's element stride along dim d (0 where it is broadcast).
     * The innermost stride of every operand is 0 or 1.
     */
    static final class Plan {
        final int[] size;
        final int[][] stride;

        private Plan(int[] size, int[][] stride) {
            this.size = size;
            this.stride = stride;
        }

        static Plan of(int[] out, int[]... operands) {
            int r = out.length, k = operands.length;
            // Contiguous strides of each operand, right-aligned to out; 0 along broadcast dims.
            int[][] st = new int[k][r];
            for (int o = 0; o < k; o++) {
                int[] s = operands[o];
                int pad = r - s.length, acc = 1;
                for (int d = r - 1; d >= 0; d--) {
                    int sz = d < pad ? 1 : s[d - pad];
                    st[o][d] = sz == 1 ? 0 : acc;
                    acc *= sz;
                }
            }
            int[] size = new int[Math.max(1, r)];
            int[][] stride = new int[k][Math.max(1, r)];
            int m = 0;
            for (int d = 0; d < r; d++) {
                if (out[d] == 1) continue;
                // Merge into the previous (outer) kept dim when outer stride == inner stride * inner size.
                boolean merge = m > 0;
                for (int o = 0; o < k && merge; o++) merge = stride[o][m - 1] == st[o][d] * out[d];
                if (merge) {
                    size[m - 1] *= out[d];
                    for (int o = 0; o < k; o++) stride[o][m - 1] = st[o][d];
                } else {
                    size[m] = out[d];
                    for (int o = 0; o < k; o++) stride[o][m] = st[o][d];
                    m++;
                }
            }
            if (m == 0) { // one element: a single run of length 1
                size[0] = 1;
                m = 1;
            }
            int[][] trimmed = new int[k][];
            for (int o = 0; o < k; o++) trimmed[o] = Arrays.copyOf(stride[o], m);
            return new Plan(Arrays.copyOf(size, m), trimmed);
        }

        int rank() {
            return size.length;
        }

        int inner() {
            return size[size.length - 1];
        }

        /** Offset of operand k at the start of outer row {@code row} (the inner dim excluded). */
        int rowOffset(int k, int row) {
            int off = 0;
            int[] s = stride[k];
            for (int d = size.length - 2; d >= 0; d--) {
                int q = row / size[d];
                off += (row - q * size[d]) * s[d];
                row = q;
            }
            return off;
        }
    }

    // ---- float64 reference -------------------------------------------------------------------

    /** The definition: every output element unravelled, each operand indexed with 0 on broadcast dims. */
    static final class Reference {
        /** Flat index into an operand of shape s (right-aligned to out) for the output multi-index idx. */
        static int operandIndex(int[] idx, int[] s) {
            int pad = idx.length - s.length, flat = 0;
            for (int d = 0; d < s.length; d++) flat = flat * s[d] + (s[d] == 1 ? 0 : idx[d + pad]);
            return flat;
        }

        static void forward(boolean mul, double[] out, double[] a, int[] as, double[] b, int[] bs, int[] os) {
            for (int i = 0; i < out.length; i++) {
                int[] idx = Shapes.unravel(i, os);
                double x = a[operandIndex(idx, as)], y = b[operandIndex(idx, bs)];
                out[i] = mul ? x * y : x + y;
            }
        }

        /** gself (zeroed, shape ss) += g * (mul ? other : 1), summed over broadcast dims. */
        static void backward(boolean mul, double[] gself, int[] ss, double[] g, int[] os, double[] other, int[] otherShape) {
            for (int i = 0; i < g.length; i++) {
                int[] idx = Shapes.unravel(i, os);
                gself[operandIndex(idx, ss)] += mul ? g[i] * other[operandIndex(idx, otherShape)] : g[i];
            }
        }

        static void scale(double[] out, double[] x, double alpha, double beta, int n) {
            for (int i = 0; i < n; i++) out[i] = alpha * x[i] + beta;
        }
    }

    // ---- float32 kernels ---------------------------------------------------------------------

    static final class Cpu {
        /** Elements per task: memory-bound loops need large pieces to pay for a hand-off. */
        static final int GRAIN = 1 << 15;

        static void sameShape(boolean mul, float[] out, float[] a, float[] b, int n) {
            if (mul) {
                Parallel.forRange(n, GRAIN, (lo, hi) -> {
                    for (int i = lo; i < hi; i++) out[i] = a[i] * b[i];
                });
            } else {
                Parallel.forRange(n, GRAIN, (lo, hi) -> {
                    for (int i = lo; i < hi; i++) out[i] = a[i] + b[i];
                });
            }
        }

        static void scale(float[] out, float[] x, float alpha, float beta, int n) {
            Parallel.forRange(n, GRAIN, (lo, hi) -> {
                for (int i = lo; i < hi; i++) out[i] = alpha * x[i] + beta;
            });
        }

        /** out = a op b over the plan of (out; a, b): the flat output range split across cores. */
        static void broadcast(boolean mul, float[] out, float[] a, float[] b, Plan p) {
            Parallel.forRange(out.length, GRAIN, (lo, hi) -> broadcastRange(mul, out, a, b, p, lo, hi));
        }

        /** Output elements [lo, hi): walked one inner run (or part of one) at a time. */
        private static void broadcastRange(boolean mul, float[] out, float[] a, float[] b, Plan p, int lo, int hi) {
            int inner = p.inner();
            int r = p.rank() - 1;
            int sa = p.stride[0][r], sb = p.stride[1][r];
            int row = lo / inner, col = lo - row * inner;
            for (int pos = lo; pos < hi; row++, col = 0) {
                int len = Math.min(inner - col, hi - pos);
                int ao = p.rowOffset(0, row) + col * sa, bo = p.rowOffset(1, row) + col * sb;
                if (sa == 1 && sb == 1) {
                    if (mul) for (int j = 0; j < len; j++) out[pos + j] = a[ao + j] * b[bo + j];
                    else for (int j = 0; j < len; j++) out[pos + j] = a[ao + j] + b[bo + j];
                } else if (sa == 1) {
                    float v = b[bo];
                    if (mul) for (int j = 0; j < len; j++) out[pos + j] = a[ao + j] * v;
                    else for (int j = 0; j < len; j++) out[pos + j] = a[ao + j] + v;
                } else if (sb == 1) {
                    float v = a[ao];
                    if (mul) for (int j = 0; j < len; j++) out[pos + j] = v * b[bo + j];
                    else for (int j = 0; j < len; j++) out[pos + j] = v + b[bo + j];
                } else {
                    Arrays.fill(out, pos, pos + len, mul ? a[ao] * b[bo] : a[ao] + b[bo]);
                }
                pos += len;
            }
        }

        /** out (shape os) = scale * g broadcast from gs: the backward of a reduction. */
        static void expand(float[] out, int[] os, float[] g, int[] gs, float scale) {
            Plan p = Plan.of(os, gs);
            Parallel.forRange(out.length, GRAIN, (lo, hi) -> {
                int inner = p.inner();
                int r = p.rank() - 1;
                int sg = p.stride[0][r];
                int row = lo / inner, col = lo - row * inner;
                for (int pos = lo; pos < hi; row++, col = 0) {
                    int len = Math.min(inner - col, hi - pos);
                    int go = p.rowOffset(0, row) + col * sg;
                    if (sg == 1) for (int j = 0; j < len; j++) out[pos + j] = scale * g[go + j];
                    else Arrays.fill(out, pos, pos + len, scale * g[go]);
                    pos += len;
                }
            });
        }

        /**
         * Gradient of one operand (shape selfShape) of an output of shape os: g (add) or
         * g * other (mul), summed over the dims this operand was broadcast along.
         */
        static Tensor gradOperand(boolean mul, Tensor g, int[] os, Tensor other, int[] selfShape) {
            boolean full = Arrays.equals(selfShape, os);
            if (!mul && full) return g; // identity; callers never modify gradients in place
            Tensor t = g;
            if (mul) {
                t = Tensor.empty(DType.F32, os);
                if (Arrays.equals(other.shape(), os)) sameShape(true, t.f32(), g.f32(), other.f32(), t.numel());
                else broadcast(true, t.f32(), g.f32(), other.f32(), Plan.of(os, os, other.shape()));
                if (full) return t;
            }
            Tensor gs = Tensor.empty(DType.F32, selfShape);
            Reduce.Cpu.sumTo(gs.f32(), t.f32(), os, selfShape, 1.0);
            return gs;
        }
    }

    // ---- CUDA launchers (src/main/cuda/elementwise.cu) ---------------------------------------

    /**
     * Launchers for the float32 CUDA kernels. Same shapes use the flat kernels ({@code add_f32},
     * {@code mul_f32}); broadcasts run {@code broadcast_f32} over the same {@link Plan} as the CPU
     * kernel (at most {@link #MAX_RANK} dims after merging, sizes passed innermost first). The
     * backward of a broadcast operand is (g or g * other) summed with {@link Reduce.Gpu#sumTo}.
     */
    static final class Gpu {
        /** Plan dims broadcast_f32 takes; merged plans of rank-4 tensors have at most 4. */
        static final int MAX_RANK = 6;

        static final int OP_ADD = 0, OP_MUL = 1, OP_EXPAND = 2;

        /** out (shape os) = a + b or a * b, broadcasting. */
        static void binary(String op, boolean mul, Tensor out, Tensor a, Tensor b) {
            int n = out.numel();
            if (a.sameShape(b)) {
                Launch.kernel(mul ? "mul_f32" : "add_f32").ptr(a).ptr(b).ptr(out).l(n).elements(n).run();
            } else {
                broadcast(op, mul ? OP_MUL : OP_ADD, 1f, out, a, b, Plan.of(out.shape(), a.shape(), b.shape()));
            }
        }

        /** out = alpha * x + beta (fmaf: one rounding; out may alias x). */
        static void scale(Tensor out, Tensor x, float alpha, float beta) {
            int n = x.numel();
            Launch.kernel("scale_f32").ptr(x).ptr(out).f(alpha).f(beta).l(n).elements(n).run();
        }

        /** out (shape os) = scale * g expanded from gs (gs broadcastable to os): a reduction's backward. */
        static void expand(String op, Tensor out, Tensor g, float scale) {
            if (g.numel() == out.numel()) { // nothing broadcast: only size-1 dims differ
                scale(out, g, scale, 0f);
                return;
            }
            broadcast(op, OP_EXPAND, scale, out, g, null, Plan.of(out.shape(), g.shape()));
        }

        /** broadcast_f32 over plan p (operands a and, unless null, b in the plan's order). */
        private static void broadcast(String op, int code, float alpha, Tensor out, Tensor a, Tensor b, Plan p) {
            int r = p.rank();
            if (r > MAX_RANK)
                throw new TensorException(op + ": broadcast of " + Arrays.toString(out.shape()) + " needs " + r
                        + " iteration dims; the CUDA kernel takes at most " + MAX_RANK);
            int n = out.numel();
            Launch l = Launch.kernel("broadcast_f32").ptr(a).ptr(b).ptr(out).l(n).i(code).f(alpha).i(r);
            // Innermost first; unused dims size 1, stride 0 (never divided: the kernel stops at rank).
            for (int d = 0; d < MAX_RANK; d++) l.i(d < r ? p.size[r - 1 - d] : 1);
            for (int k = 0; k < 2; k++)
                for (int d = 0; d < MAX_RANK; d++) l.i(d < r && k < p.stride.length ? p.stride[k][r - 1 - d] : 0);
            l.elements(n).run();
        }

        /** Gradient of one operand (shape selfShape): g (add) or g * other (mul), summed to selfShape. */
        static Tensor gradOperand(String op, boolean mul, Tensor g, int[] os, Tensor other, int[] selfShape) {
            boolean full = Arrays.equals(selfShape, os);
            if (!mul && full) return g; // identity; callers never modify gradients in place
            Tensor t = g;
            if (mul) {
                t = Tensor.empty(g.device(), DType.F32, os);
                binary(op, true, t, g, other);
                if (full) return t;
            }
            Tensor gs = Tensor.empty(g.device(), DType.F32, selfShape);
            Reduce.Gpu.sumTo(op, gs, t, os, selfShape, 1);
            if (t != g) t.free(); // device memory is not GC'd; later kernels on the stream run after the sum
            return gs;
        }
    }

    // ---- catalog cases -----------------------------------------------------------------------

    private static OpCatalog.Case pair(String op, boolean mul, int[] as, int[] bs, long seedOffset) {
        String variant = Arrays.toString(as) + " " + (mul ? "*" : "+") + " " + Arrays.toString(bs);
        return OpCatalog.Case.of(op, variant,
                seed -> new Tensor[] {
                    OpCatalog.normal(seed, as).name("a"),
                    OpCatalog.normal(seed + 1 + seedOffset, bs).name("b")},
                in -> mul ? mul(in[0], in[1]) : add(in[0], in[1]));
    }

    static List<OpCatalog.Case> cases() {
        int[] x = {2, 3, 5, 7};
        int[][] bshapes = {
            {2, 3, 5, 7},   // same shape (odd sizes)
            {1, 3, 1, 1},   // per channel
            {2, 3, 1, 1},   // per image and channel
            {2, 1, 1, 1},   // per image
            {3, 1, 1},      // per channel, rank 3 (leading dim implied)
            {7},            // along W only
            {1, 3, 5, 7},   // shared over the batch
        };
        java.util.ArrayList<OpCatalog.Case> cs = new java.util.ArrayList<>();
        for (int[] bs : bshapes) {
            cs.add(pair("add", false, x, bs, 0));
            cs.add(pair("mul", true, x, bs, 0));
        }
        // Broadcast on the left operand, and on both at once ([N,1,H,1] with [1,C,1,W]).
        cs.add(pair("add", false, new int[] {1, 5, 1, 1}, new int[] {3, 5, 4, 3}, 1));
        cs.add(pair("mul", true, new int[] {1, 5, 1, 1}, new int[] {3, 5, 4, 3}, 1));
        cs.add(pair("add", false, new int[] {2, 1, 4, 1}, new int[] {1, 3, 1, 5}, 2));
        cs.add(pair("mul", true, new int[] {2, 1, 4, 1}, new int[] {1, 3, 1, 5}, 2));
        // Batch 1, and 2-D toy data with a per-column vector.
        cs.add(pair("add", false, new int[] {1, 7, 3, 3}, new int[] {1, 7, 1, 1}, 3));
        cs.add(pair("mul", true, new int[] {1, 7, 3, 3}, new int[] {1, 1, 1, 1}, 3));
        cs.add(pair("add", false, new int[] {5, 2}, new int[] {2}, 4));
        cs.add(pair("mul", true, new int[] {5, 2}, new int[] {5, 1}, 4));
        // The same tensor on both sides: its two gradients accumulate.
        cs.add(OpCatalog.Case.of("mul", "x * x [3,5]", seed -> new Tensor[] {OpCatalog.normal(seed, 3, 5).name("x")},
                in -> mul(in[0], in[0])));
        cs.add(OpCatalog.Case.of("scale", "2.5x - 0.75 [2,3,5,7]", seed -> new Tensor[] {OpCatalog.normal(seed, 2, 3, 5, 7).name("x")},
                in -> scale(in[0], 2.5, -0.75)));
        cs.add(OpCatalog.Case.of("scale", "-0.3x [1,1,3,1]", seed -> new Tensor[] {OpCatalog.normal(seed, 1, 1, 3, 1).name("x")},
                in -> scale(in[0], -0.3)));
        return cs;
    }
}
