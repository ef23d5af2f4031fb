package ncsn.sample;

import ncsn.tensor.Tensor;

/**
 * A (noise-conditional) score s(x, i) ~ grad_x log p_{sigma_i}(x), as the samplers call it.
 * Implementations write into {@code out} (x's shape and dtype, reused across steps by the
 * caller) and must not keep x or out: the sampler overwrites both on the next step. x must not
 * be modified.
 */
@FunctionalInterface
public interface ScoreFunction {
    /** Writes s(x, level) into out; x [N, ...], out of x's shape and dtype, level in 0..L-1. */
    void score(Tensor x, int level, Tensor out);
}
