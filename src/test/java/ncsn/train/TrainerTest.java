package ncsn.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import ncsn.data.ImageDataset;
import ncsn.io.SafeTensors;
import ncsn.tensor.BufferPool;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The training loop on a tiny model (ngf 4, 3 levels, 8x8 images, batch 8): determinism, resume, failures. */
class TrainerTest {
    @TempDir
    Path dir;

    static final ImageDataset TRAIN = TinyData.memory(40, 0), TEST = TinyData.memory(12, 5);

    private Trainer.Result train(Path run, TrainConfig cfg) throws Exception {
        return Trainer.newRun(run, cfg).datasets(TRAIN, TEST).output(System.out, true).run();
    }

    private Trainer.Result resume(Path run, TrainConfig requested, String... sets) throws Exception {
        return Trainer.resume(run, requested, List.of(sets)).datasets(TRAIN, TEST).output(System.out, true).run();
    }

    private static double[] tail(double[] a, int from) {
        double[] out = new double[a.length - from];
        System.arraycopy(a, from, out, 0, out.length);
        return out;
    }

    private static void assertSameBits(double[] want, double[] got, String what) {
        assertEquals(want.length, got.length, what);
        for (int i = 0; i < want.length; i++)
            assertEquals(Double.doubleToRawLongBits(want[i]), Double.doubleToRawLongBits(got[i]),
                    what + ": element " + i + " " + want[i] + " vs " + got[i]);
    }

    @Test
    void sameSeedAndConfigGiveTheSameLossesAndTheLossFalls() throws Exception {
        TrainConfig cfg = TinyData.config(40, 20, 10);
        Trainer.Result a = train(dir.resolve("a"), cfg), b = train(dir.resolve("b"), cfg);
        assertSameBits(a.losses(), b.losses(), "losses of two identical runs");
        assertEquals(Files.readString(dir.resolve("a/metrics.csv")), Files.readString(dir.resolve("b/metrics.csv")));
        Trainer.Result c = train(dir.resolve("c"), TinyData.config(40, 20, 10, "training.seed=43"));
        assertNotEquals(a.losses()[0], c.losses()[0], "another seed draws other labels and noise");
        double first = 0, last = 0;
        for (int i = 0; i < 10; i++) {
            first += a.losses()[i];
            last += a.losses()[30 + i];
        }
        assertTrue(last < 0.8 * first, "the loss falls: first 10 steps " + first / 10 + ", last 10 " + last / 10);
        List<String> rows = TinyData.lines(dir.resolve("a/metrics.csv"));
        assertEquals(MetricsLog.header(3), rows.get(0));
        assertEquals(41, rows.size());
        assertTrue(rows.get(10).matches("10,[^,]+,[^,]+,[^,]+,[^,]+,[^,]+"), "test columns at a test step: " + rows.get(10));
        assertTrue(rows.get(11).matches("11,[^,]+,,,,"), "empty test columns elsewhere: " + rows.get(11));
        assertTrue(Files.size(dir.resolve("a/loss.png")) > 1000, "loss plot written");
        assertEquals(cfg.toYaml(), Files.readString(dir.resolve("a/config.yml")));
    }

    @Test
    void resumingFromAMiddleSnapshotReproducesTheUninterruptedRunBitForBit() throws Exception {
        TrainConfig cfg = TinyData.config(12, 4, 3);
        Path full = dir.resolve("full");
        Trainer.Result a = train(full, cfg);
        assertEquals(List.of(4L, 8L, 12L), steps(full));

        // A run "killed" after step 6: checkpoint 4 on disk, metrics rows up to 6, a stale temp file.
        Path cut = dir.resolve("cut");
        Files.createDirectories(Checkpoint.dir(cut));
        Files.copy(Checkpoint.path(full, 4), Checkpoint.path(cut, 4));
        Files.write(cut.resolve("metrics.csv"), TinyData.lines(full.resolve("metrics.csv")).subList(0, 7));
        Files.writeString(cut.resolve("metrics.csv"), "7,12.5,,,", StandardOpenOption.APPEND); // a row cut short
        Files.writeString(Checkpoint.dir(cut).resolve(".checkpoint_8.safetensors.123.tmp"), "half");

        Trainer.Result b = resume(cut, null);
        assertEquals(5, b.firstStep());
        assertSameBits(tail(a.losses(), 4), b.losses(), "losses of steps 5..12");
        assertEquals(Files.readString(full.resolve("metrics.csv")), Files.readString(cut.resolve("metrics.csv")),
                "metrics.csv of the resumed run equals the uninterrupted one");
        SafeTensors.Contents x = SafeTensors.read(Checkpoint.path(full, 12)), y = SafeTensors.read(Checkpoint.path(cut, 12));
        assertEquals(x.entries().keySet(), y.entries().keySet());
        for (String n : x.entries().keySet())
            assertEquals(x.get(n).data(), y.get(n).data(), "tensor " + n + " of checkpoint 12");
        for (String k : List.of("step", "adam_step", "train_batch", "test_batch", "data_crc32c"))
            assertEquals(x.metadata().get(k), y.metadata().get(k), k);
        try (Stream<Path> s = Files.list(Checkpoint.dir(cut))) {
            assertTrue(s.noneMatch(p -> p.getFileName().toString().endsWith(".tmp")), "stale temp files removed");
        }
    }

