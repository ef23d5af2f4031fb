package ncsn.train;

import java.io.PrintStream;
import java.time.Duration;
import java.util.Locale;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import ncsn.util.Terminal;

/**
 * Training progress: step, loss, latest test loss, images/s and ETA. On a terminal a progress bar
 * (me.tongfei:progressbar) redrawn in place; otherwise (a log file, a pipe, CI) a plain line after
 * the first step and then every {@link #PLAIN_INTERVAL_NANOS} so logs stay readable. Speeds are
 * measured over the steps since the previous report (the first step includes JIT warm-up and is
 * reported separately).
 */
final class Progress implements AutoCloseable {
    enum Mode { BAR, PLAIN, SILENT }

    static final long PLAIN_INTERVAL_NANOS = 5_000_000_000L;
    private static final long BAR_REFRESH_NANOS = 500_000_000L;

    private final Mode mode;
    private final PrintStream out;
    private final long total, firstStep;
    private final int batchSize;
    private final long t0 = System.nanoTime();
    private ProgressBar bar;
    private long lastReportNanos, lastReportStep;
    /** Images/s of the last report window; NaN before the second report. */
    private double imagesPerSecond = Double.NaN;
    private double lastTest = Double.NaN;
    private long lastTestStep = -1;
    private long firstLineNanos = -1;
    /** Time spent outside training steps (tests, snapshots) since the last report: left out of img/s. */
    private long excludedNanos;
    /** End of the first step (JIT warm-up excluded from the ETA's average), and its step. */
    private long afterFirstNanos = -1;

    /** @param firstStep the step that will run first (1 for a new run, checkpoint step + 1 on resume) */
    Progress(Mode mode, PrintStream out, long firstStep, long total, int batchSize) {
        this.mode = mode;
        this.out = out;
        this.total = total;
        this.firstStep = firstStep;
        this.batchSize = batchSize;
        this.lastReportStep = firstStep - 1;
        this.lastReportNanos = t0;
        if (mode == Mode.BAR) {
            bar = new ProgressBarBuilder().setTaskName("train").setInitialMax(total).setStyle(ProgressBarStyle.ASCII)
                    .setUpdateIntervalMillis(500).setConsumer(new ConsoleProgressBarConsumer(out))
                    .startsFrom(firstStep - 1, Duration.ZERO).build();
        }
    }

    /** BAR when stdout is a terminal, else PLAIN. */
    static Mode autoMode() {
        return Terminal.stdoutIsTerminal() ? Mode.BAR : Mode.PLAIN;
    }


    /** The reference's test loss and the mean of the per-level test losses at a test step. */
    void testLoss(long step, double loss, double levelMean) {
        lastTest = loss;
        lastLevelMean = levelMean;
        lastTestStep = step;
    }

    private double lastLevelMean = Double.NaN;

    /** Called after every step; true when it reported (printed a line or redrew the bar). */
    boolean step(long step, double loss) {
        if (mode == Mode.SILENT) return false;
        long now = System.nanoTime();
        boolean first = step == firstStep;
        long interval = mode == Mode.BAR ? BAR_REFRESH_NANOS : PLAIN_INTERVAL_NANOS;
        if (!first && now - lastReportNanos < interval && step != total) return false;
        if (first) afterFirstNanos = now;
        if (!first && step > lastReportStep) {
            double seconds = Math.max(1e-9, (now - lastReportNanos - excludedNanos) / 1e9);
            imagesPerSecond = (step - lastReportStep) * (double) batchSize / seconds;
        }
        excludedNanos = 0;
        String msg = message(step, loss, now);
        if (mode == Mode.BAR) {
            bar.stepTo(step);
            bar.setExtraMessage(msg);
        } else {
            out.println(line(step, loss, now));
            out.flush();
        }
        if (first) firstLineNanos = now - t0;
        lastReportNanos = now;
        lastReportStep = step;
        return true;
    }

    private String message(long step, double loss, long now) {
        StringBuilder sb = new StringBuilder();
        // The bar shows step/total and (elapsed / ETA) itself; keep this short for 80 columns.
        sb.append(String.format(Locale.ROOT, "loss %.4g", loss));
        if (lastTestStep >= 0) sb.append(String.format(Locale.ROOT, " test %.4g", lastTest));
        if (!Double.isNaN(imagesPerSecond)) sb.append(String.format(Locale.ROOT, " %.0f img/s", imagesPerSecond));
        return sb.toString();
    }

    private String line(long step, double loss, long now) {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "step %d/%d (%.1f%%)  loss %.5g", step, total, 100.0 * step / total, loss));
        if (lastTestStep >= 0)
            sb.append(String.format(Locale.ROOT, "  test %.5g, levels mean %.5g (step %d)", lastTest, lastLevelMean, lastTestStep));
        if (!Double.isNaN(imagesPerSecond)) {
            sb.append(String.format(Locale.ROOT, "  %.1f img/s", imagesPerSecond));
            sb.append("  ETA ").append(duration(eta(step, now)));
        } else if (step == firstStep) {
            sb.append(String.format(Locale.ROOT, "  (first step %.1f s incl. warm-up)", (now - t0) / 1e9));
        }
        return sb.toString();
    }

    /** Seconds left at the average pace since the first step (tests and snapshots included). */
    private double eta(long step, long now) {
        if (afterFirstNanos < 0 || step <= firstStep) return Double.NaN;
        double perStep = (now - afterFirstNanos) / 1e9 / (step - firstStep);
        return (total - step) * perStep;
    }

    /** Time spent on something other than training steps (a test, a snapshot): not counted in img/s. */
    void exclude(long nanos) {
        excludedNanos += nanos;
    }

    static String duration(double seconds) {
        if (!Double.isFinite(seconds) || seconds < 0) return "?";
        long s = Math.round(seconds);
        if (s < 60) return s + "s";
        if (s < 3600) return (s / 60) + "m" + String.format(Locale.ROOT, "%02d", s % 60) + "s";
        return (s / 3600) + "h" + String.format(Locale.ROOT, "%02d", (s % 3600) / 60) + "m";
    }

    /** Prints a message on its own line (the bar, if any, redraws below it). */
    void println(String s) {
        if (mode == Mode.SILENT) return;
        if (mode == Mode.BAR) {
            out.print("\r\033[K"); // over the bar's line (ANSI: clear to its end); the bar redraws below
            out.println(s);
        } else {
            out.println(s);
        }
        out.flush();
    }

    /** Seconds from construction to the first progress line; NaN when none was printed. */
    double secondsToFirstLine() {
        return firstLineNanos < 0 ? Double.NaN : firstLineNanos / 1e9;
    }

    double imagesPerSecond() {
        return imagesPerSecond;
    }

    @Override
    public void close() {
        if (bar != null) {
            bar.close();
            bar = null;
        }
    }
}
