// Elementwise float32 kernels: ELU, and add / mul / scale with numpy broadcasting.
//
// Launched from Java by the nested Gpu classes of ncsn.ops.Elu and ncsn.ops.Elementwise (and
// add_f32 by ncsn.cuda.CudaBackend for gradient accumulation). Module loaded once by
// ncsn.cuda.CudaContext; grid-stride kernels get 256 threads per block and
// grid = min(ceil(n / 256), 32 x SMs). Tested against the float64 reference ops by
// OpCatalogGpuTest and ElementwiseKernelsGpuTest (both skipped without a GPU).
//
// Conventions for every .cu file in src/main/cuda (kernels.mk compiles them as ONE translation
// unit, see its header):
//   * kernels are extern "C" (unmangled names the Java side looks up), names end in the dtype;
//   * element counts are long long (tensors may exceed 2^31 elements); grid-stride loops, so any
//     grid size is correct and the launcher may cap the grid (e.g. 32 blocks per SM);
//   * file-local helpers are static __device__ (the files share one translation unit);
//   * no __restrict__ here: in-place use (out == x, out == a) is allowed and every thread reads
//     and writes only index i, so aliasing is harmless;
//   * no fast-math: results are tested against the float64 reference ops.
//
// Bytes moved per output element (for GB/s): elu forward 8, elu backward 12, add/mul 12,
// scale 8, broadcast_f32 4 (out) + 4 per operand that advances (a broadcast operand is read
// once per run and stays in L1/L2), i.e. 8 to 12.

#include "common.cuh"

// ELU with alpha = 1: out = x > 0 ? x : exp(x) - 1.
extern "C" __global__ void elu_forward_f32(const float* x, float* out, long long n)
{
    NCSN_GRID_STRIDE_LOOP(i, n) {
        float v = x[i];
        out[i] = v > 0.0f ? v : expm1f(v);
    }
}

// ELU backward from the forward output (alpha = 1): d out / d x = 1 for x > 0, else
// exp(x) = out + 1. gin = gout * (out > 0 ? 1 : out + 1), the second form as
// fmaf(gout, out, gout): one rounding of the exact gout * (out + 1) (rounding out + 1 first
// would add a second; the GPU test measured 1.16 ulp that way).
extern "C" __global__ void elu_backward_f32(const float* gout, const float* out, float* gin,
                                            long long n)
{
    NCSN_GRID_STRIDE_LOOP(i, n) {
        float o = out[i], g = gout[i];
        gin[i] = o > 0.0f ? g : fmaf(g, o, g);
    }
}

// out = a + b (same shapes; also the autograd accumulator acc += g with out == a)
extern "C" __global__ void add_f32(const float* a, const float* b, float* out, long long n)
{
    NCSN_GRID_STRIDE_LOOP(i, n) {
        out[i] = a[i] + b[i];
    }
}

// out = a * b (same shapes)
extern "C" __global__ void mul_f32(const float* a, const float* b, float* out, long long n)
{
    NCSN_GRID_STRIDE_LOOP(i, n) {
        out[i] = a[i] * b[i];
    }
}

// out = a * x + b (fused multiply-add, one rounding)
extern "C" __global__ void scale_f32(const float* x, float* out, float a, float b, long long n)
{
    NCSN_GRID_STRIDE_LOOP(i, n) {
        out[i] = fmaf(a, x[i], b);
    }
}

// Broadcast arithmetic over an iteration plan (ncsn.ops.Elementwise.Plan): the output is
// contiguous with sizes s0 (innermost) .. s5 (outermost, unused dims size 1), `rank` of them
// used; operand a (b) is read at sum_d idx_d * ad (bd), stride 0 along dims it is broadcast
// along. ops:
//   0: out = a + b      1: out = a * b      2: out = alpha * a  (b unused, may be NULL:
//                                               the backward of a reduction, g expanded)
// The host guarantees n < 2^31 (CudaTensors' limit), so the unravel runs in 32-bit unsigned
// arithmetic (64-bit division is several times slower); offsets are < 2^31 too. Only the
// rank - 1 inner dims are divided (the outermost needs no division; the loop is unrolled with
// constant indices: no local memory), so a merged plan of rank 1 or 2 costs 0 or 1 division.
extern "C" __global__ void broadcast_f32(const float* a, const float* b, float* out, long long n,
                                         int op, float alpha, int rank,
                                         int s0, int s1, int s2, int s3, int s4, int s5,
                                         int a0, int a1, int a2, int a3, int a4, int a5,
                                         int b0, int b1, int b2, int b3, int b4, int b5)
{
    const int s[6] = {s0, s1, s2, s3, s4, s5};
    const int as[6] = {a0, a1, a2, a3, a4, a5};
    const int bs[6] = {b0, b1, b2, b3, b4, b5};
    NCSN_GRID_STRIDE_LOOP(i, n) {
        unsigned rem = (unsigned)i, ia = 0, ib = 0;
#pragma unroll
        for (int d = 0; d < 6; d++) {
            if (d < rank - 1) {
                unsigned q = rem / (unsigned)s[d];
                unsigned c = rem - q * (unsigned)s[d];
                ia += c * (unsigned)as[d];
                ib += c * (unsigned)bs[d];
                rem = q;
            } else if (d == rank - 1) {  // outermost: i < n = product of sizes, so rem < s[d]
                ia += rem * (unsigned)as[d];
                ib += rem * (unsigned)bs[d];
            }
        }
        float v;
        if (op == 0) v = a[ia] + b[ib];
        else if (op == 1) v = a[ia] * b[ib];
        else v = alpha * a[ia];
        out[i] = v;
    }
}
