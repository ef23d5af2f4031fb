package ncsn.ops;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Function;
import java.util.function.LongFunction;
import ncsn.autograd.Autograd;
import ncsn.autograd.GradCheck;
import ncsn.rng.Philox;
import ncsn.tensor.DType;
import ncsn.tensor.Scope;
import ncsn.tensor.Shapes;
import ncsn.tensor.Tensor;

/**
 * The one list of every differentiable op, each with test cases on awkward sizes, and the two
 * checks every case must pass:
 * <ol>
 *   <li>{@link #gradCheck}: the float64 reference backward against central differences;</li>
 *   <li>{@link #compareFast}: the fast float32 kernel (forward and all input gradients) against
 *       the float64 reference on the same (float32-representable) inputs.</li>
 * </ol>
 * The unit tests and {@code ncsn check} iterate this list; a test also asserts that every op the
 * engine promises is present, so removing one fails the build.
 */
public final class OpCatalog {
    /**
     * One case: {@code inputs} builds float64 leaves from a seed (those with requiresGrad are
     * differentiated; others such as noise are held fixed), {@code f} applies the op.
     * {@code tolerance32} bounds max |fast - reference| / max |reference| over the output and every
     * input gradient; {@code gradOptions} tunes the finite-difference check.
     */
    public record Case(String op, String variant, LongFunction<Tensor[]> inputs, Function<Tensor[], Tensor> f,
                       double tolerance32, GradCheck.Options gradOptions) {
        public static Case of(String op, String variant, LongFunction<Tensor[]> inputs, Function<Tensor[], Tensor> f) {
            return new Case(op, variant, inputs, f, DEFAULT_TOLERANCE32, GradCheck.Options.defaults());
        }

        /** A looser float32 tolerance (the case's comment must say why). */
        public Case tolerance32(double t) {
            return new Case(op, variant, inputs, f, t, gradOptions);
        }

        public Case gradOptions(GradCheck.Options o) {
            return new Case(op, variant, inputs, f, tolerance32, o);
        }

        public String label() {
            return op + " " + variant;
        }
    }

    /** A check's outcome: {@code error} and {@code limit} in the check's own units. */
    public record Outcome(Case testCase, String check, boolean passed, double error, double limit, String detail) {}

    /** float32 rounding is ~6e-8 relative; 1e-5 of the largest magnitude leaves room for sums of hundreds of terms. */
    public static final double DEFAULT_TOLERANCE32 = 1e-5;

    private OpCatalog() {}

    /** Every op's cases, in one place: an op missing here fails OpCatalogTest's coverage check. */
    public static List<Case> all() {
        List<Case> out = new ArrayList<>();
        for (List<Case> cases : List.of(
                Elu.cases(),
                Conv2d.cases(),
                CondInstanceNormPlus.cases(),
                AvgPool5.cases(),
                MeanPool2.cases(),
                BilinearResize.cases(),
                Elementwise.cases(),
                Reduce.cases(),
                Linear.cases(),
                Softplus.cases(),
                AnnealedDsm.cases())) out.addAll(cases);
        return out;
    }

    /** The cases of the named ops only (e.g. "conv2d", "cin_pp"). */
    public static List<Case> ofOps(java.util.Collection<String> ops) {
        List<Case> out = new ArrayList<>();
        for (Case c : all()) if (ops.contains(c.op())) out.add(c);
        return out;
    }

    // ---- input builders for cases -----------------------------------------------------------

    /** A float64 leaf with N(0,1) entries that requires a gradient. */
    public static Tensor normal(long seed, int... shape) {
        Tensor t = Tensor.persistent(DType.F64, shape);
        Philox.normal(seed, 0x63617365L, 0, t.f64(), 0, t.numel());
        return t.requiresGrad(true);
    }

    /** A float64 leaf with U[lo,hi) entries that requires a gradient. */
    public static Tensor uniform(long seed, double lo, double hi, int... shape) {
        Tensor t = Tensor.persistent(DType.F64, shape);
        double[] d = t.f64();
        Philox.uniform(seed, 0x63617365L, 0, d, 0, d.length);
        for (int i = 0; i < d.length; i++) d[i] = lo + (hi - lo) * d[i];
        return t.requiresGrad(true);
    }

