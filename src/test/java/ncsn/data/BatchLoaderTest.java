package ncsn.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import ncsn.rng.Philox;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Shuffling, flips, dequantisation, logit, resume, threading and errors of the batch loader. */
class BatchLoaderTest {
    static final int N = 37, H = 3, W = 5, B = 8; // 4 full batches per epoch, 5 images dropped each epoch

    /** N images [1, 3, 5]; pixel (i, y, x) = 5i + x: rows increase left to right, x = 2 names the image. */
    static ByteImages ramps() {
        byte[] p = new byte[N * H * W];
        for (int i = 0; i < N; i++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) p[(i * H + y) * W + x] = (byte) (5 * i + x);
        return new ByteImages(p, N, 1, H, W, "ramps");
    }

    static List<float[]> take(BatchLoader l, int n) {
        List<float[]> out = new ArrayList<>();
        for (int k = 0; k < n; k++) {
            BatchLoader.Batch b = l.next();
            assertTrue(b.x().hasShape(B, 1, H, W));
            out.add(b.x().f32().clone());
        }
        return out;
    }

    /**
     * Pixel value behind a dequantised x = (p + u) / 256, u in [0, 1), up to one: float32 rounding
     * can give exactly (p + 1) / 256 when u is within 2^-17 of 1. Use with a margin (imageOf) or
     * through assertPixel.
     */
    static int pixelOf(float x) {
        return (int) Math.floor(x * 256);
    }

    /** x is the dequantisation of pixel p: x * 256 in [p, p + 1] (the upper end by float rounding). */
    static void assertPixel(int p, float x, String what) {
        double v = x * 256.0;
        assertTrue(v >= p && v <= p + 1, what + ": x * 256 = " + v + ", expected pixel " + p);
    }

    /** Image id of image j in a batch: its middle column is 5i + 2 whether flipped or not. */
    static int imageOf(float[] x, int j) {
        return (pixelOf(x[j * H * W + 2]) - 2) / 5;
    }

    @Test
    void sameSeedSameBatchesAndResumeIsExact() {
        ByteImages ds = ramps();
        List<float[]> a, b, c, d, e;
        try (BatchLoader l = new BatchLoader(ds, B, 7, 1, true, false, 0)) {
            a = take(l, 10);
        }
        try (BatchLoader l = new BatchLoader(ds, B, 7, 1, true, false, 0)) {
            b = take(l, 10);
        }
        try (BatchLoader l = new BatchLoader(ds, B, 7, 1, true, false, 4)) { // resume at an epoch start
            BatchLoader.Batch first = l.next();
            assertEquals(4, first.index());
            c = new ArrayList<>(List.of(first.x().f32().clone()));
            c.addAll(take(l, 5));
        }
        try (BatchLoader l = new BatchLoader(ds, B, 7, 1, true, false, 6)) { // mid-epoch
            d = take(l, 4);
        }
        try (BatchLoader l = new BatchLoader(ds, B, 7, 2, true, false, 0)) {
            e = take(l, 1);
        }
        for (int k = 0; k < 10; k++) assertArrayEquals(a.get(k), b.get(k), "batch " + k);
        for (int k = 4; k < 10; k++) assertArrayEquals(a.get(k), c.get(k - 4), "resumed batch " + k);
        for (int k = 6; k < 10; k++) assertArrayEquals(a.get(k), d.get(k - 6), "resumed batch " + k);
        assertFalse(Arrays.equals(a.get(0), e.get(0)), "another stream gives other batches");
    }

