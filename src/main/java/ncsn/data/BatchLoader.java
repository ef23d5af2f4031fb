package ncsn.data;

import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import ncsn.rng.Philox;
import ncsn.tensor.DType;
import ncsn.tensor.Tensor;

/**
 * Training (or test) batches of an {@link ImageDataset}, prepared on a background thread, with
 * the preprocessing of the reference's runners/anneal_runner.py.
 *
 * <p>Batch k (0-based) is a pure function of (data set, batchSize, seed, stream, randomFlip,
 * logitTransform, k), so a run resumed with {@code startBatch = k} sees exactly the batches an
 * uninterrupted run would have seen from k on. For batch k, with B = batchSize, N = ds.size() and
 * P = N / B batches per epoch:
 * <ol>
 *   <li>Epoch e = k / P; its order is a Fisher-Yates shuffle of 0..N-1 drawn from Philox. Batch k
 *       takes positions (k % P) * B .. + B of that order. The last N % B images of each epoch's
 *       order are dropped, so every batch has exactly B images (the reference's training loader
 *       keeps a short last batch; its test loader drops it, as here). A different image falls off
 *       each epoch.</li>
 *   <li>Random horizontal flip (when enabled) of image i of the batch, probability 1/2, from one
 *       Philox word per image (like RandomHorizontalFlip(0.5) after the resize).</li>
 *   <li>Uniform dequantisation x = v * 255/256 + u/256 with v = pixel/255 and u ~ U[0,1) per
 *       element (the reference's {@code X / 256. * 255. + torch.rand_like(X) / 256.}): computed in
 *       double and rounded to float32, then clamped to at most 1 - 2^-24 so the range is [0, 1)
 *       (float32 arithmetic as PyTorch does it rounds to exactly 1.0 when pixel = 255 and u is
 *       within 2^-17 of 1).</li>
 *   <li>Logit transform (when enabled), lambda = 1e-6: x = lam + (1 - 2 lam) x; x = log x -
 *       log1p(-x), in double, stored as float32.</li>
 * </ol>
 *
 * <p>Philox keying: key = seed, counter stream = {@code stream} (so a test loader with another
 * stream draws independent numbers), and the 64-bit block offset is split as
 * {@code tag << 62 | index << 32 | block}: tag 0 = dequantisation noise of batch index, element j
 * of the [B, C, H, W] batch in word j % 4 of block j / 4; tag 1 = flip of image i of batch index,
 * word i % 4 of block i / 4, flipped when that word's top bit is 0 (uniform &lt; 1/2); tag 2 =
 * shuffle of epoch index: step t (swapping position N-1-t with a uniform position in
 * [0, N-1-t]) uses the 64-bit number of words 2(t%2), 2(t%2)+1 of block t / 2, modulo N - t.
 * Indices (batch, epoch) must stay below 2^30.
 *
 * <p>Threads: one producer thread keeps a queue of {@value #QUEUE} batches ready. Image folders
 * decoded lazily are read by a small pool ({@code ncsn.data.workers}, default min(4, cores));
 * in-memory data sets are read on the producer thread (default 1 worker). An exception on the
 * producer is rethrown from {@link #next()} (as {@link DataException.Unchecked} for data errors,
 * IllegalStateException otherwise) with the original message. {@link #close()} stops the threads.
 */
public final class BatchLoader implements AutoCloseable {
    /** x: float32 [B, C, H, W], persistent (no scope owns it; the caller may free() it when done). index: batch k. */
    public record Batch(Tensor x, long index) {}

    static final int QUEUE = 3;
    static final double LOGIT_LAMBDA = 1e-6;
    static final long TAG_DEQUANT = 0L, TAG_FLIP = 1L << 62, TAG_SHUFFLE = 2L << 62;
    static final long MAX_INDEX = 1L << 30;
    private static final float BELOW_ONE = Math.nextDown(1f);

    private final ImageDataset ds;
    private final int batchSize, chw;
    private final long seed, stream;
    private final boolean randomFlip, logitTransform;
    private final long batchesPerEpoch;
    private final BlockingQueue<Object> queue = new ArrayBlockingQueue<>(QUEUE);
    private final Thread producer;
    private final ExecutorService workers;
    private final int workerCount;
    private volatile boolean closed;
    private long nextIndex;
    private RuntimeException failure;

