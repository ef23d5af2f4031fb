// Sums over dims of a contiguous float32 tensor (ncsn.ops.Reduce: sum / mean, and the backward
// of broadcasting in ncsn.ops.Elementwise). Deterministic: every thread adds its elements in a
// fixed order, blocks combine with a fixed tree (ncsn_block_sum_d), the number of parts of a
// two-pass sum depends on the sizes only (not on the GPU), and nothing uses atomics.
// Accumulation is in double (the CPU kernel's choice too; memory-bound, so it costs nothing).
//
// Index layout shared by the kernels (host: ncsn.ops.Reduce.Gpu): the input is viewed as kept
// dims (size k*, input stride kst*) and reduced dims (size r*, input stride rst*), at most 4 of
// each, INNERMOST FIRST, unused entries size 1. Output element o (0 <= o < M, M = product of
// kept sizes) is contiguous in the kept dims; it sums the K = product of reduced sizes inputs
// x[keptOffset(o) + reducedOffset(k)], 0 <= k < K. The host guarantees numel < 2^31, so
// offsets are 32-bit.
//
// Bytes per input element: 4 (read once), plus 4 per output element; the two-pass form reads
// and writes 4 bytes per part more (parts <= 4096 per output).

#include "common.cuh"

// nd dims (innermost first) with sizes s* and input strides t*; plain scalars (no arrays) so
// that everything stays in registers.
struct NcsnRedDims {
    int nd, s0, s1, s2, s3, t0, t1, t2, t3;
};

// Offset of index idx (< product of the nd sizes) over the dims, innermost first. The outermost
// dim needs no division (idx is already below its size).
static __device__ __forceinline__ unsigned ncsn_red_offset(unsigned idx, const NcsnRedDims& d)
{
    if (d.nd <= 0) return 0u;
    if (d.nd == 1) return idx * (unsigned)d.t0;
    unsigned q = idx / (unsigned)d.s0, off = (idx - q * (unsigned)d.s0) * (unsigned)d.t0;
    idx = q;
    if (d.nd == 2) return off + idx * (unsigned)d.t1;
    q = idx / (unsigned)d.s1;
    off += (idx - q * (unsigned)d.s1) * (unsigned)d.t1;
    idx = q;
    if (d.nd == 3) return off + idx * (unsigned)d.t2;
    q = idx / (unsigned)d.s2;
    off += (idx - q * (unsigned)d.s2) * (unsigned)d.t2;
    return off + q * (unsigned)d.t3;
}

// Block per (output element, part): blocks b in [0, M * parts), o = b / parts, p = b % parts.
// Part p sums reduced indices [p * chunk, min(K, (p + 1) * chunk)), chunk = ceil(K / parts),
// and writes out[b] = sum / div. With parts == 1 that is the result (div = 1 for a sum, the
// count for a mean); with parts > 1 `out` is a partial buffer [M, parts] (div = 1) that
// reduce_parts_f32 finishes. For a reduced innermost dim (stride 1) consecutive threads read
// consecutive elements (coalesced). blockDim.x: a multiple of 32, at most 1024.
extern "C" __global__ void reduce_block_f32(const float* x, float* out, int M, int K, int parts, int div,
                                            int nk, int k0, int k1, int k2, int k3,
                                            int kst0, int kst1, int kst2, int kst3,
                                            int nr, int r0, int r1, int r2, int r3,
                                            int rst0, int rst1, int rst2, int rst3)
{
    __shared__ double scratch[32];
    const NcsnRedDims kd = {nk, k0, k1, k2, k3, kst0, kst1, kst2, kst3};
    const NcsnRedDims rd = {nr, r0, r1, r2, r3, rst0, rst1, rst2, rst3};
    const long long blocks = (long long)M * parts;
    const int chunk = (int)(((long long)K + parts - 1) / parts);
    // Uniform per block (b depends on blockIdx only), so the __syncthreads inside the block
    // sum are reached by every thread of the block.
    for (long long b = blockIdx.x; b < blocks; b += gridDim.x) {
        int o = (int)(b / parts), p = (int)(b - (long long)o * parts);
        unsigned base = ncsn_red_offset((unsigned)o, kd);
        long long kb = (long long)p * chunk;  // 64-bit: kb + chunk may pass 2^31 near the limit
        long long ke = min((long long)K, kb + chunk);
        double acc = 0.0;
        for (long long k = kb + threadIdx.x; k < ke; k += blockDim.x)
            acc += (double)x[base + ncsn_red_offset((unsigned)k, rd)];
        acc = ncsn_block_sum_d(acc, scratch);
        if (threadIdx.x == 0) out[b] = (float)(acc / div);
    }
}

// Second pass: out[o] = (sum of partial[o * parts + p], p = 0 .. parts-1 in a fixed tree) / div.
// One block per output element (grid-stride over blocks).
extern "C" __global__ void reduce_parts_f32(const float* partial, float* out, int M, int parts, int div)
{
    __shared__ double scratch[32];
    for (int o = blockIdx.x; o < M; o += gridDim.x) {
        double acc = 0.0;
        for (int p = threadIdx.x; p < parts; p += blockDim.x) acc += (double)partial[(long long)o * parts + p];
        acc = ncsn_block_sum_d(acc, scratch);
        if (threadIdx.x == 0) out[o] = (float)(acc / div);
    }
}

// Thread per output element, for a KEPT innermost dim (kept stride 1): thread o adds its K
// inputs serially, and neighbouring threads read neighbouring addresses (coalesced), e.g. the
// sum over the batch of [N, D] -> [1, D]. out[o] = sum / div.
extern "C" __global__ void reduce_rows_f32(const float* x, float* out, int M, int K, int div,
                                           int nk, int k0, int k1, int k2, int k3,
                                           int kst0, int kst1, int kst2, int kst3,
                                           int nr, int r0, int r1, int r2, int r3,
                                           int rst0, int rst1, int rst2, int rst3)
{
    const NcsnRedDims kd = {nk, k0, k1, k2, k3, kst0, kst1, kst2, kst3};
    const NcsnRedDims rd = {nr, r0, r1, r2, r3, rst0, rst1, rst2, rst3};
    NCSN_GRID_STRIDE_LOOP(o, M) {
        unsigned base = ncsn_red_offset((unsigned)o, kd);
        double acc = 0.0;
        for (int k = 0; k < K; k++) acc += (double)x[base + ncsn_red_offset((unsigned)k, rd)];
        out[o] = (float)(acc / div);
    }
}
