package ncsn.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ncsn.autograd.Autograd;
import ncsn.rng.Philox;
import ncsn.tensor.DType;
import ncsn.tensor.Scope;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;
import org.junit.jupiter.api.Test;

/**
 * CIN++ beyond the catalog: a hand-checked value, an independent forward (one pass of plain sums,
 * E[x^2] - E[x]^2 style, unlike the reference's two passes), the embedding gradient's scatter
 * (unused rows zero, shared rows summed), shift invariance of the x gradient, planes large enough
 * for the vector reductions' blocks, and the error messages.
 */
class CondInstanceNormPlusTest {
    private static final double EPS = 1e-5;

    /** One image, two channels of two pixels: every statistic is a small rational. */
    @Test
    void handCheckedValue() {
        // x[0,0] = [1, 3]: mu 2, var 1.   x[0,1] = [5, 5]: mu 5, var 0.
        // m = 3.5, v = ((2-3.5)^2 + (5-3.5)^2) / (2-1) = 4.5.
        double[] x = {1, 3, 5, 5};
        // Label 1 of L = 2; row 1 = [gamma 2, 3 | alpha 0.5, -1 | beta 0.25, 7].
        double[] e = {9, 9, 9, 9, 9, 9, 2, 3, 0.5, -1, 0.25, 7};
        for (DType dt : DType.values()) {
            Tensor out = CondInstanceNormPlus.apply(tensor(dt, x, 1, 2, 1, 2), tensor(dt, e, 2, 6), new int[] {1});
            double out0 = 2 * (-1 / Math.sqrt(1 + EPS) + 0.5 * -1.5 / Math.sqrt(4.5 + EPS)) + 0.25;
            double out3 = 3 * (0 + -1 * 1.5 / Math.sqrt(4.5 + EPS)) + 7;
            double tol = dt == DType.F64 ? 1e-12 : 1e-6;
            assertEquals(out0, out.get(0), tol, dt + " out[0,0,0,0]");
            assertEquals(2 * (1 / Math.sqrt(1 + EPS) - 0.75 / Math.sqrt(4.5 + EPS)) + 0.25, out.get(1), tol, dt + " out[0,0,0,1]");
            assertEquals(out3, out.get(2), tol, dt + " out[0,1,0,0]");
            assertEquals(out3, out.get(3), tol, dt + " out[0,1,0,1]");
        }
    }

    /** Both dtypes against a one-pass sum / sum-of-squares computation written here. */
    @Test
    void forwardMatchesIndependentComputation() {
        int n = 3, c = 4, h = 2, w = 3, classes = 5;
        int[] labels = {4, 0, 4};
        double[] x = randoms(21, n * c * h * w, 1.0, 0.5);
        double[] e = randoms(22, classes * 3 * c, 0.5, 1.0);
        double[] expected = independentForward(x, e, labels, n, c, h * w);
        for (DType dt : DType.values()) {
            double[] xr = dt == DType.F32 ? roundToFloat(x) : x, er = dt == DType.F32 ? roundToFloat(e) : e;
            double[] want = dt == DType.F32 ? independentForward(xr, er, labels, n, c, h * w) : expected;
            Tensor out = CondInstanceNormPlus.apply(tensor(dt, xr, n, c, h, w), tensor(dt, er, classes, 3 * c), labels);
            double[] got = out.toDoubleArray();
            double tol = dt == DType.F64 ? 1e-11 : 2e-6;
            for (int i = 0; i < got.length; i++) assertEquals(want[i], got[i], tol, dt + " element " + i);
        }
    }