    /** The producer's failure, carried through the queue. */
    private record Failure(long index, Throwable error) {}

    public BatchLoader(ImageDataset ds, int batchSize, long seed, long stream, boolean randomFlip,
            boolean logitTransform, long startBatch) {
        if (ds == null) throw new IllegalArgumentException("BatchLoader: data set is null");
        if (batchSize < 1) throw new IllegalArgumentException("BatchLoader: batch size must be >= 1, got " + batchSize);
        if (ds.size() < batchSize)
            throw new IllegalArgumentException("BatchLoader: batch size " + batchSize + " is larger than the data set ("
                    + ds.size() + " images: " + ds.describe() + "); incomplete batches are dropped, so there would be none");
        if (startBatch < 0 || startBatch >= MAX_INDEX)
            throw new IllegalArgumentException("BatchLoader: start batch must be in 0.." + (MAX_INDEX - 1) + ", got " + startBatch);
        long elems = (long) batchSize * ds.channels() * ds.height() * ds.width();
        if (elems > Integer.MAX_VALUE - 16)
            throw new IllegalArgumentException("BatchLoader: a batch of " + batchSize + " images of " + ds.channels() + "x"
                    + ds.height() + "x" + ds.width() + " has more than 2^31 elements");
        this.ds = ds;
        this.batchSize = batchSize;
        this.chw = ds.channels() * ds.height() * ds.width();
        this.seed = seed;
        this.stream = stream;
        this.randomFlip = randomFlip;
        this.logitTransform = logitTransform;
        this.batchesPerEpoch = ds.size() / batchSize;
        this.nextIndex = startBatch;
        int defaultWorkers = ds instanceof FolderImages ? Math.min(4, Runtime.getRuntime().availableProcessors()) : 1;
        this.workerCount = Math.max(1, Integer.getInteger("ncsn.data.workers", defaultWorkers));
        this.workers = workerCount > 1 ? Executors.newFixedThreadPool(workerCount, r -> {
            Thread t = new Thread(r, "ncsn-data-worker");
            t.setDaemon(true);
            return t;
        }) : null;
        this.producer = new Thread(() -> produce(startBatch), "ncsn-batch-loader-" + stream);
        producer.setDaemon(true);
        producer.start();
    }

    public ImageDataset dataset() {
        return ds;
    }

    public int batchSize() {
        return batchSize;
    }

    /** N / B: full batches per epoch (the remainder of each epoch's shuffle is dropped). */
    public long batchesPerEpoch() {
        return batchesPerEpoch;
    }

    /**
     * The next batch (k, k+1, ... from startBatch), waiting for the producer if it is behind.
     * Throws the producer's failure (again on every later call). For one consumer thread.
     */
    public Batch next() {
        if (failure != null) throw failure;
        if (closed) throw new IllegalStateException("BatchLoader.next(): the loader is closed");
        Object o;
        try {
            o = queue.take();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("BatchLoader.next(): interrupted while waiting for batch " + nextIndex, e);
        }
        if (o instanceof Failure f) {
            failure = rethrowable(f);
            throw failure;
        }
        Batch b = (Batch) o;
        if (b.index() != nextIndex) // cannot happen: one producer, one FIFO queue
            throw new IllegalStateException("BatchLoader: got batch " + b.index() + ", expected " + nextIndex);
        nextIndex++;
        return b;
    }

    private RuntimeException rethrowable(Failure f) {
        Throwable e = f.error();
        String where = "while preparing batch " + f.index() + " of " + ds.describe();
        if (e instanceof DataException.Unchecked u)
            return new DataException.Unchecked(new DataException(u.getMessage() + " (" + where + ")", u.data()));
        if (e instanceof OutOfMemoryError)
            return new IllegalStateException("out of memory " + where + " (" + batchSize + "x" + chw
                    + " floats per batch, " + QUEUE + " batches queued); raise the heap, e.g. NCSN_HEAP=16g", e);
        return new IllegalStateException(e + " " + where, e);
    }

