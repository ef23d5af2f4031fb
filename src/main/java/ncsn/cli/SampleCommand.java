package ncsn.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import ncsn.cuda.CudaError;
import ncsn.sample.ImageSampler;
import ncsn.sample.SampleOutputs;
import ncsn.sample.SamplingModel;
import ncsn.sample.SamplingProgress;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code ncsn sample}: annealed Langevin dynamics (or plain Langevin) from a checkpoint
 * ({@link ImageSampler}); writes the files listed in {@link SampleOutputs}. Exit codes: 0 done,
 * 2 bad input (options, checkpoint, output directory), 1 anything else (I/O failure, out of memory).
 */
@Command(name = "sample", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Sample images with annealed Langevin dynamics (spec section 6) from U[0,1).",
                "Writes DIR/samples.png (grid), DIR/samples/NNNN.png, DIR/samples.safetensors",
                "(x [n,C,H,W], unclamped), DIR/chain.gif with --gif, and DIR/timing.json last."},
        footerHeading = "%nExamples:%n",
        footer = {"  ncsn sample --checkpoint RUN/checkpoints/checkpoint_10000.safetensors --out s",
                "  ncsn sample --checkpoint ck.safetensors --out s --n 25 --gif --denoise",
                "  ncsn sample --checkpoint ck.safetensors --out s --sampler langevin --steps 1000",
                "step_lr is the released code's (the paper's alpha / 2):",
                "step_i = step_lr (sigma_i / sigma_L)^2.",
                "Exit codes: 0 done, 2 bad input, 1 other (I/O, out of memory)."})
public final class SampleCommand implements Callable<Integer> {
    enum Sampler { annealed, langevin }

    @Spec
    CommandSpec spec;

    @Mixin
    LangevinOptions opt;

    @Option(names = "--n", paramLabel = "N", description = "Number of samples (default: ${DEFAULT-VALUE}).")
    int n = 100;

    @Option(names = "--denoise", description = "Add NCSNv2's final denoising step x + sigma_L^2 s(x, L-1).")
    boolean denoise;

    @Option(names = "--sampler", paramLabel = "KIND", description = "annealed (default) or langevin (plain Langevin at one level, the baseline).")
    Sampler sampler = Sampler.annealed;

    @Option(names = "--label", paramLabel = "I", description = "Plain Langevin's noise level (default: the last, L-1).")
    Integer label;

    @Option(names = "--steps", paramLabel = "N", description = "Plain Langevin's number of steps (default: L x steps-per-level).")
    Integer steps;

    private static final class BadInput extends Exception {
        BadInput(String m) {
            super(m);
        }
    }

    @Override
    public Integer call() {
        PrintWriter err = spec.commandLine().getErr();
        try {
            return run(spec.commandLine().getOut());
        } catch (BadInput | SamplingModel.BadCheckpoint | IllegalArgumentException e) {
            err.println("ncsn sample: " + e.getMessage());
            return CommandLine.ExitCode.USAGE;
        } catch (CudaError e) {
            err.println("ncsn sample: " + e.getMessage());
            return 1;
        } catch (IOException e) {
            err.println("ncsn sample: could not write the results into " + opt.out + ": " + e
                    + ". Nothing there is marked complete (timing.json is written last).");
            return 1;
        } catch (OutOfMemoryError e) {
            err.println("ncsn sample: out of memory (max heap " + Runtime.getRuntime().maxMemory() / (1 << 20) + " MiB); use a smaller"
                    + " --batch, or raise the heap (bin/ncsn: NCSN_HEAP=16g; java: -Xmx16g)");
            return 1;
        } finally {
            err.flush();
        }
    }

