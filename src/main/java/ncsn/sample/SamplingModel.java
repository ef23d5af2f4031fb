package ncsn.sample;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import ncsn.io.SafeTensors;
import ncsn.io.SafeTensorsException;
import ncsn.model.CondRefineNetDilated;
import ncsn.model.ModelConfig;
import ncsn.ops.AnnealedDsm;
import ncsn.tensor.DType;
import ncsn.tensor.Device;
import ncsn.train.Checkpoint;
import ncsn.train.ConfigException;
import ncsn.train.TrainConfig;

/**
 * The score network of a {@code --checkpoint} file with what sampling needs besides the weights:
 * the noise levels and the image size.
 * <ul>
 *   <li>Network: {@link Checkpoint#loadForSampling} (a training checkpoint's EMA weights when it has
 *       them; a weights-only file sized from its weight shapes), float32.</li>
 *   <li>Noise levels: a training checkpoint's stored config (model.sigma_begin, sigma_end,
 *       num_classes, recomputed in float64 as the reference's numpy does); a weights-only file's
 *       {@code sigmas} metadata when present; otherwise geometric from {@code sigmaBegin} to
 *       {@code sigmaEnd} over the network's L levels (defaults 1 and 0.01).</li>
 *   <li>Image size: {@code imageSize} when given (a note is returned when it differs from the
 *       checkpoint's); else the checkpoint's data.image_size; else 28 for one channel, 32 for three.</li>
 * </ul>
 *
 * @param model          the network (float32, on the device it was loaded for)
 * @param sigmas         sigma_0 > ... > sigma_{L-1}
 * @param imageSize      H = W of the samples
 * @param sigmaSource    where the sigmas came from, for messages
 * @param imageSizeSource where the image size came from
 * @param note           a warning for the user, or null
 */
