package ncsn.io;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;

/**
 * Writes a file so that it is either absent, the previous version, or complete: the bytes go to a
 * hidden temporary file in the same directory ({@code .NAME.XXXX.tmp}), which is flushed, fsynced
 * and closed, then renamed over the target (atomically where the file system allows), and the
 * directory is fsynced so the rename itself survives a crash. On any failure the temporary file is
 * deleted and the target is untouched. Every file the engine writes (checkpoints, samples, plots,
 * metrics snapshots) goes through here.
 */
public final class AtomicFiles {
    /** Writes the content to the stream it is given. */
    @FunctionalInterface
    public interface Content {
        void writeTo(OutputStream out) throws IOException;
    }

    private static final SecureRandom RANDOM = new SecureRandom();

    private AtomicFiles() {}

    public static void write(Path target, Content content) throws IOException {
        Path dir = target.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        // A fresh name (CREATE_NEW), made like any file the user creates (umask permissions, unlike
        // Files.createTempFile's owner-only ones), since it becomes the target.
        Path tmp = dir.resolve("." + target.getFileName() + "." + Long.toHexString(RANDOM.nextLong() >>> 16) + ".tmp");
        boolean done = false;
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                OutputStream out = new BufferedOutputStream(Channels.newOutputStream(ch), 1 << 16);
                content.writeTo(out);
                out.flush();
                ch.force(true);
            }
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
            done = true;
            try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
                d.force(true);
            } catch (IOException ignored) {
                // some file systems cannot open or sync a directory; the data itself is synced
            }
        } finally {
            if (!done) Files.deleteIfExists(tmp);
        }
    }

    public static void writeString(Path target, String text) throws IOException {
        byte[] b = text.getBytes(StandardCharsets.UTF_8);
        write(target, out -> out.write(b));
    }
}
