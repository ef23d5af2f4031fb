package ncsn.toy;

import java.util.List;
import ncsn.autograd.Autograd;
import ncsn.ops.AnnealedDsm;
import ncsn.ops.Elementwise;
import ncsn.ops.Linear;
import ncsn.ops.Softplus;
import ncsn.optim.Adam;
import ncsn.rng.Philox;
import ncsn.rng.Rng;
import ncsn.sample.ScoreFunction;
import ncsn.tensor.DType;
import ncsn.tensor.Scope;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;

/**
 * A small noise-conditional score model for the 2-D toy, built from the engine's ops and trained
 * with the annealed DSM loss (spec section 2, with the toy's levels 20 -> 1):
 * <pre>
 *   in  [N,3] = ( x~ / sqrt(1 + sigma^2),  log sigma )        sigma = sigmas[label] per row
 *   h1  [N,H] = softplus(in w1^T + b1)          w1 [H,3]
 *   h2  [N,H] = softplus(h1 w2^T + b2)          w2 [H,H]
 *   out [N,2] = (h2 w3^T + b3) / sigma          w3 [2,H]
 * </pre>
 * Conditioning is on sigma itself (log sigma as an input) rather than a per-level embedding, so one
 * set of weights serves every level. Two rescalings keep every layer's inputs and outputs O(1):
 * the input is divided by the std the perturbed data would have with unit-variance data
 * (x~ ranges over about +-60 at sigma 20), and the output is divided by sigma (NCSNv2's trick: the
 * optimal score of data perturbed at level sigma has size ~1/sigma, so the network predicts
 * sigma * score, whose target -z has unit size at every level; with the anneal power 2 weighting
 * the loss of each level is then O(1)). The model learns the score of the data perturbed with
 * N(0, sigma^2 I), i.e. {@link ToyMixture.NoiseModel#PERTURBED}.
 *
 * <p>float32 parameters; PyTorch's default nn.Linear init, U(-1/sqrt(fan_in), +1/sqrt(fan_in)) for
 * weights and biases, drawn from Philox (seed, {@link #INIT_STREAM}).
 */
public final class ToyScoreMlp {
    /** Philox streams: parameter init, and the training batches (data, labels, noise). */
    public static final long INIT_STREAM = 0x4D4C5049L, DATA_STREAM = 0x4D4C5044L,
            LABEL_STREAM = 0x4D4C504CL, NOISE_STREAM = 0x4D4C504EL;

    private final double[] sigmas;
    private final int hidden;
    private final Tensor w1, b1, w2, b2, w3, b3;

    /** An untrained model for the given levels (largest first) with H hidden units per layer. */
    public ToyScoreMlp(double[] sigmas, int hidden, long seed) {
        if (sigmas == null || sigmas.length == 0) throw new IllegalArgumentException("toy MLP: no noise levels");
        for (double s : sigmas)
            if (!(s > 0)) throw new IllegalArgumentException("toy MLP: noise level " + s + " is not positive");
        if (hidden <= 0) throw new IllegalArgumentException("toy MLP: hidden units must be positive, got " + hidden);
        this.sigmas = sigmas.clone();
        this.hidden = hidden;
        long[] offset = {0};
        w1 = init("w1", seed, offset, 3, hidden, 3);
        b1 = init("b1", seed, offset, 3, hidden);
        w2 = init("w2", seed, offset, hidden, hidden, hidden);
        b2 = init("b2", seed, offset, hidden, hidden);
        w3 = init("w3", seed, offset, hidden, 2, hidden);
        b3 = init("b3", seed, offset, hidden, 2);
    }

    private static Tensor init(String name, long seed, long[] offset, int fanIn, int... shape) {
        Tensor p = Tensor.parameter(name, DType.F32, shape);
        float[] a = p.f32();
        Philox.uniform(seed, INIT_STREAM, offset[0], a, 0, a.length);
        offset[0] += Philox.blocksFor(a.length);
        double bound = 1 / Math.sqrt(fanIn);
        for (int i = 0; i < a.length; i++) a[i] = (float) ((2 * a[i] - 1) * bound);
        return p;
    }

    public List<Tensor> parameters() {
        return List.of(w1, b1, w2, b2, w3, b3);
    }

    public double[] sigmas() {
        return sigmas.clone();
    }

    public int hidden() {
        return hidden;
    }

