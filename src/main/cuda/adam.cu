// Multi-tensor Adam for float32 CUDA parameters (ncsn.optim.Adam, torch.optim.Adam 1.13; launched
// by Adam.Gpu). One launch of adam_multi_f32 updates every parameter of a group in place:
//   g  = fma(p, wd, grad)                      (decay only)
//   m  = fma(g, 1-b1, m * b1)
//   v  = fma((1-b2) * g, g, v * b2)
//   vm = max(vmax, v), vmax = vm               (amsgrad only; the denominator uses vm)
//   p  = p + ((-step_size) * m) / (sqrt(v) / sqrt(bc2) + eps)
// with exactly the float32 roundings of Adam.Cpu (which match PyTorch's CPU kernels): explicit
// fmaf where the CPU uses Math.fma, and _rn intrinsics for every other operation so that nvcc
// cannot contract a product and a sum into an FMA the CPU does not do. sqrtf and division are
// IEEE-rounded (no fast-math), so GPU and CPU should agree bit for bit.
//
// Parameter table: one NcsnAdamSlot (64 bytes) per parameter, written on the device by
// adam_slot_set_f32 (one tiny launch per parameter when Adam.Gpu builds the table; the table is
// kept and reused while the tensors stay the same, so a training step launches only
// adam_multi_f32). The table lives in a float32 CUDA tensor used as raw bytes: the device pointers
// are never seen by the host, the kernel receives them as pointer arguments and stores them.
// Work split: every parameter is cut into chunks of NCSN_ADAM_CHUNK elements, numbered
// consecutively over the table (slot k owns chunks first_chunk .. first_chunk + ceil(n / CHUNK));
// thread blocks take chunks grid-stride, find the slot by binary search over first_chunk, and
// their threads stride through the chunk (coalesced). Each element is read and written by one
// thread only; p, m, v, vmax are overwritten, grad is only read.

#include "common.cuh"

#define NCSN_ADAM_CHUNK 4096

struct NcsnAdamSlot {
    float* p;
    const float* g;
    float* m;
    float* v;
    float* vmax;           // null unless amsgrad
    long long n;           // elements (> 0)
    long long first_chunk; // number of chunks of the slots before this one
    long long pad;         // to 64 bytes
};

// Java's Math.max(float, float): NaN if either is NaN (fmaxf would drop the NaN).
static __device__ __forceinline__ float ncsn_adam_max(float a, float b)
{
    if (a != a) return a;
    if (b != b) return b;
    return fmaxf(a, b);
}

// Writes slot k of the table (a float tensor of at least 16 (k + 1) elements, 8-byte aligned: it
// starts a device allocation). vmax may be null.
extern "C" __global__ void adam_slot_set_f32(float* table, int k, float* p, const float* g, float* m, float* v,
                                             float* vmax, long long n, long long first_chunk)
{
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    NcsnAdamSlot* s = reinterpret_cast<NcsnAdamSlot*>(table) + k;
    s->p = p;
    s->g = g;
    s->m = m;
    s->v = v;
    s->vmax = vmax;
    s->n = n;
    s->first_chunk = first_chunk;
    s->pad = 0;
}

// One Adam step for every slot of the table (nslots >= 1, total_chunks = the chunks of all slots).
// All slots share the step's scalars (Adam.Gpu groups parameters by their step count).
extern "C" __global__ void adam_multi_f32(const float* table, int nslots, long long total_chunks,
                                          float b1, float omb1, float b2, float omb2, float eps, float wd,
                                          int decay, int amsgrad, float neg_step_size, float bc2_sqrt)
{
    const NcsnAdamSlot* slots = reinterpret_cast<const NcsnAdamSlot*>(table);
    for (long long c = blockIdx.x; c < total_chunks; c += gridDim.x) {
        // Largest k with slots[k].first_chunk <= c (slot 0 starts at chunk 0; first_chunk is
        // strictly increasing because every slot has at least one element).
        int lo = 0, hi = nslots - 1;
        while (lo < hi) {
            int mid = (lo + hi + 1) >> 1;
            if (slots[mid].first_chunk <= c) lo = mid;
            else hi = mid - 1;
        }
        const NcsnAdamSlot s = slots[lo];
        const long long begin = (c - s.first_chunk) * NCSN_ADAM_CHUNK;
        const long long end = min(s.n, begin + NCSN_ADAM_CHUNK);
        for (long long i = begin + threadIdx.x; i < end; i += blockDim.x) {
            float pi = s.p[i];
            float g = decay ? fmaf(pi, wd, s.g[i]) : s.g[i];
            float mi = fmaf(g, omb1, __fmul_rn(s.m[i], b1));
            float vi = fmaf(__fmul_rn(omb2, g), g, __fmul_rn(s.v[i], b2));
            s.m[i] = mi;
            s.v[i] = vi;
            float vv = vi;
            if (amsgrad) {
                vv = ncsn_adam_max(s.vmax[i], vi);
                s.vmax[i] = vv;
            }
            float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vv), bc2_sqrt), eps);
            s.p[i] = __fadd_rn(pi, __fdiv_rn(__fmul_rn(neg_step_size, mi), denom));
        }
    }
}
