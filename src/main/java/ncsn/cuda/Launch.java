package ncsn.cuda;

import java.util.ArrayList;
import java.util.List;
import jcuda.Pointer;
import ncsn.tensor.Tensor;

/**
 * One kernel launch, argument by argument in the kernel's parameter order:
 * <pre>{@code
 * Launch.kernel("cin_pp_forward_f32").ptr(x).ptr(out).i(n).i(c).grid(n * c).block(256).run();
 * Launch.kernel("elu_forward_f32").ptr(x).ptr(out).l(count).elements(count).run();  // 1-D grid-stride
 * }</pre>
 * {@link #ptr} checks that the tensor is a live CUDA tensor (the message names the kernel).
 * Scalars: {@link #i} (int), {@link #l} (long long), {@link #f} (float), {@link #u} (unsigned as int).
 * Nothing is launched when a grid dimension is zero.
 */
public final class Launch {
    private final String kernel;
    private final List<Pointer> args = new ArrayList<>(12);
    private int gx = 1, gy = 1, gz = 1, bx = CudaContext.BLOCK, by = 1, bz = 1, sharedBytes;

    private Launch(String kernel) {
        this.kernel = kernel;
    }

    public static Launch kernel(String name) {
        return new Launch(name);
    }

    /** The device pointer of a live CUDA tensor (or NULL for a null tensor, for optional arguments). */
    public Launch ptr(Tensor t) {
        if (t == null) {
            args.add(Pointer.to(new jcuda.driver.CUdeviceptr()));
            return this;
        }
        args.add(Pointer.to(CudaBackend.devicePtr(kernel, t)));
        return this;
    }

    public Launch i(int v) {
        args.add(Pointer.to(new int[] {v}));
        return this;
    }

    public Launch u(int bits) {
        return i(bits);
    }

    public Launch l(long v) {
        args.add(Pointer.to(new long[] {v}));
        return this;
    }

    public Launch f(float v) {
        args.add(Pointer.to(new float[] {v}));
        return this;
    }

    public Launch grid(int x) {
        return grid(x, 1, 1);
    }

    public Launch grid(int x, int y) {
        return grid(x, y, 1);
    }

    public Launch grid(int x, int y, int z) {
        gx = x;
        gy = y;
        gz = z;
        return this;
    }

    public Launch block(int x) {
        return block(x, 1, 1);
    }

    public Launch block(int x, int y) {
        return block(x, y, 1);
    }

    public Launch block(int x, int y, int z) {
        bx = x;
        by = y;
        bz = z;
        return this;
    }

    /** Dynamic shared memory in bytes. */
    public Launch shared(int bytes) {
        sharedBytes = bytes;
        return this;
    }

    /** 1-D grid for a grid-stride kernel over n elements: min(ceil(n / 256), 32 blocks per SM), block 256. */
    public Launch elements(long n) {
        if (n == 0) return grid(0);
        bx = CudaContext.BLOCK;
        by = bz = 1;
        return grid(CudaContext.get().gridFor(n));
    }

    public void run() {
        if ((long) gx * gy * gz == 0) return;
        CudaContext.get().launch(kernel, gx, gy, gz, bx, by, bz, sharedBytes, args.toArray(new Pointer[0]));
    }
}
