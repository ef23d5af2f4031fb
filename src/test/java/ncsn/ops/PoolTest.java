package ncsn.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
 * AvgPool5 (5x5, stride 1, pad 2, always /25) and MeanPool2 (2x2, stride 2): hand-counted values,
 * the adjoint identity of the backward at NCSN-like sizes in float32, and the error messages.
 */
class PoolTest {

    /** On a plane of ones the output counts the in-plane cells of each window, over 25. */
    @Test
    void avgPool5CountsPaddingInTheDivisor() {
        for (DType dt : DType.values()) {
            double[] out = AvgPool5.apply(ones(dt, 1, 1, 5, 6)).toDoubleArray();
            // Row 0 sees rows 0..2 (3 rows); columns 0,1,2,3,4,5 see 3,4,5,5,4,3 columns.
            double[] row0 = {9, 12, 15, 15, 12, 9}, row2 = {15, 20, 25, 25, 20, 15};
            for (int j = 0; j < 6; j++) {
                assertEquals(row0[j] / 25, out[j], 1e-7, dt + " (0," + j + ")");
                assertEquals(row2[j] / 25, out[2 * 6 + j], 1e-7, dt + " (2," + j + ")");
            }
            // A 1x1 plane: the window holds the pixel alone, still divided by 25.
            Tensor single = Tensor.wrap(new double[] {5, -10}, 1, 2, 1, 1).to(dt);
            double[] s = AvgPool5.apply(single).toDoubleArray();
            assertEquals(0.2, s[0], 1e-7, dt + " 1x1");
            assertEquals(-0.4, s[1], 1e-7, dt + " 1x1");
        }
    }

    /** A single 1 at (1,1) of a 4x4 plane spreads 1/25 over rows 0..3, columns 0..3. */
    @Test
    void avgPool5Impulse() {
        double[] x = new double[16];
        x[5] = 1;
        for (DType dt : DType.values()) {
            double[] out = AvgPool5.apply(Tensor.wrap(x.clone(), 1, 1, 4, 4).to(dt)).toDoubleArray();
            for (int k = 0; k < 16; k++) assertEquals(0.04, out[k], 1e-8, dt + " element " + k);
        }
    }

    /** <pool(x), y> == <x, pool^T(y)>, with pool^T from autograd; float32 at 2x3x16x17 against float64 sums. */
    @Test
    void avgPool5BackwardIsTheAdjoint() {
        checkAdjoint(AvgPool5::apply, new int[] {2, 3, 16, 17}, new int[] {2, 3, 16, 17});
        checkAdjoint(AvgPool5::apply, new int[] {1, 2, 3, 4}, new int[] {1, 2, 3, 4});
    }

    @Test
    void meanPool2HandValues() {
        double[] x = {1, 2, 3, 4, 5, 6, 7, 8, 10, 20, 30, 40, 50, 60, 70, 80};
        for (DType dt : DType.values()) {
            try (Scope s = Scope.open()) {
                Tensor xt = Tensor.wrap(x.clone(), 1, 2, 2, 4).to(dt).requiresGrad(true);
                Tensor out = MeanPool2.apply(xt);
                assertTrue(out.hasShape(1, 2, 1, 2), out.toString());
                double[] o = out.toDoubleArray();
                assertEquals(3.5, o[0], 0, dt.toString());    // (1 + 5 + 2 + 6) / 4
                assertEquals(5.5, o[1], 0, dt.toString());    // (3 + 7 + 4 + 8) / 4
                assertEquals(35, o[2], 0, dt.toString());
                assertEquals(55, o[3], 0, dt.toString());
                Autograd.backward(out, Tensor.wrap(new double[] {4, 8, -2, 1}, 1, 2, 1, 2).to(dt));
                double[] want = {1, 1, 2, 2, 1, 1, 2, 2, -0.5, -0.5, 0.25, 0.25, -0.5, -0.5, 0.25, 0.25};
                double[] gx = xt.grad().toDoubleArray();
                for (int k = 0; k < 16; k++) assertEquals(want[k], gx[k], 0, dt + " grad " + k);
            }
        }
    }

