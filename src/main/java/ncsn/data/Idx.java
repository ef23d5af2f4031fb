package ncsn.data;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.GZIPInputStream;
import java.util.zip.ZipException;

/**
 * Reader for IDX image files (the MNIST / Fashion-MNIST format), raw or gzip-compressed.
 *
 * <p>Layout: a 16-byte big-endian header, magic 0x00000803 (two zero bytes, element type 0x08 =
 * unsigned byte, 3 dimensions), then the dimensions count, rows, cols as int32, then
 * count * rows * cols pixel bytes, row-major, one image after another. Labels files (idx1, magic
 * 0x00000801) are recognised only to say so in the error.
 */
final class Idx {
    static final int IMAGE_MAGIC = 0x00000803;
    static final int HEADER = 16;

    private Idx() {}

    /** Whole file contents, gunzipped when it starts with the gzip magic 1f 8b. */
    static byte[] readAll(Path file) throws DataException {
        byte[] raw;
        try {
            raw = Files.readAllBytes(file);
        } catch (IOException e) {
            throw DataException.at(file, "cannot read: " + e, e);
        }
        if (raw.length >= 2 && (raw[0] & 0xFF) == 0x1f && (raw[1] & 0xFF) == 0x8b) {
            try (InputStream in = new GZIPInputStream(new java.io.ByteArrayInputStream(raw), 1 << 16)) {
                return in.readAllBytes();
            } catch (EOFException e) {
                throw DataException.at(file, "the gzip stream ends early (" + raw.length
                        + " compressed bytes): truncated file, e.g. an interrupted download", e);
            } catch (ZipException e) {
                throw DataException.at(file, "corrupt gzip data (" + e.getMessage() + ")", e);
            } catch (IOException e) {
                throw DataException.at(file, "cannot decompress: " + e, e);
            }
        } else if (file.getFileName().toString().endsWith(".gz")) {
            throw DataException.at(file, "named .gz but is not gzip-compressed (does not start with 1f 8b)");
        }
        return raw;
    }

    /**
     * Parses an idx3-ubyte image file whose images must be rows x cols = expectH x expectW.
     * Returns n images of [1, rows, cols].
     */
    static ByteImages readImages(Path file, int expectH, int expectW, String description) throws DataException {
        byte[] b = readAll(file);
        if (b.length < HEADER)
            throw DataException.at(file, "truncated file: " + b.length
                    + " bytes, shorter than the 16-byte IDX image header");
        int magic = be32(b, 0);
        if (magic != IMAGE_MAGIC) {
            String what = magic == 0x00000801 ? " (this is an idx1-ubyte labels file, not the images)"
                    : (magic >>> 16) != 0 ? " (not an IDX file at all)" : "";
            throw DataException.at(file, String.format(
                    "wrong magic number 0x%08x, expected 0x%08x (IDX, unsigned bytes, 3 dimensions)%s", magic,
                    IMAGE_MAGIC, what));
        }
        int n = be32(b, 4), rows = be32(b, 8), cols = be32(b, 12);
        if (n < 0 || rows <= 0 || cols <= 0)
            throw DataException.at(file, "wrong dimensions: header declares " + n + " images of " + rows + "x"
                    + cols);
        if (rows != expectH || cols != expectW)
            throw DataException.at(file, "wrong dimensions: header declares images of " + rows + "x" + cols
                    + ", expected " + expectH + "x" + expectW);
        long need = (long) n * rows * cols, have = b.length - HEADER;
        if (have < need)
            throw DataException.at(file, "truncated file: the header declares " + n + " images of " + rows + "x"
                    + cols + " = " + need + " bytes after the 16-byte header, but only " + have
                    + " bytes are present (" + have / ((long) rows * cols) + " whole images)");
        if (have > need)
            throw DataException.at(file, "the header declares " + n + " images of " + rows + "x" + cols + " = "
                    + need + " bytes after the 16-byte header, but " + have
                    + " bytes follow it: wrong count in the header or a different file appended");
        if (n == 0) throw DataException.at(file, "the header declares 0 images: empty data set");
        byte[] px = new byte[(int) need];
        System.arraycopy(b, HEADER, px, 0, px.length);
        return new ByteImages(px, n, 1, rows, cols, description);
    }

    static int be32(byte[] b, int o) {
        return (b[o] & 0xFF) << 24 | (b[o + 1] & 0xFF) << 16 | (b[o + 2] & 0xFF) << 8 | (b[o + 3] & 0xFF);
    }
}
