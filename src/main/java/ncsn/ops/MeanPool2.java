package ncsn.ops;

import java.util.List;
import ncsn.autograd.Autograd;
import ncsn.cpu.Parallel;
import ncsn.cuda.Launch;
import ncsn.tensor.DType;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;

/**
 * 2x2 mean pooling, stride 2 (the pool of ConvMeanPool, spec section 3): x [N,C,H,W] with H, W
 * even -> out [N,C,H/2,W/2],
 * <pre>
 *   out[n,c,i,j] = (x[2i,2j] + x[2i+1,2j] + x[2i,2j+1] + x[2i+1,2j+1]) / 4
 * </pre>
 * summed in that order, as the reference code's sum([::2,::2], [1::2,::2], [::2,1::2], [1::2,1::2]) / 4
 * does. Backward: each of the four inputs of a window receives dout/4.
 */
public final class MeanPool2 {
    static final String OP = "meanpool2";

    private MeanPool2() {}

    /** out [N,C,H/2,W/2] = meanpool2(x [N,C,H,W]); H and W must be even. */
    public static Tensor apply(Tensor x) {
        OpChecks.live(OP, x);
        OpChecks.rank(OP, "x", x, 4);
        int n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
        if (h % 2 != 0 || w % 2 != 0)
            throw new TensorException(OP + ": x " + x.describe() + " has odd height or width; 2x2 mean pooling with stride 2"
                    + " needs even H and W");
        int planes = n * c, ho = h / 2, wo = w / 2;
        Tensor out = Tensor.empty(x.device(), x.dtype(), n, c, ho, wo);
        if (!x.isCpu()) Gpu.forward(out, x, wo);
        else if (x.dtype() == DType.F64) Reference.forward(out.f64(), x.f64(), planes, ho, wo);
        else Cpu.forward(out.f32(), x.f32(), planes, ho, wo);
        Autograd.record(OP, out, new Tensor[] {x}, g -> {
            Tensor gx = Tensor.emptyLike(x);
            if (!x.isCpu()) Gpu.backward(gx, g, wo);
            else if (x.dtype() == DType.F64) Reference.backward(gx.f64(), g.f64(), planes, ho, wo);
            else Cpu.backward(gx.f32(), g.f32(), planes, ho, wo);
            return new Tensor[] {gx};
        });
        return out;
    }

    /** float64 reference: the definition per output element; sizes are the output's (ho, wo). */
    static final class Reference {
        static void forward(double[] out, double[] x, int planes, int ho, int wo) {
            int w = 2 * wo, h = 2 * ho;
            for (int q = 0; q < planes; q++)
                for (int i = 0; i < ho; i++)
                    for (int j = 0; j < wo; j++) {
                        int b = q * h * w;
                        double s = x[b + (2 * i) * w + 2 * j] + x[b + (2 * i + 1) * w + 2 * j]
                                + x[b + (2 * i) * w + 2 * j + 1] + x[b + (2 * i + 1) * w + 2 * j + 1];
                        out[(q * ho + i) * wo + j] = s / 4;
                    }
        }

        static void backward(double[] gx, double[] gout, int planes, int ho, int wo) {
            int w = 2 * wo, h = 2 * ho;
            for (int q = 0; q < planes; q++)
                for (int i = 0; i < ho; i++)
                    for (int j = 0; j < wo; j++) {
                        int b = q * h * w;
                        double share = gout[(q * ho + i) * wo + j] / 4;
                        gx[b + (2 * i) * w + 2 * j] = share;
                        gx[b + (2 * i + 1) * w + 2 * j] = share;
                        gx[b + (2 * i) * w + 2 * j + 1] = share;
                        gx[b + (2 * i + 1) * w + 2 * j + 1] = share;
                    }
        }
    }

    /**
     * float32 kernel: one task per range of output rows (over all planes, flattened), each row
     * reading two input rows; same summation order as the reference (*0.25 equals /4 exactly).
     */
    static final class Cpu {
        private static final int GRAIN = 1 << 14;

        static void forward(float[] out, float[] x, int planes, int ho, int wo) {
            int w = 2 * wo;
            // Output row k (over planes*ho rows) reads input rows 2k and 2k+1 of the flattened [planes*H, W] view.
            Parallel.forRange(planes * ho, Math.max(1, GRAIN / Math.max(1, wo)), (lo, hi) -> {
                for (int k = lo; k < hi; k++) {
                    int r0 = 2 * k * w, r1 = r0 + w, o = k * wo;
                    for (int j = 0; j < wo; j++)
                        out[o + j] = (x[r0 + 2 * j] + x[r1 + 2 * j] + x[r0 + 2 * j + 1] + x[r1 + 2 * j + 1]) * 0.25f;
                }
            });
        }

        static void backward(float[] gx, float[] gout, int planes, int ho, int wo) {
            int w = 2 * wo;
            Parallel.forRange(planes * ho, Math.max(1, GRAIN / Math.max(1, wo)), (lo, hi) -> {
                for (int k = lo; k < hi; k++) {
                    int r0 = 2 * k * w, r1 = r0 + w, o = k * wo;
                    for (int j = 0; j < wo; j++) {
                        float s = gout[o + j] * 0.25f;
                        gx[r0 + 2 * j] = s;
                        gx[r0 + 2 * j + 1] = s;
                        gx[r1 + 2 * j] = s;
                        gx[r1 + 2 * j + 1] = s;
                    }
                }
            });
        }
    }

    /**
     * CUDA launchers for src/main/cuda/pool.cu: one thread per output element (grid-stride);
     * the backward writes all four inputs of its window, so every element of gx is written.
     */
    static final class Gpu {
        static void forward(Tensor out, Tensor x, int wo) {
            long total = out.numel();
            Launch.kernel("meanpool2_forward_f32").ptr(x).ptr(out).i(wo).l(total).elements(total).run();
        }

        static void backward(Tensor gx, Tensor gout, int wo) {
            long total = gout.numel();
            Launch.kernel("meanpool2_backward_f32").ptr(gout).ptr(gx).i(wo).l(total).elements(total).run();
        }
    }

    /** Test cases for {@link OpCatalog}: batch 1, odd channel counts, 2x2 -> 1x1, non-square. */
    static List<OpCatalog.Case> cases() {
        return List.of(
                OpCatalog.Case.of(OP, "[2,3,6,10]", s -> new Tensor[] {OpCatalog.normal(s, 2, 3, 6, 10).name("x")}, in -> apply(in[0])),
                OpCatalog.Case.of(OP, "[1,5,2,2]", s -> new Tensor[] {OpCatalog.normal(s, 1, 5, 2, 2).name("x")}, in -> apply(in[0])),
                OpCatalog.Case.of(OP, "[1,1,8,14]", s -> new Tensor[] {OpCatalog.normal(s, 1, 1, 8, 14).name("x")}, in -> apply(in[0])),
                OpCatalog.Case.of(OP, "[3,7,2,6]", s -> new Tensor[] {OpCatalog.normal(s, 3, 7, 2, 6).name("x")}, in -> apply(in[0])));
    }
}
