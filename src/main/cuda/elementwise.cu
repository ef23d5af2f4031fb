// Elementwise float32 kernels for the ncsn GPU backend.
//
// Built by kernels.mk into the single fatbin resource ncsn/cuda/ncsn_kernels.fatbin (SASS for
// sm_75/80/86/89/90 + compute_90 PTX). Launched from Java by ncsn.cuda.ElementwiseKernels
// (module loaded once by ncsn.cuda.CudaContext with cuModuleLoadData, functions looked up by the
// extern "C" names below, 256 threads per block, grid = min(ceil(n / 256), 32 x SMs)); tested
// against the float64 reference ops by ElementwiseKernelsGpuTest (skipped without a GPU).
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
// exp(x) = out + 1. gin = gout * (out > 0 ? 1 : out + 1).
extern "C" __global__ void elu_backward_f32(const float* gout, const float* out, float* gin,
                                            long long n)
{
    NCSN_GRID_STRIDE_LOOP(i, n) {
        float o = out[i];
        gin[i] = gout[i] * (o > 0.0f ? 1.0f : o + 1.0f);
    }
}

// out = a + b
extern "C" __global__ void add_f32(const float* a, const float* b, float* out, long long n)
{
    NCSN_GRID_STRIDE_LOOP(i, n) {
        out[i] = a[i] + b[i];
    }
}

// out = a * x + b (fused multiply-add, one rounding)
extern "C" __global__ void scale_f32(const float* x, float* out, float a, float b, long long n)
{
    NCSN_GRID_STRIDE_LOOP(i, n) {
        out[i] = fmaf(a, x[i], b);
    }
}

