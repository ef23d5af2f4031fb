// Annealed denoising score matching (ncsn.ops.AnnealedDsm, spec section 2), float32 tensors
// [N, D] (D = all non-batch dims, contiguous per image).
//
// Per-sample parameters P [N, 5] (float32, built on the host from labels and sigmas and
// uploaded once per call): for s = sigmas[labels[n]] and anneal power p,
//   P[n,0] = (float) s                       the perturbation multiplier (as the CPU rounds it)
//   P[n,1] = hi(1/s), P[n,2] = lo(1/s)       1/s split into two floats (hi + lo ~ 48 bits)
//   P[n,3] = hi(s^p), P[n,4] = lo(s^p)       the loss weight, split likewise
// The split keeps the target -z/s accurate where |z/s| ~ 100 and the difference score + z/s
// is O(1) (see AnnealedDsm.Cpu.backward): float32 1/s alone would cost ~1e-5 relative.
//
// Bytes per element: perturb 12 (x, z in, out), per-sample loss 8 (score, z in), loss
// backward 12 (score, z in, gs out); the per-image parameter rows are negligible.

#include "common.cuh"

#define NCSN_DSM_P 5

// out = x + s_n * z with a float multiply then a float add (two roundings, exactly the CPU's
// and PyTorch's x + z * s; __fmul_rn/__fadd_rn keep nvcc from contracting them into an fma).
// total = N * D < 2^31 (host guarantees), so n = i / D runs in 32-bit arithmetic.
extern "C" __global__ void dsm_perturb_f32(const float* x, const float* z, const float* P, float* out,
                                           long long total, int D)
{
    NCSN_GRID_STRIDE_LOOP(i, total) {
        unsigned n = (unsigned)i / (unsigned)D;
        out[i] = __fadd_rn(x[i], __fmul_rn(P[n * NCSN_DSM_P], z[i]));
    }
}

// per[n] = 0.5 * s^p * sum_j (score[n,j] + z[n,j] / s)^2 (= (score - target)^2 with target
// -z/s), each term and the sum in double. One block per image (grid-stride over images):
// threads stride over the image's D elements (coalesced), then a fixed-tree block sum.
// blockDim.x: a multiple of 32, at most 1024. per: [N], overwritten.
extern "C" __global__ void dsm_loss_per_sample_f32(const float* score, const float* z, const float* P,
                                                   float* per, int N, int D)
{
    __shared__ double scratch[32];
    for (int n = blockIdx.x; n < N; n += gridDim.x) {
        const float* pn = P + (long long)n * NCSN_DSM_P;
        double inv = (double)pn[1] + (double)pn[2];
        long long off = (long long)n * D;
        double acc = 0.0;
        for (int j = threadIdx.x; j < D; j += blockDim.x) {
            double e = (double)score[off + j] + (double)z[off + j] * inv;
            acc += e * e;
        }
        acc = ncsn_block_sum_d(acc, scratch);
        if (threadIdx.x == 0) per[n] = (float)(0.5 * acc * ((double)pn[3] + (double)pn[4]));
    }
}

// out[0] = (1/N) sum_n per[n], one block, fixed order (double accumulation).
extern "C" __global__ void dsm_loss_mean_f32(const float* per, float* out, int N)
{
    __shared__ double scratch[32];
    double acc = 0.0;
    for (int n = threadIdx.x; n < N; n += blockDim.x) acc += (double)per[n];
    acc = ncsn_block_sum_d(acc, scratch);
    if (threadIdx.x == 0) out[0] = (float)(acc / N);
}

// gs[n,j] = c_n * (score + z / s) with c_n = g * s^p / N, g = the loss's output gradient
// (a one-element device tensor, read here: no host round trip). The difference is formed as
// fma(z, lo, fma(z, hi, score)): within ~1 ulp of the exact score + z/s (same as the CPU).
// gs: [N, D], overwritten; may not alias score or z (each element is read before it is
// written by the same thread, so aliasing would in fact be harmless).
extern "C" __global__ void dsm_loss_backward_f32(const float* score, const float* z, const float* P,
                                                 const float* g, float* gs, long long total, int D, int N)
{
    const double g0 = (double)g[0];
    NCSN_GRID_STRIDE_LOOP(i, total) {
        unsigned n = (unsigned)i / (unsigned)D;
        const float* pn = P + n * NCSN_DSM_P;
        float c = (float)(g0 * ((double)pn[3] + (double)pn[4]) / N);
        float zi = z[i];
        gs[i] = c * fmaf(zi, pn[2], fmaf(zi, pn[1], score[i]));
    }
}
