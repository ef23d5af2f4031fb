package ncsn.ops;

import static ncsn.ops.ElementwiseTest.assertClose;
import static ncsn.ops.ElementwiseTest.random;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ncsn.autograd.Autograd;
import ncsn.tensor.DType;
import ncsn.tensor.Scope;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;
import org.junit.jupiter.api.Test;

/** linear (x w^T + b, PyTorch layout) and softplus (beta 1, threshold 20). */
class LinearSoftplusTest {
    @Test
    void linearUsesPytorchWeightLayout() {
        // x [1,2] = (1, 2); w [3,2] rows (1,0), (0,1), (1,1); b = (0.5, -1, 0) -> (1.5, 1, 3).
        for (DType dt : DType.values()) {
            Tensor x = Tensor.wrap(new double[] {1, 2}, 1, 2).to(dt).requiresGrad(true);
            Tensor w = Tensor.wrap(new double[] {1, 0, 0, 1, 1, 1}, 3, 2).to(dt).requiresGrad(true);
            Tensor b = Tensor.wrap(new double[] {0.5, -1, 0}, 3).to(dt).requiresGrad(true);
            try (Scope s = Scope.open()) {
                Tensor y = Linear.apply(x, w, b);
                assertArrayEquals(new int[] {1, 3}, y.shape());
                assertArrayEquals(new double[] {1.5, 1, 3}, y.toDoubleArray(), 0.0, dt.toString());
                // gy = (1, 10, 100): gx = gy w = (101, 110); gw[o,:] = gy[o] x; gb = gy.
                Autograd.backward(y, Tensor.wrap(new double[] {1, 10, 100}, 1, 3).to(dt));
            }
            assertArrayEquals(new double[] {101, 110}, x.grad().toDoubleArray(), 0.0);
            assertArrayEquals(new double[] {1, 2, 10, 20, 100, 200}, w.grad().toDoubleArray(), 0.0);
            assertArrayEquals(new double[] {1, 10, 100}, b.grad().toDoubleArray(), 0.0);
        }
    }

    /** Sizes beyond one register tile of the GEMM kernel, against the float64 reference. */
    @Test
    void largerLinearMatchesTheReference() {
        int n = 37, in = 70, out = 45;
        Tensor x64 = random(1, n, in).requiresGrad(true), w64 = random(2, out, in).requiresGrad(true);
        Tensor b64 = random(3, out).requiresGrad(true);
        Tensor x32 = x64.to(DType.F32).requiresGrad(true), w32 = w64.to(DType.F32).requiresGrad(true);
        Tensor b32 = b64.to(DType.F32).requiresGrad(true);
        try (Scope s = Scope.open()) {
            Tensor y64 = Linear.apply(x64, w64, b64), y32 = Linear.apply(x32, w32, b32);
            assertClose("linear forward", y64.toDoubleArray(), y32.toDoubleArray(), 1e-5);
            Tensor g = random(4, n, out);
            Autograd.backward(y64, g);
            Autograd.backward(y32, g.to(DType.F32));
        }
        assertClose("linear grad x", x64.grad().toDoubleArray(), x32.grad().toDoubleArray(), 1e-5);
        assertClose("linear grad w", w64.grad().toDoubleArray(), w32.grad().toDoubleArray(), 1e-5);
        assertClose("linear grad b", b64.grad().toDoubleArray(), b32.grad().toDoubleArray(), 1e-6);
    }

    @Test
    void linearMessagesNameShapes() {
        Tensor x = Tensor.zeros(DType.F32, 4, 3);
        TensorException e = assertThrows(TensorException.class, () -> Linear.apply(x, Tensor.zeros(DType.F32, 5, 4), null));
        assertTrue(e.getMessage().startsWith("linear:") && e.getMessage().contains("[4, 3]") && e.getMessage().contains("[5, 4]"),
                e.getMessage());
        e = assertThrows(TensorException.class,
                () -> Linear.apply(x, Tensor.zeros(DType.F32, 5, 3), Tensor.zeros(DType.F32, 4)));
        assertTrue(e.getMessage().startsWith("linear:") && e.getMessage().contains("bias"), e.getMessage());
        e = assertThrows(TensorException.class, () -> Linear.apply(Tensor.zeros(DType.F32, 2, 4, 3), Tensor.zeros(DType.F32, 5, 3), null));
        assertTrue(e.getMessage().startsWith("linear:") && e.getMessage().contains("2 dimensions"), e.getMessage());
    }

    /** Values from torch.nn.functional.softplus in float64 (PyTorch 1.13), and its gradient sigmoid(x). */
    @Test
    void softplusMatchesPytorchIncludingTails() {
        double[] x = {0, 20, 20.0001, 25, -50, -5, 3};
        double[] torch = {0.6931471805599453, 20.000000002061153, 20.0001, 25.0, 1.9287498479639178e-22,
            0.006715348489118068, 3.048587351573742};
        Tensor t = Tensor.wrap(x.clone(), x.length).requiresGrad(true);
        try (Scope s = Scope.open()) {
            Tensor y = Softplus.apply(t);
            double[] got = y.toDoubleArray();
            for (int i = 0; i < x.length; i++)
                assertEquals(torch[i], got[i], 1e-15 * Math.abs(torch[i]), "softplus(" + x[i] + ")");
            Autograd.backward(Reduce.sum(y));
        }
        double[] g = t.grad().toDoubleArray();
        for (int i = 0; i < x.length; i++) {
            double want = x[i] > 20 ? 1 : 1 / (1 + Math.exp(-x[i]));
            assertEquals(want, g[i], 1e-15 * want, "softplus'(" + x[i] + ")");
        }
        // float32: the tiny tail keeps its relative accuracy (log1p(exp(x)) in float would give 0).
        Tensor f = Tensor.wrap(new float[] {-50f, 0f, 30f}, 3);
        double[] y32 = Softplus.apply(f).toDoubleArray();
        assertEquals((float) 1.9287498479639178e-22, (float) y32[0], 0f);
        assertEquals((float) Math.log(2), (float) y32[1], 0f);
        assertEquals(30f, (float) y32[2], 0f);
    }

    @Test
    void softplusFloat32MatchesReferenceOnALargeTensor() {
        Tensor x64 = random(9, 3, 50, 500);
        double[] d = x64.f64();
        for (int i = 0; i < d.length; i++) d[i] = (float) (d[i] * 12);
        x64.requiresGrad(true);
        Tensor x32 = x64.to(DType.F32).requiresGrad(true);
        try (Scope s = Scope.open()) {
            Tensor y64 = Softplus.apply(x64), y32 = Softplus.apply(x32);
            assertClose("softplus forward", y64.toDoubleArray(), y32.toDoubleArray(), 1e-7);
            Tensor g = random(10, x64.shape());
            Autograd.backward(y64, g);
            Autograd.backward(y32, g.to(DType.F32));
        }
        assertClose("softplus grad", x64.grad().toDoubleArray(), x32.grad().toDoubleArray(), 1e-7);
    }
}
