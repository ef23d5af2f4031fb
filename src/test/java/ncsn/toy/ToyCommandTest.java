package ncsn.toy;

import ncsn.cli.CliRun;
import static ncsn.cli.CliRun.run;
import ncsn.io.AtomicFiles;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code ncsn toy}: the files it writes and the arguments it refuses. */
class ToyCommandTest {
    @TempDir
    Path tmp;

    /** A short run (small n and steps) writes toy.json with the four fractions and five decodable PNGs. */
    @Test
    void writesJsonAndPlots() throws IOException {
        Path dir = tmp.resolve("nested/out");
        CliRun r = run("toy", "--out", dir.toString(), "--n", "256", "--seed", "3", "--train-steps", "200",
                "--langevin-steps", "100", "--steps-per-level", "20");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("learned_annealed"), r.out());
        JsonObject j = JsonParser.parseString(Files.readString(dir.resolve(ToyOutput.JSON))).getAsJsonObject();
        assertEquals(List.of("data", "langevin", "annealed", "learned_annealed"), List.copyOf(j.keySet()));
        for (String k : j.keySet()) {
            double f = j.get(k).getAsDouble();
            assertTrue(f >= 0 && f <= 1, k + " = " + f);
            assertEquals(0.0, f * 256 - Math.rint(f * 256), 1e-9, k + " is a fraction of 256 samples");
        }
        assertEquals(0.8, j.get("data").getAsDouble(), 0.1);
        for (String name : ToyOutput.FILES) {
            if (!name.endsWith(".png")) continue;
            BufferedImage img = ImageIO.read(dir.resolve(name).toFile());
            assertNotNull(img, name + " decodes as an image");
            assertEquals(ToyPlots.SIZE, img.getWidth(), name);
            assertEquals(ToyPlots.SIZE, img.getHeight(), name);
            assertTrue(distinctColours(img) > 10, name + " is not blank");
        }
        try (Stream<Path> files = Files.list(dir)) {
            List<String> names = files.map(p -> p.getFileName().toString()).sorted().toList();
            assertEquals(ToyOutput.FILES.stream().sorted().toList(), names, "no temporary files left");
        }
        // The same seed again gives the same JSON, byte for byte.
        Path again = tmp.resolve("again");
        assertEquals(0, run("toy", "--out", again.toString(), "--n", "256", "--seed", "3", "--train-steps", "200",
                "--langevin-steps", "100", "--steps-per-level", "20").code());
        assertEquals(Files.readString(dir.resolve(ToyOutput.JSON)), Files.readString(again.resolve(ToyOutput.JSON)));
    }

    private static int distinctColours(BufferedImage img) {
        java.util.HashSet<Integer> c = new java.util.HashSet<>();
        for (int y = 0; y < img.getHeight(); y += 3)
            for (int x = 0; x < img.getWidth(); x += 3) c.add(img.getRGB(x, y));
        return c.size();
    }

    @Test
    void rejectsBadArgumentsWithoutWritingAnything() throws IOException {
        Path dir = tmp.resolve("bad");
        String[][] cases = {
            {"--n", "0"}, {"--n", "-5"}, {"--train-steps", "0"}, {"--langevin-steps", "-1"}, {"--steps-per-level", "0"},
        };
        for (String[] c : cases) {
            CliRun r = run("toy", "--out", dir.toString(), c[0], c[1]);
            assertEquals(CommandLine.ExitCode.USAGE, r.code(), String.join(" ", c));
            assertTrue(r.err().contains(c[0]) && r.err().contains("must be a positive integer"),
                    String.join(" ", c) + " -> " + r.err());
            assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
        }
        assertFalse(Files.exists(dir.resolve(ToyOutput.JSON)));

        // --out is a file, or lies under a file: named in the error.
        Path file = Files.writeString(tmp.resolve("plain.txt"), "x");
        for (Path p : new Path[] {file, file.resolve("sub")}) {
            CliRun r = run("toy", "--out", p.toString(), "--n", "16");
            assertEquals(CommandLine.ExitCode.USAGE, r.code(), r.out());
            assertTrue(r.err().contains(p.toString()) && r.err().contains("output directory"), r.err());
        }
        CliRun missing = run("toy");
        assertEquals(CommandLine.ExitCode.USAGE, missing.code());
        assertTrue(missing.err().contains("--out"), missing.err());
        CliRun notNumber = run("toy", "--out", dir.toString(), "--n", "many");
        assertEquals(CommandLine.ExitCode.USAGE, notNumber.code());
        assertTrue(notNumber.err().contains("--n"), notNumber.err());
    }

    @Test
    void atomicWriteLeavesNothingOnFailure() throws IOException {
        Path target = tmp.resolve("f.bin");
        Files.writeString(target, "old");
        try {
            AtomicFiles.write(target, out -> {
                out.write(new byte[100]);
                throw new IOException("disk full (simulated)");
            });
        } catch (IOException expected) {
            assertTrue(expected.getMessage().contains("simulated"));
        }
        assertEquals("old", Files.readString(target), "the target keeps its old content");
        try (Stream<Path> files = Files.list(tmp)) {
            assertEquals(List.of("f.bin"), files.map(p -> p.getFileName().toString()).toList());
        }
        AtomicFiles.writeString(target, "new");
        assertEquals("new", Files.readString(target));
    }
}