    @Test
    void eachEpochIsAPermutationDroppingTheRemainder() {
        try (BatchLoader l = new BatchLoader(ramps(), B, 11, 3, false, false, 0)) {
            assertEquals(4, l.batchesPerEpoch());
            List<List<Integer>> epochs = new ArrayList<>();
            for (int e = 0; e < 3; e++) {
                List<Integer> ids = new ArrayList<>();
                for (int k = 0; k < 4; k++) {
                    BatchLoader.Batch b = l.next();
                    assertEquals(4L * e + k, b.index());
                    for (int j = 0; j < B; j++) ids.add(imageOf(b.x().f32(), j));
                }
                assertEquals(32, new HashSet<>(ids).size(), "32 distinct images in epoch " + e + ": " + ids);
                for (int id : ids) assertTrue(id >= 0 && id < N);
                epochs.add(ids);
            }
            assertNotEquals(epochs.get(0), epochs.get(1));
            assertNotEquals(epochs.get(1), epochs.get(2));
        }
        // the shuffle itself: a permutation, different per epoch and per stream
        int[] p0 = BatchLoader.shuffle(1000, 5, 0, 0), p1 = BatchLoader.shuffle(1000, 5, 0, 1);
        int[] s = p0.clone();
        Arrays.sort(s);
        for (int i = 0; i < 1000; i++) assertEquals(i, s[i]);
        assertFalse(Arrays.equals(p0, p1));
        assertFalse(Arrays.equals(p0, BatchLoader.shuffle(1000, 5, 1, 0)));
        assertArrayEquals(p0, BatchLoader.shuffle(1000, 5, 0, 0));
        // roughly uniform: image 0 lands in each tenth of the order about equally often over 2000 epochs
        int[] where = new int[10];
        for (int e = 0; e < 2000; e++) {
            int[] p = BatchLoader.shuffle(50, 9, 0, e);
            for (int i = 0; i < 50; i++) if (p[i] == 0) where[i / 5]++;
        }
        for (int c : where) assertTrue(c > 140 && c < 260, Arrays.toString(where));
    }

    @Test
    void dequantisationValuesAndRange() {
        ByteImages ds = ramps();
        long seed = 21, stream = 4;
        try (BatchLoader l = new BatchLoader(ds, B, seed, stream, false, false, 0)) {
            double sumFrac = 0;
            int count = 0;
            for (int k = 0; k < 4; k++) {
                BatchLoader.Batch b = l.next();
                float[] x = b.x().f32();
                int[] w = new int[4];
                for (int j = 0; j < x.length; j++) {
                    int img = imageOf(x, j / (H * W)), col = j % W;
                    int p = 5 * img + col; // flip is off
                    // the documented keying: element j of batch k takes word j % 4 of block k << 32 | j / 4
                    if (j % 4 == 0) Philox.block(seed, stream, (long) k << 32 | (j >>> 2), w);
                    double u = Philox.uniformOf(w[j & 3]);
                    float want = (float) (p / 255f * (255.0 / 256.0) + u / 256.0);
                    assertEquals(want, x[j], "batch " + k + " element " + j);
                    assertEquals(p / 256.0 + u / 256.0, x[j], 1e-6);
                    assertTrue(x[j] >= 0 && x[j] < 1);
                    sumFrac += u;
                    count++;
                }
            }
            assertEquals(0.5, sumFrac / count, 0.05);
        }
        // all-white images: x in [255/256, 1), never 1.0 even where float32 rounding would give it
        byte[] white = new byte[64 * 3 * 16 * 16];
        Arrays.fill(white, (byte) 255);
        try (BatchLoader l = new BatchLoader(new ByteImages(white, 64, 3, 16, 16, "white"), 64, 1, 0, true, false, 0)) {
            float lo = 1, hi = 0;
            for (int k = 0; k < 8; k++)
                for (float v : l.next().x().f32()) {
                    lo = Math.min(lo, v);
                    hi = Math.max(hi, v);
                }
            assertTrue(lo >= 255f / 256f && hi < 1f, lo + " .. " + hi);
            assertTrue(hi > 0.9999f, "u reaches close to 1: " + hi);
        }
        // all-black: x = u / 256 in [0, 1/256)
        try (BatchLoader l = new BatchLoader(new ByteImages(new byte[40 * 9], 40, 1, 3, 3, "black"), 40, 1, 0, false, false, 0)) {
            for (float v : l.next().x().f32()) assertTrue(v >= 0 && v < 1f / 256f, "" + v);
        }
    }

