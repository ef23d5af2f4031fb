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
import ncsn.tensor.Device;
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

    /** The fast float32 CPU kernel against the float64 reference (limit: the case's {@code tolerance32}). */
    public static Outcome compareFast(Case c, long seed) {
        return compareOn(c, seed, Device.CPU, c.tolerance32());
    }

    /**
     * The CUDA kernels against the float64 reference: inputs rounded to float32 and copied to the
     * GPU, forward and backward there, results copied back. Limit: {@link #gpuTolerance}.
     */
    public static Outcome compareGpu(Case c, long seed) {
        return compareOn(c, seed, Device.CUDA, gpuTolerance(c));
    }

    /**
     * The GPU limits of the backend issue: 1e-3 of max|ref| for convolutions and matrix products
     * (long float32 sums in another order than the CPU's), 1e-4 for everything else, or the
     * case's own float32 tolerance where that is looser (its comment says why).
     */
    public static double gpuTolerance(Case c) {
        double issue = c.op().equals("conv2d") || c.op().equals("linear") ? 1e-3 : 1e-4;
        return Math.max(issue, c.tolerance32());
    }

    private static Outcome compareOn(Case c, long seed, Device device, double limit) {
        Tensor[] base = c.inputs().apply(seed);
        Tensor[] fastIn = new Tensor[base.length];
        try (Scope s = Scope.open()) {
            // Both paths see the same values: the float64 inputs are rounded to float32 first.
            Tensor[] in64 = new Tensor[base.length];
            for (int k = 0; k < base.length; k++) {
                Tensor in32 = base[k].to(DType.F32);
                fastIn[k] = (device == Device.CPU ? in32 : in32.to(device)).requiresGrad(base[k].requiresGrad());
                in64[k] = in32.to(DType.F64).requiresGrad(base[k].requiresGrad());
                if (base[k].name() != null) {
                    fastIn[k].name(base[k].name());
                    in64[k].name(base[k].name());
                }
            }
            Tensor outFast = c.f().apply(fastIn);
            Tensor out64 = c.f().apply(in64);
            String where = device == Device.CPU ? "f32 vs f64" : device + " f32 vs f64";
            if (!outFast.sameShape(out64))
                return new Outcome(c, where, false, Double.POSITIVE_INFINITY, limit,
                        "output shapes differ: " + outFast + " vs " + out64);
            if (outFast.device() != device)
                return new Outcome(c, where, false, Double.POSITIVE_INFINITY, limit,
                        "output is on " + outFast.device() + ", inputs were on " + device);
            double[] r = new double[out64.numel()];
            Philox.normal(seed, 0x72L, 0, r, 0, r.length);
            Tensor r64 = Tensor.wrap(r, out64.shape());
            Tensor r32 = r64.to(DType.F32);
            Autograd.backward(outFast, device == Device.CPU ? r32 : r32.to(device));
            Autograd.backward(out64, r64);

            WorstError w = new WorstError();
            w.compare("output", outFast.toDoubleArray(), out64.toDoubleArray(), out64.shape(), 0);
            for (int k = 0; k < base.length; k++) {
                if (!base[k].requiresGrad()) continue;
                String name = "grad " + (base[k].name() != null ? base[k].name() : "input" + k);
                if (fastIn[k].grad() == null || in64[k].grad() == null) {
                    w.fail(name + ": no gradient produced (" + (fastIn[k].grad() == null ? "float32" : "float64") + " path)");
                    continue;
                }
                w.compare(name, fastIn[k].grad().toDoubleArray(), in64[k].grad().toDoubleArray(), base[k].shape(), 0);
            }
            return new Outcome(c, where, w.within(limit), w.error(), limit, w.detail());
        } finally {
            // Leaf gradients are persistent (no scope owns them): device memory is not GC'd.
            for (Tensor t : fastIn) if (t != null && t.grad() != null) t.grad().free();
        }
    }

}
