package ncsn.tensor;

import java.util.Arrays;

/**
 * A misuse of an op: mismatched shapes or dtypes, a freed tensor, a bad argument. The message
 * always names the op and the shapes involved, so the user never has to read engine internals.
 */
public final class TensorException extends IllegalArgumentException {
    public TensorException(String message) {
        super(message);
    }

    /** Throws "op: message" when {@code ok} is false. */
    public static void check(boolean ok, String op, String message) {
        if (!ok) throw new TensorException(op + ": " + message);
    }

    public static String shape(int[] s) {
        return Arrays.toString(s);
    }
}
