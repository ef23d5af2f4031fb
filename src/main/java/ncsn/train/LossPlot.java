package ncsn.train;

import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * {@code RUN/loss.png}: training and test DSM loss against the step, logarithmic y axis. The
 * per-step training loss is noisy (each step draws new labels and noise), so it is drawn as the
 * mean over buckets of consecutive steps (at most {@link #MAX_POINTS} points); test losses are
 * drawn as measured: the reference's test loss (random labels on one batch) and the mean of the
 * per-level losses on that batch (every level weighted equally: the same expectation with less
 * noise). Written to a temp file and renamed, so a viewer never sees half a PNG.
 */
final class LossPlot {
    static final int MAX_POINTS = 1000;

    static {
        System.setProperty("java.awt.headless", "true"); // no display needed (servers, CI)
    }

    private LossPlot() {}

    static void write(Path png, String title, MetricsLog.LongDoubleList train, MetricsLog.LongDoubleList test,
                      MetricsLog.LongDoubleList levelMean) throws IOException {
        XYChart chart = new XYChartBuilder().width(900).height(540).title(title).xAxisTitle("step")
                .yAxisTitle("DSM loss (log scale)").build();
        chart.getStyler().setYAxisLogarithmic(true);
        // Losses span less than a decade for long stretches: label the ticks between decades too.
        chart.getStyler().setYAxisLogarithmicDecadeOnly(false);
        chart.getStyler().setYAxisDecimalPattern("#,##0.###");
        chart.getStyler().setXAxisDecimalPattern("#,##0");
        chart.getStyler().setLegendPosition(Styler.LegendPosition.InsideNE);
        chart.getStyler().setMarkerSize(5);
        double[][] t = bucketMeans(train);
        if (t[0].length > 0) {
            int per = Math.max(1, (train.size + MAX_POINTS - 1) / MAX_POINTS);
            XYSeries s = chart.addSeries(per == 1 ? "train loss" : "train loss (mean of " + per + " steps)", t[0], t[1]);
            s.setMarker(SeriesMarkers.NONE);
        }
        double[][] v = positive(test);
        if (v[0].length > 0) {
            XYSeries s = chart.addSeries("test loss", v[0], v[1]);
            s.setMarker(SeriesMarkers.CIRCLE);
        }
        double[][] lm = positive(levelMean);
        if (lm[0].length > 0) {
            XYSeries s = chart.addSeries("test loss, mean over levels (same batch)", lm[0], lm[1]);
            s.setMarker(SeriesMarkers.DIAMOND);
        }
        if (t[0].length == 0 && v[0].length == 0) return; // nothing to draw yet
        byte[] bytes = BitmapEncoder.getBitmapBytes(chart, BitmapEncoder.BitmapFormat.PNG);
        Path tmp = png.resolveSibling("." + png.getFileName() + ".tmp");
        Files.write(tmp, bytes);
        try {
            Files.move(tmp, png, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(tmp, png, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /** Means of consecutive buckets of positive, finite values: x = mean step, y = mean loss. */
    static double[][] bucketMeans(MetricsLog.LongDoubleList l) {
        int per = Math.max(1, (l.size + MAX_POINTS - 1) / MAX_POINTS);
        double[] xs = new double[(l.size + per - 1) / per], ys = new double[xs.length];
        int k = 0;
        for (int lo = 0; lo < l.size; lo += per) {
            double sx = 0, sy = 0;
            int n = 0;
            for (int i = lo; i < Math.min(l.size, lo + per); i++) {
                double y = l.values[i];
                if (!(y > 0) || Double.isInfinite(y)) continue;
                sx += l.steps[i];
                sy += y;
                n++;
            }
            if (n == 0) continue;
            xs[k] = sx / n;
            ys[k++] = sy / n;
        }
        return new double[][] {Arrays.copyOf(xs, k), Arrays.copyOf(ys, k)};
    }

    private static double[][] positive(MetricsLog.LongDoubleList l) {
        double[] xs = new double[l.size], ys = new double[l.size];
        int k = 0;
        for (int i = 0; i < l.size; i++) {
            double y = l.values[i];
            if (!(y > 0) || Double.isInfinite(y)) continue;
            xs[k] = l.steps[i];
            ys[k++] = y;
        }
        return new double[][] {Arrays.copyOf(xs, k), Arrays.copyOf(ys, k)};
    }
}
