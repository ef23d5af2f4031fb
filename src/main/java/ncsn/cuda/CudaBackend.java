package ncsn.cuda;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.JCudaDriver;
import ncsn.tensor.DType;
import ncsn.tensor.DeviceBackend;
import ncsn.tensor.Storage;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;

/**
 * The tensor core's view of the GPU ({@link DeviceBackend}): float32 allocation from the caching
 * {@link DeviceAllocator}, fills with {@code cuMemsetD32Async}, copies (host to device and back
 * synchronously, device to device on the stream) and {@code acc += g} with the {@code add_f32}
 * kernel. Loaded by name from {@link DeviceBackend#of}; the constructor touches nothing, so a
 * machine without a GPU gets the {@link CudaContext#get()} error at the first CUDA tensor instead.
 */
public final class CudaBackend implements DeviceBackend {
    @Override
    public Storage allocate(DType dtype, int length, boolean scopeOwned, boolean zero) {
        if (dtype != DType.F32)
            throw new TensorException("CUDA tensors are float32; " + dtype + " was requested (float64 runs on the CPU reference)");
        CudaStorage st = new CudaStorage(CudaContext.get().allocator(), length, scopeOwned);
        if (zero && length > 0) {
            CudaContext ctx = CudaContext.get();
            CudaContext.check("cuMemsetD32Async(" + length + ")",
                    () -> JCudaDriver.cuMemsetD32Async(st.pointer("zeros"), 0, length, ctx.stream()));
        }
        return st;
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        int n = src.numel();
        TensorException.check(n == dst.numel(), "copy", src.describe() + " and " + dst.describe() + " differ in size");
        if (n == 0) return;
        CudaContext ctx = CudaContext.get();
        if (!src.isCpu() && !dst.isCpu()) {
            CUdeviceptr s = devicePtr("copy", src), d = devicePtr("copy", dst);
            CudaContext.check("cuMemcpyDtoDAsync(" + 4L * n + " bytes)",
                    () -> JCudaDriver.cuMemcpyDtoDAsync(d, s, 4L * n, ctx.stream()));
        } else if (src.isCpu()) {
            CudaGraph.refuseHostCopyWhileCapturing("host-to-device copy of " + n + " floats");
            // Ordered on the stream (dst may still be read by pending kernels) without waiting for
            // them: from pageable memory the driver stages the bytes before the call returns, so
            // the staging buffer below may be reused at once (CUDA "API synchronization behavior").
            ByteBuffer staged = staging(n);
            if (src.dtype() == DType.F32) staged.asFloatBuffer().put(src.f32(), 0, n);
            else {
                java.nio.FloatBuffer fb = staged.asFloatBuffer();
                double[] h = src.f64();
                for (int i = 0; i < n; i++) fb.put(i, (float) h[i]);
            }
            CUdeviceptr d = devicePtr("copy", dst);
            CudaContext.check("cuMemcpyHtoDAsync(" + 4L * n + " bytes)",
                    () -> JCudaDriver.cuMemcpyHtoDAsync(d, Pointer.to(staged), 4L * n, ctx.stream()));
        } else {
            CudaGraph.refuseHostCopyWhileCapturing("device-to-host copy of " + n + " floats");
            CUdeviceptr s = devicePtr("copy", src);
            float[] host = dst.dtype() == DType.F32 ? dst.f32() : new float[n];
            ctx.synchronize(); // surfaces a faulted kernel as its own error, before the copy
            CudaContext.check("cuMemcpyDtoH(" + 4L * n + " bytes)", () -> JCudaDriver.cuMemcpyDtoH(Pointer.to(host), s, 4L * n));
            if (dst.dtype() == DType.F64) {
                double[] d = dst.f64();
                for (int i = 0; i < n; i++) d[i] = host[i];
            }
        }
    }

    @Override
    public void addInto(Tensor acc, Tensor g) {
        TensorException.check(acc.numel() == g.numel(), "addInto", acc.describe() + " += " + g.describe() + ": sizes differ");
        Launch.kernel("add_f32").ptr(acc).ptr(g).ptr(acc).l(acc.numel()).elements(acc.numel()).run();
    }

    @Override
    public void fill(Tensor t, double v) {
        int n = t.numel();
        if (n == 0) return;
        int bits = Float.floatToRawIntBits((float) v);
        CudaContext ctx = CudaContext.get();
        CUdeviceptr p = devicePtr("fill", t);
        CudaContext.check("cuMemsetD32Async(" + n + ")", () -> JCudaDriver.cuMemsetD32Async(p, bits, n, ctx.stream()));
    }

    /** The device pointer of {@code t}'s first element (honours one-element views' offsets). */
    static CUdeviceptr devicePtr(String op, Tensor t) {
        return CudaTensors.storage(op, t).pointer(op).withByteOffset(4L * t.elementOffset());
    }

    private static final ThreadLocal<ByteBuffer> STAGING = new ThreadLocal<>();

    /** A native-order direct buffer of at least n floats (per thread, grown on demand). */
    private static ByteBuffer staging(int n) {
        ByteBuffer b = STAGING.get();
        if (b == null || b.capacity() < 4L * n) {
            b = ByteBuffer.allocateDirect(Math.max(4 * n, 1 << 16)).order(ByteOrder.nativeOrder());
            STAGING.set(b);
        }
        b.clear();
        return b;
    }
}
