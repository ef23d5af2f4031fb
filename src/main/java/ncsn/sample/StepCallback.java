package ncsn.sample;

import ncsn.tensor.Tensor;

/**
 * Called by the samplers after every Langevin step (for GIF frames, progress, diagnostics).
 * x is the live sample buffer: read or copy it, do not keep it or modify it.
 */
@FunctionalInterface
public interface StepCallback {
    /**
     * @param level      noise level of this step (the fixed label for plain Langevin)
     * @param stepInLevel 0 .. stepsPerLevel-1
     * @param step       0 .. total steps - 1, over all levels
     * @param x          the samples after this step
     */
    void afterStep(int level, int stepInLevel, int step, Tensor x);
}
