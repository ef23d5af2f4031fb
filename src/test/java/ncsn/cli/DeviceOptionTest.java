package ncsn.cli;

import static ncsn.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import ncsn.cuda.CudaProbe;
import ncsn.io.SafeTensors;
import ncsn.sample.TinyModels;
import ncsn.tensor.DType;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --device} of train, sample, inpaint and score on a machine without a usable GPU: cuda is
 * one line naming the probe's reason and exit 2, with nothing written; auto runs on the CPU and
 * gives the CPU's results; an unknown name is exit 2. (Skipped where a GPU is usable: the GPU
 * tests cover that case.)
 */
class DeviceOptionTest {
    @TempDir
    Path dir;

    private static void noGpu() {
        Assumptions.assumeFalse(CudaProbe.available(), "this machine has a usable GPU");
    }

    private static void refused(CliRun r, String prefix) {
        assertEquals(2, r.code(), r.err() + r.out());
        String line = r.err().strip();
        assertFalse(line.contains("\n"), "one line: " + r.err());
        assertTrue(line.startsWith(prefix), line);
        assertTrue(line.contains(CudaProbe.reason()), "names the probe's reason '" + CudaProbe.reason() + "': " + line);
    }

    @Test
    void cudaWithoutAGpuIsOneLineAndExit2() throws Exception {
        noGpu();
        Path w = TinyModels.weightsFile(dir.resolve("w.safetensors"), 1, 3);
        refused(run("sample", "--checkpoint", w.toString(), "--out", dir.resolve("s").toString(), "--device", "cuda"),
                "ncsn sample: --device cuda: CUDA requested but unavailable");
        refused(run("inpaint", "--checkpoint", w.toString(), "--images", "x.safetensors", "--mask", "left",
                "--out", dir.resolve("i").toString(), "--device", "cuda"), "ncsn inpaint: --device cuda: CUDA requested but unavailable");
        refused(run("score", "--checkpoint", w.toString(), "--batch", dir.resolve("b.safetensors").toString(),
                "--out", dir.resolve("o.safetensors").toString(), "--device", "cuda"), "score: --device cuda: CUDA requested but unavailable");
        refused(run("train", "--run", dir.resolve("t").toString(), "--device", "cuda", "--quiet"),
                "ncsn train: training.device = cuda: CUDA requested but unavailable");
        assertFalse(Files.exists(dir.resolve("s")) || Files.exists(dir.resolve("i")) || Files.exists(dir.resolve("o.safetensors"))
                || Files.exists(dir.resolve("t")), "nothing written");
        CliRun bad = run("sample", "--checkpoint", w.toString(), "--out", dir.resolve("s").toString(), "--device", "tpu");
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("--device tpu: expected cpu, cuda or auto"), bad.err());
        CliRun badTrain = run("train", "--run", dir.resolve("t").toString(), "--device", "tpu");
        assertEquals(2, badTrain.code());
        assertTrue(badTrain.err().contains("--device tpu: expected cpu, cuda or auto"), badTrain.err());
    }

    @Test
    void autoWithoutAGpuSamplesOnTheCpuWithTheCpusResults() throws Exception {
        noGpu();
        Path w = TinyModels.weightsFile(dir.resolve("w.safetensors"), 1, 3);
        float[][] x = new float[2][];
        String[] devices = {"cpu", "auto"};
        for (int i = 0; i < 2; i++) {
            Path out = dir.resolve(devices[i]);
            CliRun r = run("sample", "--checkpoint", w.toString(), "--out", out.toString(), "--image-size", "8", "--n", "3",
                    "--steps-per-level", "2", "--seed", "4", "--quiet", "--device", devices[i]);
            assertEquals(0, r.code(), r.err() + r.out());
            SafeTensors.Contents c = SafeTensors.read(out.resolve("samples.safetensors"));
            assertEquals("cpu", c.metadata().get("device"));
            x[i] = c.get("x").toTensor(DType.F32).f32();
        }
        assertArrayEquals(x[0], x[1], "auto without a GPU is the CPU, bit for bit");
    }
}
