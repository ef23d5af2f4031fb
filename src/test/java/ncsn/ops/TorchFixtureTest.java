package ncsn.ops;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Function;
import ncsn.autograd.Autograd;
import ncsn.io.SafeTensors;
import ncsn.optim.Adam;
import ncsn.tensor.DType;
import ncsn.tensor.Scope;
import ncsn.tensor.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Every op against PyTorch: src/test/python/make_op_fixtures.py wrote inputs, outputs and
 * autograd gradients computed by torch 1.13 in float64. The engine's float64 reference must agree
 * to float64 rounding (1e-10 of the largest magnitude), its float32 kernels to float32 rounding
 * (2e-5 of the largest magnitude; sums here have at most a few hundred terms).
 */
class TorchFixtureTest {
    private static final double TOL64 = 1e-10, TOL32 = 2e-5;
    private static SafeTensors.Contents fx;

    @BeforeAll
    static void load() throws Exception {
        fx = SafeTensors.read(Path.of(TorchFixtureTest.class.getResource("/fixtures/ops_torch.safetensors").toURI()));
    }

    private static Tensor t(String key, DType dt) {
        try {
            return fx.require(key).toTensor(dt);
        } catch (Exception e) {
            throw new AssertionError(e.getMessage(), e);
        }
    }

    private static int[] ints(String key) {
        return fx.get(key).toIntArray();
    }

    /** Runs f on the named inputs in both dtypes; compares the output and each input gradient with torch's. */
    private static void check(String prefix, Function<Tensor[], Tensor> f, String... inputNames) {
        List<String> failures = new ArrayList<>();
        for (DType dt : DType.values()) {
            double tol = dt == DType.F64 ? TOL64 : TOL32;
            try (Scope s = Scope.open()) {
                Tensor[] in = new Tensor[inputNames.length];
                for (int i = 0; i < in.length; i++)
                    in[i] = t(prefix + "." + inputNames[i], dt).requiresGrad(fx.get(prefix + ".grad." + inputNames[i]) != null);
                Tensor out = f.apply(in);
                Autograd.backward(out, t(prefix + ".gout", dt));
                compare(prefix + " " + dt + " out", out, t(prefix + ".out", DType.F64), tol, failures);
                for (int i = 0; i < in.length; i++) {
                    if (!in[i].requiresGrad()) continue;
                    compare(prefix + " " + dt + " grad " + inputNames[i], in[i].grad(),
                            t(prefix + ".grad." + inputNames[i], DType.F64), tol, failures);
                }
            }
        }
        assertTrue(failures.isEmpty(), String.join("\n", failures));
    }

    private static void compare(String what, Tensor got, Tensor want, double tol, List<String> failures) {
        if (got == null || !Arrays.equals(got.shape(), want.shape())) {
            failures.add(what + ": shape " + (got == null ? "null" : Arrays.toString(got.shape())) + " vs torch "
                    + Arrays.toString(want.shape()));
            return;
        }
        double maxRef = 0, worst = 0;
        int at = 0;
        for (int i = 0; i < want.numel(); i++) maxRef = Math.max(maxRef, Math.abs(want.get(i)));
        for (int i = 0; i < want.numel(); i++) {
            double d = Math.abs(got.get(i) - want.get(i));
            if (!(d <= worst)) {
                worst = d;
                at = i;
            }
        }
        double rel = worst / Math.max(maxRef, 1e-300);
        System.out.printf("%-36s max|diff|/max|torch| = %.2e%n", what, rel);
        if (!(rel <= tol))
            failures.add(String.format("%s: element %d engine %.12e torch %.12e (%.2e of max %.3e > %.0e)", what, at,
                    got.get(at), want.get(at), rel, maxRef, tol));
    }

