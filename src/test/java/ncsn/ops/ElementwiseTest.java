package ncsn.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ncsn.autograd.Autograd;
import ncsn.rng.Philox;
import ncsn.tensor.DType;
import ncsn.tensor.Scope;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;
import org.junit.jupiter.api.Test;

/** add / mul / scale: hand values, broadcasting plans, large (parallel) float32 runs, messages. */
class ElementwiseTest {
    private static Tensor f64(double[] v, int... shape) {
        return Tensor.wrap(v, shape);
    }

    @Test
    void addBroadcastsARowOverABatch() {
        // [2,3] + [3]: each row plus (10, 20, 30).
        Tensor out = Elementwise.add(f64(new double[] {1, 2, 3, 4, 5, 6}, 2, 3), f64(new double[] {10, 20, 30}, 3));
        assertArrayEquals(new int[] {2, 3}, out.shape());
        assertArrayEquals(new double[] {11, 22, 33, 14, 25, 36}, out.toDoubleArray());
    }

    @Test
    void mulOfColumnAndRowIsTheOuterProduct() {
        // [2,1] * [1,3] -> [2,3], both operands broadcast; same in float32.
        for (DType dt : DType.values()) {
            Tensor a = f64(new double[] {2, -1}, 2, 1).to(dt), b = f64(new double[] {1, 3, 5}, 1, 3).to(dt);
            Tensor out = Elementwise.mul(a, b);
            assertArrayEquals(new int[] {2, 3}, out.shape());
            assertArrayEquals(new double[] {2, 6, 10, -1, -3, -5}, out.toDoubleArray(), 0.0, dt.toString());
        }
    }

    @Test
    void perChannelGradientsSumOverBatchAndPlane() {
        // out = x * w + b with x [2,2,1,2], w and b [1,2,1,1]; gradient of sum(out):
        // db_c = number of elements per channel (N*H*W = 4), dw_c = sum of x over channel c.
        for (DType dt : DType.values()) {
            Tensor x = f64(new double[] {1, 2, 3, 4, 5, 6, 7, 8}, 2, 2, 1, 2).to(dt);
            Tensor w = f64(new double[] {0.5, -2}, 1, 2, 1, 1).to(dt).requiresGrad(true);
            Tensor b = f64(new double[] {1, 1}, 1, 2, 1, 1).to(dt).requiresGrad(true);
            try (Scope s = Scope.open()) {
                Tensor y = Elementwise.add(Elementwise.mul(x, w), b);
                assertArrayEquals(new double[] {1.5, 2, -5, -7, 3.5, 4, -13, -15}, y.toDoubleArray(), 0.0);
                Autograd.backward(Reduce.sum(y));
            }
            assertArrayEquals(new double[] {1 + 2 + 5 + 6, 3 + 4 + 7 + 8}, w.grad().toDoubleArray(), 0.0, dt.toString());
            assertArrayEquals(new double[] {4, 4}, b.grad().toDoubleArray(), 0.0, dt.toString());
        }
    }

    @Test
    void scaleIsAlphaXPlusBetaWithGradientAlpha() {
        Tensor x = f64(new double[] {1, -2, 0.5}, 3).requiresGrad(true);
        try (Scope s = Scope.open()) {
            Tensor y = Elementwise.scale(x, 3, 1);
            assertArrayEquals(new double[] {4, -5, 2.5}, y.toDoubleArray(), 0.0);
            assertArrayEquals(new double[] {-2, 4, -1}, Elementwise.scale(x, -2).toDoubleArray(), 0.0);
            Autograd.backward(Reduce.sum(y));
        }
        assertArrayEquals(new double[] {3, 3, 3}, x.grad().toDoubleArray(), 0.0);
    }

    @Test
    void sameShapeAddPassesTheGradientThrough() {
        Tensor a = Tensor.wrap(new float[] {1, 2, 3}, 3).requiresGrad(true);
        Tensor b = Tensor.wrap(new float[] {4, 5, 6}, 3).requiresGrad(true);
        try (Scope s = Scope.open()) {
            Tensor y = Elementwise.add(a, b);
            Autograd.backward(y, Tensor.wrap(new float[] {1, -1, 2}, 3));
        }
        assertArrayEquals(new double[] {1, -1, 2}, a.grad().toDoubleArray(), 0.0);
        assertArrayEquals(new double[] {1, -1, 2}, b.grad().toDoubleArray(), 0.0);
    }

    @Test
    void planMergesContiguousAndBroadcastDims() {
        // [N,C,H,W] with [1,C,1,1]: rows (N, C) of H*W, b one value per row.
        Elementwise.Plan p = Elementwise.Plan.of(new int[] {4, 3, 5, 7}, new int[] {4, 3, 5, 7}, new int[] {1, 3, 1, 1});
        assertArrayEquals(new int[] {4, 3, 35}, p.size);
        assertArrayEquals(new int[] {105, 35, 1}, p.stride[0]);
        assertArrayEquals(new int[] {0, 1, 0}, p.stride[1]);
        // [N,1,1,1]: one dim per image, everything else merged.
        p = Elementwise.Plan.of(new int[] {4, 3, 5, 7}, new int[] {4, 3, 5, 7}, new int[] {4, 1, 1, 1});
        assertArrayEquals(new int[] {4, 105}, p.size);
        assertArrayEquals(new int[] {1, 0}, p.stride[1]);
        // Same shapes: one flat run.
        p = Elementwise.Plan.of(new int[] {4, 3, 5, 7}, new int[] {4, 3, 5, 7}, new int[] {4, 3, 5, 7});
        assertArrayEquals(new int[] {420}, p.size);
    }

