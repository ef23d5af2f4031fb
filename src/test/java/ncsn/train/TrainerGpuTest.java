package ncsn.train;

import ncsn.cuda.RequiresGpu;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import ncsn.data.ImageDataset;
import ncsn.tensor.DType;
import ncsn.tensor.Device;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Training on CUDA against training on the CPU (same seed, so the same batches, labels and noise):
 * per-step losses within 1e-3 relative over 10 steps, the per-level test losses likewise, EMA on the
 * device, and checkpoints that resume on the other device. Skipped, with the probe's reason, on
 * machines without a usable GPU.
 */
@RequiresGpu
class TrainerGpuTest {
    static final double REL = 1e-3;
    static final ImageDataset TRAIN = TrainerTest.TRAIN, TEST = TrainerTest.TEST;

    @TempDir
    Path dir;


    private Trainer.Result train(Path run, String device, String... sets) throws Exception {
        String[] all = new String[sets.length + 1];
        System.arraycopy(sets, 0, all, 0, sets.length);
        all[sets.length] = "training.device=" + device;
        Trainer t = Trainer.newRun(run, TinyData.config(10, 5, 5, all)).datasets(TRAIN, TEST).output(System.out, true);
        Trainer.Result r = t.run();
        assertEquals(device.equals("cuda") ? Device.CUDA : Device.CPU, t.device());
        return r;
    }

    private static void assertClose(double[] cpu, double[] gpu, String what) {
        assertEquals(cpu.length, gpu.length, what);
        for (int i = 0; i < cpu.length; i++)
            assertTrue(Math.abs(cpu[i] - gpu[i]) <= REL * Math.abs(cpu[i]),
                    what + " " + (i + 1) + ": cpu " + cpu[i] + ", gpu " + gpu[i] + " (relative " + Math.abs(cpu[i] - gpu[i]) / Math.abs(cpu[i])
                            + " > " + REL + "); all cpu " + java.util.Arrays.toString(cpu) + " gpu " + java.util.Arrays.toString(gpu));
    }

    /** The metrics.csv columns from index 2 on (test_loss, test_loss_level_*) of the test rows. */
    private static double[] testColumns(Path run) throws Exception {
        List<String> rows = TinyData.lines(run.resolve("metrics.csv"));
        java.util.List<Double> v = new java.util.ArrayList<>();
        for (String row : rows.subList(1, rows.size())) {
            String[] f = row.split(",");
            if (f.length > 2 && !f[2].isEmpty())
                for (int i = 2; i < f.length; i++) v.add(Double.parseDouble(f[i]));
        }
        double[] out = new double[v.size()];
        for (int i = 0; i < out.length; i++) out[i] = v.get(i);
        return out;
    }

    @Test
    void tenStepsOnCudaGiveTheCpuLosses() throws Exception {
        Trainer.Result cpu = train(dir.resolve("cpu"), "cpu", "training.ema=true", "training.ema_rate=0.5");
        Trainer.Result gpu = train(dir.resolve("gpu"), "cuda", "training.ema=true", "training.ema_rate=0.5");
        assertClose(cpu.losses(), gpu.losses(), "training loss, step");
        double[] ct = testColumns(dir.resolve("cpu")), gt = testColumns(dir.resolve("gpu"));
        assertEquals(2 * 4, ct.length, "two test rows of test_loss + 3 levels");
        assertClose(ct, gt, "test loss column");

        // Same file format: weights, Adam's moments and EMA were copied back from the device and are
        // close to the CPU's. Adam turns tiny gradient differences into +-lr steps where a gradient is
        // near zero, so after 10 steps weights and EMA differ by ~0.1-1% (mean), the moments (sums of
        // gradients at those weights) by a few %; a state left on the device or not updated is ~100% off.
        Checkpoint.Loaded a = Checkpoint.read(Checkpoint.path(dir.resolve("cpu"), 10));
        Checkpoint.Loaded b = Checkpoint.read(Checkpoint.path(dir.resolve("gpu"), 10));
        assertEquals(a.contents().entries().keySet(), b.contents().entries().keySet());
        for (String name : a.contents().entries().keySet()) {
            float[] x = a.contents().get(name).toTensor(DType.F32).f32(), y = b.contents().get(name).toTensor(DType.F32).f32();
            double diff = 0, mag = 0;
            for (int i = 0; i < x.length; i++) {
                assertTrue(Float.isFinite(y[i]), name + "[" + i + "] = " + y[i]);
                diff += Math.abs(x[i] - y[i]);
                mag += Math.abs(x[i]);
            }
            double tol = name.startsWith(Checkpoint.OPTIM_PREFIX) ? 0.1 : 1e-2;
            assertTrue(diff <= tol * mag + 1e-6 * x.length, name + ": mean |cpu - gpu| " + diff / x.length + ", mean |cpu| "
                    + mag / x.length + " (tolerance " + tol + " of it)");
        }
        assertEquals(a.position(), b.position());
    }

    @Test
    void aGpuCheckpointResumesOnTheCpuAndTheOtherWayRound() throws Exception {
        Trainer.Result cpu = train(dir.resolve("cpu"), "cpu");
        Path g = dir.resolve("g2c"), c = dir.resolve("c2g");
        java.io.ByteArrayOutputStream header = new java.io.ByteArrayOutputStream();
        Trainer.newRun(g, TinyData.config(5, 5, 5, "training.device=cuda")).datasets(TRAIN, TEST)
                .output(new java.io.PrintStream(header, true, java.nio.charset.StandardCharsets.UTF_8), false).run();
        String printed = header.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(printed.contains("\ngpu:   ") && printed.contains("model, Adam and EMA on the GPU"), printed);
        Trainer.newRun(c, TinyData.config(5, 5, 5, "training.device=cpu")).datasets(TRAIN, TEST).output(System.out, true).run();
        Trainer.Result onCpu = Trainer.resume(g, null, List.of("training.n_iters=10", "training.device=cpu")).datasets(TRAIN, TEST)
                .output(System.out, true).run();
        Trainer.Result onGpu = Trainer.resume(c, null, List.of("training.n_iters=10", "training.device=cuda")).datasets(TRAIN, TEST)
                .output(System.out, true).run();
        double[] tail = java.util.Arrays.copyOfRange(cpu.losses(), 5, 10);
        assertClose(tail, onCpu.losses(), "loss after resuming a GPU checkpoint on the CPU, step 5 +");
        assertClose(tail, onGpu.losses(), "loss after resuming a CPU checkpoint on the GPU, step 5 +");
        assertTrue(Files.exists(Checkpoint.path(g, 10)) && Files.exists(Checkpoint.path(c, 10)));
    }
}
