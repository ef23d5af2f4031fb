package ncsn.sample;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import ncsn.io.AtomicFiles;
import ncsn.io.SafeTensors;
import ncsn.tensor.Tensor;

/**
 * The files of {@code ncsn sample --out DIR} and {@code ncsn inpaint --out DIR}. Every file is
 * written under a temporary name and renamed ({@link AtomicFiles}); {@link #TIMING} is written
 * last, so its presence means the run completed. Before writing, the previous run's files of these
 * names are removed, the completion marker first, so a directory rewritten half-way never looks
 * complete.
 * <pre>
 *   ncsn sample:   samples/0000.png ...     each sample on its own (8-bit gray or RGB; for FID tools)
 *                  samples.safetensors      x [n,C,H,W] float32, the final unclamped values, + metadata
 *                  chain.gif                (--gif) the chain, a grid per frame
 *                  samples.png              the grid of the final samples
 *                  timing.json              time per step, per 1000-step chain, network share (written last)
 *   ncsn inpaint:  inpainting.safetensors   x [K*P,C,H,W] completions, reference [K,C,H,W], mask [H,W]
 *                  chain.gif, inpainting.png (rows: reference | masked input | P completions), timing.json
 * </pre>
 */
public final class SampleOutputs {
    public static final String SAMPLES_DIR = "samples", SAMPLES_PNG = "samples.png", SAMPLES_ST = "samples.safetensors",
            GIF = "chain.gif", TIMING = "timing.json", INPAINT_PNG = "inpainting.png", INPAINT_ST = "inpainting.safetensors";
    /** Frame delay of the GIF (hundredths of a second) and the pause on its last frame. */
    public static final int GIF_DELAY_CS = 5, GIF_LAST_DELAY_CS = 200;
    private static final Pattern SAMPLE_PNG = Pattern.compile("\\d{4,}\\.png");

    private SampleOutputs() {}

    /**
     * Checks that DIR is (or can be created as) a writable directory; creates it. Throws an
     * IllegalArgumentException naming it otherwise. Called before any sampling work.
     */
    public static void prepare(Path dir) {
        try {
            if (Files.exists(dir) && !Files.isDirectory(dir))
                throw new IllegalArgumentException("--out " + dir + " exists and is not a directory");
            Files.createDirectories(dir);
            Path probe = Files.createTempFile(dir, ".write-check.", ".tmp");
            Files.delete(probe);
        } catch (IOException | SecurityException e) {
            throw new IllegalArgumentException("--out " + dir + " cannot be created or written (" + e.getClass().getSimpleName()
                    + (e.getMessage() != null ? ": " + e.getMessage() : "") + ")");
        }
    }

    /** File name of sample i of n: 0000.png .. (at least four digits, more when n needs them). */
    public static String sampleName(int i, int n) {
        int digits = Math.max(4, Integer.toString(Math.max(0, n - 1)).length());
        return String.format("%0" + digits + "d.png", i);
    }

    /** Removes the completion marker, then the other summary files and numbered sample PNGs of an earlier run. */
    static void clearPrevious(Path dir, List<String> files, boolean samplePngs) throws IOException {
        Files.deleteIfExists(dir.resolve(TIMING));
        for (String f : files) Files.deleteIfExists(dir.resolve(f));
        Path sd = dir.resolve(SAMPLES_DIR);
        if (samplePngs && Files.isDirectory(sd)) {
            try (Stream<Path> s = Files.list(sd)) {
                for (Path p : s.toList()) if (SAMPLE_PNG.matcher(p.getFileName().toString()).matches()) Files.deleteIfExists(p);
            }
        }
    }

    /** Writes every file of {@code ncsn sample} (see the class comment); metadata goes into samples.safetensors. */
    public static void writeSamples(Path dir, ImageSampler sampler, ImageSampler.Result r, Map<String, String> metadata,
                                    String timingExtra) throws IOException {
        clearPrevious(dir, List.of(SAMPLES_PNG, SAMPLES_ST, GIF), true);
        Tensor x = r.samples();
        int n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3), chw = c * h * w;
        byte[] px = new byte[n * chw];
        ImageGrid.quantize(x.f32(), 0, px, 0, px.length, sampler.logitSpace());
        Path sd = dir.resolve(SAMPLES_DIR);
        Files.createDirectories(sd);
        for (int i = 0; i < n; i++) ImageGrid.writePng(sd.resolve(sampleName(i, n)), ImageGrid.tile(px, i * chw, c, h, w));
        SafeTensors.Writer st = new SafeTensors.Writer().put("x", x);
        metadata.forEach(st::meta);
        st.write(dir.resolve(SAMPLES_ST));
        int cols = ImageGrid.columnsFor(n);
        if (r.frames() != null) {
            byte[][] f = r.frames();
            GifWriter.write(dir.resolve(GIF), f.length, i -> ImageGrid.grid(f[i], n, c, h, w, cols), GIF_DELAY_CS, GIF_LAST_DELAY_CS);
        }
        ImageGrid.writePng(dir.resolve(SAMPLES_PNG), ImageGrid.grid(px, n, c, h, w, cols));
        AtomicFiles.writeString(dir.resolve(TIMING), r.timing().toJson(timingExtra));
    }

    /** Metadata helper: an ordered map from alternating keys and values. */
    public static Map<String, String> meta(String... kv) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i + 1 < kv.length; i += 2) m.put(kv[i], kv[i + 1]);
        return m;
    }

    /** Writes a picture (used by the inpainting outputs). */
    static void png(Path file, BufferedImage img) throws IOException {
        ImageGrid.writePng(file, img);
    }

    /** A JSON string literal. */
    public static String jsonString(String s) {
        StringBuilder sb = new StringBuilder("\"");
        for (char ch : s.toCharArray()) {
            if (ch == '"' || ch == '\\') sb.append('\\').append(ch);
            else if (ch < 0x20) sb.append(String.format("\\u%04x", (int) ch));
            else sb.append(ch);
        }
        return sb.append('"').toString();
    }

    /**
     * timing.json lines for a run on CUDA: the steps replayed as CUDA graphs and, when graphs were
     * given up, why; nothing on the CPU.
     */
    public static String cudaGraphFields(ImageSampler is) {
        if (is.device() == ncsn.tensor.Device.CPU) return "";
        String s = "  \"cuda_graph_replays\": " + is.graphReplays() + ",\n";
        if (is.graphFailure() != null) s += "  \"cuda_graph_failure\": " + jsonString(is.graphFailure()) + ",\n";
        return s;
    }
}
