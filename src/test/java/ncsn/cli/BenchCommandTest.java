package ncsn.cli;

import static ncsn.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import ncsn.cpu.Parallel;
import ncsn.model.CondRefineNetDilated;
import ncsn.model.ModelConfig;
import ncsn.tensor.DType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ncsn bench} on a tiny network (ngf 4, 8x8, batch 2, 1 warm-up + 1 timed step): the JSON
 * keys and their values, the --json file, the heap estimate, and bad input (exit 2, one message).
 */
class BenchCommandTest {
    @TempDir
    Path dir;

    private final int threadsBefore = Parallel.threads();

    @AfterEach
    void restoreThreads() {
        Parallel.setThreads(threadsBefore);
    }

    private static final String[] TINY = {"--ngf", "4", "--channels", "1", "--image-size", "8", "--batch", "2",
            "--steps", "1", "--warmup", "1"};

    /** bench MODE with the tiny defaults; an option in {@code extra} replaces a default of the same name. */
    private static String[] tiny(String mode, String... extra) {
        java.util.List<String> a = new java.util.ArrayList<>(java.util.List.of("bench", mode));
        java.util.List<String> ex = java.util.Arrays.asList(extra);
        for (int i = 0; i < TINY.length; i += 2)
            if (!ex.contains(TINY[i])) a.addAll(java.util.List.of(TINY[i], TINY[i + 1]));
        a.addAll(ex);
        return a.toArray(new String[0]);
    }

    private static void assertSane(JsonObject j, String mode, int forwards) {
        for (String k : BenchCommand.KEYS) assertTrue(j.has(k), "missing key " + k + " in " + j);
        double med = j.get("seconds_per_step_median").getAsDouble(), min = j.get("seconds_per_step_min").getAsDouble();
        assertTrue(min > 0 && min <= med && med < 60, "times " + min + " / " + med);
        assertEquals(2 / med, j.get("images_per_second").getAsDouble(), 1e-3 * (2 / med));
        double gflop = new CondRefineNetDilated(new ModelConfig(1, 4, 10, false), DType.F32).forwardFlopsPerImage(8, 8) / 1e9;
        assertEquals(gflop, j.get("forward_gflop_per_image").getAsDouble(), 1e-5 * gflop);
        assertEquals(forwards * gflop * 2 / med, j.get("achieved_gflops").getAsDouble(), 1e-3 * forwards * gflop * 2 / med);
        long peak = j.get("peak_heap_bytes").getAsLong();
        assertTrue(peak > 0 && peak <= Runtime.getRuntime().maxMemory() * 2, "peak heap " + peak);
        assertEquals(mode, j.get("mode").getAsString());
        assertEquals("cpu", j.get("device").getAsString());
        assertEquals(2, j.get("batch").getAsInt());
        assertEquals(1, j.getAsJsonArray("seconds_per_step").size());
    }

    @Test
    void trainPrintsAndWritesTheJson() throws Exception {
        Path file = dir.resolve("train.json");
        CliRun r = run(tiny("train", "--json", file.toString(), "--threads", "1"));
        assertEquals(0, r.code(), r.err());
        JsonObject printed = JsonParser.parseString(r.out().trim()).getAsJsonObject();
        assertSane(printed, "train", 3);
        assertEquals(1, printed.get("threads").getAsInt());
        assertEquals(1, Parallel.threads());
        JsonObject written = JsonParser.parseString(Files.readString(file)).getAsJsonObject();
        assertEquals(printed, written);
    }

    @Test
    void sampleStep() {
        CliRun r = run(tiny("sample"));
        assertEquals(0, r.code(), r.err());
        assertSane(JsonParser.parseString(r.out().trim()).getAsJsonObject(), "sample", 1);
    }