    @Test
    void aRunDirectoryWithCheckpointsIsNotOverwrittenWithoutResume() throws Exception {
        Path run = dir.resolve("run");
        train(run, TinyData.config(4, 2, 2));
        byte[] before = Files.readAllBytes(Checkpoint.path(run, 4));
        TrainException e = assertThrows(TrainException.class, () -> train(run, TinyData.config(4, 2, 2)));
        assertEquals(TrainException.USAGE, e.exitCode());
        assertTrue(e.getMessage().contains("already holds 2 checkpoints (newest checkpoint_4.safetensors)")
                && e.getMessage().contains("--resume"), e.getMessage());
        assertArrayEquals(before, Files.readAllBytes(Checkpoint.path(run, 4)));

        TrainException none = assertThrows(TrainException.class, () -> resume(dir.resolve("empty"), null));
        assertTrue(none.getMessage().startsWith("Nothing to resume"), none.getMessage());

        Trainer.Result done = resume(run, null);
        assertTrue(done.alreadyComplete(), "resuming a finished run does nothing");
        Trainer.Result more = resume(run, null, "training.n_iters=6");
        assertEquals(5, more.firstStep());
        assertEquals(6, more.lastStep());
    }

    @Test
    void resumeRefusesToChangeWhatWouldMakeItAnotherExperiment() throws Exception {
        Path run = dir.resolve("run");
        train(run, TinyData.config(4, 2, 2));
        ConfigException e = assertThrows(ConfigException.class,
                () -> resume(run, TinyData.config(8, 2, 2, "training.batch_size=4", "model.ngf=6")));
        assertTrue(e.getMessage().contains("training.batch_size (run: 8, tiny test config: 4)")
                && e.getMessage().contains("model.ngf (run: 4, tiny test config: 6)"), e.getMessage());
        ConfigException s = assertThrows(ConfigException.class, () -> resume(run, null, "training.seed=1"));
        assertTrue(s.getMessage().contains("with --set training.seed=1 (the run has 42): these keys are fixed for a run"),
                s.getMessage());
        resume(run, null, "training.seed=42"); // naming the run's own value is fine (the run is complete: no-op)
        // Resumable keys of the named config are taken: n_iters 8 continues to step 8.
        Trainer.Result r = resume(run, TinyData.config(8, 2, 2));
        assertEquals(8, r.lastStep());
    }

    @Test
    void aNonFiniteLossStopsWithExitCode3AndKeepsTheLastGoodCheckpoint() throws Exception {
        Path run = dir.resolve("nan");
        TrainException e = assertThrows(TrainException.class, () -> Trainer.newRun(run, TinyData.config(20, 2, 100))
                .datasets(TRAIN, TEST).output(System.out, true)
                .afterUpdate((step, params) -> {
                    if (step == 7) params.get("end_conv.bias").f32()[0] = Float.NaN; // poisons step 8's forward
                }).run());
        assertEquals(TrainException.DIVERGED, e.exitCode());
        assertEquals(8, e.step());
        assertTrue(e.getMessage().startsWith("Training diverged at step 8: the training loss is NaN"), e.getMessage());
        assertTrue(e.getMessage().contains("checkpoint_6.safetensors (step 6), is kept"), e.getMessage());
        assertEquals(List.of(2L, 4L, 6L), steps(run));
        Checkpoint.read(Checkpoint.path(run, 6)); // intact

        // Weights that stop being finite at a snapshot step are never written.
        Path run2 = dir.resolve("nan2");
        TrainException f = assertThrows(TrainException.class, () -> Trainer.newRun(run2, TinyData.config(20, 2, 100))
                .datasets(TRAIN, TEST).output(System.out, true)
                .afterUpdate((step, params) -> {
                    if (step == 6) params.get("begin_conv.weight").f32()[3] = Float.POSITIVE_INFINITY;
                }).run());
        assertEquals(6, f.step());
        assertTrue(f.getMessage().contains("weight begin_conv.weight[3] = Infinity is not finite"), f.getMessage());
        assertEquals(List.of(2L, 4L), steps(run2));
    }