    /** Rows of labels no image uses get exactly zero; a shared row gets the sum of its images' parts. */
    @Test
    void embeddingGradientScattersByLabel() {
        int n = 3, c = 3, h = 3, w = 2, classes = 4;
        int[] labels = {2, 0, 2};
        double[] x = randoms(31, n * c * h * w, 1.0, 0.0);
        double[] e = randoms(32, classes * 3 * c, 0.3, 1.0);
        double[] g = randoms(33, n * c * h * w, 1.0, 0.0);
        for (DType dt : DType.values()) {
            double[] batched = embedGrad(dt, x, e, g, labels, n, c, h, w, classes);
            for (int k = 0; k < 3 * c; k++) {
                assertEquals(0.0, batched[1 * 3 * c + k], 0.0, dt + " unused row 1, column " + k);
                assertEquals(0.0, batched[3 * 3 * c + k], 0.0, dt + " unused row 3, column " + k);
            }
            // Per-image calls, summed here: images 0 and 2 both land in row 2.
            double[] summed = new double[classes * 3 * c];
            int plane = c * h * w;
            for (int img = 0; img < n; img++) {
                double[] xi = java.util.Arrays.copyOfRange(x, img * plane, (img + 1) * plane);
                double[] gi = java.util.Arrays.copyOfRange(g, img * plane, (img + 1) * plane);
                double[] part = embedGrad(dt, xi, e, gi, new int[] {labels[img]}, 1, c, h, w, classes);
                for (int k = 0; k < summed.length; k++) summed[k] += part[k];
            }
            double tol = dt == DType.F64 ? 1e-12 : 1e-5;
            for (int k = 0; k < summed.length; k++) assertEquals(summed[k], batched[k], tol, dt + " embed grad " + k);
            assertNotEquals(0.0, batched[2 * 3 * c], dt + " used row 2 has a gradient");
        }
    }

    /** Adding a constant to a whole image leaves CIN++ unchanged, so dx sums to 0 over each image. */
    @Test
    void xGradientSumsToZeroPerImage() {
        int n = 2, c = 5, h = 4, w = 3;
        double[] x = randoms(41, n * c * h * w, 2.0, 1.0);
        double[] e = randoms(42, 2 * 3 * c, 0.5, 1.0);
        double[] g = randoms(43, n * c * h * w, 1.0, 0.0);
        for (DType dt : DType.values()) {
            try (Scope s = Scope.open()) {
                Tensor xt = tensor(dt, x, n, c, h, w).requiresGrad(true);
                Tensor out = CondInstanceNormPlus.apply(xt, tensor(dt, e, 2, 3 * c), new int[] {1, 0});
                Autograd.backward(out, tensor(dt, g, n, c, h, w));
                double[] dx = xt.grad().toDoubleArray();
                for (int img = 0; img < n; img++) {
                    double sum = 0, abs = 0;
                    for (int i = img * c * h * w; i < (img + 1) * c * h * w; i++) {
                        sum += dx[i];
                        abs += Math.abs(dx[i]);
                    }
                    assertTrue(abs > 1, "gradient is not trivially zero");
                    assertEquals(0.0, sum / abs, dt == DType.F64 ? 1e-13 : 1e-6, dt + " image " + img);
                }
            }
        }
    }

    /**
     * Planes of 33x35 (more than one 1024-element block of the vector reductions, plus a tail)
     * with a large mean: float32 forward and gradients against the float64 reference.
     */
    @Test
    void float32OnLargePlanesWithOffset() {
        int n = 2, c = 3, h = 33, w = 35, classes = 3;
        int[] labels = {2, 2};
        double[] x = roundToFloat(randoms(51, n * c * h * w, 0.5, 20.0));
        double[] e = roundToFloat(randoms(52, classes * 3 * c, 0.5, 1.0));
        double[] g = roundToFloat(randoms(53, n * c * h * w, 1.0, 0.0));
        double[][] r64 = run(DType.F64, x, e, g, labels, n, c, h, w, classes);
        double[][] r32 = run(DType.F32, x, e, g, labels, n, c, h, w, classes);
        String[] what = {"output", "grad x", "grad embed"};
        for (int k = 0; k < 3; k++) {
            double max = 0, diff = 0;
            for (int i = 0; i < r64[k].length; i++) {
                max = Math.max(max, Math.abs(r64[k][i]));
                diff = Math.max(diff, Math.abs(r64[k][i] - r32[k][i]));
            }
            assertTrue(diff / max < 1e-5, what[k] + ": relative error " + diff / max);
        }
    }

