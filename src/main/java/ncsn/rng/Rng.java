package ncsn.rng;

import ncsn.tensor.DType;
import ncsn.tensor.Tensor;

/**
 * A Philox stream with a moving offset: each draw takes the next blocks of (seed, stream). The
 * whole state is three numbers, so a checkpoint can store it and a resumed run continues with
 * exactly the same draws. Streams separate independent uses (data noise, labels, sampling).
 * Fills of float32 CUDA tensors run on the device ({@link Philox.Gpu}) with the same numbers and
 * advance the offset by the same amount, so CPU and GPU runs with one seed share their noise.
 */
public final class Rng {
    private final long seed;
    private final long stream;
    private long offset;

    public Rng(long seed, long stream) {
        this(seed, stream, 0);
    }

    public Rng(long seed, long stream, long offset) {
        this.seed = seed;
        this.stream = stream;
        this.offset = offset;
    }

    public long seed() {
        return seed;
    }

    public long stream() {
        return stream;
    }

    /** Block offset of the next draw. */
    public long offset() {
        return offset;
    }

    /** Fills t with N(0,1) and advances. */
    public Tensor normal(Tensor t) {
        int n = t.numel();
        if (!t.isCpu()) Philox.Gpu.normal(seed, stream, offset, t);
        else if (t.dtype() == DType.F32) Philox.normal(seed, stream, offset, t.f32(), 0, n);
        else Philox.normal(seed, stream, offset, t.f64(), 0, n);
        offset += Philox.blocksFor(n);
        return t;
    }

    /** Fills t with U[0,1) and advances. */
    public Tensor uniform(Tensor t) {
        int n = t.numel();
        if (!t.isCpu()) Philox.Gpu.uniform(seed, stream, offset, t, 0.0, 1.0);
        else if (t.dtype() == DType.F32) Philox.uniform(seed, stream, offset, t.f32(), 0, n);
        else Philox.uniform(seed, stream, offset, t.f64(), 0, n);
        offset += Philox.blocksFor(n);
        return t;
    }

    /** Fills t with U[lo, hi) and advances. */
    public Tensor uniform(Tensor t, double lo, double hi) {
        if (!t.isCpu()) {
            // One fused fill on the device: the same lo + (hi - lo) * u in double as the loop below.
            Philox.Gpu.uniform(seed, stream, offset, t, lo, hi - lo);
            offset += Philox.blocksFor(t.numel());
            return t;
        }
        uniform(t);
        for (int i = 0, n = t.numel(); i < n; i++) t.set(i, lo + (hi - lo) * t.get(i));
        return t;
    }

    /** One uniform integer in [0, bound) (rejection-free: 64 bits of two words modulo bound). */
    public int nextInt(int bound) {
        if (bound <= 0) throw new IllegalArgumentException("nextInt: bound must be positive, got " + bound);
        int[] w = new int[4];
        Philox.block(seed, stream, offset++, w);
        long r = ((w[0] & 0xFFFFFFFFL) << 32 | (w[1] & 0xFFFFFFFFL)) >>> 1;
        return (int) (r % bound);
    }

    /** Fills labels[0..n) with uniform integers in [0, bound), one block per four labels. */
    public void ints(int[] out, int bound) {
        int[] w = new int[4];
        for (int j = 0; j < out.length; j++) {
            if ((j & 3) == 0) Philox.block(seed, stream, offset + (j >> 2), w);
            out[j] = (int) ((w[j & 3] & 0xFFFFFFFFL) * bound >>> 32);
        }
        offset += Philox.blocksFor(out.length);
    }
}
