package ncsn.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import ncsn.cuda.CudaError;
import ncsn.data.DataException;
import ncsn.train.ConfigException;
import ncsn.train.TrainConfig;
import ncsn.train.TrainException;
import ncsn.train.Trainer;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code ncsn train}: trains the score network with annealed DSM ({@link Trainer}). Exit codes:
 * 0 done, 2 bad input (config, data, run directory, checkpoint), 3 diverged (loss or weights not
 * finite; the last good checkpoint is kept), 1 anything else (out of memory, I/O failure).
 */
@Command(name = "train", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Train the NCSN score network (CondRefineNetDilated) with annealed denoising score matching.",
                "Writes RUN/config.yml, RUN/metrics.csv, RUN/loss.png and RUN/checkpoints/checkpoint_<step>.safetensors."},
        footerHeading = "%nExamples:%n",
        footer = {"  ncsn train                         # fashion_mnist_small, in runs/fashion_mnist_small",
                "  ncsn train --config mnist          # the paper's MNIST settings, in runs/mnist",
                "  ncsn train --config my.yml --set training.n_iters=500 --set optim.lr=2e-4",
                "  ncsn train --resume                # continue runs/fashion_mnist_small exactly",
                "  ncsn train --device cuda           # on the GPU (exit 2 with the reason when there is none)",
                "Bundled configs: fashion_mnist_small, cifar10_small, mnist, cifar10, celeba.",
                "Exit codes: 0 done, 2 bad config/data/run directory/checkpoint, 3 diverged (NaN), 1 other."})
public final class TrainCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--config", paramLabel = "FILE|NAME",
            description = "YAML config file, or a bundled config name (default: " + TrainConfig.DEFAULT_NAME + ").")
    String config;

    @Option(names = "--run", paramLabel = "DIR", description = "Run directory (default: runs/<config name>).")
    Path run;

    @Option(names = "--resume", description = "Continue the run in the run directory from its newest valid checkpoint.")
    boolean resume;

    @Option(names = "--seed", paramLabel = "S", description = "Seed (same as --set training.seed=S).")
    Long seed;

    @Option(names = "--set", paramLabel = "KEY=VALUE",
            description = "Override a config key, e.g. --set training.n_iters=500 (repeatable).")
    List<String> sets = new ArrayList<>();

    @Option(names = "--device", paramLabel = "cpu|cuda|auto",
            description = "Where to train: cpu, cuda, or auto (CUDA when usable, else the CPU, saying why). Overrides"
                    + " training.device (default in the bundled configs: auto). May change on --resume.")
    String device;

    @Option(names = "--quiet", description = "No progress output (errors still go to stderr).")
    boolean quiet;

    @Override
    public Integer call() {
        PrintWriter err = spec.commandLine().getErr();
        List<String> overrides = new ArrayList<>(sets);
        if (seed != null) overrides.add("training.seed=" + seed);
        if (device != null) {
            String d = device.trim().toLowerCase(java.util.Locale.ROOT);
            if (!d.equals("cpu") && !d.equals("cuda") && !d.equals("auto")) {
                err.println("ncsn train: --device " + device + ": expected cpu, cuda or auto");
                err.flush();
                return CommandLine.ExitCode.USAGE;
            }
            overrides.add("training.device=" + d);
        }
        String name = config != null ? config : TrainConfig.DEFAULT_NAME;
        try {
            Trainer t;
            if (resume) {
                // The stored config rules; a named config only contributes its resumable keys.
                TrainConfig requested = config != null ? TrainConfig.load(name, List.of()) : null;
                Path dir = run != null ? run : Path.of("runs", requested != null ? requested.name() : name);
                t = Trainer.resume(dir, requested, overrides);
            } else {
                TrainConfig cfg = TrainConfig.load(name, overrides);
                Path dir = run != null ? run : Path.of("runs", cfg.name());
                t = Trainer.newRun(dir, cfg);
            }
            t.output(System.out, quiet).run();
            return CommandLine.ExitCode.OK;
        } catch (ConfigException | DataException e) {
            err.println("ncsn train: " + e.getMessage());
            return CommandLine.ExitCode.USAGE;
        } catch (TrainException e) {
            err.println("ncsn train: " + e.getMessage());
            return e.exitCode();
        } catch (CudaError e) {
            err.println("ncsn train: " + e.getMessage());
            return 1;
        } catch (OutOfMemoryError e) {
            err.println("ncsn train: out of memory (max heap " + Runtime.getRuntime().maxMemory() / (1 << 20) + " MiB)."
                    + " Raise the heap (bin/ncsn: NCSN_HEAP=16g; java: -Xmx16g) or lower training.batch_size / model.ngf.");
            return 1;
        } catch (java.io.IOException e) {
            err.println("ncsn train: I/O error: " + e.getMessage());
            return 1;
        } finally {
            err.flush();
        }
    }
}