    @Test
    void threadsAboveTheMachineAreClamped() {
        int max = Runtime.getRuntime().availableProcessors();
        CliRun r = run(tiny("sample", "--threads", String.valueOf(max + 7)));
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("--threads " + (max + 7)) && r.err().contains("using " + max), r.err());
        assertEquals(max, JsonParser.parseString(r.out().trim()).getAsJsonObject().get("threads").getAsInt());
    }

    @Test
    void tooBigForTheHeapIsRefusedBeforeAllocating() {
        // 200000 images of 3x256x256 at ngf 128: terabytes, far above any test JVM's heap.
        CliRun r = run("bench", "train", "--ngf", "8", "--channels", "3", "--image-size", "256", "--batch", "200000");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--batch 200000") && r.err().contains("NCSN_HEAP") && r.err().contains("GiB"), r.err());
        assertFalse(r.err().contains("Exception"), r.err());
        assertEquals("", r.out());
    }

    @Test
    void heapEstimateGrowsWithBatchAndPixels() {
        ModelConfig cfg = new ModelConfig(1, 4, 10, false);
        long small = BenchCommand.estimateHeapBytes(cfg, BenchCommand.Mode.train, 8, 2);
        long bigger = BenchCommand.estimateHeapBytes(cfg, BenchCommand.Mode.train, 8, 4);
        long larger = BenchCommand.estimateHeapBytes(cfg, BenchCommand.Mode.train, 16, 2);
        long sampling = BenchCommand.estimateHeapBytes(cfg, BenchCommand.Mode.sample, 8, 2);
        assertTrue(small > 0 && bigger > small && larger > small, small + " " + bigger + " " + larger);
        assertTrue(sampling < small, "sampling keeps no activations for backward: " + sampling + " vs " + small);
    }

    /**
     * The kernel benchmark harness on the CPU (the same entries as on the GPU, at batch 1): every
     * entry runs and reports a positive time and its rate, and the JSON parses.
     */
    @Test
    void kernelBenchmarksRunOnTheCpu() throws Exception {
        Path file = dir.resolve("kernels.json");
        CliRun r = run("bench", "kernels", "--device", "cpu", "--batch", "1", "--steps", "1", "--warmup", "0",
                "--json", file.toString());
        assertEquals(0, r.code(), r.err());
        JsonObject j = JsonParser.parseString(Files.readString(file)).getAsJsonObject();
        assertEquals(j, JsonParser.parseString(r.out().trim()).getAsJsonObject());
        assertEquals("cpu", j.get("device").getAsString());
        assertEquals(0, j.get("failed").getAsInt());
        com.google.gson.JsonArray ks = j.getAsJsonArray("kernels");
        // 12 conv shapes x 3 passes, 4 CIN++ x 2, add, elu fwd, elu bwd, langevin, adam
        assertEquals(12 * 3 + 4 * 2 + 5, ks.size(), ks.toString());
        for (var e : ks) {
            JsonObject o = e.getAsJsonObject();
            assertFalse(o.has("error"), o.toString());
            assertTrue(o.get("ms_median").getAsDouble() > 0, o.toString());
            assertTrue(o.has("tflops") || o.has("gb_per_s"), o.toString());
        }
        assertTrue(r.err().contains("conv2d bwd-weight") && r.err().contains("adam"), r.err());
    }

    @Test
    void badInputIsOneMessage() {
        String[][] cases = {
            {"--image-size", "7", "--image-size must be even"},
            {"--batch", "0", "--batch must be at least 1"},
            {"--ngf", "1", "--ngf must be at least 2"},
            {"--steps", "0", "--steps must be at least 1"},
            {"--threads", "0", "--threads must be at least 1"},
        };
        for (String[] c : cases) {
            CliRun r = run(tiny("train", c[0], c[1]));
            assertEquals(2, r.code(), String.join(" ", c));
            assertTrue(r.err().contains(c[2]), r.err());
            assertFalse(r.err().contains("Exception"), r.err());
        }
        if (!ncsn.cuda.CudaProbe.available()) {
            CliRun g = run(tiny("train", "--device", "cuda"));
            assertEquals(2, g.code(), g.err());
            assertTrue(g.err().contains("no usable GPU (" + ncsn.cuda.CudaProbe.reason() + ")"), g.err());
            CliRun k = run("bench", "kernels", "--device", "cuda");
            assertEquals(2, k.code(), k.err());
            assertTrue(k.err().contains("no usable GPU"), k.err());
        }
        CliRun k = run("bench", "kernels");
        assertEquals(2, k.code(), k.err());
        assertTrue(k.err().contains("--device cuda"), k.err());
        CliRun r = run("bench", "fly");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("fly"), r.err());
    }
}
