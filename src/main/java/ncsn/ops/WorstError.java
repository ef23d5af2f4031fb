package ncsn.ops;

import java.util.Arrays;
import java.util.Locale;
import ncsn.tensor.Shapes;

/**
 * The worst normalised difference between fast results and their reference over several tensors:
 * error = max |fast - ref| / scale, scale = max(max |ref|, floor) (1 when that is ~0), with the
 * worst element side by side for the message. NaN counts as an infinite difference. Used by
 * {@link OpCatalog}'s checks and by {@code ncsn selftest}.
 */
public final class WorstError {
    private double error;
    private String detail = "";
    private String missing;

    /** Records a comparison that could not be made (e.g. a gradient that was not produced). */
    public void fail(String why) {
        missing = missing == null ? why : missing + "; " + why;
    }

    /** Compares one tensor's values; {@code shape} (may be null) names the worst element's index. */
    public void compare(String name, double[] fast, double[] ref, int[] shape, double floor) {
        if (fast.length != ref.length) {
            fail(name + ": " + fast.length + " values vs " + ref.length);
            return;
        }
        double maxRef = 0;
        for (double v : ref) maxRef = Math.max(maxRef, Math.abs(v));
        double scale = Math.max(maxRef, floor);
        if (!(scale > 1e-12)) scale = 1.0;
        int at = -1;
        double worst = -1;
        for (int i = 0; i < ref.length; i++) {
            double d = Math.abs(fast[i] - ref[i]);
            if (Double.isNaN(d)) d = Double.POSITIVE_INFINITY;
            if (d > worst) {
                worst = d;
                at = i;
            }
        }
        if (at < 0) return;
        double e = worst / scale;
        if (e >= error) {
            error = e;
            String index = shape != null ? Arrays.toString(Shapes.unravel(at, shape)) : "[" + at + "]";
            detail = String.format(Locale.ROOT, "worst: %s%s fast %.8e ref %.8e (|diff| %.2e, scale %.2e)", name, index,
                    fast[at], ref[at], worst, scale);
        }
    }

    public double error() {
        return error;
    }

    /** True when every comparison was made and the worst error is within {@code limit}. */
    public boolean within(double limit) {
        return missing == null && error <= limit;
    }

    /** The failures, or the worst element. */
    public String detail() {
        return missing != null ? missing : detail;
    }
}