    /**
     * The score [N,2] at the perturbed points xt [N,2] (float32), row n at noise level
     * sigmas[labels[n]]; recorded in autograd when the parameters require gradients and
     * recording is on. Temporaries belong to the caller's scope.
     */
    public Tensor forward(Tensor xt, int[] labels) {
        if (xt.dtype() != DType.F32 || xt.rank() != 2 || xt.dim(1) != 2)
            throw new TensorException("toy MLP: expected float32 points [N, 2], got " + xt.describe());
        int n = xt.dim(0);
        if (labels.length != n)
            throw new TensorException("toy MLP: " + labels.length + " labels for " + n + " points");
        Tensor in = Tensor.empty(DType.F32, n, 3);
        Tensor invSigma = Tensor.empty(DType.F32, n, 1);
        float[] x = xt.f32(), a = in.f32(), inv = invSigma.f32();
        for (int i = 0; i < n; i++) {
            int l = labels[i];
            if (l < 0 || l >= sigmas.length)
                throw new TensorException("toy MLP: label " + l + " of row " + i + " is outside 0.." + (sigmas.length - 1));
            double s = sigmas[l];
            double c = 1 / Math.sqrt(1 + s * s);
            a[3 * i] = (float) (x[2 * i] * c);
            a[3 * i + 1] = (float) (x[2 * i + 1] * c);
            a[3 * i + 2] = (float) Math.log(s);
            inv[i] = (float) (1 / s);
        }
        Tensor h1 = Softplus.apply(Linear.apply(in, w1, b1));
        Tensor h2 = Softplus.apply(Linear.apply(h1, w2, b2));
        return Elementwise.mul(Linear.apply(h2, w3, b3), invSigma);
    }

    /**
     * Trains with the annealed DSM loss: each step draws a batch of data (Philox DATA_STREAM),
     * labels uniform over the levels (LABEL_STREAM) and noise (NOISE_STREAM), then
     * loss = mean_n 0.5 sigma_n^2 |s(x~_n) + z_n / sigma_n|^2 and one Adam step. Returns the loss
     * of every step.
     */
    public double[] train(int steps, int batch, double lr, long seed) {
        if (steps <= 0) throw new IllegalArgumentException("toy MLP: training steps must be positive, got " + steps);
        if (batch <= 0) throw new IllegalArgumentException("toy MLP: batch size must be positive, got " + batch);
        Adam opt = new Adam(parameters(), lr, 0.9, 0.999, 1e-8, 0.0, false);
        Rng labelRng = new Rng(seed, LABEL_STREAM), noiseRng = new Rng(seed, NOISE_STREAM);
        int[] labels = new int[batch];
        double[] losses = new double[steps];
        long dataOffset = 0;
        for (int step = 0; step < steps; step++) {
            opt.setLr(scheduledLr(lr, step, steps));
            try (Scope scope = Scope.open()) {
                Tensor x = ToyMixture.sample(DType.F32, batch, seed, DATA_STREAM, dataOffset);
                dataOffset += ToyMixture.blocksFor(batch);
                labelRng.ints(labels, sigmas.length);
                Tensor z = noiseRng.normal(Tensor.empty(DType.F32, batch, 2));
                Tensor xt = AnnealedDsm.perturb(x, z, labels, sigmas);
                Tensor loss = AnnealedDsm.loss(forward(xt, labels), z, labels, sigmas, 2.0);
                opt.zeroGrad();
                Autograd.backward(loss);
                opt.step();
                losses[step] = loss.item();
            }
        }
        return losses;
    }

    /** Final learning rate as a fraction of the initial one. */
    static final double FINAL_LR_FRACTION = 0.02;

    /**
     * Cosine decay from lr to lr * FINAL_LR_FRACTION over the run: the DSM target (the noise z)
     * is very noisy, so Adam at a constant rate ends on a noisy iterate whose small errors near
     * the saddle between the modes move the sampled mode weights by several percent; decaying
     * the rate averages that noise out.
     */
    static double scheduledLr(double lr, int step, int steps) {
        double t = steps > 1 ? (double) step / (steps - 1) : 1;
        double f = FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * 0.5 * (1 + Math.cos(Math.PI * t));
        return lr * f;
    }

    /** This model as the samplers' score: s(x, i) at level sigmas[i], no gradient recorded. */
    public ScoreFunction scoreFunction() {
        int[][] labels = {new int[0]};   // reused while N and the level stay the same
        return (x, level, out) -> {
            if (level < 0 || level >= sigmas.length)
                throw new IllegalArgumentException("toy MLP: level " + level + " is outside 0.." + (sigmas.length - 1));
            if (labels[0].length != x.dim(0)) labels[0] = new int[x.dim(0)];
            java.util.Arrays.fill(labels[0], level);
            try (Autograd.NoGrad ng = Autograd.noGrad(); Scope scope = Scope.open()) {
                out.copyFrom(forward(x, labels[0]));
            }
        };
    }
}