    /**
     * Large shapes so the float32 kernels split work across threads (chunks ending mid-row),
     * checked against the float64 reference on the same float32 values, forward and gradients.
     */
    @Test
    void largeBroadcastsMatchTheReference() {
        int[][][] pairs = {
            {{4, 3, 70, 70}, {1, 3, 1, 1}},
            {{4, 3, 70, 70}, {4, 3, 1, 1}},
            {{4, 3, 70, 70}, {4, 1, 1, 1}},
            {{4, 3, 70, 70}, {3, 1, 1}},
            {{4, 3, 70, 70}, {1, 3, 70, 70}},
            {{1, 3, 1, 1}, {4, 3, 70, 70}},
            {{4, 1, 70, 1}, {1, 3, 1, 70}},
            {{4, 3, 70, 70}, {4, 3, 70, 70}},
        };
        long seed = 5;
        for (int[][] pr : pairs) {
            for (boolean mul : new boolean[] {false, true}) {
                Tensor a64 = random(seed++, pr[0]), b64 = random(seed++, pr[1]);
                Tensor a32 = a64.to(DType.F32).requiresGrad(true), b32 = b64.to(DType.F32).requiresGrad(true);
                a64.requiresGrad(true);
                b64.requiresGrad(true);
                String what = (mul ? "mul " : "add ") + java.util.Arrays.toString(pr[0]) + " " + java.util.Arrays.toString(pr[1]);
                try (Scope s = Scope.open()) {
                    Tensor y32 = mul ? Elementwise.mul(a32, b32) : Elementwise.add(a32, b32);
                    Tensor y64 = mul ? Elementwise.mul(a64, b64) : Elementwise.add(a64, b64);
                    Tensor g = random(seed++, y64.shape());
                    Autograd.backward(y32, g.to(DType.F32));
                    Autograd.backward(y64, g);
                    assertClose(what + " forward", y64.toDoubleArray(), y32.toDoubleArray(), 1e-6);
                }
                assertClose(what + " grad a", a64.grad().toDoubleArray(), a32.grad().toDoubleArray(), 1e-5);
                assertClose(what + " grad b", b64.grad().toDoubleArray(), b32.grad().toDoubleArray(), 1e-5);
            }
        }
    }

    @Test
    void messagesNameTheOpAndBothShapes() {
        Tensor a = Tensor.zeros(DType.F32, 2, 3), b = Tensor.zeros(DType.F32, 4);
        TensorException e = assertThrows(TensorException.class, () -> Elementwise.add(a, b));
        assertTrue(e.getMessage().startsWith("add:") && e.getMessage().contains("[2, 3]") && e.getMessage().contains("[4]"),
                e.getMessage());
        e = assertThrows(TensorException.class, () -> Elementwise.mul(a, Tensor.zeros(DType.F64, 2, 3)));
        assertTrue(e.getMessage().startsWith("mul:") && e.getMessage().contains("float"), e.getMessage());
        Tensor dead;
        try (Scope s = Scope.open()) {
            dead = Tensor.zeros(DType.F32, 2, 3);
        }
        e = assertThrows(TensorException.class, () -> Elementwise.scale(dead, 2));
        assertTrue(e.getMessage().startsWith("scale:") && e.getMessage().contains("freed"), e.getMessage());
    }

    @Test
    void broadcastShapeFollowsNumpy() {
        assertArrayEquals(new int[] {2, 3, 4}, Elementwise.broadcastShape(new int[] {2, 1, 4}, new int[] {3, 1}));
        assertArrayEquals(new int[] {5}, Elementwise.broadcastShape(new int[] {1}, new int[] {5}));
        assertEquals(null, Elementwise.broadcastShape(new int[] {2, 3}, new int[] {2}));
        Tensor x = Tensor.zeros(DType.F64, 3);
        assertSame(DType.F64, Elementwise.add(x, x).dtype());
    }

    static Tensor random(long seed, int... shape) {
        Tensor t = Tensor.persistent(DType.F64, shape);
        Philox.normal(seed, 0x656CL, 0, t.f64(), 0, t.numel());
        // float32-representable so both paths see equal inputs.
        double[] d = t.f64();
        for (int i = 0; i < d.length; i++) d[i] = (float) d[i];
        return t;
    }

    /** max |got - want| <= tol * max |want|, naming the worst element. */
    static void assertClose(String what, double[] want, double[] got, double tol) {
        assertEquals(want.length, got.length, what + ": length");
        double max = 0, worst = -1;
        int at = -1;
        for (int i = 0; i < want.length; i++) {
            max = Math.max(max, Math.abs(want[i]));
            double d = Math.abs(got[i] - want[i]);
            if (!(d <= worst)) {
                worst = d;
                at = i;
            }
        }
        double limit = tol * Math.max(max, 1e-30);
        if (!(worst <= limit))
            throw new AssertionError(String.format("%s: worst at %d: got %.9g want %.9g (|diff| %.3g > %.3g)",
                    what, at, got[at], want[at], worst, limit));
    }
}
