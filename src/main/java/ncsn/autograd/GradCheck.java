package ncsn.autograd;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Function;
import ncsn.rng.Philox;
import ncsn.tensor.DType;
import ncsn.tensor.Scope;
import ncsn.tensor.Shapes;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;

/**
 * Finite-difference gradient check of any composition of engine ops, in float64.
 *
 * <p>For f mapping the inputs to a tensor, the check contracts the output with a fixed random
 * tensor r (so every output element matters) and compares, for each checked input element x_i,
 * the autograd gradient of L = sum(f(x) * r) with the central difference
 * (L(x_i + h) - L(x_i - h)) / 2h. An element passes when |analytic - numeric| <= atol + rtol *
 * max(|analytic|, |numeric|). The report names the worst element: input, index, both values.
 *
 * <pre>{@code
 * Tensor x = ...float64, requiresGrad(true)..., w = ...;
 * GradCheck.Result r = GradCheck.check("my layer", in -> Elu.apply(Conv2d.apply(in[0], in[1], null, 1, 1)), x, w);
 * assertTrue(r.passed(), r.report());
 * }</pre>
 *
 * Inputs with {@code requiresGrad() == false} are held fixed (labels, noise, constants).
 */
public final class GradCheck {
    /** Step, tolerances, and how many elements of each input to probe (all if fewer). */
    public record Options(double h, double atol, double rtol, int maxElementsPerInput, long seed) {
        public static Options defaults() {
            return new Options(1e-6, 1e-6, 1e-5, 256, 1234);
        }

        public Options withTolerance(double atol, double rtol) {
            return new Options(h, atol, rtol, maxElementsPerInput, seed);
        }

        public Options withMaxElements(int n) {
            return new Options(h, atol, rtol, n, seed);
        }
    }

    /** Worst element found; {@code ratio} = error / allowed error (passes when <= 1). */
    public record Worst(String input, int[] index, double analytic, double numeric, double ratio) {}

    public record Result(String name, boolean passed, int checked, Worst worst, String report) {}

    private GradCheck() {}

    public static Result check(String name, Function<Tensor[], Tensor> f, Tensor... inputs) {
        return check(name, f, Options.defaults(), inputs);
    }

    public static Result check(String name, Function<Tensor[], Tensor> f, Options opt, Tensor... inputs) {
        for (int k = 0; k < inputs.length; k++) {
            TensorException.check(inputs[k].dtype() == DType.F64, "gradcheck " + name,
                    "input " + label(inputs, k) + " is " + inputs[k].dtype() + "; gradient checks run in float64");
        }
        // Analytic gradients: backward of f with gradOut = r, into fresh leaf gradients.
        Tensor[] saved = new Tensor[inputs.length];
        for (int k = 0; k < inputs.length; k++) {
            saved[k] = inputs[k].grad();
            inputs[k].setGrad(null);
        }
        double[] r;
        double[][] analytic = new double[inputs.length][];
        try (Scope s = Scope.open()) {
            Tensor out = f.apply(inputs);
            r = new double[out.numel()];
            Philox.normal(opt.seed(), 0x6772616443L, 0, r, 0, r.length);
            Tensor gradOut = Tensor.wrap(r.clone(), out.shape());
            Autograd.backward(out, gradOut);
            for (int k = 0; k < inputs.length; k++) {
                Tensor g = inputs[k].grad();
                analytic[k] = g == null ? new double[inputs[k].numel()] : g.toDoubleArray();
            }
        } finally {
            for (int k = 0; k < inputs.length; k++) inputs[k].setGrad(saved[k]);
        }

        Worst worst = null;
        int checked = 0;
        boolean passed = true;
        StringBuilder failures = new StringBuilder();
        for (int k = 0; k < inputs.length; k++) {
            Tensor in = inputs[k];
            if (!in.requiresGrad()) continue;
            double[] x = in.f64();
            for (int i : sample(x.length, opt.maxElementsPerInput(), opt.seed() + k)) {
                double orig = x[i];
                x[i] = orig + opt.h();
                double lp = project(f, inputs, r);
                x[i] = orig - opt.h();
                double lm = project(f, inputs, r);
                x[i] = orig;
                double num = (lp - lm) / (2 * opt.h());
                double ana = analytic[k][i];
                double allowed = opt.atol() + opt.rtol() * Math.max(Math.abs(ana), Math.abs(num));
                double ratio = Math.abs(ana - num) / allowed;
                if (Double.isNaN(ratio)) ratio = Double.POSITIVE_INFINITY;
                checked++;
                if (worst == null || ratio > worst.ratio()) worst = new Worst(label(inputs, k), Shapes.unravel(i, in.shape()), ana, num, ratio);
                if (ratio > 1) {
                    passed = false;
                    if (failures.length() < 2000)
                        failures.append(String.format("%n    %s%s analytic %.9e numeric %.9e", label(inputs, k),
                                Arrays.toString(Shapes.unravel(i, in.shape())), ana, num));
                }
            }
        }
        String report = worst == null
                ? "gradcheck " + name + ": no input requires a gradient"
                : String.format("gradcheck %s: %s, %d elements; worst %s%s analytic %.9e numeric %.9e |diff| %.3e (%.2f of allowed %.0e + %.0e*|g|)%s",
                        name, passed ? "PASSED" : "FAILED", checked, worst.input(), Arrays.toString(worst.index()),
                        worst.analytic(), worst.numeric(), Math.abs(worst.analytic() - worst.numeric()), worst.ratio(),
                        opt.atol(), opt.rtol(), passed ? "" : "; failing elements:" + failures);
        return new Result(name, passed && worst != null, checked, worst, report);
    }

    /** L = sum(f(x) * r) without recording. */
    private static double project(Function<Tensor[], Tensor> f, Tensor[] inputs, double[] r) {
        try (Scope s = Scope.open(); Autograd.NoGrad ng = Autograd.noGrad()) {
            double[] out = f.apply(inputs).toDoubleArray();
            double acc = 0;
            for (int i = 0; i < out.length; i++) acc += out[i] * r[i];
            return acc;
        }
    }

    /** Up to {@code max} distinct indices in [0, n), deterministic for a seed; all when n <= max. */
    static int[] sample(int n, int max, long seed) {
        if (n <= max) {
            int[] all = new int[n];
            for (int i = 0; i < n; i++) all[i] = i;
            return all;
        }
        // Partial Fisher-Yates over an index array driven by Philox words.
        int[] idx = new int[n];
        for (int i = 0; i < n; i++) idx[i] = i;
        int[] w = new int[4];
        for (int i = 0; i < max; i++) {
            if ((i & 3) == 0) Philox.block(seed, 0x73616D70L, i >> 2, w);
            int j = i + (int) (((w[i & 3] & 0xFFFFFFFFL) * (n - i)) >>> 32);
            int t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
        int[] out = Arrays.copyOf(idx, max);
        Arrays.sort(out);
        return out;
    }

    private static String label(Tensor[] inputs, int k) {
        String n = inputs[k].name();
        return n != null ? n : "input" + k;
    }

    /** Convenience for reports of several checks. */
    public static String summary(List<Result> results) {
        List<String> lines = new ArrayList<>();
        for (Result r : results) lines.add(r.report());
        return String.join(System.lineSeparator(), lines);
    }
}
