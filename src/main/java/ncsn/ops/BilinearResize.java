package ncsn.ops;

import java.util.List;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import ncsn.autograd.Autograd;
import ncsn.cpu.Parallel;
import ncsn.cuda.Launch;
import ncsn.tensor.DType;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;

/**
 * Bilinear resize with align_corners = true (PyTorch F.interpolate(mode='bilinear',
 * align_corners=True); the MSF block, spec section 3): x [N,C,H,W] -> out [N,C,outH,outW], up or down.
 * Per axis, for destination index d on an axis of input length in and output length out:
 * <pre>
 *   src = d * (in-1)/(out-1)      (scale 0 when out == 1: every output samples index 0)
 *   i0 = min(floor(src), in-1),  i1 = min(i0+1, in-1),  lambda = src - i0
 *   out[i,j] = (1-ly) * ((1-lx) x[y0,x0] + lx x[y0,x1]) + ly * ((1-lx) x[y1,x0] + lx x[y1,x1])
 * </pre>
 * Backward scatters dout into the four source pixels with the same weights (the CUDA path
 * computes the same sums as a gather per input pixel: deterministic, no atomics).
 */
public final class BilinearResize {
    static final String OP = "resize_bilinear";

    private BilinearResize() {}

    /** out [N,C,outH,outW] = bilinear resize (align_corners) of x [N,C,H,W]. */
    public static Tensor apply(Tensor x, int outH, int outW) {
        OpChecks.live(OP, x);
        OpChecks.rank(OP, "x", x, 4);
        int n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
        if (outH < 1 || outW < 1)
            throw new TensorException(OP + ": output size [" + outH + ", " + outW + "] must be positive (x " + x.describe() + ")");
        if (h < 1 || w < 1)
            throw new TensorException(OP + ": x " + x.describe() + " has an empty plane; nothing to interpolate from");
        int planes = n * c;
        Tensor out = Tensor.empty(x.device(), x.dtype(), n, c, outH, outW);
        if (!x.isCpu()) {
            Gpu.forward(out, x, h, w, outH, outW);
            Autograd.record(OP, out, new Tensor[] {x}, g -> {
                Tensor gx = Tensor.emptyLike(x);   // every element written (gather)
                Gpu.backward(gx, g, h, w, outH, outW);
                return new Tensor[] {gx};
            });
        } else if (x.dtype() == DType.F64) {
            Reference.forward(out.f64(), x.f64(), planes, h, w, outH, outW);
            Autograd.record(OP, out, new Tensor[] {x}, g -> {
                Tensor gx = Tensor.zerosLike(x);
                Reference.backward(gx.f64(), g.f64(), planes, h, w, outH, outW);
                return new Tensor[] {gx};
            });
        } else {
            Cpu.Axis ay = new Cpu.Axis(h, outH), ax = new Cpu.Axis(w, outW);
            Cpu.forward(out.f32(), x.f32(), planes, h, w, ay, ax);
            Autograd.record(OP, out, new Tensor[] {x}, g -> {
                Tensor gx = Tensor.emptyLike(x);
                Cpu.backward(gx.f32(), g.f32(), planes, h, w, ay, ax);
                return new Tensor[] {gx};
            });
        }
        return out;
    }

    /** float64 reference: the formula per output element, source coordinates computed in place. */
    static final class Reference {
        /** Source coordinate of destination index d (align_corners). */
        static double src(int d, int in, int out) {
            double scale = out > 1 ? (double) (in - 1) / (out - 1) : 0.0;
            return d * scale;
        }

        static void forward(double[] out, double[] x, int planes, int h, int w, int oh, int ow) {
            for (int q = 0; q < planes; q++)
                for (int i = 0; i < oh; i++)
                    for (int j = 0; j < ow; j++) {
                        double sy = src(i, h, oh), sx = src(j, w, ow);
                        int y0 = Math.min((int) Math.floor(sy), h - 1), x0 = Math.min((int) Math.floor(sx), w - 1);
                        int y1 = Math.min(y0 + 1, h - 1), x1 = Math.min(x0 + 1, w - 1);
                        double ly = sy - y0, lx = sx - x0;
                        int b = q * h * w;
                        out[(q * oh + i) * ow + j] =
                                (1 - ly) * ((1 - lx) * x[b + y0 * w + x0] + lx * x[b + y0 * w + x1])
                                + ly * ((1 - lx) * x[b + y1 * w + x0] + lx * x[b + y1 * w + x1]);
                    }
        }

