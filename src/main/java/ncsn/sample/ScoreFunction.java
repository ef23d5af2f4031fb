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

    /**
     * Called before a CUDA graph captures {@code score(x, level, out)} ({@link LangevinGraph}):
     * upload whatever the call would copy from the host (a capture may only launch work) and
     * return what frees it, called after the graph is gone. Default: nothing to upload.
     */
    default AutoCloseable prepareCapture(Tensor x, int level) {
        return () -> {};
    }
}
