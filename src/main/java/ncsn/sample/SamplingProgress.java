package ncsn.sample;

import java.io.PrintStream;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.Locale;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import ncsn.util.Terminal;

/**
 * Progress of a sampling run over batches, levels and steps. On a terminal a progress bar
 * (me.tongfei:progressbar, redrawn in place, on stdout) over all Langevin steps with the batch and
 * level; otherwise (a log, a pipe, tests) a plain line after the first step, then at most every
 * {@link #PLAIN_INTERVAL_NANOS}, and after the last step; silent with --quiet.
 */
public final class SamplingProgress implements ImageSampler.Listener, AutoCloseable {
    public enum Mode { BAR, PLAIN, SILENT }

    static final long PLAIN_INTERVAL_NANOS = 5_000_000_000L;

    private final Mode mode;
    private final PrintWriter out;
    private final int levels, stepsPerLevel;
    private ProgressBar bar;
    private long total;
    private int batches;
    private long started, lastLine;

    /**
     * @param levels        noise levels of a chain (1 for plain Langevin)
     * @param stepsPerLevel steps per level (plain Langevin: all its steps)
     */
    public SamplingProgress(Mode mode, PrintWriter out, int levels, int stepsPerLevel) {
        this.mode = mode;
        this.out = out;
        this.levels = levels;
        this.stepsPerLevel = stepsPerLevel;
    }

    /** SILENT when quiet, else BAR on a terminal and PLAIN otherwise. */
    public static Mode autoMode(boolean quiet) {
        return quiet ? Mode.SILENT : Terminal.stdoutIsTerminal() ? Mode.BAR : Mode.PLAIN;
    }

    @Override
    public void start(long totalSteps, int batches, int chainSteps) {
        this.total = totalSteps;
        this.batches = batches;
        this.started = System.nanoTime();
        if (mode == Mode.BAR)
            bar = new ProgressBarBuilder().setTaskName("sample").setInitialMax(totalSteps).setStyle(ProgressBarStyle.ASCII)
                    .setUpdateIntervalMillis(500).setConsumer(new ConsoleProgressBarConsumer(new PrintStream(System.out, true)))
                    .startsFrom(0, Duration.ZERO).build();
    }

    @Override
    public void step(int batch, int level, int stepInLevel, long done) {
        if (mode == Mode.SILENT) return;
        String where = String.format(Locale.ROOT, "batch %d/%d level %d/%d step %d/%d", batch + 1, batches,
                levels == 1 ? 1 : level + 1, levels, stepInLevel + 1, stepsPerLevel);
        if (mode == Mode.BAR) {
            bar.stepTo(done);
            bar.setExtraMessage(where);
            return;
        }
        long now = System.nanoTime();
        if (done != 1 && done != total && now - lastLine < PLAIN_INTERVAL_NANOS) return;
        lastLine = now;
        double el = (now - started) / 1e9;
        String eta = done > 1 ? String.format(Locale.ROOT, "  ETA %.0f s", el / done * (total - done)) : "";
        out.printf(Locale.ROOT, "sampling: step %d/%d (%.1f%%)  %s  %.1f s%s%n", done, total, 100.0 * done / total, where, el, eta);
        out.flush();
    }

    @Override
    public void finish() {
        close();
    }

    @Override
    public void close() {
        if (bar != null) {
            bar.close();
            bar = null;
        }
    }
}
