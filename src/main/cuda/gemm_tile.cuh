// The tiled float32 GEMM main loop shared by gemm.cu (Linear) and conv2d.cu (implicit GEMM).
//
//   acc += A[m0 .. m0+63, kBegin .. kEnd) * B[kBegin .. kEnd, n0 .. n0+63)
//
// A and B are never materialised: a *loader* gives their elements, so the same loop serves plain
// row-major matrices (with or without transposes) and the implicit im2col matrices of conv2d.
// A loader L provides
//     struct Fixed;                                  // per-thread state for one outer index
//     Fixed fix(int outer) const;                    // outer = m (for A) or n (for B); no memory access
//     float at(const Fixed& f, int k) const;         // the element; only called for in-range m/n, k
// so index decoding that depends only on the outer index (e.g. an output pixel's (oh, ow)) is done
// once per thread, not once per element.
//
// Tile: 64 (M) x 64 (N) per block, K slices of 16, 256 threads; thread (tx, ty) = (tid % 16,
// tid / 16) owns the 4x4 micro-tile rows m0 + 4ty .. +3, columns n0 + 4tx .. +3 (acc[r][c]).
// Loads: 1024 elements of A and 1024 of B per slice, 4 per thread, into registers for the next
// slice while the current one is multiplied (two shared buffers: one __syncthreads per slice).
//   A tile: k fastest across threads (k = tid % 16, m = tid / 16 + 16q): row-major A is read along
//           its rows (contiguous in k).
//   B tile: n fastest (n = tid % 64, k = tid / 64 + 4q) when B_K_FAST is false (B contiguous in n,
//           e.g. image pixels), else k fastest like A (B contiguous in k).
// Shared rows are padded to 68 floats: keeps float4 reads 16-byte aligned and spreads the
// k-fastest stores over the banks. Out-of-range elements (m >= M, n >= N, k >= kEnd) load as 0,
// so every edge is handled by the loads; callers guard their stores.
//
// Every thread of the block must call this (it contains __syncthreads); kBegin..kEnd must be
// uniform across the block.
#pragma once

// q = n / d for a divisor d >= 1 fixed at run time and numerators 0 <= n < 2^31, without the
// ~20-instruction integer division the implicit-GEMM loaders would otherwise run per element:
// q = (umulhi(n, mul) + n) >> shift with shift = ceil(log2 d), mul = floor(2^32 (2^shift - d) / d)
// + 1 (Granlund & Montgomery, round-up method). mul < 2^32 because 2^shift - d < d; the sum
// cannot overflow because umulhi(n, mul) <= n < 2^31. Built once per thread (one 64-bit division).
struct NcsnDiv {
    unsigned d, mul, shift;
    __device__ explicit NcsnDiv(int divisor) : d((unsigned)divisor), mul(0), shift(0)
    {
        while (shift < 31 && (1u << shift) < d) shift++;
        mul = (unsigned)(((1ull << 32) * ((1ull << shift) - d)) / d + 1);
    }
    __device__ int div(int n) const
    {
        return (int)((__umulhi((unsigned)n, mul) + (unsigned)n) >> shift);
    }
};

#define NCSN_TM 64
#define NCSN_TN 64
#define NCSN_TK 16
#define NCSN_TILE_THREADS 256
#define NCSN_TPAD 4

template <bool B_K_FAST, class LA, class LB>
static __device__ __forceinline__ void ncsn_gemm_mainloop(const LA& la, const LB& lb, int M, int N,
                                                          int kBegin, int kEnd, int m0, int n0,
                                                          float (&acc)[4][4])
{
    __shared__ __align__(16) float As[2][NCSN_TK][NCSN_TM + NCSN_TPAD];
    __shared__ __align__(16) float Bs[2][NCSN_TK][NCSN_TN + NCSN_TPAD];

    const int tid = threadIdx.x;
    const int tx = tid & 15, ty = tid >> 4;

    // A loads: column aK of the slice, rows aM + 16q.
    const int aK = tid & 15, aM = tid >> 4;
    // B loads: see the header.
    const int bK = B_K_FAST ? (tid & 15) : (tid >> 6);
    const int bN = B_K_FAST ? (tid >> 4) : (tid & 63);

    typename LA::Fixed fa[4];
    typename LB::Fixed fb[4];
    bool va[4], vb[4];
#pragma unroll
    for (int q = 0; q < 4; q++) {
        int m = m0 + aM + 16 * q;
        va[q] = m < M;
        fa[q] = la.fix(va[q] ? m : 0);
        int n = n0 + (B_K_FAST ? bN + 16 * q : bN);
        vb[q] = n < N;
        fb[q] = lb.fix(vb[q] ? n : 0);
    }

#pragma unroll
    for (int r = 0; r < 4; r++)
#pragma unroll
        for (int c = 0; c < 4; c++) acc[r][c] = 0.0f;

    if (kEnd <= kBegin) return;  // uniform: nothing to sum (acc = 0)
    const int slices = (kEnd - kBegin + NCSN_TK - 1) / NCSN_TK;

    float ra[4], rb[4];
    // Global -> registers for the slice starting at k0 (zeros outside the matrices).
    auto load = [&](int k0) {
#pragma unroll
        for (int q = 0; q < 4; q++) {
            int k = k0 + aK;
            ra[q] = (va[q] && k < kEnd) ? la.at(fa[q], k) : 0.0f;
            int kb = k0 + (B_K_FAST ? bK : bK + 4 * q);
            rb[q] = (vb[q] && kb < kEnd) ? lb.at(fb[q], kb) : 0.0f;
        }
    };
    // Registers -> shared buffer `buf`.
    auto store = [&](int buf) {
#pragma unroll
        for (int q = 0; q < 4; q++) {
            As[buf][aK][aM + 16 * q] = ra[q];
            if (B_K_FAST) Bs[buf][bK][bN + 16 * q] = rb[q];
            else Bs[buf][bK + 4 * q][bN] = rb[q];
        }
    };

    load(kBegin);
    store(0);
    __syncthreads();
    int cur = 0;
    for (int s = 0; s < slices; s++) {
        const bool more = s + 1 < slices;
        // Issue the next slice's global loads before the math so their latency overlaps it.
        if (more) load(kBegin + (s + 1) * NCSN_TK);
#pragma unroll
        for (int kk = 0; kk < NCSN_TK; kk++) {
            float4 a = *reinterpret_cast<const float4*>(&As[cur][kk][4 * ty]);
            float4 b = *reinterpret_cast<const float4*>(&Bs[cur][kk][4 * tx]);
            float av[4] = {a.x, a.y, a.z, a.w}, bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
            for (int r = 0; r < 4; r++)
#pragma unroll
                for (int c = 0; c < 4; c++) acc[r][c] = fmaf(av[r], bv[c], acc[r][c]);
        }
        // The other buffer was last read in the previous iteration, before its closing barrier.
        if (more) store(cur ^ 1);
        __syncthreads();
        cur ^= 1;
    }
}
