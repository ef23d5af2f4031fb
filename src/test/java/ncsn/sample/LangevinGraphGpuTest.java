package ncsn.sample;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ncsn.cuda.CudaContext;
import ncsn.cuda.RequiresGpu;
import ncsn.model.CondRefineNetDilated;
import ncsn.ops.AnnealedDsm;
import ncsn.tensor.Device;
import ncsn.tensor.Tensor;
import org.junit.jupiter.api.Test;

/**
 * CUDA graph replay of the Langevin steps ({@link LangevinGraph}) against plain launches, same seed:
 * the samples must be bit-identical (max abs diff 0) and the graph runs must really have replayed
 * steps; a capture that fails falls back to plain launches with the same result. Skipped, with the
 * probe's reason, on machines without a usable GPU.
 */
@RequiresGpu
class LangevinGraphGpuTest {
    static final double[] SIGMAS = AnnealedDsm.sigmas(1.0, 0.05, 3);

    private static float maxAbsDiff(ImageSampler.Result a, ImageSampler.Result b) {
        float[] x = a.samples().f32(), y = b.samples().f32();
        assertEquals(x.length, y.length);
        float worst = 0;
        for (int i = 0; i < x.length; i++) {
            float d = Math.abs(x[i] - y[i]);
            if (!(d <= worst)) worst = Float.isNaN(d) ? Float.POSITIVE_INFINITY : d;
        }
        return worst;
    }

    @Test
    void graphReplayIsBitIdenticalToPlainLaunches() {
        CondRefineNetDilated model = TinyModels.model(1, 3).to(Device.CUDA);
        ImageSampler.Settings[] runs = {
                // 5 samples in batches of 2 (tail batch of 1), denoised, frames read between replays.
                ImageSampler.Settings.annealed(5, 17, 4, 2e-4, 2, true, true),
                ImageSampler.Settings.langevin(3, 5, 1, 7, 1e-3, 3, false, false)};
        for (ImageSampler.Settings st : runs) {
            ImageSampler plain = ImageSampler.forModel(model, SIGMAS, 8).cudaGraph(false);
            ImageSampler graph = ImageSampler.forModel(model, SIGMAS, 8).cudaGraph(true);
            ImageSampler.Result a = plain.sample(st, null), b = graph.sample(st, null);
            assertNull(graph.graphFailure(), st.kind() + ": graphs given up");
            long expected = st.kind() == ImageSampler.Kind.ANNEALED ? 3L * 3 * 3 : 6; // batches x levels x (T - 1)
            assertEquals(expected, graph.graphReplays(), st.kind() + ": replayed steps");
            assertEquals(0, plain.graphReplays());
            assertEquals(0f, maxAbsDiff(a, b), st.kind() + ": max |graph - plain|");
            if (a.frames() != null)
                for (int f = 0; f < a.frames().length; f++)
                    assertTrue(java.util.Arrays.equals(a.frames()[f], b.frames()[f]), st.kind() + " frame " + f);
        }
    }

    @Test
    void inpaintingGraphReplayIsBitIdentical() {
        CondRefineNetDilated model = TinyModels.model(1, 4).to(Device.CUDA);
        float[] r = new float[2 * 64];
        for (int i = 0; i < r.length; i++) r[i] = (i * 37 % 101) / 100f;
        ReferenceImages refs = new ReferenceImages(r, 2, "test references");
        InpaintMask mask = InpaintMask.parse("left", 8, 8);
        ImageSampler plain = ImageSampler.forModel(model, SIGMAS, 8).cudaGraph(false);
        ImageSampler graph = ImageSampler.forModel(model, SIGMAS, 8).cudaGraph(true);
        ImageSampler.Result a = Inpainter.run(plain, refs, mask, 3, 9, 3, 2e-4, 4, false, null);
        ImageSampler.Result b = Inpainter.run(graph, refs, mask, 3, 9, 3, 2e-4, 4, false, null);
        assertNull(graph.graphFailure(), "graphs given up");
        assertTrue(graph.graphReplays() > 0, "replayed steps");
        assertEquals(0f, maxAbsDiff(a, b), "inpainting: max |graph - plain|");
    }

    @Test
    void aFailedCaptureFallsBackToPlainLaunchesWithTheSameResult() {
        CondRefineNetDilated model = TinyModels.model(1, 3).to(Device.CUDA);
        ScoreFunction net = ImageSampler.networkScore(model);
        // Synchronising inside the score is not allowed during capture: the capture must fail.
        ScoreFunction syncing = new ScoreFunction() {
            @Override
            public void score(Tensor x, int level, Tensor out) {
                net.score(x, level, out);
                CudaContext.get().synchronize();
            }

            @Override
            public AutoCloseable prepareCapture(Tensor x, int level) {
                return net.prepareCapture(x, level);
            }
        };
        ImageSampler.Settings st = ImageSampler.Settings.annealed(2, 3, 3, 2e-4, 2, false, false);
        ImageSampler plain = new ImageSampler(net, SIGMAS, 1, 8, 8, false).onDevice(Device.CUDA).cudaGraph(false);
        ImageSampler graph = new ImageSampler(syncing, SIGMAS, 1, 8, 8, false).onDevice(Device.CUDA).cudaGraph(true);
        ImageSampler.Result a = plain.sample(st, null), b = graph.sample(st, null);
        assertNotNull(graph.graphFailure(), "the capture should have failed");
        assertEquals(0, graph.graphReplays());
        assertEquals(0f, maxAbsDiff(a, b), "fallback: max |fallback - plain|");
        // A score function that does not preload its uploads (CIN++'s labels go up inside the capture):
        // the host copy is refused during capture, so it falls back too.
        ScoreFunction unprepared = (x, level, o) -> net.score(x, level, o);
        ImageSampler graph2 = new ImageSampler(unprepared, SIGMAS, 1, 8, 8, false).onDevice(Device.CUDA).cudaGraph(true);
        ImageSampler.Result c = graph2.sample(st, null);
        assertNotNull(graph2.graphFailure(), "the capture with a host upload should have failed");
        assertTrue(graph2.graphFailure().contains("host-to-device"), graph2.graphFailure());
        assertEquals(0f, maxAbsDiff(a, c), "fallback after a refused upload");
        // The stream works after the failed captures, and graphs work again on the next run.
        ImageSampler again = ImageSampler.forModel(model, SIGMAS, 8).cudaGraph(true);
        assertEquals(0f, maxAbsDiff(a, again.sample(st, null)), "graph after a failed capture");
        assertTrue(again.graphReplays() > 0);
    }
}