    /** Marks a builder's tensor as a fixed (non-differentiated) input, e.g. noise. */
    public static Tensor fixed(Tensor t) {
        return t.requiresGrad(false);
    }

    // ---- the two checks ---------------------------------------------------------------------

    public static Outcome gradCheck(Case c, long seed) {
        Tensor[] in = c.inputs().apply(seed);
        GradCheck.Result r = GradCheck.check(c.label(), c.f(), c.gradOptions(), in);
        double ratio = r.worst() == null ? Double.NaN : r.worst().ratio();
        return new Outcome(c, "gradcheck f64", r.passed(), ratio, 1.0, r.report());
    }

    public static Outcome compareFast(Case c, long seed) {
        Tensor[] base = c.inputs().apply(seed);
        try (Scope s = Scope.open()) {
            // Both paths see the same values: the float64 inputs are rounded to float32 first.
            Tensor[] in32 = new Tensor[base.length], in64 = new Tensor[base.length];
            for (int k = 0; k < base.length; k++) {
                in32[k] = base[k].to(DType.F32).requiresGrad(base[k].requiresGrad());
                in64[k] = in32[k].to(DType.F64).requiresGrad(base[k].requiresGrad());
                if (base[k].name() != null) {
                    in32[k].name(base[k].name());
                    in64[k].name(base[k].name());
                }
            }
            Tensor out32 = c.f().apply(in32);
            Tensor out64 = c.f().apply(in64);
            if (!out32.sameShape(out64))
                return new Outcome(c, "f32 vs f64", false, Double.POSITIVE_INFINITY, c.tolerance32(),
                        "output shapes differ: " + out32 + " vs " + out64);
            double[] r = new double[out64.numel()];
            Philox.normal(seed, 0x72L, 0, r, 0, r.length);
            Tensor r64 = Tensor.wrap(r, out64.shape());
            Autograd.backward(out32, r64.to(DType.F32));
            Autograd.backward(out64, r64);

            Worst w = new Worst();
            w.compare("output", out32.toDoubleArray(), out64.toDoubleArray(), out64.shape());
            for (int k = 0; k < base.length; k++) {
                if (!base[k].requiresGrad()) continue;
                String name = "grad " + (base[k].name() != null ? base[k].name() : "input" + k);
                if (in32[k].grad() == null || in64[k].grad() == null) {
                    w.fail(name + ": no gradient produced (" + (in32[k].grad() == null ? "float32" : "float64") + " path)");
                    continue;
                }
                w.compare(name, in32[k].grad().toDoubleArray(), in64[k].grad().toDoubleArray(), base[k].shape());
            }
            boolean ok = w.missing == null && w.error <= c.tolerance32();
            return new Outcome(c, "f32 vs f64", ok, w.error, c.tolerance32(),
                    w.missing != null ? w.missing : w.detail);
        }
    }

    /** Tracks the worst normalised difference over several tensors. */
    private static final class Worst {
        double error = 0;
        String detail = "";
        String missing;

        void fail(String why) {
            missing = missing == null ? why : missing + "; " + why;
        }

        void compare(String name, double[] fast, double[] ref, int[] shape) {
            double maxRef = 0;
            for (double v : ref) maxRef = Math.max(maxRef, Math.abs(v));
            double scale = maxRef > 1e-12 ? maxRef : 1.0;
            int worstAt = -1;
            double worstDiff = -1;
            for (int i = 0; i < ref.length; i++) {
                double d = Math.abs(fast[i] - ref[i]);
                if (Double.isNaN(d)) d = Double.POSITIVE_INFINITY;
                if (d > worstDiff) {
                    worstDiff = d;
                    worstAt = i;
                }
            }
            if (worstAt < 0) return;
            double e = worstDiff / scale;
            if (e >= error) {
                error = e;
                detail = String.format("worst: %s%s fast %.8e ref %.8e (|diff| %.2e, max|ref| %.2e)", name,
                        Arrays.toString(Shapes.unravel(worstAt, shape)), fast[worstAt], ref[worstAt], worstDiff, maxRef);
            }
        }
    }

}