    /** Stops the producer and the workers; batches already handed out stay valid. Idempotent. */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        producer.interrupt();
        queue.clear(); // unblocks a producer waiting in put()
        try {
            producer.join(30_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (workers != null) workers.shutdownNow();
        queue.clear();
    }

    // ---- producer -------------------------------------------------------------------------

    private void produce(long start) {
        int[] order = null;
        long orderEpoch = -1;
        for (long k = start; !closed; k++) {
            Object item;
            try {
                if (k >= MAX_INDEX) throw new IllegalStateException("batch index reached 2^30");
                long epoch = k / batchesPerEpoch;
                if (epoch != orderEpoch) {
                    order = shuffle(ds.size(), seed, stream, epoch);
                    orderEpoch = epoch;
                }
                item = new Batch(Tensor.wrap(make(k, order), batchSize, ds.channels(), ds.height(), ds.width()), k);
            } catch (Throwable e) {
                if (closed) return;
                item = new Failure(k, e instanceof java.util.concurrent.ExecutionException ? e.getCause() : e);
            }
            try {
                queue.put(item);
            } catch (InterruptedException e) {
                return;
            }
            if (item instanceof Failure) return;
        }
    }

    /** Batch k as a float array [B, C, H, W], given epoch(k)'s order. */
    float[] make(long k, int[] order) throws Exception {
        float[] x = new float[batchSize * chw];
        int first = (int) ((k % batchesPerEpoch) * batchSize);
        if (workers == null) {
            for (int i = 0; i < batchSize; i++) ds.read(order[first + i], x, i * chw);
        } else {
            Future<?>[] fs = new Future<?>[workerCount];
            for (int w = 0; w < workerCount; w++) {
                int lo = (int) ((long) batchSize * w / workerCount), hi = (int) ((long) batchSize * (w + 1) / workerCount);
                fs[w] = workers.submit(() -> {
                    for (int i = lo; i < hi; i++) ds.read(order[first + i], x, i * chw);
                });
            }
            for (Future<?> f : fs) f.get();
        }
        if (randomFlip) flip(x, k);
        dequantise(x, k);
        if (logitTransform) logit(x);
        return x;
    }

    private void flip(float[] x, long k) {
        int[] w = new int[4];
        int h = ds.height(), wd = ds.width(), rows = ds.channels() * h;
        for (int i = 0; i < batchSize; i++) {
            if ((i & 3) == 0) Philox.block(seed, stream, TAG_FLIP | k << 32 | (i >>> 2), w);
            if (w[i & 3] >>> 31 != 0) continue; // uniform >= 1/2: keep
            for (int r = 0; r < rows; r++) {
                int base = i * chw + r * wd;
                for (int a = base, b = base + wd - 1; a < b; a++, b--) {
                    float t = x[a];
                    x[a] = x[b];
                    x[b] = t;
                }
            }
        }
    }

    private void dequantise(float[] x, long k) {
        int[] w = new int[4];
        long base = TAG_DEQUANT | k << 32;
        for (int j = 0, n = x.length; j < n; j += 4) {
            Philox.block(seed, stream, base + (j >>> 2), w);
            for (int l = 0; l < 4 && j + l < n; l++) {
                float v = (float) (x[j + l] * (255.0 / 256.0) + Philox.uniformOf(w[l]) / 256.0);
                x[j + l] = Math.min(v, BELOW_ONE);
            }
        }
    }

    static void logit(float[] x) {
        for (int j = 0; j < x.length; j++) {
            double v = LOGIT_LAMBDA + (1 - 2 * LOGIT_LAMBDA) * x[j];
            x[j] = (float) (Math.log(v) - Math.log1p(-v));
        }
    }

    /** The order of epoch e: a Fisher-Yates shuffle of 0..n-1 keyed by (seed, stream, e). */
    static int[] shuffle(int n, long seed, long stream, long epoch) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        int[] w = new int[4];
        long base = TAG_SHUFFLE | epoch << 32;
        for (int t = 0; t < n - 1; t++) {
            if ((t & 1) == 0) Philox.block(seed, stream, base + (t >>> 1), w);
            int l = (t & 1) << 1;
            long r = (w[l] & 0xFFFFFFFFL) << 32 | (w[l + 1] & 0xFFFFFFFFL);
            int i = n - 1 - t;
            int j = (int) Long.remainderUnsigned(r, i + 1);
            int tmp = p[i];
            p[i] = p[j];
            p[j] = tmp;
        }
        return p;
    }
}