    @Test
    void flipOnlyWhenEnabled() {
        ByteImages ds = ramps();
        int flipped = 0, total = 0;
        try (BatchLoader off = new BatchLoader(ds, B, 3, 0, false, false, 0);
                BatchLoader on = new BatchLoader(ds, B, 3, 0, true, false, 0)) {
            for (int k = 0; k < 8; k++) {
                float[] a = off.next().x().f32(), b = on.next().x().f32();
                for (int j = 0; j < B; j++) {
                    int img = imageOf(a, j);
                    assertEquals(img, imageOf(b, j), "same order with and without flips");
                    boolean isFlipped = false;
                    for (int y = 0; y < H; y++)
                        for (int x = 0; x < W; x++) {
                            int e = (j * H + y) * W + x;
                            assertPixel(5 * img + x, a[e], "flip off: never mirrored");
                            if (x == 0) isFlipped = b[e] * 256 > 5 * img + 2;
                            assertPixel(isFlipped ? 5 * img + W - 1 - x : 5 * img + x, b[e], "whole rows mirrored");
                        }
                    if (isFlipped) flipped++;
                    else // an unflipped image gets the same noise as without flips: bitwise equal
                        for (int e = j * H * W; e < (j + 1) * H * W; e++) assertEquals(a[e], b[e]);
                    total++;
                }
            }
        }
        assertTrue(flipped > total / 4 && flipped < 3 * total / 4, flipped + " of " + total + " flipped");
    }

    @Test
    void logitTransform() {
        ByteImages ds = ramps();
        try (BatchLoader plain = new BatchLoader(ds, B, 5, 0, false, false, 2);
                BatchLoader logit = new BatchLoader(ds, B, 5, 0, false, true, 2)) {
            float[] a = plain.next().x().f32(), b = logit.next().x().f32();
            double lam = 1e-6;
            for (int j = 0; j < a.length; j++) {
                double v = lam + (1 - 2 * lam) * a[j];
                double want = Math.log(v) - Math.log1p(-v);
                assertEquals(want, b[j], 1e-6 * Math.max(1, Math.abs(want)));
            }
        }
        // the ends: pixel 0 with u = 0 would be log(lam) - log1p(-lam) = -13.8; values stay finite
        float[] edge = {0f, Math.nextDown(1f), 0.5f};
        BatchLoader.logit(edge);
        assertEquals(Math.log(1e-6) - Math.log1p(-1e-6), edge[0], 1e-4);
        assertTrue(Float.isFinite(edge[1]) && edge[1] > 10, "" + edge[1]);
        assertEquals(0f, edge[2], 1e-6);
    }

    /** A data set whose read fails (or is slow) at chosen indices. */
    static class Faulty implements ImageDataset {
        final ByteImages inner = ramps();
        final int badIndex;
        final long sleepMs;

        Faulty(int badIndex, long sleepMs) {
            this.badIndex = badIndex;
            this.sleepMs = sleepMs;
        }

        public int size() {
            return inner.size();
        }

        public int channels() {
            return 1;
        }

        public int height() {
            return H;
        }

        public int width() {
            return W;
        }

        public void read(int index, float[] dst, int offset) {
            if (sleepMs > 0) {
                long end = System.nanoTime() + sleepMs * 1_000_000;
                while (System.nanoTime() < end) Thread.onSpinWait(); // busy: does not react to interrupts
            }
            if (index == badIndex)
                throw new DataException.Unchecked(new DataException("/data/img" + index + ".png: undecodable image (test)"));
            inner.read(index, dst, offset);
        }

        public String describe() {
            return "faulty test set";
        }
    }

