package ncsn.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import ncsn.sample.ImageSampler;
import ncsn.sample.InpaintMask;
import ncsn.sample.Inpainter;
import ncsn.sample.ReferenceImages;
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
 * {@code ncsn inpaint}: completes the unknown part of reference images with annealed Langevin
 * dynamics ({@link Inpainter}, spec section 6). Exit codes: 0 done, 2 bad input (options,
 * checkpoint, images, mask, output directory), 1 anything else.
 */
@Command(name = "inpaint", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Inpaint images with annealed Langevin dynamics (spec section 6): the known pixels",
                "are held at r + sigma_i z' at every level, the rest is sampled. Writes",
                "DIR/inpainting.png (rows: reference | masked input | completions),",
                "DIR/inpainting.safetensors (x, reference, mask), DIR/chain.gif with --gif,",
                "and DIR/timing.json last."},
        footerHeading = "%nExamples:%n",
        footer = {"  ncsn inpaint --checkpoint ck.safetensors --images FashionMNIST --mask left --out i",
                "  ncsn inpaint --checkpoint ck.safetensors --images s/samples.safetensors --mask center --out i",
                "  ncsn inpaint --checkpoint ck.safetensors --images pngs/ --mask mask.png --out i --per-image 4",
                "Exit codes: 0 done, 2 bad input, 1 other (I/O, out of memory)."})
