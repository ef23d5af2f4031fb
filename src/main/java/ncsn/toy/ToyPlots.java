package ncsn.toy;

import ncsn.io.AtomicFiles;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import javax.imageio.ImageIO;
import ncsn.tensor.Tensor;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * PNG figures of the toy experiment (XChart, rendered off-screen): scatter plots of samples and
 * a quiver-style field of the exact data score. Every file is written under a temporary name
 * and renamed into place ({@link AtomicFiles}).
 */
public final class ToyPlots {
    /** Pixel size of every figure (square). */
    public static final int SIZE = 640;
    /** Axis range of the scatter plots: the modes at +-5 with unit spread fit with room. */
    public static final double RANGE = 10;
    /** The score field: GRID x GRID arrows over [-8, 8]^2, as the authors' toy figures. */
    public static final int GRID = 21;
    public static final double FIELD_RANGE = 8;

    static {
        // No display is needed (or usually present) to render into an image.
        if (System.getProperty("java.awt.headless") == null) System.setProperty("java.awt.headless", "true");
    }

    private ToyPlots() {}

    /** Scatter plot of points [N, 2] into {@code file} (PNG, SIZE x SIZE). */
    public static void scatter(Path file, String title, Tensor points) throws IOException {
        if (points.rank() != 2 || points.dim(1) != 2)
            throw new IllegalArgumentException("toy plot: expected points [N, 2], got " + points.describe());
        int n = points.dim(0);
        double[] xs = new double[n], ys = new double[n];
        for (int i = 0; i < n; i++) {
            xs[i] = points.get(2 * i);
            ys[i] = points.get(2 * i + 1);
        }
        XYChart chart = square(title, RANGE);
        XYSeries s = chart.addSeries("samples", xs, ys);
        s.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
        s.setMarker(SeriesMarkers.CIRCLE);
        s.setMarkerColor(new Color(31, 119, 180, 160));
        chart.getStyler().setMarkerSize(3);
        write(file, chart);
    }

    /**
     * Arrows of the exact score of the mixture with component std {@code std} on a GRID x GRID
     * grid over [-8, 8]^2. Scores span two orders of magnitude (0 at the modes, ~18 at the far
     * corners), so an arrow's length is proportional to sqrt(|score|), the longest 0.9 of the grid
     * spacing; the direction is exact.
     */
    public static void scoreField(Path file, String title, double std) throws IOException {
        double h = 2 * FIELD_RANGE / (GRID - 1);
        double[][] g = new double[GRID * GRID][2];
        double max = 0;
        for (int i = 0; i < GRID; i++)
            for (int j = 0; j < GRID; j++) {
                double[] s = g[i * GRID + j];
                ToyMixture.score(-FIELD_RANGE + i * h, -FIELD_RANGE + j * h, std, s);
                max = Math.max(max, Math.hypot(s[0], s[1]));
            }
        // One polyline per arrow: tail -> tip -> left barb, tip -> right barb; NaN breaks the line.
        int per = 6;
        double[] xs = new double[GRID * GRID * per], ys = new double[GRID * GRID * per];
        for (int i = 0; i < GRID; i++)
            for (int j = 0; j < GRID; j++) {
                int k = i * GRID + j, o = k * per;
                double x0 = -FIELD_RANGE + i * h, y0 = -FIELD_RANGE + j * h;
                double[] s = g[k];
                double norm = Math.hypot(s[0], s[1]);
                double len = max > 0 ? 0.9 * h * Math.sqrt(norm / max) : 0;
                double ux = norm > 0 ? s[0] / norm : 0, uy = norm > 0 ? s[1] / norm : 0;
                double tx = x0 + len * ux, ty = y0 + len * uy;
                double head = 0.35 * len, c = Math.cos(Math.toRadians(25)), sn = Math.sin(Math.toRadians(25));
                // Barbs: the reversed direction rotated by +-25 degrees.
                double lx = tx - head * (c * ux - sn * uy), ly = ty - head * (sn * ux + c * uy);
                double rx = tx - head * (c * ux + sn * uy), ry = ty - head * (-sn * ux + c * uy);
                double[] px = {x0, tx, lx, tx, rx, Double.NaN}, py = {y0, ty, ly, ty, ry, Double.NaN};
                System.arraycopy(px, 0, xs, o, per);
                System.arraycopy(py, 0, ys, o, per);
            }
        XYChart chart = square(title, FIELD_RANGE + h);
        XYSeries s = chart.addSeries("score", xs, ys);
        s.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
        s.setMarker(SeriesMarkers.NONE);
        s.setLineColor(new Color(40, 40, 40));
        s.setLineStyle(new BasicStroke(1.2f));
        XYSeries modes = chart.addSeries("modes", new double[] {ToyMixture.MEANS[0][0], ToyMixture.MEANS[1][0]},
                new double[] {ToyMixture.MEANS[0][1], ToyMixture.MEANS[1][1]});
        modes.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
        modes.setMarker(SeriesMarkers.DIAMOND);
        modes.setMarkerColor(new Color(214, 39, 40));
        chart.getStyler().setMarkerSize(10);
        write(file, chart);
    }

    private static XYChart square(String title, double range) {
        XYChart chart = new XYChartBuilder().width(SIZE).height(SIZE).title(title).xAxisTitle("x").yAxisTitle("y").build();
        var st = chart.getStyler();
        st.setLegendVisible(false);
        st.setXAxisMin(-range);
        st.setXAxisMax(range);
        st.setYAxisMin(-range);
        st.setYAxisMax(range);
        st.setChartBackgroundColor(Color.WHITE);
        st.setPlotGridLinesVisible(false);
        st.setAntiAlias(true);
        return chart;
    }

    private static void write(Path file, XYChart chart) throws IOException {
        BufferedImage img = BitmapEncoder.getBufferedImage(chart);
        AtomicFiles.write(file, out -> {
            if (!ImageIO.write(img, "png", out)) throw new IOException("no PNG writer available in this JVM");
        });
    }
}