    @Test
    void producerErrorsAreRethrownWithTheirMessage() {
        try (BatchLoader l = new BatchLoader(new Faulty(5, 0), B, 1, 0, false, false, 0)) {
            DataException.Unchecked e = assertThrows(DataException.Unchecked.class, () -> {
                for (int k = 0; k < 8; k++) l.next(); // image 5 is in one of the first 4 (all but 5 of 37 are)
            });
            assertTrue(e.getMessage().contains("/data/img5.png: undecodable image (test)"), e.getMessage());
            assertTrue(e.getMessage().contains("faulty test set"), e.getMessage());
            DataException.Unchecked again = assertThrows(DataException.Unchecked.class, l::next);
            assertEquals(e.getMessage(), again.getMessage());
        }
        ImageDataset broken = new Faulty(-1, 0) {
            @Override
            public void read(int index, float[] dst, int offset) {
                throw new ArithmeticException("boom at " + index);
            }
        };
        try (BatchLoader l = new BatchLoader(broken, B, 1, 0, false, false, 0)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, l::next);
            assertTrue(e.getMessage().contains("boom at") && e.getMessage().contains("batch 0"), e.getMessage());
        }
    }

    private static boolean producerAlive(long stream) {
        for (Thread t : Thread.getAllStackTraces().keySet())
            if (t.getName().equals("ncsn-batch-loader-" + stream) && t.isAlive()) return true;
        return false;
    }

    @Test
    void closeDoesNotDeadlock() throws Exception {
        assertTimeoutPreemptively(Duration.ofSeconds(10), () -> {
            // queue full, producer blocked in put()
            BatchLoader l = new BatchLoader(ramps(), B, 1, 424242, false, false, 0);
            Thread.sleep(100);
            l.close();
            assertFalse(producerAlive(424242));
            l.close(); // idempotent
            assertThrows(IllegalStateException.class, l::next);
            // producer busy inside a slow read
            BatchLoader slow = new BatchLoader(new Faulty(-1, 20), B, 1, 434343, false, false, 0);
            slow.next();
            slow.close();
            assertFalse(producerAlive(434343));
            // a consumer blocked in next() on another thread is not needed to close; closing right away works too
            new BatchLoader(ramps(), B, 1, 444444, true, true, 0).close();
        });
    }

    @Test
    void badArguments() {
        String m = assertThrows(IllegalArgumentException.class, () -> new BatchLoader(ramps(), 38, 1, 0, false, false, 0))
                .getMessage();
        assertTrue(m.contains("38") && m.contains("37 images"), m);
        assertThrows(IllegalArgumentException.class, () -> new BatchLoader(ramps(), 0, 1, 0, false, false, 0));
        assertThrows(IllegalArgumentException.class, () -> new BatchLoader(ramps(), 4, 1, 0, false, false, -1));
    }

    @TempDir
    Path tmp;

    @Test
    void folderWorkersGiveTheSameBatchesAsOneThread() throws Exception {
        for (int i = 0; i < 24; i++) {
            int v = i;
            DatasetsTest.writePng(tmp.resolve(String.format("im%02d.png", i)),
                    DatasetsTest.rgb(12, 10, (x, y) -> (v * 10) << 16 | (x * 20) << 8 | y * 25));
        }
        ImageDataset ds = Datasets.open("FOLDER", tmp, true, 8); // 22 images
        List<float[]> one, many;
        System.setProperty("ncsn.data.workers", "1");
        try (BatchLoader l = new BatchLoader(ds, 6, 2, 0, true, false, 0)) {
            one = new ArrayList<>();
            for (int k = 0; k < 5; k++) one.add(l.next().x().f32().clone());
        } finally {
            System.clearProperty("ncsn.data.workers");
        }
        System.setProperty("ncsn.data.workers", "3");
        try (BatchLoader l = new BatchLoader(ds, 6, 2, 0, true, false, 0)) {
            many = new ArrayList<>();
            for (int k = 0; k < 5; k++) many.add(l.next().x().f32().clone());
        } finally {
            System.clearProperty("ncsn.data.workers");
        }
        for (int k = 0; k < 5; k++) assertArrayEquals(one.get(k), many.get(k), "batch " + k);
        Set<Integer> reds = new HashSet<>();
        for (int j = 0; j < 6; j++) reds.add(pixelOf(one.get(0)[j * 192]) / 10); // red = 10 * image number, +-1
        assertEquals(6, reds.size(), "six different images in batch 0");
    }
}