    @Test
    void meanPool2BackwardIsTheAdjoint() {
        checkAdjoint(MeanPool2::apply, new int[] {2, 3, 16, 18}, new int[] {2, 3, 8, 9});
    }

    @Test
    void badInputsAreNamed() {
        TensorException odd = assertThrows(TensorException.class, () -> MeanPool2.apply(Tensor.zeros(DType.F32, 1, 2, 5, 4)));
        assertTrue(odd.getMessage().startsWith("meanpool2: ") && odd.getMessage().contains("[1, 2, 5, 4]")
                && odd.getMessage().contains("even"), odd.getMessage());
        TensorException oddW = assertThrows(TensorException.class, () -> MeanPool2.apply(Tensor.zeros(DType.F64, 1, 2, 4, 3)));
        assertTrue(oddW.getMessage().contains("odd height or width"), oddW.getMessage());
        TensorException rank = assertThrows(TensorException.class, () -> MeanPool2.apply(Tensor.zeros(DType.F32, 4, 4)));
        assertTrue(rank.getMessage().startsWith("meanpool2: x must have 4 dimensions"), rank.getMessage());
        TensorException rank5 = assertThrows(TensorException.class, () -> AvgPool5.apply(Tensor.zeros(DType.F32, 3, 4, 4)));
        assertTrue(rank5.getMessage().startsWith("avgpool5: x must have 4 dimensions") && rank5.getMessage().contains("[3, 4, 4]"),
                rank5.getMessage());
        Tensor freed;
        try (Scope s = Scope.open()) {
            freed = Tensor.zeros(DType.F32, 1, 1, 4, 4);
        }
        TensorException gone = assertThrows(TensorException.class, () -> AvgPool5.apply(freed));
        assertTrue(gone.getMessage().startsWith("avgpool5: ") && gone.getMessage().contains("freed"), gone.getMessage());
        TensorException gone2 = assertThrows(TensorException.class, () -> MeanPool2.apply(freed));
        assertTrue(gone2.getMessage().startsWith("meanpool2: ") && gone2.getMessage().contains("freed"), gone2.getMessage());
    }

    // ---- helpers -----------------------------------------------------------------------------

    /** For a linear op A: <A x, y> computed in double from float32 A x, against <x, A^T y> from float32 autograd. */
    static void checkAdjoint(java.util.function.Function<Tensor, Tensor> op, int[] inShape, int[] outShape) {
        int nIn = 1, nOut = 1;
        for (int d : inShape) nIn *= d;
        for (int d : outShape) nOut *= d;
        double[] x = new double[nIn], y = new double[nOut];
        Philox.normal(7, 1, 0, x, 0, nIn);
        Philox.normal(8, 1, 0, y, 0, nOut);
        try (Scope s = Scope.open()) {
            Tensor xt = Tensor.wrap(x, inShape).to(DType.F32).requiresGrad(true);
            Tensor yt = Tensor.wrap(y, outShape).to(DType.F32);
            Tensor out = op.apply(xt);
            assertTrue(out.hasShape(outShape), out.toString());
            Autograd.backward(out, yt);
            double[] ax = out.toDoubleArray(), aty = xt.grad().toDoubleArray(), xf = xt.toDoubleArray(), yf = yt.toDoubleArray();
            double lhs = 0, rhs = 0, scale = 0;
            for (int i = 0; i < nOut; i++) {
                lhs += ax[i] * yf[i];
                scale += Math.abs(ax[i] * yf[i]);
            }
            for (int i = 0; i < nIn; i++) rhs += xf[i] * aty[i];
            assertEquals(lhs, rhs, 1e-6 * scale, "adjoint identity");
        }
    }

    private static Tensor ones(DType dt, int... shape) {
        Tensor t = Tensor.zeros(dt, shape);
        for (int i = 0; i < t.numel(); i++) t.set(i, 1);
        return t;
    }
}
