// Row-major float32 GEMM for ncsn.ops.Linear (launched by Linear.Gpu), on the shared tile loop of
// gemm_tile.cuh (64x64 block tile, K slices of 16, 256 threads, 4x4 per thread).
//
//   C[M, N] (overwritten) = op(A)[M, K] * op(B)[K, N] (+ bias[n] on every row when bias != NULL)
//   op(A) = A [M, K] (lda >= K)  or, transposed, A^T with A stored [K, M] (lda >= M)
//   op(B) = B [K, N] (ldb >= N)  or, transposed, B^T with B stored [N, K] (ldb >= K)
//
// Linear uses:   y  [n, out] = x [n, in] * w^T        gemm_nt_f32 (+ bias)
//                gx [n, in]  = gy [n, out] * w         gemm_nn_f32
//                gw [out, in] = gy^T * x               gemm_tn_f32
// Grid: (ceil(N / 64), ceil(M / 64)), block 256. Every output element is written exactly once by
// one thread (no atomics): deterministic.
//
// Also here: linear_bias_grad_f32 (column sums of gy, in double).

#include "common.cuh"
#include "gemm_tile.cuh"

// Element (m, k) of op(A); TRANS: A is stored [K, M].
template <bool TRANS>
struct GemmLoadA {
    const float* a;
    int ld;
    struct Fixed { int m; };
    __device__ Fixed fix(int m) const { return {m}; }
    __device__ float at(const Fixed& f, int k) const
    {
        return TRANS ? a[(long long)k * ld + f.m] : a[(long long)f.m * ld + k];
    }
};

// Element (k, n) of op(B); TRANS: B is stored [N, K].
template <bool TRANS>
struct GemmLoadB {
    const float* b;
    int ld;
    struct Fixed { int n; };
    __device__ Fixed fix(int n) const { return {n}; }
    __device__ float at(const Fixed& f, int k) const
    {
        return TRANS ? b[(long long)f.n * ld + k] : b[(long long)k * ld + f.n];
    }
};

// With B transposed its rows (length K) are contiguous: load B k-fastest (B_K_FAST = TB).
template <bool TA, bool TB>
static __device__ __forceinline__ void gemm_body(const float* a, const float* b, const float* bias,
                                                 float* c, int M, int N, int K, int lda, int ldb,
                                                 int ldc)
{
    const int m0 = blockIdx.y * NCSN_TM, n0 = blockIdx.x * NCSN_TN;
    float acc[4][4];
    ncsn_gemm_mainloop<TB>(GemmLoadA<TA>{a, lda}, GemmLoadB<TB>{b, ldb}, M, N, 0, K, m0, n0, acc);
    const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
#pragma unroll
    for (int r = 0; r < 4; r++) {
        int m = m0 + 4 * ty + r;
        if (m >= M) continue;
#pragma unroll
        for (int cc = 0; cc < 4; cc++) {
            int n = n0 + 4 * tx + cc;
            if (n < N) c[(long long)m * ldc + n] = acc[r][cc] + (bias != nullptr ? bias[n] : 0.0f);
        }
    }
}

extern "C" __global__ void __launch_bounds__(NCSN_TILE_THREADS)
gemm_nn_f32(const float* a, const float* b, const float* bias, float* c, int M, int N, int K,
            int lda, int ldb, int ldc)
{
    gemm_body<false, false>(a, b, bias, c, M, N, K, lda, ldb, ldc);
}

extern "C" __global__ void __launch_bounds__(NCSN_TILE_THREADS)
gemm_nt_f32(const float* a, const float* b, const float* bias, float* c, int M, int N, int K,
            int lda, int ldb, int ldc)
{
    gemm_body<false, true>(a, b, bias, c, M, N, K, lda, ldb, ldc);
}

extern "C" __global__ void __launch_bounds__(NCSN_TILE_THREADS)
gemm_tn_f32(const float* a, const float* b, const float* bias, float* c, int M, int N, int K,
            int lda, int ldb, int ldc)
{
    gemm_body<true, false>(a, b, bias, c, M, N, K, lda, ldb, ldc);
}

// gb[o] (overwritten) = sum over rows i of g[i, o], g [rows, cols] row-major. One thread per
// column (adjacent threads read adjacent columns: coalesced), summed in double in row order:
// deterministic. Grid-stride over the columns.
extern "C" __global__ void linear_bias_grad_f32(const float* g, float* gb, int rows, int cols)
{
    NCSN_GRID_STRIDE_LOOP(o, cols) {
        double s = 0.0;
        for (int i = 0; i < rows; i++) s += (double)g[(long long)i * cols + o];
        gb[o] = (float)s;
    }
}