public final class InpaintCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    LangevinOptions opt;

    @Option(names = "--images", required = true, paramLabel = "SOURCE",
            description = "Reference images: a data set name (MNIST, FashionMNIST, CIFAR10, CELEBA; test split, with --data-path),"
                    + " a folder of PNG/JPEG images of the model's size, or a .safetensors file with x [N,C,H,W].")
    String images;

    @Option(names = "--data-path", paramLabel = "DIR", description = "Folder of the data set named by --images (Fashion-MNIST: default /usr/share/datasets/fashion-mnist).")
    Path dataPath;

    @Option(names = "--mask", required = true, paramLabel = "MASK",
            description = "Known pixels: left (columns 0..W/2-1, the reference's), right, top, bottom, center (all but a centred"
                    + " half-size square), or a PNG of the image size (non-zero = known).")
    String mask;

    @Option(names = "--count", paramLabel = "K", description = "Reference images (default: ${DEFAULT-VALUE}).")
    int count = 8;

    @Option(names = "--per-image", paramLabel = "P", description = "Completions per reference image (default: ${DEFAULT-VALUE}).")
    int perImage = 8;

    @Override
    public Integer call() {
        PrintWriter err = spec.commandLine().getErr();
        try {
            return run(spec.commandLine().getOut());
        } catch (SamplingModel.BadCheckpoint | IllegalArgumentException e) {
            err.println("ncsn inpaint: " + e.getMessage());
            return CommandLine.ExitCode.USAGE;
        } catch (ncsn.cuda.CudaError e) {
            err.println("ncsn inpaint: " + e.getMessage());
            return 1;
        } catch (IOException e) {
            err.println("ncsn inpaint: could not write the results into " + opt.out + ": " + e
                    + ". Nothing there is marked complete (timing.json is written last).");
            return 1;
        } catch (OutOfMemoryError e) {
            err.println("ncsn inpaint: out of memory (max heap " + Runtime.getRuntime().maxMemory() / (1 << 20) + " MiB); use a smaller"
                    + " --batch, or raise the heap (bin/ncsn: NCSN_HEAP=16g; java: -Xmx16g)");
            return 1;
        } finally {
            err.flush();
        }
    }

    private int run(PrintWriter o) throws SamplingModel.BadCheckpoint, IOException {
        positive("--count", count);
        positive("--per-image", perImage);
        positive("--steps-per-level", opt.stepsPerLevel);
        if (opt.batch != null) positive("--batch", opt.batch);
        if (!(opt.stepLr > 0) || Double.isInfinite(opt.stepLr))
            throw new IllegalArgumentException("--step-lr must be a positive finite number, got " + opt.stepLr);

        ncsn.tensor.Device device = LangevinOptions.resolveDevice(opt.device);
        SamplingModel sm = SamplingModel.load(opt.checkpoint, opt.imageSize, opt.sigmaBegin, opt.sigmaEnd, device);
        int c = sm.model().config().channels(), size = sm.imageSize();
        InpaintMask m = InpaintMask.parse(mask, size, size);
        ReferenceImages refs = ReferenceImages.load(images, dataPath, count, c, size);
        ImageSampler is = ImageSampler.forModel(sm.model(), sm.sigmas(), size);
        int total = refs.count() * perImage;
        int b = opt.batch != null ? opt.batch : Math.min(total, 100);
        int eb = ImageSampler.effectiveBatch(b, total, c * size * size);
        SampleOutputs.prepare(opt.out);

        int levels = sm.sigmas().length;
        if (sm.note() != null) o.println("note: " + sm.note());
        o.printf(Locale.ROOT, "model: %s (%s); image size %d from %s%n", sm.model(), opt.checkpoint, size, sm.imageSizeSource());
        o.printf(Locale.ROOT, "noise levels: %s, from %s%n", SampleCommand.shortSigmas(sm.sigmas()), sm.sigmaSource());
        o.printf(Locale.ROOT, "references: %s; mask %s%n", refs.description(), m.describe());
        o.printf(Locale.ROOT, "inpainting: %d x %d completions, %d levels x %d steps, step_lr %.4g, batch %d, seed %d%n",
                refs.count(), perImage, levels, opt.stepsPerLevel, opt.stepLr, eb, opt.seed);
        if (refs.count() < count) o.printf("note: only %d reference images available (--count %d)%n", refs.count(), count);
        o.flush();

        ImageSampler.Result r;
        try (SamplingProgress p = new SamplingProgress(SamplingProgress.autoMode(opt.quiet), o, levels, opt.stepsPerLevel)) {
            r = Inpainter.run(is, refs, m, perImage, opt.seed, opt.stepsPerLevel, opt.stepLr, b, opt.gif, p);
        }
        Map<String, String> meta = SampleOutputs.meta("format", "ncsn-engine-inpainting", "checkpoint", opt.checkpoint.toString(),
                "images", images, "references", refs.description(), "mask", m.describe(), "per_image", Integer.toString(perImage),
                "seed", Long.toString(opt.seed), "steps_per_level", Integer.toString(opt.stepsPerLevel), "step_lr", Double.toString(opt.stepLr),
                "batch", Integer.toString(eb), "device", device.toString(), "image_size", Integer.toString(size), "sigmas", SampleCommand.joined(sm.sigmas()),
                "model", sm.model().config().toString(), "logit_transform", Boolean.toString(sm.model().config().logitTransform()),
                "known_pixels", "last c_i = r + sigma_{L-1} z' (as the reference)");
        String extra = "  \"sampler\": \"inpaint\",\n"
                + "  \"checkpoint\": " + SampleOutputs.jsonString(opt.checkpoint.toString()) + ",\n"
                + "  \"model\": " + SampleOutputs.jsonString(sm.model().config().toString()) + ",\n"
                + "  \"image\": [" + c + ", " + size + ", " + size + "],\n"
                + "  \"seed\": " + opt.seed + ",\n"
                + "  \"device\": \"" + device + "\",\n" + SampleOutputs.cudaGraphFields(is);
        Inpainter.write(opt.out, is, refs, m, perImage, r, meta, extra);
        o.println("timing: " + r.timing().summary());
        o.printf(Locale.ROOT, "wrote %d completions of %d images to %s (%s, %s%s, %s) in %.1f s%n", total, refs.count(), opt.out,
                SampleOutputs.INPAINT_PNG, SampleOutputs.INPAINT_ST, opt.gif ? ", " + SampleOutputs.GIF : "", SampleOutputs.TIMING,
                r.timing().totalSeconds());
        o.flush();
        return CommandLine.ExitCode.OK;
    }

    private static void positive(String option, long v) {
        if (v <= 0) throw new IllegalArgumentException(option + " must be a positive integer, got " + v);
    }
}
