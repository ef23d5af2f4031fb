// Helpers shared by every kernel family (kernels.mk compiles all .cu files as one translation
// unit; this header is included by each file that needs it and guarded by #pragma once).
#pragma once

// Grid-stride loop over [0, n): any grid size is correct, so launchers may cap the grid.
#define NCSN_GRID_STRIDE_LOOP(i, n)                                                    \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n);      \
         i += (long long)blockDim.x * gridDim.x)

// Sum over the 32 lanes of a warp (every lane gets the total).
static __device__ __forceinline__ float ncsn_warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

static __device__ __forceinline__ double ncsn_warp_sum_d(double v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Sum over the whole block (blockDim.x a multiple of 32, at most 1024); every thread gets the
// total. `scratch` is __shared__ float[32]. Contains __syncthreads: call from all threads.
static __device__ __forceinline__ float ncsn_block_sum(float v, float* scratch)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    v = ncsn_warp_sum(v);
    __syncthreads();  // scratch may still be read by a previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : 0.0f;
    return ncsn_warp_sum(v);
}

static __device__ __forceinline__ double ncsn_block_sum_d(double v, double* scratch)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    v = ncsn_warp_sum_d(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : 0.0;
    return ncsn_warp_sum_d(v);
}