    @Test
    void aCorruptNewestCheckpointFallsBackToThePreviousOne() throws Exception {
        Path run = dir.resolve("run");
        Trainer.Result a = train(run, TinyData.config(8, 4, 4));
        byte[] ok8 = Files.readAllBytes(Checkpoint.path(run, 8));
        // Flip one byte in the data section: the format is still valid, the checksum is not.
        byte[] bad = ok8.clone();
        bad[bad.length - 5] ^= 0x40;
        Files.write(Checkpoint.path(run, 8), bad);
        var err = assertThrows(ncsn.io.SafeTensorsException.class, () -> Checkpoint.read(Checkpoint.path(run, 8)));
        assertTrue(err.getMessage().contains("is corrupt: the checksum"), err.getMessage());

        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        Trainer.Result b = Trainer.resume(run, null, List.of()).datasets(TRAIN, TEST)
                .output(new PrintStream(buf, true, StandardCharsets.UTF_8), false).run();
        String out = buf.toString(StandardCharsets.UTF_8);
        assertTrue(out.contains("note: falling back to checkpoint_4.safetensors: the newer checkpoint cannot be used ("
                + Checkpoint.path(run, 8) + ": is corrupt"), out);
        assertSameBits(tail(a.losses(), 4), b.losses(), "steps 5..8 after falling back");
        assertArrayEquals(tail8(ok8), tail8(Files.readAllBytes(Checkpoint.path(run, 8))), "checkpoint 8 rewritten identically");

        // Truncated files are reported by the format check; when none is readable, resume says so.
        Files.write(Checkpoint.path(run, 4), new byte[] {1, 2, 3});
        Files.write(Checkpoint.path(run, 8), java.util.Arrays.copyOf(ok8, ok8.length / 2));
        TrainException e = assertThrows(TrainException.class, () -> resume(run, null));
        assertTrue(e.getMessage().startsWith("Cannot resume: no checkpoint in")
                && e.getMessage().contains(Checkpoint.path(run, 8) + ": ") && e.getMessage().contains(Checkpoint.path(run, 4)
                + ": is 3 bytes long"), e.getMessage());
    }

    /** The data section (last 64 bytes): the header differs in the stored config's comment line. */
    private static byte[] tail8(byte[] f) {
        return java.util.Arrays.copyOfRange(f, f.length - 64, f.length);
    }

    @Test
    void stepTemporariesComeFromThePoolAfterTheFirstSteps() throws Exception {
        List<Long> fresh = new ArrayList<>();
        Trainer.newRun(dir.resolve("pool"), TinyData.config(30, 100, 5)).datasets(TRAIN, TEST).output(System.out, true)
                .onStep((step, loss) -> fresh.add(BufferPool.freshAllocations())).run();
        // Step 5 runs the first test (new shapes); from then on every temporary is a pooled array.
        assertEquals(fresh.get(5), fresh.get(29), "fresh allocations after step 6 vs after step 30: " + fresh);
        assertTrue(fresh.get(0) > 0);
    }

    @Test
    void emaFollowsTheWeightsAndIsWhatSamplingLoads() throws Exception {
        Path run = dir.resolve("ema");
        train(run, TinyData.config(3, 3, 100, "training.ema=true", "training.ema_rate=0.5"));
        Checkpoint.Loaded ck = Checkpoint.read(Checkpoint.path(run, 3));
        assertTrue(ck.hasEma());
        var model = Checkpoint.loadForSampling(Checkpoint.path(run, 3), ncsn.tensor.DType.F32);
        float[] emaW = model.parameters().get("begin_conv.weight").f32();
        float[] raw = ck.contents().get("begin_conv.weight").toTensor(ncsn.tensor.DType.F32).f32();
        float[] stored = ck.contents().get("ema.begin_conv.weight").toTensor(ncsn.tensor.DType.F32).f32();
        assertArrayEquals(stored, emaW, "sampling gets the EMA weights");
        assertFalse(java.util.Arrays.equals(raw, emaW), "EMA lags the raw weights");
    }

    @Test
    void cudaWithoutAGpuIsRefusedWithTheProbesReason() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeFalse(ncsn.cuda.CudaProbe.available(), "this machine has a usable GPU");
        ConfigException e = assertThrows(ConfigException.class,
                () -> train(dir.resolve("gpu"), TinyData.config(2, 2, 2, "training.device=cuda")));
        assertTrue(e.getMessage().startsWith("training.device = cuda: CUDA requested but unavailable on this machine: "
                + ncsn.cuda.CudaProbe.reason()), e.getMessage());
        assertFalse(Files.exists(dir.resolve("gpu")), "nothing written");
        // auto falls back to the CPU.
        Trainer t = Trainer.newRun(dir.resolve("auto"), TinyData.config(1, 1, 100, "training.device=auto")).datasets(TRAIN, TEST)
                .output(System.out, true);
        t.run();
        assertEquals(ncsn.tensor.Device.CPU, t.device());
    }

    @Test
    void dataMustMatchTheConfig() throws Exception {
        ConfigException d = assertThrows(ConfigException.class,
                () -> train(dir.resolve("size"), TinyData.config(2, 2, 2, "data.image_size=16")));
        assertTrue(d.getMessage().contains("data.image_size = 16 do not match the training data (1x8x8"), d.getMessage());
        ConfigException b = assertThrows(ConfigException.class,
                () -> train(dir.resolve("big"), TinyData.config(2, 2, 2, "training.test_batch_size=13")));
        assertTrue(b.getMessage().contains("training.test_batch_size = 13 is larger than the test split (12 images"),
                b.getMessage());
        assertFalse(Files.exists(dir.resolve("size")), "nothing written");
    }

    static List<Long> steps(Path run) throws Exception {
        List<Long> out = new ArrayList<>();
        for (Path p : Checkpoint.list(run)) out.add(Checkpoint.stepOf(p));
        return out;
    }
}
