package ncsn.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ncsn.tensor.Device;
import ncsn.tensor.DType;
import ncsn.tensor.Tensor;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * What the CUDA backend does on a machine that cannot run it (this build machine): every entry
 * point answers with a {@link CudaError} that names the probe's reason, "auto" falls back to the
 * CPU, and nothing crashes. Plus the pure helpers (grid size, error-name parsing).
 */
class CudaUnavailableTest {

    private static void assumeNoGpu() {
        Assumptions.assumeFalse(CudaProbe.available(),
                "a usable GPU is present (" + CudaProbe.reason() + "): the no-GPU behaviour cannot be checked here");
    }

    @Test
    void contextRequestNamesTheReason() {
        assumeNoGpu();
        CudaError e = assertThrows(CudaError.class, CudaContext::get);
        assertEquals(CudaError.UNAVAILABLE, e.errorName());
        assertTrue(e.getMessage().contains(CudaProbe.reason()), e.getMessage());
        assertTrue(e.getMessage().startsWith("CUDA requested but unavailable"), e.getMessage());
        // asking again gives the same clean answer (no NoClassDefFoundError on the second touch)
        assertEquals(e.getMessage(), assertThrows(CudaError.class, CudaContext::get).getMessage());
    }

    @Test
    void tensorEntryPointsFailCleanly() {
        assumeNoGpu();
        assertEquals(CudaError.UNAVAILABLE, assertThrows(CudaError.class, () -> CudaTensors.empty(2, 3)).errorName());
        Tensor cpu = Tensor.wrap(new float[] {1, 2, 3}, 3);
        assertThrows(CudaError.class, () -> CudaTensors.toDevice(cpu));
        assertThrows(CudaError.class, () -> CudaTensors.to(cpu, Device.CUDA));
        assertTrue(CudaTensors.to(cpu, Device.CPU) == cpu, "moving to the device it is on is the identity");
        // a CPU tensor given to a CUDA kernel: a TensorException, checked before touching the driver
        ncsn.tensor.TensorException te = assertThrows(ncsn.tensor.TensorException.class,
                () -> Launch.kernel("elu_forward_f32").ptr(cpu));
        assertTrue(te.getMessage().contains("expected a CUDA tensor"), te.getMessage());
        assertEquals(DType.F32, cpu.dtype());
    }

    @Test
    void resolveFallsBackOnAutoAndStopsOnCuda() {
        assumeNoGpu();
        assertEquals(Device.CPU, CudaContext.resolve("auto"));
        assertEquals(Device.CPU, CudaContext.resolve(null));
        assertEquals(Device.CPU, CudaContext.resolve("cpu"));
        CudaError e = assertThrows(CudaError.class, () -> CudaContext.resolve("cuda"));
        assertTrue(e.getMessage().contains(CudaProbe.reason()), e.getMessage());
        IllegalArgumentException bad = assertThrows(IllegalArgumentException.class, () -> CudaContext.resolve("tpu"));
        assertTrue(bad.getMessage().contains("'tpu'"), bad.getMessage());
    }

    @Test
    void gridIsCappedAt32BlocksPerSm() {
        assertEquals(1, CudaContext.gridFor(0, 256, 132));
        assertEquals(1, CudaContext.gridFor(1, 256, 132));
        assertEquals(1, CudaContext.gridFor(256, 256, 132));
        assertEquals(2, CudaContext.gridFor(257, 256, 132));
        assertEquals(32 * 132, CudaContext.gridFor(1L << 40, 256, 132));
        assertEquals(32 * 132, CudaContext.gridFor(32L * 132 * 256, 256, 132));
        assertEquals(32 * 132, CudaContext.gridFor(32L * 132 * 256 + 1, 256, 132));
    }

    @Test
    void errorNamesAndHints() {
        assertEquals("CUDA_ERROR_OUT_OF_MEMORY", CudaContext.errorName("CUDA_ERROR_OUT_OF_MEMORY"));
        assertEquals("CUDA_ERROR_LAUNCH_FAILED", CudaContext.errorName(" CUDA_ERROR_LAUNCH_FAILED: more text"));
        assertEquals("CUDA_ERROR_UNKNOWN", CudaContext.errorName(null));
        CudaError e = CudaError.of("cuModuleLoadData", "CUDA_ERROR_NO_BINARY_FOR_GPU");
        assertTrue(e.getMessage().contains("cuModuleLoadData: CUDA_ERROR_NO_BINARY_FOR_GPU")
                && e.getMessage().contains("driver"), e.getMessage());
        assertTrue(CudaError.of("kernel", "CUDA_ERROR_ILLEGAL_ADDRESS").getMessage().contains("ncsn.cuda.sync"));
    }
}
