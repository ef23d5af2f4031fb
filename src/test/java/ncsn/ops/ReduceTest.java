package ncsn.ops;

import static ncsn.ops.ElementwiseTest.assertClose;
import static ncsn.ops.ElementwiseTest.random;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import ncsn.autograd.Autograd;
import ncsn.tensor.DType;
import ncsn.tensor.Scope;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;
import org.junit.jupiter.api.Test;

/** sum / mean: keepdim shapes, hand values, float32 accuracy on long sums, large parallel runs, messages. */
class ReduceTest {
    private static final double[] X23 = {1, 2, 3, 4, 5, 6}; // [[1,2,3],[4,5,6]]

    @Test
    void sumsAndMeansOfASmallMatrix() {
        for (DType dt : DType.values()) {
            Tensor x = Tensor.wrap(X23.clone(), 2, 3).to(dt);
            Tensor all = Reduce.sum(x);
            assertArrayEquals(new int[] {1}, all.shape());
            assertEquals(21, all.item(), 0.0);
            assertEquals(3.5, Reduce.mean(x).item(), 0.0);
            Tensor rows = Reduce.sum(x, 1);
            assertArrayEquals(new int[] {2, 1}, rows.shape());
            assertArrayEquals(new double[] {6, 15}, rows.toDoubleArray(), 0.0);
            Tensor cols = Reduce.mean(x, 0);
            assertArrayEquals(new int[] {1, 3}, cols.shape());
            assertArrayEquals(new double[] {2.5, 3.5, 4.5}, cols.toDoubleArray(), 0.0);
            assertArrayEquals(new double[] {6, 15}, Reduce.sum(x, -1).toDoubleArray(), 0.0, "negative dim");
            assertArrayEquals(new int[] {1, 1}, Reduce.sum(x, 0, 1).shape());
        }
    }

    @Test
    void meanGradientIsOneOverTheCount() {
        for (DType dt : DType.values()) {
            Tensor x = Tensor.wrap(X23.clone(), 2, 3).to(dt).requiresGrad(true);
            try (Scope s = Scope.open()) {
                // d/dx of sum_c( mean over dim 1 [2,1] * (1, 2) ) : row r gets (r+1)/3.
                Tensor m = Reduce.mean(x, 1);
                Autograd.backward(m, Tensor.wrap(new double[] {1, 2}, 2, 1).to(dt));
            }
            double third = 1.0 / 3;
            assertArrayEquals(new double[] {third, third, third, 2 * third, 2 * third, 2 * third},
                    x.grad().toDoubleArray(), dt == DType.F32 ? 1e-7 : 1e-16, dt.toString());
        }
    }

    /**
     * 3M copies of 0.1f: the double accumulation gives the float32 rounding of the exact sum;
     * a float32 running sum would be off by far more than one ulp (it drifts once the partial
     * sum's ulp exceeds 0.1f's own precision).
     */
    @Test
    void longFloat32SumsAreAccurate() {
        int n = 3_000_000;
        float[] v = new float[n];
        Arrays.fill(v, 0.1f);
        double exact = n * (double) 0.1f;
        Tensor x = Tensor.wrap(v, n);
        assertEquals((float) exact, (float) Reduce.sum(x).item(), 0.0f);
        assertEquals((float) (exact / n), (float) Reduce.mean(x).item(), 0.0f);
        float naive = 0;
        for (float f : v) naive += f;
        assertTrue(Math.abs(naive - exact) > 100 * Math.ulp((float) exact), "the naive float sum is the inaccurate one");
    }

    /** Each kernel path (full sum in pieces, inner dim reduced, inner dim kept) on sizes that run in parallel. */
    @Test
    void largeReductionsMatchTheReference() {
        int[] shape = {6, 5, 70, 71};
        int[][] dimSets = {{0, 1, 2, 3}, {2, 3}, {0, 2, 3}, {0}, {0, 2}, {1, 3}, {3}, {0, 1}};
        Tensor x64 = random(17, shape);
        Tensor x32 = x64.to(DType.F32);
        for (int[] dims : dimSets) {
            for (boolean mean : new boolean[] {false, true}) {
                String what = (mean ? "mean " : "sum ") + Arrays.toString(dims);
                Tensor a = x64.copy().requiresGrad(true), b = x32.copy().requiresGrad(true);
                try (Scope s = Scope.open()) {
                    Tensor r64 = mean ? Reduce.mean(a, dims) : Reduce.sum(a, dims);
                    Tensor r32 = mean ? Reduce.mean(b, dims) : Reduce.sum(b, dims);
                    assertArrayEquals(r64.shape(), r32.shape());
                    // Each output is one sum; compare per element against its own magnitude scale.
                    assertClose(what + " forward", r64.toDoubleArray(), r32.toDoubleArray(), 1e-6);
                    Tensor g = random(3, r64.shape());
                    Autograd.backward(r64, g);
                    Autograd.backward(r32, g.to(DType.F32));
                }
                assertClose(what + " grad", a.grad().toDoubleArray(), b.grad().toDoubleArray(), 1e-6);
            }
        }
        // Whole-tensor sum: shape [1] and equal to the all-dims keepdim sum.
        assertEquals(Reduce.sum(x64, 0, 1, 2, 3).item(), Reduce.sum(x64).item(), 1e-9);
        assertEquals(Reduce.sum(x64).item(), Reduce.sum(x32).item(), 1e-6 * x64.numel());
    }

    @Test
    void badDimsAreReported() {
        Tensor x = Tensor.zeros(DType.F32, 2, 3);
        TensorException e = assertThrows(TensorException.class, () -> Reduce.sum(x, 2));
        assertTrue(e.getMessage().startsWith("sum:") && e.getMessage().contains("dim 2") && e.getMessage().contains("[2, 3]"),
                e.getMessage());
        e = assertThrows(TensorException.class, () -> Reduce.mean(x, 1, -1));
        assertTrue(e.getMessage().startsWith("mean:") && e.getMessage().contains("twice"), e.getMessage());
        e = assertThrows(TensorException.class, () -> Reduce.sum(x, new int[0]));
        assertTrue(e.getMessage().startsWith("sum:"), e.getMessage());
        e = assertThrows(TensorException.class, () -> Reduce.mean(Tensor.zeros(DType.F32, 0, 3), 0));
        assertTrue(e.getMessage().startsWith("mean:") && e.getMessage().contains("empty"), e.getMessage());
    }
}
