package ncsn.train;

import java.io.BufferedWriter;
import java.io.Closeable;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code RUN/metrics.csv}: one row per training step,
 * {@code step,loss,test_loss,test_loss_level_0,...,test_loss_level_{L-1}}; the test columns are
 * empty except at test steps. Values are float32 in Java's shortest round-trip form, so the file
 * of a resumed run is byte-identical to that of an uninterrupted one.
 *
 * <p>On resume the rows after the checkpoint's step (written by the interrupted process after
 * its last snapshot) are dropped, and so is a last line cut short by a kill; the file is rewritten
 * atomically before training continues. Rows are buffered and flushed at every progress report
 * and before every checkpoint, so a checkpoint never refers to rows that are not on disk.
 */
final class MetricsLog implements Closeable {
    private final Path file;
    private final int levels;
    private final BufferedWriter out;
    /** In-memory history for the loss plot. */
    private final LongDoubleList train = new LongDoubleList(), test = new LongDoubleList(), levelMean = new LongDoubleList();

    /** A growable (step, value) series. */
    static final class LongDoubleList {
        long[] steps = new long[256];
        double[] values = new double[256];
        int size;

        void add(long s, double v) {
            if (size == steps.length) {
                steps = java.util.Arrays.copyOf(steps, 2 * size);
                values = java.util.Arrays.copyOf(values, 2 * size);
            }
            steps[size] = s;
            values[size++] = v;
        }
    }

    static String header(int levels) {
        StringBuilder sb = new StringBuilder("step,loss,test_loss");
        for (int i = 0; i < levels; i++) sb.append(",test_loss_level_").append(i);
        return sb.toString();
    }

    /**
     * Opens the log: a new run ({@code keepUpTo} < 0) starts the file afresh; a resumed run keeps
     * the rows with step <= keepUpTo and reports how many were dropped via {@link #droppedRows()}.
     */
    MetricsLog(Path file, int levels, long keepUpTo) throws IOException {
        this.file = file;
        this.levels = levels;
        String header = header(levels);
        List<String> kept = new ArrayList<>();
        kept.add(header);
        if (keepUpTo >= 0 && Files.exists(file)) {
            List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
            if (lines.isEmpty() || !lines.get(0).equals(header))
                throw new IOException(file + ": header is not '" + header + "'; it belongs to another config");
            for (int i = 1; i < lines.size(); i++) {
                long step = parseRow(lines.get(i));
                if (step >= 0 && step <= keepUpTo) kept.add(lines.get(i));
                else dropped++;
            }
        }
        Path tmp = file.resolveSibling("." + file.getFileName() + ".tmp");
        Files.write(tmp, kept, StandardCharsets.UTF_8);
        try {
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
        }
        for (int i = 1; i < kept.size(); i++) remember(kept.get(i));
        out = Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.APPEND);
    }

    private int dropped;

    int droppedRows() {
        return dropped;
    }

    int rows() {
        return train.size;
    }

    /** The step of a complete, well-formed row, else -1. */
    private long parseRow(String line) {
        String[] f = line.split(",", -1);
        if (f.length != 3 + levels) return -1;
        try {
            long s = Long.parseLong(f[0]);
            Double.parseDouble(f[1]);
            return s;
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    private void remember(String line) {
        String[] f = line.split(",", -1);
        long s = Long.parseLong(f[0]);
        train.add(s, Double.parseDouble(f[1]));
        if (!f[2].isEmpty()) test.add(s, Double.parseDouble(f[2]));
        if (levels > 0 && !f[3].isEmpty()) {
            double sum = 0;
            for (int i = 0; i < levels; i++) sum += Double.parseDouble(f[3 + i]);
            levelMean.add(s, sum / levels);
        }
    }

    /** Appends the row of one step; {@code levelLosses} null when no test ran at this step. */
    void row(long step, double loss, double testLoss, double[] levelLosses) throws IOException {
        StringBuilder sb = new StringBuilder(32 + 16 * levels);
        sb.append(step).append(',').append(fmt(loss)).append(',');
        if (levelLosses != null) sb.append(fmt(testLoss));
        for (int i = 0; i < levels; i++) {
            sb.append(',');
            if (levelLosses != null) sb.append(fmt(levelLosses[i]));
        }
        sb.append('\n');
        out.write(sb.toString());
        train.add(step, loss);
        if (levelLosses != null) {
            test.add(step, testLoss);
            double sum = 0;
            for (double v : levelLosses) sum += (float) v; // as written to the file
            levelMean.add(step, sum / levels);
        }
    }

    static String fmt(double v) {
        return Float.toString((float) v);
    }

    void flush() throws IOException {
        out.flush();
    }

    LongDoubleList train() {
        return train;
    }

    LongDoubleList test() {
        return test;
    }

    /** Mean of the per-level test losses: the expected test loss under uniform labels, less noisy. */
    LongDoubleList levelMean() {
        return levelMean;
    }

    Path file() {
        return file;
    }

    @Override
    public void close() throws IOException {
        out.close();
    }
}
