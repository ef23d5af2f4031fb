package ncsn.sample;

import ncsn.cuda.RequiresGpu;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.atomic.AtomicInteger;
import ncsn.model.CondRefineNetDilated;
import ncsn.ops.AnnealedDsm;
import ncsn.tensor.Device;
import org.junit.jupiter.api.Test;

/**
 * Short sampling and inpainting runs on CUDA against the same runs on the CPU (same seed, hence the
 * same start, Langevin noise and c_i noise): final samples within 1e-3 of max |x|, GIF frames within
 * one grey level, and x on the device at every network call. Skipped, with the probe's reason, on
 * machines without a usable GPU.
 */
@RequiresGpu
class ImageSamplerGpuTest {
    static final double REL = 1e-3;
    static final double[] SIGMAS = AnnealedDsm.sigmas(1.0, 0.05, 3);


    /** The GPU network's score, checking that every call gets device tensors (no host round trip of x). */
    private static ImageSampler gpuSampler(CondRefineNetDilated cpu, AtomicInteger calls) {
        CondRefineNetDilated dev = cpu.to(Device.CUDA);
        ScoreFunction net = ImageSampler.networkScore(dev);
        ScoreFunction checked = (x, level, out) -> {
            assertEquals(Device.CUDA, x.device(), "x stays on the device");
            assertEquals(Device.CUDA, out.device());
            calls.incrementAndGet();
            net.score(x, level, out);
        };
        // Plain launches: the call count below is the plain path's (a graph replay does not call the
        // score function; LangevinGraphGpuTest covers graphs).
        return new ImageSampler(checked, SIGMAS, 1, 8, 8, false).onDevice(Device.CUDA).cudaGraph(false);
    }

    private static void assertClose(ImageSampler.Result cpu, ImageSampler.Result gpu, String what) {
        assertArrayEquals(cpu.samples().shape(), gpu.samples().shape(), what);
        float[] a = cpu.samples().f32(), b = gpu.samples().f32();
        double max = 0, worst = 0;
        int at = 0;
        for (int i = 0; i < a.length; i++) {
            max = Math.max(max, Math.abs(a[i]));
            double d = Math.abs(a[i] - b[i]);
            if (!(d <= worst)) {
                worst = d;
                at = i;
            }
        }
        assertTrue(worst <= REL * max, what + ": worst |gpu - cpu| " + worst + " at " + at + " (cpu " + a[at] + ", gpu " + b[at]
                + ") > " + REL + " x max " + max);
        if (cpu.frames() != null) {
            assertEquals(cpu.frames().length, gpu.frames().length, what + " frames");
            for (int f = 0; f < cpu.frames().length; f++)
                for (int i = 0; i < cpu.frames()[f].length; i++)
                    assertTrue(Math.abs((cpu.frames()[f][i] & 0xFF) - (gpu.frames()[f][i] & 0xFF)) <= 1,
                            what + " frame " + f + " byte " + i + ": " + (cpu.frames()[f][i] & 0xFF) + " vs " + (gpu.frames()[f][i] & 0xFF));
        }
    }

    @Test
    void annealedAndPlainLangevinOnCudaMatchTheCpu() {
        CondRefineNetDilated model = TinyModels.model(1, 3);
        ImageSampler cpu = ImageSampler.forModel(model, SIGMAS, 8);
        AtomicInteger calls = new AtomicInteger();
        ImageSampler gpu = gpuSampler(model, calls);
        // 5 samples in batches of 2 (the last batch holds one): batch offsets of the noise keying.
        ImageSampler.Settings annealed = ImageSampler.Settings.annealed(5, 17, 4, 2e-4, 2, true, true);
        assertClose(cpu.sample(annealed, null), gpu.sample(annealed, null), "annealed, denoised, with frames");
        assertEquals(3 * (3 * 4 + 1), calls.get(), "network calls: 3 batches x (12 steps + denoise)");
        ImageSampler.Settings plain = ImageSampler.Settings.langevin(3, 5, 1, 7, 1e-3, 3, false, false);
        assertClose(cpu.sample(plain, null), gpu.sample(plain, null), "plain Langevin at level 1");
        // forModel on a device model picks the device itself.
        assertEquals(Device.CUDA, ImageSampler.forModel(model.to(Device.CUDA), SIGMAS, 8).device());
    }

    @Test
    void inpaintingOnCudaMatchesTheCpu() {
        CondRefineNetDilated model = TinyModels.model(1, 4);
        ImageSampler cpu = ImageSampler.forModel(model, SIGMAS, 8);
        ImageSampler gpu = gpuSampler(model, new AtomicInteger());
        float[] r = new float[2 * 64];
        for (int i = 0; i < r.length; i++) r[i] = (i * 37 % 101) / 100f;
        ReferenceImages refs = new ReferenceImages(r, 2, "test references");
        InpaintMask mask = InpaintMask.parse("left", 8, 8);
        ImageSampler.Result a = Inpainter.run(cpu, refs, mask, 3, 9, 3, 2e-4, 4, true, null);
        ImageSampler.Result b = Inpainter.run(gpu, refs, mask, 3, 9, 3, 2e-4, 4, true, null);
        assertClose(a, b, "inpainting");
    }
}
