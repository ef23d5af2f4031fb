package ncsn.cli;

import ncsn.cuda.RequiresGpu;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import ncsn.io.SafeTensors;
import ncsn.rng.Rng;
import ncsn.sample.TinyModels;
import ncsn.tensor.DType;
import ncsn.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ncsn sample} and {@code ncsn score} with {@code --device cuda} against {@code --device cpu}
 * on a tiny random network: the same files, values within 1e-3 of the largest. Skipped, with the
 * probe's reason, on machines without a usable GPU.
 */
@RequiresGpu
class DeviceCommandsGpuTest {
    static final double REL = 1e-3;

    @TempDir
    Path dir;


    private static void assertClose(float[] cpu, float[] gpu, String what) {
        assertEquals(cpu.length, gpu.length, what);
        double max = 0, worst = 0;
        int at = 0;
        for (int i = 0; i < cpu.length; i++) {
            max = Math.max(max, Math.abs(cpu[i]));
            double d = Math.abs(cpu[i] - gpu[i]);
            if (!(d <= worst)) {
                worst = d;
                at = i;
            }
        }
        assertTrue(worst <= REL * max, what + ": worst |gpu - cpu| " + worst + " at " + at + " (cpu " + cpu[at] + ", gpu " + gpu[at]
                + ") > " + REL + " x max " + max);
    }

    @Test
    void sampleOnCudaMatchesTheCpu() throws Exception {
        Path w = TinyModels.weightsFile(dir.resolve("w.safetensors"), 1, 3);
        float[][] x = new float[2][];
        String[] devices = {"cpu", "cuda"};
        for (int i = 0; i < 2; i++) {
            Path out = dir.resolve(devices[i]);
            CliRun r = CliRun.run("sample", "--checkpoint", w.toString(), "--out", out.toString(),
                    "--image-size", "8", "--n", "5", "--batch", "2", "--steps-per-level", "3", "--seed", "4", "--gif", "--denoise",
                    "--quiet", "--device", devices[i]);
            assertEquals(0, r.code(), r.err() + r.out());
            SafeTensors.Contents c = SafeTensors.read(out.resolve("samples.safetensors"));
            assertEquals(devices[i], c.metadata().get("device"));
            x[i] = c.get("x").toTensor(DType.F32).f32();
        }
        assertClose(x[0], x[1], "samples");
    }

    @Test
    void scoreLossAndGradientsOnCudaMatchTheCpu() throws Exception {
        Path w = TinyModels.weightsFile(dir.resolve("w.safetensors"), 1, 3);
        Tensor xs = new Rng(1, 2).uniform(Tensor.persistent(DType.F32, 3, 1, 8, 8));
        Tensor noise = new Rng(1, 3).normal(Tensor.persistent(DType.F32, 3, 1, 8, 8));
        Path batch = dir.resolve("b.safetensors");
        new SafeTensors.Writer().put("x", xs).put("noise", noise).putLongs("labels", new long[] {0, 2, 1}, 3).write(batch);
        SafeTensors.Contents[] out = new SafeTensors.Contents[2];
        String[] devices = {"cpu", "cuda"};
        for (int i = 0; i < 2; i++) {
            Path o = dir.resolve(devices[i] + ".safetensors");
            CliRun r = CliRun.run("score", "--checkpoint", w.toString(), "--batch", batch.toString(),
                    "--out", o.toString(), "--device", devices[i]);
            assertEquals(0, r.code(), r.err() + r.out());
            out[i] = SafeTensors.read(o);
        }
        assertEquals(out[0].entries().keySet(), out[1].entries().keySet());
        for (String name : out[0].entries().keySet()) {
            float[] a = out[0].get(name).toTensor(DType.F32).f32(), b = out[1].get(name).toTensor(DType.F32).f32();
            assertArrayEquals(out[0].get(name).shape(), out[1].get(name).shape(), name);
            // Gradients of whole parameter tensors: compare against the tensor's own largest value.
            assertClose(a, b, name);
        }
    }
}