    @Test
    void conv2d() {
        check("conv_d1", in -> Conv2d.apply(in[0], in[1], in[2], 1, 1), "x", "w", "b");
        check("conv_d2", in -> Conv2d.apply(in[0], in[1], in[2], 2, 2), "x", "w", "b");
        check("conv_d4", in -> Conv2d.apply(in[0], in[1], null, 4, 4), "x", "w");
        check("conv_1x1", in -> Conv2d.apply(in[0], in[1], in[2], 0, 1), "x", "w", "b");
        check("conv_valid", in -> Conv2d.apply(in[0], in[1], in[2], 0, 1), "x", "w", "b");
    }

    @Test
    void condInstanceNormPlus() {
        for (String c : List.of("cin_a", "cin_b", "cin_c")) {
            int[] labels = ints(c + ".labels");
            check(c, in -> CondInstanceNormPlus.apply(in[0], in[1], labels), "x", "embed");
        }
    }

    @Test
    void poolingAndResize() {
        check("avgpool5", in -> AvgPool5.apply(in[0]), "x");
        check("meanpool2", in -> MeanPool2.apply(in[0]), "x");
        check("resize_up", in -> BilinearResize.apply(in[0], 7, 9), "x");
        check("resize_down", in -> BilinearResize.apply(in[0], 4, 3), "x");
    }

    @Test
    void pointwiseAndLinear() {
        check("elu", in -> Elu.apply(in[0]), "x");
        check("softplus", in -> Softplus.apply(in[0]), "x");
        check("linear", in -> Linear.apply(in[0], in[1], in[2]), "x", "w", "b");
    }

    @Test
    void annealedDsmLossAsTheReferenceWritesIt() {
        int[] labels = ints("dsm.labels");
        double[] sigmas = t("dsm.sigmas", DType.F64).toDoubleArray();
        double[] ours = AnnealedDsm.sigmas(1.0, 0.01, 10);
        for (int i = 0; i < 10; i++)
            assertTrue(ours[i] == sigmas[i], "sigma " + i + ": engine " + ours[i] + " torch " + sigmas[i]);
        List<String> failures = new ArrayList<>();
        for (DType dt : DType.values()) {
            double tol = dt == DType.F64 ? TOL64 : TOL32;
            try (Scope s = Scope.open()) {
                Tensor x = t("dsm.x", dt), noise = t("dsm.noise", dt), score = t("dsm.score", dt).requiresGrad(true);
                compare("dsm " + dt + " perturbed", AnnealedDsm.perturb(x, noise, labels, sigmas), t("dsm.perturbed", DType.F64), tol, failures);
                Tensor loss = AnnealedDsm.loss(score, noise, labels, sigmas, 2.0);
                Autograd.backward(loss);
                compare("dsm " + dt + " loss", loss, t("dsm.loss", DType.F64), tol, failures);
                compare("dsm " + dt + " grad score", score.grad(), t("dsm.grad.score", DType.F64), tol, failures);
            }
        }
        assertTrue(failures.isEmpty(), String.join("\n", failures));
    }

    @Test
    void adamTrajectoriesMatchTorchOptimAdam() {
        List<String> failures = new ArrayList<>();
        for (String variant : List.of("plain", "wd", "ams")) {
            for (DType dt : DType.values()) {
                String p = "adam_" + variant + "_" + (dt == DType.F32 ? "f32" : "f64");
                Tensor param = t(p + ".p0", dt).requiresGrad(true);
                Adam opt = new Adam(List.of(param), 1e-2, 0.9, 0.999, 1e-8, variant.equals("wd") ? 0.1 : 0, variant.equals("ams"));
                for (int step = 0; step < 6; step++) {
                    param.setGrad(t(p + ".g" + step, dt));
                    opt.step();
                    // float32: PyTorch's own rounding is reproduced, so the tolerance is one ulp-scale.
                    compare(p + " step " + (step + 1), param, t(p + ".p" + (step + 1), DType.F64),
                            dt == DType.F64 ? 1e-14 : 1e-7, failures);
                }
            }
        }
        assertTrue(failures.isEmpty(), String.join("\n", failures));
    }
}
