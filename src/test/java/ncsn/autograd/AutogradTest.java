package ncsn.autograd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ncsn.ops.Elu;
import ncsn.tensor.DType;
import ncsn.tensor.Scope;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;
import org.junit.jupiter.api.Test;

class AutogradTest {
    private static Tensor leaf(double... v) {
        return Tensor.wrap(v.clone(), v.length).requiresGrad(true);
    }

    @Test
    void gradientsAccumulateAcrossBackwardCallsAndTheGraphIsReleased() {
        Tensor x = leaf(-1.0, 0.5);
        try (Scope s = Scope.open()) {
            Tensor y = Elu.apply(x);
            assertTrue(y.node() != null);
            Autograd.backward(y, Tensor.wrap(new double[] {1, 1}, 2));
            assertNull(y.node(), "no graph is retained after backward");
            assertEquals(0, Autograd.tapeSize());
        }
        assertEquals(Math.exp(-1.0), x.grad().get(0), 1e-15);
        assertEquals(1.0, x.grad().get(1));
        try (Scope s = Scope.open()) {
            Autograd.backward(Elu.apply(x), Tensor.wrap(new double[] {2, 2}, 2));
        }
        assertEquals(3 * Math.exp(-1.0), x.grad().get(0), 1e-15, "gradients accumulate (+=)");
        x.zeroGrad();
        assertEquals(0.0, x.grad().get(0));
    }

    /** out = a + b, recorded directly (the engine's add op has its own tests). */
    private static Tensor plus(Tensor a, Tensor b) {
        Tensor out = Tensor.emptyLike(a);
        for (int i = 0; i < a.numel(); i++) out.set(i, a.get(i) + b.get(i));
        Autograd.record("plus", out, new Tensor[] {a, b}, g -> new Tensor[] {g, g});
        return out;
    }

    @Test
    void aTensorUsedTwiceGetsBothGradientContributions() {
        Tensor x = leaf(0.3, -0.7, 2.0);
        try (Scope s = Scope.open()) {
            Tensor h = Elu.apply(x).reshape(3);
            Tensor a = Elu.apply(h), b = Elu.apply(h.reshape(1, 3)).reshape(3);
            Autograd.backward(plus(a, b), Tensor.wrap(new double[] {1, 1, 1}, 3));
        }
        for (int i = 0; i < 3; i++) {
            double xi = x.get(i);
            double h = xi > 0 ? xi : Math.expm1(xi), dh = xi > 0 ? 1 : Math.exp(xi);
            double d2 = h > 0 ? 1 : Math.exp(h);
            assertEquals(2 * d2 * dh, x.grad().get(i), 1e-14);
        }
    }

    /**
     * Intermediate gradients are freed during the pass (their arrays reused by the next node's
     * gradient) without changing any result: a chain of 24 ELUs with pass-through adds and
     * reshape views (gradients shared between inputs) gives bit-identical leaf gradients in a
     * scope (pooled, freed early) and outside one (nothing pooled), and inside the scope the
     * backward pass makes at most a few fresh arrays.
     */
    @Test
    void backwardFreesSpentGradientsWithoutChangingThem() {
        int n = 1237; // a length no other test pools
        float[] start = new float[n];
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(4);
        for (int i = 0; i < n; i++) start[i] = (float) rnd.nextDouble(-2, 2);
        float[] seed = new float[n];
        for (int i = 0; i < n; i++) seed[i] = (float) rnd.nextDouble(-1, 1);

        Tensor plain = Tensor.wrap(start.clone(), n).requiresGrad(true);
        Autograd.backward(chain(plain), Tensor.wrap(seed.clone(), n));

        ncsn.tensor.BufferPool.clear();
        Tensor scoped = Tensor.wrap(start.clone(), n).requiresGrad(true);
        try (Scope s = Scope.open()) {
            Tensor out = chain(scoped);
            long fresh = ncsn.tensor.BufferPool.freshAllocations(), reused = ncsn.tensor.BufferPool.reusedAllocations();
            Autograd.backward(out, Tensor.wrap(seed.clone(), n));
            long madeFresh = ncsn.tensor.BufferPool.freshAllocations() - fresh;
            long madeReused = ncsn.tensor.BufferPool.reusedAllocations() - reused;
            assertTrue(madeReused >= 20, "gradients reused " + madeReused + " freed arrays, fresh " + madeFresh);
            assertTrue(madeFresh <= 4, "backward made " + madeFresh + " fresh arrays (reused " + madeReused + ")");
        }
        for (int i = 0; i < n; i++)
            assertEquals(Float.floatToRawIntBits(plain.grad().f32()[i]), Float.floatToRawIntBits(scoped.grad().f32()[i]),
                    "element " + i);
    }

