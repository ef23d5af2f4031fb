package ncsn.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ncsn.ops.Elu;
import org.junit.jupiter.api.Test;

class TensorTest {
    @Test
    void reshapeIsAViewSharingStorage() {
        Tensor t = Tensor.zeros(DType.F32, 2, 3, 4);
        Tensor v = t.reshape(6, -1);
        assertEquals(4, v.dim(1));
        assertSame(t.storage(), v.storage());
        v.set(5, 3.5);
        assertEquals(3.5, t.get(5));
        TensorException e = assertThrows(TensorException.class, () -> t.reshape(5, 5));
        assertTrue(e.getMessage().contains("reshape") && e.getMessage().contains("[2, 3, 4]"), e.getMessage());
    }

    @Test
    void scopeFreesItsTensorsAndLaterUseNamesTheOp() {
        Tensor kept;
        Tensor dropped;
        try (Scope s = Scope.open()) {
            dropped = Tensor.zeros(DType.F32, 3, 5);
            kept = s.keep(Tensor.zeros(DType.F32, 3, 5));
        }
        assertFalse(dropped.isLive());
        assertTrue(kept.isLive());
        TensorException e = assertThrows(TensorException.class, () -> Elu.apply(dropped));
        assertTrue(e.getMessage().startsWith("elu:") && e.getMessage().contains("[3, 5]") && e.getMessage().contains("freed"),
                e.getMessage());
    }

    @Test
    void steadyStateStepsAllocateNothingNew() {
        Tensor x = Tensor.persistent(DType.F32, 4, 3, 17, 9);
        Runnable step = () -> {
            try (Scope s = Scope.open()) {
                Tensor y = Elu.apply(Elu.apply(x));
                Elu.apply(y.reshape(4, -1));
            }
        };
        step.run();
        long fresh = BufferPool.freshAllocations();
        for (int i = 0; i < 3; i++) step.run();
        assertEquals(fresh, BufferPool.freshAllocations(), "later steps must reuse pooled arrays");
        assertTrue(BufferPool.reusedAllocations() >= 9);
    }

    @Test
    void pooledArraysComeBackZeroedWhenAskedFor() {
        try (Scope s = Scope.open()) {
            Tensor t = Tensor.empty(DType.F64, 7, 3);
            java.util.Arrays.fill(t.f64(), 9.0);
        }
        try (Scope s = Scope.open()) {
            Tensor z = Tensor.zeros(DType.F64, 3, 7);
            for (double v : z.f64()) assertEquals(0.0, v);
        }
    }

    @Test
    void badShapesAndWrapsAreRejectedClearly() {
        assertThrows(TensorException.class, () -> Tensor.zeros(DType.F32, 2, -1));
        TensorException e = assertThrows(TensorException.class, () -> Tensor.wrap(new float[5], 2, 3));
        assertTrue(e.getMessage().contains("wrap") && e.getMessage().contains("[2, 3]"), e.getMessage());
        Tensor f = Tensor.zeros(DType.F32, 2);
        assertThrows(TensorException.class, f::f64);
    }

    @Test
    void conversionsRoundTrip() {
        Tensor d = Tensor.wrap(new double[] {1.5, -2.25, 1e-3}, 3);
        Tensor f = d.to(DType.F32);
        assertEquals(DType.F32, f.dtype());
        assertEquals((float) 1e-3, f.f32()[2]);
        assertEquals(-2.25, f.to(DType.F64).get(1));
    }
}
