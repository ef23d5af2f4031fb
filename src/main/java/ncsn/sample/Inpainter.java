package ncsn.sample;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import ncsn.io.AtomicFiles;
import ncsn.io.SafeTensors;
import ncsn.tensor.Tensor;

/**
 * Inpainting with annealed Langevin dynamics (spec section 6, the reference's
 * anneal_Langevin_dynamics_inpainting generalised to any mask and channel count): for K reference
 * images r and P completions each, samples g = k P + p start from U[0,1); at each level i
 * <pre>
 *   c_i = r_k + sigma_i z'      z' ~ N(0, I), drawn once per level (own z' for every completion)
 *   x[m] = c_i                  before the level
 *   T times:  x = x + step_i s(x, i) + sqrt(2 step_i) z;  x[m] = c_i
 * </pre>
 * with m the mask's known pixels (all channels). So the known pixels of a finished completion hold
 * the last c_i = r + sigma_{L-1} z' (sigma_{L-1} = 0.01 by default), exactly as in the reference,
 * not r itself; the stored completions keep them that way. The noise keying is
 * {@link ImageSampler}'s (z' on {@link ImageSampler#CONDITION_STREAM}), so results are
 * deterministic per seed and independent of the batch size. For a model trained on logit-space
 * images the references are mapped to that space first (lambda = 1e-6, as training does).
 *
 * <p>Grid (inpainting.png and each GIF frame): one row per reference: the reference, the masked
 * input (unknown pixels drawn mid gray), then the P completions.
 */
public final class Inpainter {
    /** The logit transform's lambda (spec section 2). */
    public static final double LOGIT_LAMBDA = 1e-6;

    private Inpainter() {}

    /** The references in the sampler's input space: r itself, or logit(lambda + (1 - 2 lambda) r). */
    static float[] modelSpace(float[] r, boolean logit) {
        if (!logit) return r.clone();
        float[] out = new float[r.length];
        for (int i = 0; i < r.length; i++) {
            double v = LOGIT_LAMBDA + (1 - 2 * LOGIT_LAMBDA) * r[i];
            out[i] = (float) (Math.log(v) - Math.log1p(-v));
        }
        return out;
    }

    /**
     * Runs inpainting: K = refs.count() references, {@code perImage} completions each, output
     * samples [K perImage, C, H, W] (reference k's completions at k perImage ..).
     */
    public static ImageSampler.Result run(ImageSampler sampler, ReferenceImages refs, InpaintMask mask, int perImage, long seed,
                                          int stepsPerLevel, double stepLr, int batch, boolean frames,
                                          ImageSampler.Listener listener) {
        if (perImage < 1) throw new IllegalArgumentException("--per-image must be positive, got " + perImage);
        if (mask.height() != sampler.height() || mask.width() != sampler.width())
            throw new IllegalArgumentException("--mask is " + mask.width() + "x" + mask.height() + " but the samples are "
                    + sampler.width() + "x" + sampler.height());
        int chw = sampler.channels() * sampler.height() * sampler.width();
        if (refs.pixels().length != refs.count() * chw)
            throw new IllegalArgumentException("--images: " + refs.count() + " references do not have the model's image shape");
        long n = (long) refs.count() * perImage;
        if (n > Integer.MAX_VALUE / Math.max(1, chw))
            throw new IllegalArgumentException("--count " + refs.count() + " x --per-image " + perImage + " completions are too many");
        ImageSampler.Settings s = ImageSampler.Settings.annealed((int) n, seed, stepsPerLevel, stepLr, batch, false, frames);
        ImageSampler.Conditioning cond = new ImageSampler.Conditioning(modelSpace(refs.pixels(), sampler.logitSpace()), perImage,
                mask.expand(sampler.channels()));
        return sampler.run(s, cond, listener);
    }

    /**
     * Writes inpainting.safetensors (x, reference, mask + metadata), chain.gif (when the run kept
     * frames), inpainting.png and timing.json last (see {@link SampleOutputs}).
     */
    public static void write(Path dir, ImageSampler sampler, ReferenceImages refs, InpaintMask mask, int perImage,
                             ImageSampler.Result r, Map<String, String> metadata, String timingExtra) throws IOException {
        SampleOutputs.clearPrevious(dir, List.of(SampleOutputs.INPAINT_PNG, SampleOutputs.INPAINT_ST, SampleOutputs.GIF), false);
        Files.createDirectories(dir);
        int c = sampler.channels(), h = sampler.height(), w = sampler.width(), chw = c * h * w, k = refs.count();
        int cols = perImage + 2;
        SafeTensors.Writer st = new SafeTensors.Writer().put("x", r.samples())
                .put("reference", Tensor.wrap(refs.pixels().clone(), k, c, h, w))
                .put("mask", Tensor.wrap(mask.map(), h, w));
        metadata.forEach(st::meta);
        st.write(dir.resolve(SampleOutputs.INPAINT_ST));

        // Tiles, row k: reference, masked input, completions k P .. k P + P - 1.
        byte[] tiles = new byte[k * cols * chw];
        float[] known = mask.expand(c);
        for (int i = 0; i < k; i++) {
            int ref = i * chw, row = i * cols * chw;
            ImageGrid.quantize(refs.pixels(), ref, tiles, row, chw, false);
            for (int j = 0; j < chw; j++)
                tiles[row + chw + j] = known[j] != 0 ? tiles[row + j] : (byte) ImageGrid.PAD_VALUE;
        }
        if (r.frames() != null) {
            byte[][] f = r.frames();
            GifWriter.write(dir.resolve(SampleOutputs.GIF), f.length, fi -> {
                putCompletions(tiles, f[fi], k, perImage, chw);
                return ImageGrid.grid(tiles, k * cols, c, h, w, cols);
            }, SampleOutputs.GIF_DELAY_CS, SampleOutputs.GIF_LAST_DELAY_CS);
        }
        byte[] finalPx = new byte[k * perImage * chw];
        ImageGrid.quantize(r.samples().f32(), 0, finalPx, 0, finalPx.length, sampler.logitSpace());
        putCompletions(tiles, finalPx, k, perImage, chw);
        SampleOutputs.png(dir.resolve(SampleOutputs.INPAINT_PNG), ImageGrid.grid(tiles, k * cols, c, h, w, cols));
        AtomicFiles.writeString(dir.resolve(SampleOutputs.TIMING), r.timing().toJson(timingExtra));
    }

    /** Copies the completions' display bytes [K P, CHW] into tile columns 2.. of every row. */
    private static void putCompletions(byte[] tiles, byte[] completions, int k, int perImage, int chw) {
        int cols = perImage + 2;
        for (int i = 0; i < k; i++)
            System.arraycopy(completions, i * perImage * chw, tiles, (i * cols + 2) * chw, perImage * chw);
    }
}