public record SamplingModel(CondRefineNetDilated model, double[] sigmas, int imageSize, String sigmaSource,
                            String imageSizeSource, String note) {
    /** A problem with the checkpoint or the options given with it; the message names the argument. */
    public static final class BadCheckpoint extends Exception {
        public BadCheckpoint(String message) {
            super(message);
        }
    }

    /**
     * @param file       the --checkpoint file
     * @param imageSize  --image-size, or null
     * @param sigmaBegin --sigma-begin for weights-only files without sigmas, or null (1)
     * @param sigmaEnd   --sigma-end likewise, or null (0.01)
     */
    public static SamplingModel load(Path file, Integer imageSize, Double sigmaBegin, Double sigmaEnd) throws BadCheckpoint {
        return load(file, imageSize, sigmaBegin, sigmaEnd, Device.CPU);
    }

    /** As {@link #load(Path, Integer, Double, Double)}, with the network moved to {@code device} (read on the host, then copied). */
    public static SamplingModel load(Path file, Integer imageSize, Double sigmaBegin, Double sigmaEnd, Device device)
            throws BadCheckpoint {
        SamplingModel m = loadOnHost(file, imageSize, sigmaBegin, sigmaEnd);
        if (device == Device.CPU) return m;
        CondRefineNetDilated onDevice = m.model().to(device);
        m.model().free();
        return new SamplingModel(onDevice, m.sigmas(), m.imageSize(), m.sigmaSource(), m.imageSizeSource(), m.note());
    }

    private static SamplingModel loadOnHost(Path file, Integer imageSize, Double sigmaBegin, Double sigmaEnd) throws BadCheckpoint {
        if (file == null) throw new BadCheckpoint("--checkpoint is missing");
        if (!Files.exists(file)) throw new BadCheckpoint("--checkpoint " + file + " does not exist");
        if (Files.isDirectory(file))
            throw new BadCheckpoint("--checkpoint " + file + " is a directory; give a checkpoint file (e.g. "
                    + file.resolve("checkpoints").resolve("checkpoint_<step>.safetensors") + ")");
        if (imageSize != null && (imageSize < 2 || imageSize % 2 != 0 || imageSize > 4096))
            throw new BadCheckpoint("--image-size " + imageSize + ": must be even and in 2..4096 (the network halves it once)");
        CondRefineNetDilated model;
        SafeTensors.Contents contents;
        try {
            contents = SafeTensors.read(file);
            model = Checkpoint.loadForSampling(file, DType.F32);
        } catch (SafeTensorsException e) {
            throw new BadCheckpoint("--checkpoint " + e.getMessage());
        }
        ModelConfig mc = model.config();
        int levels = mc.numClasses();
        double[] sigmas = null;
        String sigmaSource = null;
        Integer ckSize = null;
        String note = null;
        if (Checkpoint.isTrainingCheckpoint(contents)) {
            try {
                TrainConfig cfg = Checkpoint.read(file).config("checkpoint");
                sigmas = cfg.sigmas();
                sigmaSource = "the checkpoint's config (sigma " + cfg.model().sigmaBegin() + " -> " + cfg.model().sigmaEnd() + ")";
                ckSize = cfg.data().imageSize();
                if (sigmaBegin != null || sigmaEnd != null)
                    note = "--sigma-begin/--sigma-end ignored: the checkpoint's config gives the noise levels";
            } catch (SafeTensorsException e) {
                throw new BadCheckpoint("--checkpoint " + e.getMessage());
            } catch (ConfigException e) {
                throw new BadCheckpoint("--checkpoint " + file + ": its stored config cannot be read: " + e.getMessage());
            }
        } else {
            String meta = contents.metadata().get("sigmas");
            if (meta != null && sigmaBegin == null && sigmaEnd == null) {
                sigmas = parseSigmas(file, meta);
                sigmaSource = "the file's 'sigmas' metadata";
            }
        }
        if (sigmas == null) {
            double b = sigmaBegin != null ? sigmaBegin : 1.0, e = sigmaEnd != null ? sigmaEnd : 0.01;
            try {
                sigmas = AnnealedDsm.sigmas(b, e, levels);
            } catch (IllegalArgumentException ex) {
                throw new BadCheckpoint("--sigma-begin/--sigma-end: " + ex.getMessage());
            }
            sigmaSource = "geometric " + b + " -> " + e + " over " + levels + " levels"
                    + (sigmaBegin == null && sigmaEnd == null ? " (the paper's default)" : "");
        }
        if (sigmas.length != levels)
            throw new BadCheckpoint("--checkpoint " + file + ": " + sigmas.length + " noise levels in " + sigmaSource
                    + " but the network has " + levels + " (normalizer.embed.weight rows)");
        for (int i = 1; i < sigmas.length; i++)
            if (!(sigmas[i] > 0) || sigmas[i] > sigmas[i - 1])
                throw new BadCheckpoint("--checkpoint " + file + ": noise levels " + Arrays.toString(sigmas) + " from " + sigmaSource
                        + " are not positive and decreasing");

        int size;
        String sizeSource;
        if (imageSize != null) {
            size = imageSize;
            sizeSource = "--image-size";
            if (ckSize != null && ckSize.intValue() != imageSize)
                note = (note == null ? "" : note + "; ") + "--image-size " + imageSize + " differs from the checkpoint's data.image_size "
                        + ckSize + "; sampling at " + imageSize;
        } else if (ckSize != null) {
            size = ckSize;
            sizeSource = "the checkpoint's data.image_size";
        } else if (mc.channels() == 1 || mc.channels() == 3) {
            size = mc.channels() == 1 ? 28 : 32;
            sizeSource = "the default for " + mc.channels() + " channel" + (mc.channels() == 1 ? "" : "s") + " (give --image-size to change)";
        } else {
            throw new BadCheckpoint("--checkpoint " + file + " holds a " + mc.channels() + "-channel network and no image size;"
                    + " give --image-size");
        }
        if (size < 2 || size % 2 != 0)
            throw new BadCheckpoint("--checkpoint " + file + ": image size " + size + " from " + sizeSource + " is not even and >= 2");
        return new SamplingModel(model, sigmas, size, sigmaSource, sizeSource, note);
    }

    private static double[] parseSigmas(Path file, String meta) throws BadCheckpoint {
        String[] parts = meta.split(",");
        double[] s = new double[parts.length];
        try {
            for (int i = 0; i < parts.length; i++) s[i] = Double.parseDouble(parts[i].trim());
        } catch (NumberFormatException e) {
            throw new BadCheckpoint("--checkpoint " + file + ": metadata sigmas = '" + meta + "' is not a comma-separated list of numbers");
        }
        return s;
    }

    /** "channels 1, ngf 64, 10 noise levels; 28x28" for messages and metadata. */
    public String describe() {
        return model.config() + "; " + imageSize + "x" + imageSize;
    }
}
