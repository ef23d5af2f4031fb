package ncsn.cli;

import java.nio.file.Path;
import ncsn.cuda.CudaContext;
import ncsn.cuda.CudaError;
import ncsn.tensor.Device;
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

    @Option(names = "--device", paramLabel = "cpu|cuda|auto",
            description = "Where the chains run: cpu (default: results bit-identical to earlier versions), cuda (the whole"
                    + " chain on the GPU; x comes back only for GIF frames and at the end), or auto (CUDA when usable, else"
                    + " the CPU). Default: ${DEFAULT-VALUE}.")
    String device = "cpu";

    /**
     * A --device value resolved ({@link CudaContext#resolve}): an unknown name, or cuda without a
     * usable GPU, becomes an IllegalArgumentException whose message is the one line the commands
     * print before exiting with 2 (the probe's reason included); auto without a GPU logs once and
     * gives the CPU.
     */
    static Device resolveDevice(String device) {
        try {
            return CudaContext.resolve(device);
        } catch (CudaError e) {
            throw new IllegalArgumentException("--device " + device + ": " + e.getMessage());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--device " + device + ": expected cpu, cuda or auto");
        }
    }
}
