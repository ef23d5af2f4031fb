package ncsn.data;

import java.nio.file.Path;

/**
 * A data set could not be opened or read: a missing, truncated or malformed file, an empty folder,
 * an undecodable image. The message is one paragraph that names the file (or folder) and says what
 * is wrong and, where there is one, what to do about it; it never needs a stack trace to be
 * understood.
 */
public final class DataException extends Exception {
    private static final long serialVersionUID = 1L;

    public DataException(String message) {
        super(message);
    }

    public DataException(String message, Throwable cause) {
        super(message, cause);
    }

    /** "file: problem". */
    static DataException at(Path file, String problem) {
        return new DataException(file + ": " + problem);
    }

    static DataException at(Path file, String problem, Throwable cause) {
        return new DataException(file + ": " + problem, cause);
    }

    /**
     * The unchecked carrier of a {@link DataException}, for the places whose signature cannot
     * declare it: {@link ImageDataset#read} on a lazily decoded image folder and
     * {@link BatchLoader#next()}. Its message is the wrapped exception's message; {@link #data()}
     * (also {@link #getCause()}) gives the checked exception back.
     */
    public static final class Unchecked extends RuntimeException {
        private static final long serialVersionUID = 1L;

        public Unchecked(DataException cause) {
            super(cause.getMessage(), cause);
        }

        public DataException data() {
            return (DataException) getCause();
        }
    }
}
