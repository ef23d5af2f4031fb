package ncsn.ops;

import java.util.Arrays;
import ncsn.tensor.Device;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;

/** Argument validation shared by the ops: every message names the op and the shapes involved. */
public final class OpChecks {
    private OpChecks() {}

    /** Every tensor is live and (when several) all of one dtype and on one device. Null entries are skipped. */
    public static void live(String op, Tensor... ts) {
        Tensor first = null;
        for (Tensor t : ts) {
            if (t == null) continue;
            t.requireLive(op);
            if (first == null) first = t;
            else if (t.dtype() != first.dtype())
                throw new TensorException(op + ": dtypes differ: " + first.describe() + " vs " + t.describe());
            else if (t.device() != first.device())
                throw new TensorException(op + ": devices differ: " + first.describe() + " on " + first.device()
                        + " vs " + t.describe() + " on " + t.device());
        }
    }

    /** Like {@link #live} and additionally on the CPU: for ops (or paths) that have no GPU kernel. */
    public static void liveCpu(String op, Tensor... ts) {
        live(op, ts);
        for (Tensor t : ts)
            if (t != null && t.device() != Device.CPU)
                throw new TensorException(op + ": " + t.describe() + " is on " + t.device() + "; this op runs on the CPU only");
    }

    /** Requires rank {@code rank}. */
    public static void rank(String op, String what, Tensor t, int rank) {
        if (t.rank() != rank)
            throw new TensorException(op + ": " + what + " must have " + rank + " dimensions, got " + t.describe());
    }

    /** Requires identical shapes. */
    public static void sameShape(String op, Tensor a, Tensor b) {
        if (!a.sameShape(b))
            throw new TensorException(op + ": shapes differ: " + a.describe() + " vs " + b.describe());
    }

    /** Requires {@code labels.length == n} and each label in [0, classes). */
    public static void labels(String op, int[] labels, int n, int classes) {
        if (labels == null || labels.length != n)
            throw new TensorException(op + ": expected " + n + " labels, got " + (labels == null ? "none" : labels.length));
        for (int i = 0; i < n; i++)
            if (labels[i] < 0 || labels[i] >= classes)
                throw new TensorException(op + ": label " + labels[i] + " at position " + i + " is outside [0, " + classes + ")");
    }

    static String shape(int... s) {
        return Arrays.toString(s);
    }
}
