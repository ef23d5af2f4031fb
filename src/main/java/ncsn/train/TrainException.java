package ncsn.train;

/**
 * Training stopped for a reason the user can act on; the message is one paragraph. The exit code
 * is what {@code ncsn train} returns: {@link #USAGE} (2) for bad input (run directory, checkpoint,
 * config/data mismatch), {@link #DIVERGED} (3) when the loss or the weights stopped being finite.
 */
public final class TrainException extends Exception {
    public static final int USAGE = 2;
    public static final int DIVERGED = 3;

    private final int exitCode;
    private final long step;

    public TrainException(String message, int exitCode) {
        this(message, exitCode, -1);
    }

    public TrainException(String message, int exitCode, long step) {
        super(message);
        this.exitCode = exitCode;
        this.step = step;
    }

    public int exitCode() {
        return exitCode;
    }

    /** The step at which training diverged, or -1. */
    public long step() {
        return step;
    }
}