    @Test
    void noGradRecordsNothing() {
        Tensor x = OpCatalog.normal(61, 1, 2, 3, 3);
        Tensor e = OpCatalog.normal(62, 1, 6);
        try (Autograd.NoGrad ng = Autograd.noGrad()) {
            Tensor out = CondInstanceNormPlus.apply(x.to(DType.F32).requiresGrad(true), e.to(DType.F32), new int[] {0});
            assertTrue(out.isLeaf());
        }
    }

    @Test
    void badInputsAreNamed() {
        Tensor e6 = Tensor.zeros(DType.F32, 4, 6);
        TensorException one = assertThrows(TensorException.class,
                () -> CondInstanceNormPlus.apply(Tensor.zeros(DType.F32, 2, 1, 3, 3), Tensor.zeros(DType.F32, 4, 3), new int[] {0, 1}));
        assertTrue(one.getMessage().startsWith("cin_pp: ") && one.getMessage().contains("at least 2")
                && one.getMessage().contains("[2, 1, 3, 3]"), one.getMessage());

        TensorException width = assertThrows(TensorException.class,
                () -> CondInstanceNormPlus.apply(Tensor.zeros(DType.F32, 2, 3, 3, 3), e6, new int[] {0, 1}));
        assertTrue(width.getMessage().contains("[4, 6]") && width.getMessage().contains("[2, 3, 3, 3]")
                && width.getMessage().contains("[L, 9]"), width.getMessage());

        TensorException label = assertThrows(TensorException.class,
                () -> CondInstanceNormPlus.apply(Tensor.zeros(DType.F32, 2, 2, 3, 3), e6, new int[] {0, 4}));
        assertTrue(label.getMessage().startsWith("cin_pp: ") && label.getMessage().contains("label 4"), label.getMessage());

        TensorException count = assertThrows(TensorException.class,
                () -> CondInstanceNormPlus.apply(Tensor.zeros(DType.F32, 2, 2, 3, 3), e6, new int[] {0}));
        assertTrue(count.getMessage().contains("expected 2 labels"), count.getMessage());

        TensorException rank = assertThrows(TensorException.class,
                () -> CondInstanceNormPlus.apply(Tensor.zeros(DType.F32, 2, 3, 9), e6, new int[] {0, 1}));
        assertTrue(rank.getMessage().startsWith("cin_pp: x must have 4 dimensions"), rank.getMessage());

        TensorException dtype = assertThrows(TensorException.class,
                () -> CondInstanceNormPlus.apply(Tensor.zeros(DType.F64, 2, 2, 3, 3), e6, new int[] {0, 1}));
        assertTrue(dtype.getMessage().startsWith("cin_pp: dtypes differ"), dtype.getMessage());

        Tensor freed;
        try (Scope s = Scope.open()) {
            freed = Tensor.zeros(DType.F32, 2, 2, 3, 3);
        }
        TensorException gone = assertThrows(TensorException.class,
                () -> CondInstanceNormPlus.apply(freed, e6, new int[] {0, 1}));
        assertTrue(gone.getMessage().startsWith("cin_pp: ") && gone.getMessage().contains("freed"), gone.getMessage());
    }

