package ncsn.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import ncsn.cli.Main;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code ncsn train} end to end on tiny MNIST-format IDX files: a real SIGKILL and resume, exit codes. */
class TrainCommandTest {
    @TempDir
    Path dir;

    record Run(int code, String err) {}

    private Run cli(String... args) {
        StringWriter err = new StringWriter();
        CommandLine cl = Main.commandLine();
        cl.setErr(new PrintWriter(err, true));
        int code = cl.execute(args);
        return new Run(code, err.toString());
    }

    private Path config(Path data, int nIters, int snapshotFreq, int testFreq) throws Exception {
        Path f = dir.resolve("tiny.yml");
        Files.writeString(f, TinyData.yaml(data, nIters, snapshotFreq, testFreq));
        return f;
    }

    private static Process child(Path log, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "-Xss8m", "-cp", System.getProperty("java.class.path"),
                "ncsn.cli.Main"));
        cmd.addAll(List.of(args));
        return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    }

    @Test
    void aRunKilledWithSigkillResumesToExactlyTheUninterruptedMetrics() throws Exception {
        Path data = dir.resolve("data");
        TinyData.writeIdx(data, 64, 16);
        Path cfg = config(data, 100000, 10, 5);
        Path run = dir.resolve("killed");

        Process p = child(dir.resolve("killed.log"), "train", "--config", cfg.toString(), "--run", run.toString(), "--quiet");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (Checkpoint.list(run).size() < 2) {
            assertTrue(p.isAlive(), () -> "training died early: " + read(dir.resolve("killed.log")));
            assertTrue(System.nanoTime() < deadline, "no second checkpoint within 60 s");
            Thread.sleep(5);
        }
        p.destroyForcibly(); // SIGKILL: no shutdown hooks, buffers lost, maybe mid-write
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        long k = Checkpoint.stepOf(Checkpoint.list(run).get(Checkpoint.list(run).size() - 1));
        assertTrue(k >= 20 && k < 100000, "killed mid-run after checkpoint " + k);
        long end = k + 17; // not a multiple of the snapshot or test cadence

        Process r = child(dir.resolve("resumed.log"), "train", "--config", cfg.toString(), "--run", run.toString(),
                "--resume", "--set", "training.n_iters=" + end);
        assertTrue(r.waitFor(60, TimeUnit.SECONDS), "resume finished");
        String log = read(dir.resolve("resumed.log"));
        assertEquals(0, r.exitValue(), log);
        assertTrue(log.contains("resuming from " + Checkpoint.path(run, k) + " (step " + k + ")"), log);

        // The same run without interruption, in this JVM.
        Path ref = dir.resolve("uninterrupted");
        Trainer.newRun(ref, TrainConfig.load(cfg.toString(), List.of("training.n_iters=" + end))).output(System.out, true).run();
        List<String> want = TinyData.lines(ref.resolve("metrics.csv")), got = TinyData.lines(run.resolve("metrics.csv"));
        assertEquals(end + 1, want.size());
        assertEquals(want, got, "metrics.csv after kill + resume equals the uninterrupted run's");
    }

    @Test
    void exitCodesAndMessages() throws Exception {
        Path data = dir.resolve("data");
        TinyData.writeIdx(data, 32, 8);
        Path cfg = config(data, 6, 3, 3);

        // A loss that overflows stops with exit code 3 naming the step.
        Run nan = cli("train", "--config", cfg.toString(), "--run", dir.resolve("nan").toString(), "--quiet",
                "--set", "optim.lr=1e30", "--set", "training.snapshot_freq=100");
        assertEquals(3, nan.code(), nan.err());
        assertTrue(nan.err().startsWith("ncsn train: Training diverged at step "), nan.err());
        assertTrue(nan.err().contains("No checkpoint was written before it"), nan.err());
        assertTrue(Checkpoint.list(dir.resolve("nan")).isEmpty());

        // A good run, then the same directory again without --resume.
        Path ok = dir.resolve("ok");
        assertEquals(0, cli("train", "--config", cfg.toString(), "--run", ok.toString(), "--quiet").code());
        assertEquals(List.of(3L, 6L), TrainerTest.steps(ok));
        Run again = cli("train", "--config", cfg.toString(), "--run", ok.toString(), "--quiet");
        assertEquals(2, again.code());
        assertTrue(again.err().contains("Refusing to start a new run over them: add --resume"), again.err());
        assertEquals(0, cli("train", "--config", cfg.toString(), "--run", ok.toString(), "--resume", "--quiet",
                "--set", "training.n_iters=9").code());
        assertEquals(9, TinyData.lines(ok.resolve("metrics.csv")).size() - 1);

        // Config errors: one paragraph, exit 2.
        Run bad = cli("train", "--config", cfg.toString(), "--run", dir.resolve("bad").toString(), "--set", "training.batchsize=3");
        assertEquals(2, bad.code());
        assertTrue(bad.err().startsWith("ncsn train: Config " + cfg + ": override '--set training.batchsize=3' names unknown key"),
                bad.err());
        assertEquals(1, bad.err().strip().split("\n").length, "one paragraph: " + bad.err());

        // Missing data: where it looked and how to get it, exit 2, nothing written.
        Path nowhere = dir.resolve("no-fashion");
        Run missing = cli("train", "--run", dir.resolve("fm").toString(), "--set", "data.path=" + nowhere, "--quiet");
        assertEquals(2, missing.code(), missing.err());
        assertTrue(missing.err().contains(nowhere.toString()) && missing.err().contains("apt-get install dataset-fashion-mnist"),
                missing.err());
        assertEquals(1, missing.err().strip().split("\n").length, "one paragraph: " + missing.err());
        assertFalse(Files.exists(dir.resolve("fm")), "nothing written when the data is missing");
    }

    private static String read(Path f) {
        try {
            return Files.readString(f);
        } catch (Exception e) {
            return "(no log: " + e + ")";
        }
    }
}
