package ncsn.cuda;

import jcuda.Pointer;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;

/**
 * Launchers for the kernels of src/main/cuda/elementwise.cu (float32, contiguous, any shape):
 * {@code elu_forward_f32}, {@code elu_backward_f32}, {@code add_f32}, {@code scale_f32}.
 * Grid = min(ceil(n / 256), 32 blocks per SM); the kernels use grid-stride loops, so the cap
 * never changes the result. Outputs are new CUDA tensors (scope-owned when a scope is open);
 * the {@code ...Into} forms write into a given output, which may alias an input (in-place).
 *
 * <p>Not wired into autograd yet: these are the GPU kernels that {@code ncsn.ops.Elu} and
 * {@code ncsn.ops.Elementwise} will dispatch to for CUDA tensors.
 */
public final class ElementwiseKernels {
    private ElementwiseKernels() {}

    /** out = elu(x) (alpha = 1). */
    public static Tensor eluForward(Tensor x) {
        Tensor out = CudaTensors.emptyLike(x);
        eluForwardInto(x, out);
        return out;
    }

    public static void eluForwardInto(Tensor x, Tensor out) {
        same("elu_forward_f32", x, out);
        launch("elu_forward_f32", x.numel(), ptr("elu_forward_f32", x), ptr("elu_forward_f32", out), count(x));
    }

    /** gin = gout * (out > 0 ? 1 : out + 1), from the forward output {@code out}. */
    public static Tensor eluBackward(Tensor gout, Tensor out) {
        Tensor gin = CudaTensors.emptyLike(out);
        eluBackwardInto(gout, out, gin);
        return gin;
    }

    public static void eluBackwardInto(Tensor gout, Tensor out, Tensor gin) {
        same("elu_backward_f32", gout, out);
        same("elu_backward_f32", gout, gin);
        launch("elu_backward_f32", out.numel(), ptr("elu_backward_f32", gout), ptr("elu_backward_f32", out),
                ptr("elu_backward_f32", gin), count(out));
    }

    /** out = a + b (same shapes). */
    public static Tensor add(Tensor a, Tensor b) {
        Tensor out = CudaTensors.emptyLike(a);
        addInto(a, b, out);
        return out;
    }

    public static void addInto(Tensor a, Tensor b, Tensor out) {
        same("add_f32", a, b);
        same("add_f32", a, out);
        launch("add_f32", a.numel(), ptr("add_f32", a), ptr("add_f32", b), ptr("add_f32", out), count(a));
    }

    /** out = alpha * x + beta, one rounding (fmaf). */
    public static Tensor scale(Tensor x, float alpha, float beta) {
        Tensor out = CudaTensors.emptyLike(x);
        scaleInto(x, alpha, beta, out);
        return out;
    }

    public static void scaleInto(Tensor x, float alpha, float beta, Tensor out) {
        same("scale_f32", x, out);
        launch("scale_f32", x.numel(), ptr("scale_f32", x), ptr("scale_f32", out),
                Pointer.to(new float[] {alpha}), Pointer.to(new float[] {beta}), count(x));
    }

    private static void launch(String kernel, long n, Pointer... args) {
        if (n == 0) return;
        CudaContext ctx = CudaContext.get();
        ctx.launch(kernel, ctx.gridFor(n), CudaContext.BLOCK, args);
    }

    private static Pointer ptr(String op, Tensor t) {
        return Pointer.to(CudaTensors.storage(op, t).pointer(op));
    }

    /** The kernels' {@code long long n}. */
    private static Pointer count(Tensor t) {
        return Pointer.to(new long[] {t.numel()});
    }

    private static void same(String op, Tensor a, Tensor b) {
        CudaTensors.storage(op, a);
        CudaTensors.storage(op, b);
        if (!a.sameShape(b)) throw new TensorException(op + ": shapes differ: " + a.describe() + " vs " + b.describe());
    }
}
