package ncsn.tensor;

/** Heap arrays: exactly one of {@code f} (float32) or {@code d} (float64) is set. */
public final class CpuStorage extends Storage {
    float[] f;
    double[] d;
    private final DType dtype;
    private final int length;

    CpuStorage(float[] f, boolean pooled) {
        super(pooled);
        this.f = f;
        this.dtype = DType.F32;
        this.length = f.length;
    }

    CpuStorage(double[] d, boolean pooled) {
        super(pooled);
        this.d = d;
        this.dtype = DType.F64;
        this.length = d.length;
    }

    static CpuStorage allocate(DType dtype, int length, boolean pooled, boolean zero) {
        if (dtype == DType.F32) {
            float[] a = pooled ? BufferPool.takeFloats(length) : null;
            if (a == null) a = new float[length];
            else if (zero) java.util.Arrays.fill(a, 0f);
            return new CpuStorage(a, pooled);
        }
        double[] a = pooled ? BufferPool.takeDoubles(length) : null;
        if (a == null) a = new double[length];
        else if (zero) java.util.Arrays.fill(a, 0.0);
        return new CpuStorage(a, pooled);
    }

    @Override
    public Device device() {
        return Device.CPU;
    }

    @Override
    public DType dtype() {
        return dtype;
    }

    @Override
    public int length() {
        return length;
    }

    @Override
    protected void release() {
        if (pooled) {
            if (f != null) BufferPool.give(f);
            if (d != null) BufferPool.give(d);
        }
        f = null;
        d = null;
    }
}
