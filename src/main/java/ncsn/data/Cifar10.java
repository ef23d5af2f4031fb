package ncsn.data;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Reader for the CIFAR-10 binary version ("cifar-10-binary.tar.gz"): each batch file is a
 * sequence of 3073-byte records, one label byte (0..9) then 3072 pixel bytes, the 1024 red, then
 * 1024 green, then 1024 blue values of a 32x32 image in row-major order (so already CHW). The
 * official files hold 10000 records each: data_batch_1..5.bin (train), test_batch.bin (test).
 */
final class Cifar10 {
    static final int RECORD = 3073, PIXELS = 3072;
    static final String SUBDIR = "cifar-10-batches-bin";

    private Cifar10() {}

    static String[] files(boolean train) {
        return train ? new String[] {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
            "data_batch_4.bin", "data_batch_5.bin"} : new String[] {"test_batch.bin"};
    }

    /** Reads and checks one batch file; returns its pixel bytes, records x [3, 32, 32]. */
    static byte[] readBatch(Path file) throws DataException {
        long size;
        try {
            size = Files.size(file);
        } catch (IOException e) {
            throw DataException.at(file, "cannot read: " + e, e);
        }
        if (size == 0) throw DataException.at(file, "empty file (0 bytes); expected 3073-byte CIFAR-10 records");
        if (size % RECORD != 0) {
            if (size % 3074 == 0)
                throw DataException.at(file, "size " + size + " bytes is a multiple of 3074, not 3073: this looks like "
                        + "CIFAR-100 (two label bytes per record), not CIFAR-10");
            throw DataException.at(file, "truncated file: " + size + " bytes is not a whole number of 3073-byte "
                    + "records (" + size / RECORD + " records + " + size % RECORD + " bytes); an official batch "
                    + "holds 10000 records = 30730000 bytes");
        }
        if (size > (long) RECORD * 200_000)
            throw DataException.at(file, "unexpectedly large (" + size + " bytes); a CIFAR-10 batch holds 10000 "
                    + "records = 30730000 bytes");
        byte[] b;
        try {
            b = Files.readAllBytes(file);
        } catch (IOException e) {
            throw DataException.at(file, "cannot read: " + e, e);
        }
        int n = b.length / RECORD;
        byte[] px = new byte[n * PIXELS];
        for (int r = 0; r < n; r++) {
            int label = b[r * RECORD] & 0xFF;
            if (label > 9)
                throw DataException.at(file, "record " + r + " has label byte " + label
                        + "; CIFAR-10 labels are 0..9 (not a CIFAR-10 binary batch?)");
            System.arraycopy(b, r * RECORD + 1, px, r * PIXELS, PIXELS);
        }
        return px;
    }
}