    /** The reductions the float32 kernel uses, scalar and (when loaded) vector, against plain double sums. */
    @Test
    void reductionsAgreeWithDoubleSums() {
        for (int p : new int[] {0, 1, 7, 15, 16, 31, 33, 100, 1024, 1031, 3000}) {
            float[] x = new float[p + 3], g = new float[p + 3];
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) (Math.sin(i * 0.37) * 3 + 5);
                g[i] = (float) Math.cos(i * 0.11);
            }
            int off = 3;
            float m = 5.25f;
            double s = 0, d2 = 0, sg = 0, sgx = 0;
            for (int i = off; i < off + p; i++) {
                s += x[i] - (double) m;
                d2 += (x[i] - (double) m) * (x[i] - (double) m);
                sg += g[i];
                sgx += g[i] * (x[i] - (double) m);
            }
            double tol = 1e-6 * (1 + p);
            assertEquals(s, CondInstanceNormPlus.Cpu.sumDev(x, off, p, m), tol, "scalar sumDev p=" + p);
            assertEquals(d2, CondInstanceNormPlus.Cpu.sumSqDev(x, off, p, m), tol, "scalar sumSqDev p=" + p);
            double[] two = new double[4];
            CondInstanceNormPlus.Cpu.sumsGx(g, x, off, p, m, two, 1, 3);
            assertEquals(sg, two[1], tol, "scalar sum g p=" + p);
            assertEquals(sgx, two[3], tol, "scalar sum g(x-m) p=" + p);
            if (CondInstanceNormPlus.VECTOR) {
                assertEquals(s, CondInstanceNormPlus.Vec.sumDev(x, off, p, m), tol, "vector sumDev p=" + p);
                assertEquals(d2, CondInstanceNormPlus.Vec.sumSqDev(x, off, p, m), tol, "vector sumSqDev p=" + p);
                CondInstanceNormPlus.Vec.sumsGx(g, x, off, p, m, two, 0, 2);
                assertEquals(sg, two[0], tol, "vector sum g p=" + p);
                assertEquals(sgx, two[2], tol, "vector sum g(x-m) p=" + p);
            }
        }
    }

    // ---- helpers -----------------------------------------------------------------------------

    /**
     * The forward written differently from the reference: per plane one pass accumulating sum and
     * sum of squares (var = E[x^2] - E[x]^2), and v from sum and sum of squares of the means.
     */
    private static double[] independentForward(double[] x, double[] e, int[] labels, int n, int c, int p) {
        double[] out = new double[x.length];
        for (int img = 0; img < n; img++) {
            double[] mean = new double[c], sd = new double[c];
            double sumMu = 0, sumMu2 = 0;
            for (int ch = 0; ch < c; ch++) {
                double s = 0, s2 = 0;
                for (int i = 0; i < p; i++) {
                    double v = x[(img * c + ch) * p + i];
                    s += v;
                    s2 += v * v;
                }
                mean[ch] = s / p;
                sd[ch] = Math.sqrt(s2 / p - mean[ch] * mean[ch] + EPS);
                sumMu += mean[ch];
                sumMu2 += mean[ch] * mean[ch];
            }
            double m = sumMu / c;
            double v = (sumMu2 - c * m * m) / (c - 1);
            int row = labels[img] * 3 * c;
            for (int ch = 0; ch < c; ch++)
                for (int i = 0; i < p; i++) {
                    int k = (img * c + ch) * p + i;
                    double norm = (x[k] - mean[ch]) / sd[ch];
                    double across = (mean[ch] - m) / Math.sqrt(v + EPS);
                    out[k] = e[row + ch] * (norm + e[row + c + ch] * across) + e[row + 2 * c + ch];
                }
        }
        return out;
    }

    /** Embedding gradient of sum(out * g) for the given dtype. */
    private static double[] embedGrad(DType dt, double[] x, double[] e, double[] g, int[] labels,
                                      int n, int c, int h, int w, int classes) {
        return run(dt, x, e, g, labels, n, c, h, w, classes)[2];
    }

    /** {output, grad x, grad embed} of out = CIN++(x, e, labels) with output gradient g. */
    private static double[][] run(DType dt, double[] x, double[] e, double[] g, int[] labels,
                                  int n, int c, int h, int w, int classes) {
        try (Scope s = Scope.open()) {
            Tensor xt = tensor(dt, x, n, c, h, w).requiresGrad(true);
            Tensor et = tensor(dt, e, classes, 3 * c).requiresGrad(true);
            Tensor out = CondInstanceNormPlus.apply(xt, et, labels);
            Autograd.backward(out, tensor(dt, g, n, c, h, w));
            return new double[][] {out.toDoubleArray(), xt.grad().toDoubleArray(), et.grad().toDoubleArray()};
        }
    }

    private static Tensor tensor(DType dt, double[] v, int... shape) {
        return Tensor.wrap(v.clone(), shape).to(dt);
    }

    private static double[] randoms(long seed, int n, double scale, double shift) {
        double[] d = new double[n];
        Philox.normal(seed, 0x74657374L, 0, d, 0, n);
        for (int i = 0; i < n; i++) d[i] = shift + scale * d[i];
        return d;
    }

    private static double[] roundToFloat(double[] v) {
        double[] r = new double[v.length];
        for (int i = 0; i < v.length; i++) r[i] = (float) v[i];
        return r;
    }
}
