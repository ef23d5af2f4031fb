package ncsn.build;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

import ncsn.cuda.CudaProbe;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * Build checks: when the build machine has nvcc, the CUDA fatbin must be on the classpath and
 * contain the kernels; CudaProbe must answer on any machine (no GPU here) without throwing.
 */
class FatbinResourceTest {

    private static final String RESOURCE = "ncsn/cuda/ncsn_kernels.fatbin";

    @Test
    void fatbinResourceContainsKernelsWhenNvccIsPresent() throws IOException {
        boolean skipProperty = Boolean.getBoolean("ncsn.cuda.skip");
        boolean nvcc = nvccOnPath();
        if (skipProperty || !nvcc) {
            String why = skipProperty ? "build ran with -Dncsn.cuda.skip=true" : "nvcc not found on PATH";
            System.err.println("[ncsn] FatbinResourceTest skipped: " + why + " (no fatbin expected)");
            Assumptions.assumeTrue(false, why + ": no fatbin expected, skipping");
        }

        byte[] bytes;
        try (InputStream in = getClass().getClassLoader().getResourceAsStream(RESOURCE)) {
            assertNotNull(in, "nvcc is on PATH but " + RESOURCE + " is not on the test classpath"
                    + " (kernels.mk output not added as a resource?)");
            bytes = in.readAllBytes();
        }
        assertTrue(bytes.length > 0, RESOURCE + " is empty");
        // kernels.mk builds with --no-compress, so the ELF string tables of the cubins (and the PTX
        // text) carry the extern "C" kernel names verbatim.
        String text = new String(bytes, StandardCharsets.ISO_8859_1);
        for (String kernel : new String[] {"elu_forward_f32", "elu_backward_f32", "add_f32", "scale_f32"}) {
            assertTrue(text.contains(kernel), "kernel " + kernel + " not found in " + RESOURCE);
        }
        assertTrue(CudaProbe.fatbinPresent());
        assertTrue(CudaProbe.fatbin().length == bytes.length);
    }

    @Test
    void cudaProbeAnswersWithoutThrowing() {
        boolean available = assertDoesNotThrow(CudaProbe::available);
        String reason = assertDoesNotThrow(CudaProbe::reason);
        assertNotNull(reason);
        assertFalse(reason.isBlank(), "CudaProbe.reason() must never be empty");
        if (!available) {
            assertTrue(CudaProbe.deviceCount() == 0);
        }
        // Second call answers from the cached result, still without throwing.
        assertTrue(CudaProbe.available() == available);
        System.err.println("[ncsn] CudaProbe: available=" + available + ", " + reason);
    }

    private static boolean nvccOnPath() {
        try {
            Process p = new ProcessBuilder("nvcc", "--version").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }
}