    /** 24 ELUs; every 6th output also goes through plus(h, h) (g passed to both inputs) and a reshape view. */
    private static Tensor chain(Tensor x) {
        Tensor h = x;
        for (int i = 0; i < 24; i++) {
            h = Elu.apply(h);
            if (i % 6 == 5) h = plus(h, h.reshape(1, h.numel()).reshape(h.numel()));
        }
        return h;
    }

    @Test
    void aSecondBackwardThroughAConsumedGraphIsAClearError() {
        Tensor x = leaf(0.3, -0.7);
        try (Scope s = Scope.open()) {
            Tensor h = Elu.apply(x);
            Autograd.backward(Elu.apply(h), Tensor.wrap(new double[] {1, 1}, 2));
            TensorException e = assertThrows(TensorException.class,
                    () -> Autograd.backward(Elu.apply(h), Tensor.wrap(new double[] {1, 1}, 2)));
            assertTrue(e.getMessage().contains("already consumed"), e.getMessage());
        }
    }

    @Test
    void noGradRecordsNothing() {
        Tensor x = leaf(1, 2);
        try (Scope s = Scope.open(); Autograd.NoGrad ng = Autograd.noGrad()) {
            Tensor y = Elu.apply(x);
            assertNull(y.node());
            assertFalse(y.requiresGrad());
            assertEquals(0, Autograd.tapeSize());
        }
        assertTrue(Autograd.isRecording());
    }

    @Test
    void scopeCloseDropsTheTapeItRecorded() {
        Tensor x = leaf(1, 2);
        try (Scope s = Scope.open()) {
            Elu.apply(x);
            assertEquals(1, Autograd.tapeSize());
        }
        assertEquals(0, Autograd.tapeSize());
    }

    @Test
    void backwardNeedsAScalarOrAMatchingGradient() {
        Tensor x = leaf(1, 2);
        try (Scope s = Scope.open()) {
            Tensor y = Elu.apply(x);
            TensorException e = assertThrows(TensorException.class, () -> Autograd.backward(y));
            assertTrue(e.getMessage().contains("backward") && e.getMessage().contains("[2]"), e.getMessage());
            assertThrows(TensorException.class, () -> Autograd.backward(y, Tensor.zeros(DType.F64, 3)));
        }
    }

    @Test
    void gradCheckReportsAWrongGradientWithItsWorstElement() {
        // A deliberately wrong backward: claims d/dx (x^2) = x.
        java.util.function.Function<Tensor[], Tensor> wrong = in -> {
            Tensor x = in[0];
            Tensor out = Tensor.emptyLike(x);
            for (int i = 0; i < x.numel(); i++) out.set(i, x.get(i) * x.get(i));
            Autograd.record("square(wrong)", out, new Tensor[] {x}, g -> {
                Tensor gx = Tensor.emptyLike(x);
                for (int i = 0; i < x.numel(); i++) gx.set(i, g.get(i) * x.get(i));
                return new Tensor[] {gx};
            });
            return out;
        };
        Tensor x = leaf(0.5, -1.5, 3.0).name("x");
        GradCheck.Result r = GradCheck.check("square", wrong, x);
        assertFalse(r.passed());
        assertTrue(r.report().contains("FAILED") && r.report().contains("x["), r.report());
        assertEquals(2 * r.worst().analytic(), r.worst().numeric(), 1e-6);
        assertNull(x.grad(), "the check leaves the caller's gradients untouched");
    }

    @Test
    void gradCheckRefusesFloat32() {
        Tensor x = Tensor.wrap(new float[] {1f}, 1).requiresGrad(true);
        TensorException e = assertThrows(TensorException.class, () -> GradCheck.check("elu", in -> Elu.apply(in[0]), x));
        assertTrue(e.getMessage().contains("float64"), e.getMessage());
    }
}
