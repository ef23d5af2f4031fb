package ncsn.io;

import java.io.IOException;
import java.nio.file.Path;

/** A safetensors file that cannot be used; the message names the file and what is wrong with it. */
public final class SafeTensorsException extends IOException {
    private final Path file;

    public SafeTensorsException(Path file, String problem) {
        super(file + ": " + problem);
        this.file = file;
    }

    public Path file() {
        return file;
    }
}