        /** gx (zeroed by the caller) accumulates each output's gradient into its four sources. */
        static void backward(double[] gx, double[] gout, int planes, int h, int w, int oh, int ow) {
            for (int q = 0; q < planes; q++)
                for (int i = 0; i < oh; i++)
                    for (int j = 0; j < ow; j++) {
                        double sy = src(i, h, oh), sx = src(j, w, ow);
                        int y0 = Math.min((int) Math.floor(sy), h - 1), x0 = Math.min((int) Math.floor(sx), w - 1);
                        int y1 = Math.min(y0 + 1, h - 1), x1 = Math.min(x0 + 1, w - 1);
                        double ly = sy - y0, lx = sx - x0;
                        double g = gout[(q * oh + i) * ow + j];
                        int b = q * h * w;
                        gx[b + y0 * w + x0] += g * (1 - ly) * (1 - lx);
                        gx[b + y0 * w + x1] += g * (1 - ly) * lx;
                        gx[b + y1 * w + x0] += g * ly * (1 - lx);
                        gx[b + y1 * w + x1] += g * ly * lx;
                    }
        }
    }

    /**
     * float32 kernel, separable: per plane, interpolate every input row horizontally into a
     * scratch [H, outW], then each output row is (1-ly) * scratch[y0] + ly * scratch[y1]
     * (contiguous over outW, vectorised by the JIT). Per element this is the same arithmetic as
     * the formula (horizontal pairs first, then vertical). Index and weight tables are built once
     * per call, in float arithmetic as PyTorch's CPU kernel does (scale, then scale*d, floor).
     * Backward runs the two passes' adjoints in reverse order. Parallel over planes. The
     * row-combining loops use the Vector API when loaded (C2 did not vectorise two loads from one
     * array at run-time offsets); vector and scalar compute the same products and sums (no FMA),
     * so both give identical results.
     */
    static final class Cpu {
        private static final int GRAIN = 1 << 15;

        /** Per-axis tables: sources i0, i1 and weights l0 = 1 - lambda, l1 = lambda, per destination index. */
        static final class Axis {
            final int in, out;
            final int[] i0, i1;
            final float[] l0, l1;

            Axis(int in, int out) {
                this.in = in;
                this.out = out;
                i0 = new int[out];
                i1 = new int[out];
                l0 = new float[out];
                l1 = new float[out];
                float scale = Gpu.scale(in, out);   // one expression for both kernels
                for (int d = 0; d < out; d++) {
                    float src = scale * d;
                    int a = Math.min((int) Math.floor(src), in - 1);
                    float lam = Math.min(Math.max(src - a, 0f), 1f);
                    i0[d] = a;
                    i1[d] = Math.min(a + 1, in - 1);
                    l1[d] = lam;
                    l0[d] = 1f - lam;
                }
            }

            boolean identity() {
                return in == out;
            }
        }

        static void forward(float[] out, float[] x, int planes, int h, int w, Axis ay, Axis ax) {
            int oh = ay.out, ow = ax.out, inPlane = h * w, outPlane = oh * ow;
            if (ay.identity() && ax.identity()) {   // scale 1, lambda 0: a copy (as the formula gives for finite x)
                System.arraycopy(x, 0, out, 0, planes * inPlane);
                return;
            }
            int[] x0 = ax.i0, x1 = ax.i1, y0 = ay.i0, y1 = ay.i1;
            float[] lx0 = ax.l0, lx1 = ax.l1, ly0 = ay.l0, ly1 = ay.l1;
            Parallel.forRange(planes, Math.max(1, GRAIN / Math.max(outPlane, inPlane)), (lo, hi) -> {
                float[] t = new float[h * ow];   // rows interpolated horizontally: [H, outW]
                for (int q = lo; q < hi; q++) {
                    int b = q * inPlane;
                    for (int r = 0; r < h; r++) {
                        int src = b + r * w, dst = r * ow;
                        for (int j = 0; j < ow; j++) t[dst + j] = lx0[j] * x[src + x0[j]] + lx1[j] * x[src + x1[j]];
                    }
                    int o = q * outPlane;
                    for (int i = 0; i < oh; i++) {
                        int a = y0[i] * ow, c = y1[i] * ow, d = o + i * ow;
                        float wa = ly0[i], wc = ly1[i];
                        int j = VECTOR ? Vec.lerpRows(out, d, t, a, c, wa, wc, ow) : 0;
                        for (; j < ow; j++) out[d + j] = wa * t[a + j] + wc * t[c + j];
                    }
                }
            });
        }

