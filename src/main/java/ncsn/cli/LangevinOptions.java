package ncsn.cli;

import java.nio.file.Path;
import picocli.CommandLine.Option;

/** Options shared by `ncsn sample` and `ncsn inpaint` (a picocli mixin): the model, the chain, the output. */
final class LangevinOptions {
    @Option(names = "--checkpoint", required = true, paramLabel = "FILE",
            description = "A training checkpoint (EMA weights used when present) or a weights-only safetensors file.")
    Path checkpoint;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output directory (created if missing).")
    Path out;

    @Option(names = "--seed", paramLabel = "S", description = "Seed of every random draw (default: ${DEFAULT-VALUE}).")
    long seed = 0;

    @Option(names = "--steps-per-level", paramLabel = "T", description = "Langevin steps per noise level (default: ${DEFAULT-VALUE}).")
    int stepsPerLevel = 100;

    @Option(names = "--step-lr", paramLabel = "LR", description = "step_lr: the step at the last level (default: ${DEFAULT-VALUE}).")
    double stepLr = 2e-5;

    @Option(names = "--batch", paramLabel = "B", description = "Chains per batch (default: all, at most 100). The results do not depend on it.")
    Integer batch;

    @Option(names = "--gif", description = "Also write DIR/chain.gif: the grid every 10 Langevin steps.")
    boolean gif;

    @Option(names = "--image-size", paramLabel = "H", description = "Image size (default: the checkpoint's config, else 28 for 1 channel, 32 for 3).")
    Integer imageSize;

    @Option(names = "--sigma-begin", paramLabel = "S", description = "Largest noise level, for weights-only files without sigmas (default 1).")
    Double sigmaBegin;

    @Option(names = "--sigma-end", paramLabel = "S", description = "Smallest noise level, likewise (default 0.01).")
    Double sigmaEnd;

    @Option(names = "--quiet", description = "No progress output.")
    boolean quiet;
}
