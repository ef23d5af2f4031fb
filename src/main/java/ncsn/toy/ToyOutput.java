package ncsn.toy;

import ncsn.io.AtomicFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * The files of {@code ncsn toy --out DIR}: four scatter plots, the score field and toy.json with
 * the fraction of samples nearer (5,5) for each sampler. Each file is written under a temporary
 * name and renamed ({@link AtomicFiles}); toy.json is written last, so its presence means the whole
 * run completed.
 */
public final class ToyOutput {
    public static final String JSON = "toy.json";
    public static final String DATA_PNG = "data.png", LANGEVIN_PNG = "langevin.png", ANNEALED_PNG = "annealed.png",
            LEARNED_PNG = "learned_annealed.png", SCORE_FIELD_PNG = "score_field.png";
    /** Every file a complete run leaves in DIR. */
    public static final List<String> FILES = List.of(DATA_PNG, LANGEVIN_PNG, ANNEALED_PNG, LEARNED_PNG, SCORE_FIELD_PNG, JSON);

    private ToyOutput() {}

    /**
     * Creates DIR if needed and checks that a file can be created in it; throws an
     * IllegalArgumentException naming the directory and the problem otherwise.
     */
    public static Path prepare(Path dir) {
        try {
            if (Files.exists(dir) && !Files.isDirectory(dir))
                throw new IllegalArgumentException("output directory " + dir + " exists and is not a directory");
            Files.createDirectories(dir);
            Path probe = Files.createTempFile(dir, ".write-check.", ".tmp");
            Files.delete(probe);
            return dir;
        } catch (IOException | SecurityException e) {
            throw new IllegalArgumentException("output directory " + dir + " cannot be created or written (" + describe(e) + ")");
        }
    }

    private static String describe(Exception e) {
        String m = e.getMessage();
        return e.getClass().getSimpleName() + (m != null ? ": " + m : "");
    }

    /** The JSON object: {"data": f, "langevin": f, "annealed": f, "learned_annealed": f}. */
    public static String json(ToyExperiment.Result r) {
        return String.format(Locale.ROOT, "{\"data\": %s, \"langevin\": %s, \"annealed\": %s, \"learned_annealed\": %s}%n",
                r.dataFraction(), r.langevinFraction(), r.annealedFraction(), r.learnedAnnealedFraction());
    }

    /** Writes every file of {@link #FILES} into dir (which {@link #prepare} accepted). */
    public static void write(Path dir, ToyExperiment.Result r) throws IOException {
        // A toy.json of an earlier run would make a half-rewritten directory look complete.
        Files.deleteIfExists(dir.resolve(JSON));
        int n = r.config().n();
        ToyPlots.scatter(dir.resolve(DATA_PNG), "Data: " + n + " i.i.d. samples", r.data());
        ToyPlots.scatter(dir.resolve(LANGEVIN_PNG), "Langevin dynamics, exact score", r.langevin());
        ToyPlots.scatter(dir.resolve(ANNEALED_PNG), "Annealed Langevin dynamics, exact scores", r.annealed());
        ToyPlots.scatter(dir.resolve(LEARNED_PNG), "Annealed Langevin dynamics, learned MLP scores", r.learnedAnnealed());
        ToyPlots.scoreField(dir.resolve(SCORE_FIELD_PNG), "Data scores (exact, arrow length ~ sqrt|score|)", ToyMixture.DATA_STD);
        AtomicFiles.writeString(dir.resolve(JSON), json(r));
    }
}
