package ncsn.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import ncsn.cuda.CudaProbe;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ncsn selftest} and {@code ncsn info} on the CPU: the quick selftest passes (every op's
 * first case, the smallest model, ten training steps) and writes its JSON; --gpu without a GPU
 * exits 2 naming the probe's reason; info prints the no-GPU line and exits 0.
 */
class SelftestCommandTest {
    @TempDir
    Path dir;

    @Test
    void quickSelftestPassesOnTheCpu() throws Exception {
        Path json = dir.resolve("selftest.json");
        CliRun r = CliRun.run("selftest", "--quick", "--json", json.toString());
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(r.out().contains(" 0 failed"), r.out());
        for (String check : new String[] {"op cpu f32", "model cpu f32", "train cpu f32", "rng cpu f32", "langevin cpu f32",
            "adam cpu f32"})
            assertTrue(r.out().contains(check), "missing rows for " + check + ":\n" + r.out());
        assertFalse(r.out().contains("FAIL"), r.out());

        JsonObject j = JsonParser.parseString(Files.readString(json)).getAsJsonObject();
        assertEquals("cpu", j.get("device").getAsString());
        assertEquals(0, j.get("failed").getAsInt());
        int rows = j.getAsJsonArray("rows").size();
        assertEquals(rows, j.get("passed").getAsInt());
        // one case per op in OpCatalog, one model and one training row, 2 rng, 2 langevin and 2 adam rows
        long ops = ncsn.ops.OpCatalog.all().stream().map(ncsn.ops.OpCatalog.Case::op).distinct().count();
        assertEquals(ops + 2 + 6, rows, r.out());
        assertTrue(r.out().contains(rows + " passed, 0 failed"), r.out());
    }

    @Test
    void gpuWithoutAGpuExitsTwoWithTheReason() {
        Assumptions.assumeFalse(CudaProbe.available(), "a GPU is present: " + CudaProbe.reason());
        CliRun r = CliRun.run("selftest", "--gpu", "--quick");
        assertEquals(2, r.code(), r.out() + r.err());
        assertTrue(r.err().contains("no usable GPU"), r.err());
        assertTrue(r.err().contains(CudaProbe.reason()), r.err());
    }

    @Test
    void infoPrintsTheNoGpuLine() {
        Assumptions.assumeFalse(CudaProbe.available(), "a GPU is present: " + CudaProbe.reason());
        CliRun r = CliRun.run("info");
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("GPU:         none (" + CudaProbe.reason() + ")"), r.out());
        assertTrue(r.out().contains("Vector API:"), r.out());
        assertTrue(r.out().contains("GPU kernels:"), r.out());
    }

    @Test
    void infoFindsTheKernelNamesInTheFatbin() {
        Assumptions.assumeTrue(CudaProbe.fatbinPresent(), "built without nvcc");
        assertTrue(InfoCommand.kernelNames().contains("add_f32"), InfoCommand.kernelNames().toString());
        assertTrue(InfoCommand.kernelNames().stream().allMatch(n -> n.endsWith("_f32")));
    }
}
