package ncsn.train;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import ncsn.data.ImageDataset;

/** Tiny deterministic data and configs for the training tests (1 x 8 x 8 images, ngf 4, L 3). */
final class TinyData {
    private TinyData() {}

    /** n images 1x8x8; pixel values k/255 following a per-image pattern (a blob whose place varies). */
    static ImageDataset memory(int n, int salt) {
        return new ImageDataset() {
            public int size() {
                return n;
            }

            public int channels() {
                return 1;
            }

            public int height() {
                return 8;
            }

            public int width() {
                return 8;
            }

            public void read(int index, float[] dst, int offset) {
                int cy = (index * 5 + salt) % 8, cx = (index * 3 + 2 * salt) % 8;
                for (int y = 0; y < 8; y++)
                    for (int x = 0; x < 8; x++) {
                        int d2 = (y - cy) * (y - cy) + (x - cx) * (x - cx);
                        int v = Math.max(0, 255 - 40 * d2);
                        dst[offset + y * 8 + x] = v / 255f;
                    }
            }

            public String describe() {
                return "tiny in-memory set " + salt + ": " + n + " images 1x8x8";
            }
        };
    }

    /**
     * The YAML of a tiny run on {@code dataset} at {@code path} (MNIST IDX files, resized 28 -> 8).
     * Pinned to the CPU (the default, auto, would pick a GPU where there is one): these tests
     * compare bits across runs and processes; the GPU runs are in TrainerGpuTest.
     */
    static String yaml(Path dataPath, int nIters, int snapshotFreq, int testFreq) {
        return String.join("\n",
                "training:",
                "  batch_size: 8",
                "  n_iters: " + nIters,
                "  snapshot_freq: " + snapshotFreq,
                "  test_freq: " + testFreq,
                "  test_batch_size: 4",
                "  keep_snapshots: 100",
                "  seed: 42",
                "  device: cpu",
                "data:",
                "  dataset: MNIST",
                "  image_size: 8",
                "  channels: 1",
                "  path: '" + (dataPath == null ? "/nonexistent" : dataPath.toString()) + "'",
                "model:",
                "  num_classes: 3",
                "  ngf: 4",
                "optim:",
                "  lr: 0.002",
                "");
    }

    static TrainConfig config(int nIters, int snapshotFreq, int testFreq, String... overrides) throws ConfigException {
        return TrainConfig.parse(yaml(null, nIters, snapshotFreq, testFreq), "tiny test config", "tiny", List.of(overrides));
    }

    /** Writes MNIST-format IDX image files (28x28, raw) with n train and m test images into dir. */
    static void writeIdx(Path dir, int n, int m) throws IOException {
        Files.createDirectories(dir);
        Files.write(dir.resolve("train-images-idx3-ubyte"), idx(n, 1));
        Files.write(dir.resolve("t10k-images-idx3-ubyte"), idx(m, 7));
    }

    private static byte[] idx(int n, int salt) {
        ByteBuffer b = ByteBuffer.allocate(16 + n * 784);
        b.putInt(0x00000803).putInt(n).putInt(28).putInt(28);
        for (int i = 0; i < n; i++) {
            int cy = (i * 11 + salt) % 28, cx = (i * 7 + 3 * salt) % 28;
            for (int y = 0; y < 28; y++)
                for (int x = 0; x < 28; x++) {
                    int d2 = (y - cy) * (y - cy) + (x - cx) * (x - cx);
                    b.put((byte) Math.max(0, 255 - 4 * d2));
                }
        }
        return b.array();
    }

    static List<String> lines(Path f) throws IOException {
        return new ArrayList<>(Files.readAllLines(f));
    }
}