    private int run(PrintWriter o) throws BadInput, SamplingModel.BadCheckpoint, IOException {
        positive("--n", n);
        positive("--steps-per-level", opt.stepsPerLevel);
        if (opt.batch != null) positive("--batch", opt.batch);
        if (steps != null) positive("--steps", steps);
        if (!(opt.stepLr > 0) || Double.isInfinite(opt.stepLr)) throw new BadInput("--step-lr must be a positive finite number, got " + opt.stepLr);
        boolean plain = sampler == Sampler.langevin;
        if (!plain && label != null) throw new BadInput("--label applies only to --sampler langevin");
        if (!plain && steps != null) throw new BadInput("--steps applies only to --sampler langevin (annealed: --steps-per-level)");

        ncsn.tensor.Device device = LangevinOptions.resolveDevice(opt.device);
        SamplingModel sm = SamplingModel.load(opt.checkpoint, opt.imageSize, opt.sigmaBegin, opt.sigmaEnd, device);
        int levels = sm.sigmas().length;
        if (plain && label != null && (label < 0 || label >= levels))
            throw new BadInput("--label " + label + " is outside 0.." + (levels - 1) + " (the checkpoint has " + levels + " noise levels)");
        int lab = label != null ? label : levels - 1;
        int plainSteps = steps != null ? steps : levels * opt.stepsPerLevel;
        int b = opt.batch != null ? opt.batch : Math.min(n, 100);
        ImageSampler.Settings settings = plain
                ? ImageSampler.Settings.langevin(n, opt.seed, lab, plainSteps, opt.stepLr, b, denoise, opt.gif)
                : ImageSampler.Settings.annealed(n, opt.seed, opt.stepsPerLevel, opt.stepLr, b, denoise, opt.gif);
        ImageSampler is = ImageSampler.forModel(sm.model(), sm.sigmas(), sm.imageSize());
        SampleOutputs.prepare(opt.out);

        int c = sm.model().config().channels(), size = sm.imageSize();
        int eb = ImageSampler.effectiveBatch(b, n, c * size * size);
        if (sm.note() != null) o.println("note: " + sm.note());
        o.printf(Locale.ROOT, "model: %s (%s); image size %d from %s%n", sm.model(), opt.checkpoint, size, sm.imageSizeSource());
        o.printf(Locale.ROOT, "noise levels: %s, from %s%n", shortSigmas(sm.sigmas()), sm.sigmaSource());
        if (plain)
            o.printf(Locale.ROOT, "plain Langevin: %d samples, label %d (sigma %.4g), %d steps of %.4g, batch %d, seed %d%s%n", n, lab,
                    sm.sigmas()[lab], plainSteps, opt.stepLr, eb, opt.seed, denoise ? ", + denoising step" : "");
        else
            o.printf(Locale.ROOT, "annealed Langevin: %d samples, %d levels x %d steps, step_lr %.4g (step %.4g .. %.4g), batch %d, seed %d%s%n",
                    n, levels, opt.stepsPerLevel, opt.stepLr, is.stepSize(opt.stepLr, 0), is.stepSize(opt.stepLr, levels - 1), eb, opt.seed,
                    denoise ? ", + denoising step" : "");
        if (eb != b) o.printf("note: --batch %d rounded to %d so that each batch's noise matches the whole run's%n", b, eb);
        o.flush();

        ImageSampler.Result r;
        try (SamplingProgress p = new SamplingProgress(SamplingProgress.autoMode(opt.quiet), o, plain ? 1 : levels,
                plain ? plainSteps : opt.stepsPerLevel)) {
            r = is.sample(settings, p);
        }
        Map<String, String> meta = SampleOutputs.meta("format", "ncsn-engine-samples", "sampler", sampler.name(),
                "checkpoint", opt.checkpoint.toString(), "seed", Long.toString(opt.seed), "n", Integer.toString(n),
                "steps_per_level", Integer.toString(opt.stepsPerLevel), "step_lr", Double.toString(opt.stepLr),
                "batch", Integer.toString(eb), "device", device.toString(), "denoise", Boolean.toString(denoise), "image_size", Integer.toString(size),
                "sigmas", joined(sm.sigmas()), "model", sm.model().config().toString(),
                "logit_transform", Boolean.toString(sm.model().config().logitTransform()));
        if (plain) {
            meta.put("label", Integer.toString(lab));
            meta.put("steps", Integer.toString(plainSteps));
        }
        String extra = "  \"sampler\": \"" + sampler.name() + "\",\n"
                + "  \"checkpoint\": " + SampleOutputs.jsonString(opt.checkpoint.toString()) + ",\n"
                + "  \"model\": " + SampleOutputs.jsonString(sm.model().config().toString()) + ",\n"
                + "  \"image\": [" + c + ", " + size + ", " + size + "],\n"
                + "  \"seed\": " + opt.seed + ",\n"
                + "  \"device\": \"" + device + "\",\n" + SampleOutputs.cudaGraphFields(is);
        SampleOutputs.writeSamples(opt.out, is, r, meta, extra);
        o.println("timing: " + r.timing().summary());
        o.printf(Locale.ROOT, "wrote %d samples to %s (%s, %s/, %s%s, %s) in %.1f s%n", n, opt.out, SampleOutputs.SAMPLES_PNG,
                SampleOutputs.SAMPLES_DIR, SampleOutputs.SAMPLES_ST, opt.gif ? ", " + SampleOutputs.GIF : "", SampleOutputs.TIMING,
                r.timing().totalSeconds());
        o.flush();
        return CommandLine.ExitCode.OK;
    }

    static void positive(String option, long v) throws BadInput {
        if (v <= 0) throw new BadInput(option + " must be a positive integer, got " + v);
    }

    static String joined(double[] s) {
        StringBuilder sb = new StringBuilder();
        for (double v : s) sb.append(sb.length() == 0 ? "" : ",").append(v);
        return sb.toString();
    }

    static String shortSigmas(double[] s) {
        if (s.length <= 4) return Arrays.toString(s);
        return String.format(Locale.ROOT, "%d levels %.4g -> %.4g", s.length, s[0], s[s.length - 1]);
    }
}