        /** gx [planes,H,W] written (no accumulation outside this call). */
        static void backward(float[] gx, float[] gout, int planes, int h, int w, Axis ay, Axis ax) {
            int oh = ay.out, ow = ax.out, inPlane = h * w, outPlane = oh * ow;
            if (ay.identity() && ax.identity()) {
                System.arraycopy(gout, 0, gx, 0, planes * inPlane);
                return;
            }
            int[] x0 = ax.i0, x1 = ax.i1, y0 = ay.i0, y1 = ay.i1;
            float[] lx0 = ax.l0, lx1 = ax.l1, ly0 = ay.l0, ly1 = ay.l1;
            Parallel.forRange(planes, Math.max(1, GRAIN / Math.max(outPlane, inPlane)), (lo, hi) -> {
                float[] t = new float[h * ow];   // gradient of the horizontal pass's output [H, outW]
                for (int q = lo; q < hi; q++) {
                    java.util.Arrays.fill(t, 0f);
                    int o = q * outPlane;
                    for (int i = 0; i < oh; i++) {
                        int a = y0[i] * ow, c = y1[i] * ow, s = o + i * ow;
                        float wa = ly0[i], wc = ly1[i];
                        // Row a first, then row c (they coincide on the last source row).
                        int j = VECTOR ? Vec.accumulateRow(t, a, wa, gout, s, ow) : 0;
                        for (; j < ow; j++) t[a + j] += wa * gout[s + j];
                        j = VECTOR ? Vec.accumulateRow(t, c, wc, gout, s, ow) : 0;
                        for (; j < ow; j++) t[c + j] += wc * gout[s + j];
                    }
                    int b = q * inPlane;
                    java.util.Arrays.fill(gx, b, b + inPlane, 0f);
                    for (int r = 0; r < h; r++) {
                        int dst = b + r * w, src = r * ow;
                        for (int j = 0; j < ow; j++) {
                            float g = t[src + j];
                            gx[dst + x0[j]] += lx0[j] * g;
                            gx[dst + x1[j]] += lx1[j] * g;
                        }
                    }
                }
            });
        }
    }

    /** Vector API on unless the module is absent or -Dncsn.simd=scalar. */
    static final boolean VECTOR = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent()
            && !"scalar".equals(System.getProperty("ncsn.simd"));

    /** Row loops of {@link Cpu} in explicit vectors; each returns the index where the scalar tail starts. */
    static final class Vec {
        private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
        private static final int V = S.length();

        /** out[d+j] = wa*t[a+j] + wc*t[c+j] for j in [0, n). */
        static int lerpRows(float[] out, int d, float[] t, int a, int c, float wa, float wc, int n) {
            int j = 0;
            for (; j + V <= n; j += V)
                FloatVector.fromArray(S, t, a + j).mul(wa).add(FloatVector.fromArray(S, t, c + j).mul(wc)).intoArray(out, d + j);
            return j;
        }

        /** t[a+j] += w*g[s+j] for j in [0, n). */
        static int accumulateRow(float[] t, int a, float w, float[] g, int s, int n) {
            int j = 0;
            for (; j + V <= n; j += V)
                FloatVector.fromArray(S, t, a + j).add(FloatVector.fromArray(S, g, s + j).mul(w)).intoArray(t, a + j);
            return j;
        }
    }

    /**
     * CUDA launchers for src/main/cuda/resize.cu, one thread per output element (forward) or per
     * input element (backward), grid-stride. The backward is a gather over the contiguous range
     * of outputs that sample each input pixel: deterministic, no atomics. The scales are the
     * CPU kernel's float expression, so both pick the same source pixels and weights.
     */
    static final class Gpu {
        static float scale(int in, int out) {
            return out > 1 ? (float) (in - 1) / (out - 1) : 0f;
        }

        static void forward(Tensor out, Tensor x, int h, int w, int oh, int ow) {
            long total = out.numel();
            Launch.kernel("resize_bilinear_forward_f32").ptr(x).ptr(out).i(h).i(w).i(oh).i(ow)
                    .f(scale(h, oh)).f(scale(w, ow)).l(total).elements(total).run();
        }

        static void backward(Tensor gx, Tensor gout, int h, int w, int oh, int ow) {
            long total = gx.numel();
            Launch.kernel("resize_bilinear_backward_f32").ptr(gout).ptr(gx).i(h).i(w).i(oh).i(ow)
                    .f(scale(h, oh)).f(scale(w, ow)).l(total).elements(total).run();
        }
    }

    private static OpCatalog.Case resizeCase(int n, int c, int h, int w, int oh, int ow) {
        return OpCatalog.Case.of(OP, String.format("[%d,%d,%d,%d] -> %dx%d", n, c, h, w, oh, ow),
                s -> new Tensor[] {OpCatalog.normal(s, n, c, h, w).name("x")}, in -> apply(in[0], oh, ow));
    }

    /** Test cases for {@link OpCatalog}: up, down, same size, 1xN planes, output size 1, mixed axes. */
    static List<OpCatalog.Case> cases() {
        return List.of(
                resizeCase(2, 3, 3, 5, 7, 9),    // up
                resizeCase(1, 2, 9, 7, 4, 3),    // down
                resizeCase(1, 3, 4, 6, 4, 6),    // same size (copy)
                resizeCase(2, 1, 1, 5, 3, 8),    // 1xN input: rows all from row 0
                resizeCase(1, 2, 5, 4, 1, 1),    // output size 1: the top-left sample
                resizeCase(1, 2, 5, 4, 5, 7),    // same height, wider
                resizeCase(1, 1, 6, 2, 11, 1),   // taller, width -> 1
                resizeCase(1, 1, 4, 5, 5, 19),   // outW >= 16: vector row loops plus scalar tail
                resizeCase(1, 3, 13, 11, 5, 4),  // down by non-integer factors
                resizeCase(2, 1, 2, 3, 9, 13));  // up by large factors (long gather ranges in the GPU backward)
    }
}
