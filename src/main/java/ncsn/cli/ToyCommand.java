package ncsn.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import ncsn.toy.ToyExperiment;
import ncsn.toy.ToyOutput;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code ncsn toy --out DIR}: the paper's 2-D toy experiment (spec section 7). Samples the mixture
 * 0.8 N((5,5), I) + 0.2 N((-5,-5), I) directly, with plain Langevin and with annealed Langevin
 * (exact scores), trains a small noise-conditional MLP with annealed DSM and samples it the same
 * way; writes scatter PNGs, a score-field PNG and DIR/toy.json with the fraction of samples nearer
 * (5,5) for each (see {@link ToyOutput}).
 */
@Command(name = "toy", mixinStandardHelpOptions = true,
        description = {"The paper's 2-D toy experiment (spec section 7): samples of the data, of Langevin and of",
                "annealed Langevin with exact scores, and of annealed Langevin with a small DSM-trained MLP.",
                "Writes DIR/toy.json (fraction of samples nearer (5,5) for each) and PNG plots."})
public final class ToyCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output directory (created if missing).")
    Path out;

    @Option(names = "--n", paramLabel = "N", description = "Samples per sampler (default: ${DEFAULT-VALUE}).")
    int n = 1280;

    @Option(names = "--seed", paramLabel = "S", description = "Seed of every random draw (default: ${DEFAULT-VALUE}).")
    long seed = 0;

    @Option(names = "--train-steps", paramLabel = "N", description = "MLP training steps (default: ${DEFAULT-VALUE}).")
    int trainSteps = ToyExperiment.DEFAULT_TRAIN_STEPS;

    @Option(names = "--langevin-steps", paramLabel = "N", description = "Plain Langevin steps (default: ${DEFAULT-VALUE}, as the paper).")
    int langevinSteps = 1000;

    @Option(names = "--steps-per-level", paramLabel = "T", description = "Annealed Langevin steps per noise level (default: ${DEFAULT-VALUE}, as the paper).")
    int stepsPerLevel = 100;

    @Override
    public Integer call() {
        ToyExperiment.Config config;
        try {
            positive("--n", n);
            positive("--train-steps", trainSteps);
            positive("--langevin-steps", langevinSteps);
            positive("--steps-per-level", stepsPerLevel);
            config = new ToyExperiment.Config(n, seed, langevinSteps, stepsPerLevel, trainSteps,
                    ToyExperiment.DEFAULT_BATCH, ToyExperiment.DEFAULT_HIDDEN, ToyExperiment.DEFAULT_TRAIN_LR);
            ToyOutput.prepare(out);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), "toy: " + e.getMessage());
        }
        PrintWriter o = spec.commandLine().getOut();
        ToyExperiment.Result r = ToyExperiment.run(config);
        try {
            ToyOutput.write(out, r);
        } catch (IOException e) {
            spec.commandLine().getErr().println("toy: could not write the results into " + out + ": " + e
                    + ". Nothing there is marked complete (toy.json is written last).");
            return 1;
        }
        o.printf(Locale.ROOT, "fraction of %d samples nearer (5,5) (data: 0.8):%n", n);
        o.printf(Locale.ROOT, "  data              %.4f%n", r.dataFraction());
        o.printf(Locale.ROOT, "  langevin          %.4f   %d steps, %.2f s%n", r.langevinFraction(), langevinSteps, r.langevinSeconds());
        o.printf(Locale.ROOT, "  annealed          %.4f   10 levels x %d steps, %.2f s%n", r.annealedFraction(), stepsPerLevel, r.annealedSeconds());
        o.printf(Locale.ROOT, "  learned_annealed  %.4f   MLP trained %d steps in %.2f s (final loss %.4f), sampled in %.2f s%n",
                r.learnedAnnealedFraction(), trainSteps, r.trainSeconds(), tailMean(r.trainLosses()), r.learnedSeconds());
        o.printf(Locale.ROOT, "wrote %s and %s%n", out.resolve(ToyOutput.JSON), String.join(", ", ToyOutput.FILES.subList(0, 5)));
        o.flush();
        return CommandLine.ExitCode.OK;
    }

    private static void positive(String option, int v) {
        if (v <= 0) throw new IllegalArgumentException(option + " must be a positive integer, got " + v);
    }

    /** Mean of the last 100 losses (the loss of one batch is noisy). */
    private static double tailMean(double[] l) {
        int k = Math.min(100, l.length);
        double s = 0;
        for (int i = l.length - k; i < l.length; i++) s += l[i];
        return s / k;
    }
}
