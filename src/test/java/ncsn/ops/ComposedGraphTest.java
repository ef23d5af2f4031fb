package ncsn.ops;

import static org.junit.jupiter.api.Assertions.assertTrue;

import ncsn.autograd.GradCheck;
import ncsn.tensor.Tensor;
import org.junit.jupiter.api.Test;

/**
 * A small residual block of the score network, end to end: perturb -> conv -> CIN++ -> ELU ->
 * avgpool5 -> conv -> residual add -> annealed DSM loss. The float64 gradient of the loss with
 * respect to the data and every parameter must match finite differences, and the float32 kernels
 * must agree with the float64 reference through the whole chain.
 */
class ComposedGraphTest {
    private static final int N = 2, C = 3, F = 5, H = 7, W = 6, L = 4;
    private static final int[] LABELS = {3, 1};
    private static final double[] SIGMAS = AnnealedDsm.sigmas(1.0, 0.01, L);

    private static Tensor[] inputs(long seed) {
        return new Tensor[] {
            OpCatalog.uniform(seed, 0, 1, N, C, H, W).name("x"),
            OpCatalog.fixed(OpCatalog.normal(seed + 1, N, C, H, W)).name("noise"),
            scaled(OpCatalog.normal(seed + 2, F, C, 3, 3), 0.3).name("w1"),
            scaled(OpCatalog.normal(seed + 3, F), 0.1).name("b1"),
            embedding(seed + 4).name("embed"),
            scaled(OpCatalog.normal(seed + 5, C, F, 3, 3), 0.3).name("w2"),
            scaled(OpCatalog.normal(seed + 6, C), 0.1).name("b2"),
        };
    }

    private static Tensor scaled(Tensor t, double s) {
        double[] d = t.f64();
        for (int i = 0; i < d.length; i++) d[i] *= s;
        return t;
    }

    /** [L, 3F] = gamma ~ 1 + 0.1 z | alpha ~ 1 + 0.1 z | beta ~ 0.1 z, like a trained table. */
    private static Tensor embedding(long seed) {
        Tensor e = OpCatalog.normal(seed, L, 3 * F);
        double[] d = e.f64();
        for (int i = 0; i < d.length; i++) d[i] = (i % (3 * F) < 2 * F ? 1 : 0) + 0.1 * d[i];
        return e;
    }

    private static Tensor block(Tensor[] in) {
        Tensor x = in[0], noise = in[1];
        Tensor perturbed = AnnealedDsm.perturb(x, noise, LABELS, SIGMAS);
        Tensor h = Conv2d.apply(perturbed, in[2], in[3], 1, 1);
        h = CondInstanceNormPlus.apply(h, in[4], LABELS);
        h = Elu.apply(h);
        h = AvgPool5.apply(h);
        h = Conv2d.apply(h, in[5], in[6], 2, 2);
        Tensor score = Elementwise.add(h, perturbed);
        return AnnealedDsm.loss(score, noise, LABELS, SIGMAS, 2.0);
    }

    private static final OpCatalog.Case CASE = OpCatalog.Case.of("composed", "perturb-conv-cin-elu-pool-conv-add-dsm",
            ComposedGraphTest::inputs, ComposedGraphTest::block);

    @Test
    void float64GradientOfTheWholeChainMatchesFiniteDifferences() {
        GradCheck.Result r = GradCheck.check(CASE.label(), CASE.f(), GradCheck.Options.defaults().withMaxElements(60),
                inputs(5));
        System.out.println(r.report());
        assertTrue(r.passed(), r.report());
    }

    @Test
    void float32ChainAgreesWithTheReference() {
        OpCatalog.Outcome o = OpCatalog.compareFast(CASE, 6);
        System.out.println(o.detail());
        assertTrue(o.passed(), "error " + o.error() + ": " + o.detail());
    }
}
