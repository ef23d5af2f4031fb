// conv2d (stride 1, zero padding `pad`, dilation `dil`, NCHW float32) as implicit GEMM on the
// tile loop of gemm_tile.cuh (64x64 block tile, K slices of 16, 256 threads, 4x4 per thread).
// Launched by ncsn.ops.Conv2d.Gpu (the "own" implementation). Sizes, as in Conv2d.Dims:
//   x [N, Ci, H, W], w [Co, Ci, kh, kw], b [Co] or NULL, y [N, Co, Ho, Wo]
//   Ho = H + 2 pad - dil (kh - 1), Wo = W + 2 pad - dil (kw - 1), K = Ci kh kw, P = Ho Wo
// The im2col matrix col_n[K, P] (row (ci, i, j), column (oh, ow): x[n, ci, oh - pad + dil i,
// ow - pad + dil j], 0 outside the image) is never stored: the loaders compute each element.
//
//   forward          y_n[Co, P]   = w[Co, K] * col_n[K, P] + b        grid (P/64, Co/64, N)
//   backward-data    dx_n[Ci, HW] = gather over (co, i, j) of w * dy  grid (HW/64, Ci/64, N)
//   backward-weight  dw[Co, K]    = sum over (n, p) of dy * col        grid (K/64, Co/64, splits)
//   bias gradient    db[Co]       = sum over (n, p) of dy              grid Co, block 256
// Every output element is written by exactly one thread, and every sum runs in a fixed order
// (backward-weight: per-split partials, then a fixed-order sum over the splits): no atomics, the
// results are bit-for-bit reproducible. Backward-data is a gather (each dx element sums the
// (co, i, j) taps that read it), not a scatter, for the same reason.
//
// Flat offsets into whole tensors use long long; offsets inside one image (< 2^31 elements, as
// every Java tensor) use int.

#include "common.cuh"
#include "gemm_tile.cuh"

// The sizes every conv2d kernel takes, in Conv2d.Dims order: passed as nine int kernel
// parameters (CONV_DIMS_PARAMS, one Launch.i(..) each) and gathered by CONV_DIMS.
struct ConvDims {
    int n, ci, h, w, co, kh, kw, pad, dil;
    __device__ int ho() const { return h + 2 * pad - dil * (kh - 1); }
    __device__ int wo() const { return w + 2 * pad - dil * (kw - 1); }
};
#define CONV_DIMS_PARAMS \
    int d_n, int d_ci, int d_h, int d_w, int d_co, int d_kh, int d_kw, int d_pad, int d_dil
#define CONV_DIMS ConvDims{d_n, d_ci, d_h, d_w, d_co, d_kh, d_kw, d_pad, d_dil}

// ---- forward --------------------------------------------------------------------------------

// A = w viewed as [Co, K] (row-major, contiguous in k).
struct ConvFwdLoadW {
    const float* w;
    int k;
    struct Fixed { const float* row; };
    __device__ Fixed fix(int co) const { return {w + (long long)co * k}; }
    __device__ float at(const Fixed& f, int kk) const { return f.row[kk]; }
};

// B = col_n[K, P]: column p = (oh, ow) decoded once per thread; row k = (ci, i, j) per element
// (multiply-high divisions, NcsnDiv).
struct ConvFwdLoadCol {
    const float* x;  // image n: x + n Ci H W
    int h, w, kw, khw, pad, dil, wo;
    NcsnDiv byKhw, byKw, byWo;
    __device__ ConvFwdLoadCol(const float* x_, int h_, int w_, int kh_, int kw_, int pad_, int dil_, int wo_)
        : x(x_), h(h_), w(w_), kw(kw_), khw(kh_ * kw_), pad(pad_), dil(dil_), wo(wo_),
          byKhw(kh_ * kw_), byKw(kw_), byWo(wo_) {}
    struct Fixed { int ih0, iw0; };  // top-left input position of the output pixel's window
    __device__ Fixed fix(int p) const
    {
        int oh = byWo.div(p), ow = p - oh * wo;
        return {oh - pad, ow - pad};
    }
    __device__ float at(const Fixed& f, int k) const
    {
        int ci = byKhw.div(k), t = k - ci * khw, i = byKw.div(t), j = t - i * kw;
        int ih = f.ih0 + dil * i, iw = f.iw0 + dil * j;
        // unsigned compare: also rejects negative positions (the zero padding)
        if ((unsigned)ih >= (unsigned)h || (unsigned)iw >= (unsigned)w) return 0.0f;
        return x[(ci * h + ih) * w + iw];
    }
};

// y [N, Co, Ho, Wo] (overwritten) = conv(x, w) + b (b may be NULL).
extern "C" __global__ void __launch_bounds__(NCSN_TILE_THREADS)
conv2d_forward_f32(const float* x, const float* w, const float* b, float* y, CONV_DIMS_PARAMS)
{
    const ConvDims d = CONV_DIMS;
    const int ho = d.ho(), wo = d.wo(), P = ho * wo, K = d.ci * d.kh * d.kw;
    const int n = blockIdx.z, m0 = blockIdx.y * NCSN_TM, n0 = blockIdx.x * NCSN_TN;
    const float* xn = x + (long long)n * d.ci * d.h * d.w;
    float acc[4][4];
    ncsn_gemm_mainloop<false>(ConvFwdLoadW{w, K},
                              ConvFwdLoadCol(xn, d.h, d.w, d.kh, d.kw, d.pad, d.dil, wo),
                              d.co, P, 0, K, m0, n0, acc);
    float* yn = y + (long long)n * d.co * P;
    const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
#pragma unroll
    for (int r = 0; r < 4; r++) {
        int co = m0 + 4 * ty + r;
        if (co >= d.co) continue;
        float bias = b != nullptr ? b[co] : 0.0f;
#pragma unroll
        for (int c = 0; c < 4; c++) {
            int p = n0 + 4 * tx + c;
            if (p < P) yn[co * P + p] = acc[r][c] + bias;
        }
    }
}

// ---- backward-data --------------------------------------------------------------------------
// dx[n, ci, ih, iw] = sum over (co, i, j) of w[co, ci, i, j] * dy[n, co, ih + pad - dil i,
// iw + pad - dil j] (0 where that output position is outside [0, Ho) x [0, Wo)).
// GEMM: M = Ci, N = H W, K' = Co kh kw with k' = (co, i, j).

// A[ci, (co, t)] = w[co, ci, t] (t = i kw + j).
struct ConvBwdDataLoadW {
    const float* w;
    int ci, khw;
    NcsnDiv byKhw;
    __device__ ConvBwdDataLoadW(const float* w_, int ci_, int khw_) : w(w_), ci(ci_), khw(khw_), byKhw(khw_) {}
    struct Fixed { int ci; };
    __device__ Fixed fix(int c) const { return {c}; }
    __device__ float at(const Fixed& f, int k) const
    {
        int co = byKhw.div(k), t = k - co * khw;
        return w[((long long)co * ci + f.ci) * khw + t];
    }
};

// B[(co, i, j), (ih, iw)] = dy_n[co, ih + pad - dil i, iw + pad - dil j] or 0.
struct ConvBwdDataLoadDy {
    const float* dy;  // image n: dy + n Co Ho Wo
    int w, kw, khw, pad, dil, ho, wo;
    NcsnDiv byKhw, byKw, byW;
    __device__ ConvBwdDataLoadDy(const float* dy_, int w_, int kh_, int kw_, int pad_, int dil_, int ho_, int wo_)
        : dy(dy_), w(w_), kw(kw_), khw(kh_ * kw_), pad(pad_), dil(dil_), ho(ho_), wo(wo_),
          byKhw(kh_ * kw_), byKw(kw_), byW(w_) {}
    struct Fixed { int oh0, ow0; };  // output position that tap (0, 0) of this input pixel feeds
    __device__ Fixed fix(int p) const
    {
        int ih = byW.div(p), iw = p - ih * w;
        return {ih + pad, iw + pad};
    }
    __device__ float at(const Fixed& f, int k) const
    {
        int co = byKhw.div(k), t = k - co * khw, i = byKw.div(t), j = t - i * kw;
        int oh = f.oh0 - dil * i, ow = f.ow0 - dil * j;
        if ((unsigned)oh >= (unsigned)ho || (unsigned)ow >= (unsigned)wo) return 0.0f;
        return dy[(co * ho + oh) * wo + ow];
    }
};

// dx [N, Ci, H, W] (overwritten) from dy [N, Co, Ho, Wo] and w.
extern "C" __global__ void __launch_bounds__(NCSN_TILE_THREADS)
conv2d_backward_data_f32(const float* dy, const float* w, float* dx, CONV_DIMS_PARAMS)
{
    const ConvDims d = CONV_DIMS;
    const int ho = d.ho(), wo = d.wo(), HW = d.h * d.w, khw = d.kh * d.kw, K = d.co * khw;
    const int n = blockIdx.z, m0 = blockIdx.y * NCSN_TM, n0 = blockIdx.x * NCSN_TN;
    const float* dyn = dy + (long long)n * d.co * ho * wo;
    float acc[4][4];
    ncsn_gemm_mainloop<false>(ConvBwdDataLoadW(w, d.ci, khw),
                              ConvBwdDataLoadDy(dyn, d.w, d.kh, d.kw, d.pad, d.dil, ho, wo),
                              d.ci, HW, 0, K, m0, n0, acc);
    float* dxn = dx + (long long)n * d.ci * HW;
    const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
#pragma unroll
    for (int r = 0; r < 4; r++) {
        int ci = m0 + 4 * ty + r;
        if (ci >= d.ci) continue;
#pragma unroll
        for (int c = 0; c < 4; c++) {
            int p = n0 + 4 * tx + c;
            if (p < HW) dxn[ci * HW + p] = acc[r][c];
        }
    }
}

// ---- backward-weight ------------------------------------------------------------------------
// dw[co, (ci, i, j)] = sum over r = (n, oh, ow) of dy[n, co, oh, ow] * x[n, ci, oh - pad + dil i,
// ow - pad + dil j]. GEMM: M = Co, N = K, reduction R = N Ho Wo (across the batch). The
// reduction is cut into `splits` contiguous chunks (blockIdx.z); each writes its own partial
// [Co, K] slab, and conv2d_weight_reduce_f32 adds the slabs in split order. With one split the
// kernel writes dw directly.

// A[co, r] = dy[n, co, p] with r = n P + p (contiguous in r within an image).
struct ConvBwdWLoadDy {
    const float* dy;
    int co, P;
    NcsnDiv byP;
    __device__ ConvBwdWLoadDy(const float* dy_, int co_, int P_) : dy(dy_), co(co_), P(P_), byP(P_) {}
    struct Fixed { int co; };
    __device__ Fixed fix(int c) const { return {c}; }
    __device__ float at(const Fixed& f, int r) const
    {
        int n = byP.div(r), p = r - n * P;
        return dy[((long long)n * co + f.co) * P + p];
    }
};

// B[r, (ci, i, j)] = x[n, ci, oh - pad + dil i, ow - pad + dil j] or 0; the column (ci, i, j)
// is decoded once per thread. Loaded r-fastest (B_K_FAST): adjacent threads read adjacent pixels.
struct ConvBwdWLoadX {
    const float* x;
    int ci, h, w, kh, kw, pad, dil, wo, P;
    NcsnDiv byP, byWo;
    __device__ ConvBwdWLoadX(const float* x_, int ci_, int h_, int w_, int kh_, int kw_, int pad_, int dil_,
                             int wo_, int P_)
        : x(x_), ci(ci_), h(h_), w(w_), kh(kh_), kw(kw_), pad(pad_), dil(dil_), wo(wo_), P(P_),
          byP(P_), byWo(wo_) {}
    struct Fixed { int off, di, dj; };  // channel plane offset, row / column shift of the tap
    __device__ Fixed fix(int kc) const
    {
        int khw = kh * kw;  // once per thread: plain division
        int c = kc / khw, t = kc - c * khw, i = t / kw, j = t - i * kw;
        return {c * h * w, dil * i - pad, dil * j - pad};
    }
    __device__ float at(const Fixed& f, int r) const
    {
        int n = byP.div(r), p = r - n * P;
        int oh = byWo.div(p), ow = p - oh * wo;
        int ih = oh + f.di, iw = ow + f.dj;
        if ((unsigned)ih >= (unsigned)h || (unsigned)iw >= (unsigned)w) return 0.0f;
        return x[(long long)n * ci * h * w + f.off + ih * w + iw];
    }
};

// out [splits, Co, K] (overwritten; = dw when splits == 1): split s sums r in
// [s chunk, min(R, (s + 1) chunk)) where R = N Ho Wo. An empty chunk writes zeros.
extern "C" __global__ void __launch_bounds__(NCSN_TILE_THREADS)
conv2d_backward_weight_f32(const float* x, const float* dy, float* out, CONV_DIMS_PARAMS,
                           int chunk)
{
    const ConvDims d = CONV_DIMS;
    const int ho = d.ho(), wo = d.wo(), P = ho * wo, K = d.ci * d.kh * d.kw;
    const long long R = (long long)d.n * P;  // < 2^31: dy has R Co elements
    const int s = blockIdx.z, m0 = blockIdx.y * NCSN_TM, n0 = blockIdx.x * NCSN_TN;
    const long long lo = (long long)s * chunk, hi = lo + chunk < R ? lo + chunk : R;
    const int kBegin = (int)(lo < R ? lo : R), kEnd = (int)hi;
    float acc[4][4];
    ncsn_gemm_mainloop<true>(ConvBwdWLoadDy(dy, d.co, P),
                             ConvBwdWLoadX(x, d.ci, d.h, d.w, d.kh, d.kw, d.pad, d.dil, wo, P),
                             d.co, K, kBegin, kEnd, m0, n0, acc);
    float* o = out + (long long)s * d.co * K;
    const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
#pragma unroll
    for (int r = 0; r < 4; r++) {
        int co = m0 + 4 * ty + r;
        if (co >= d.co) continue;
#pragma unroll
        for (int c = 0; c < 4; c++) {
            int kc = n0 + 4 * tx + c;
            if (kc < K) o[(long long)co * K + kc] = acc[r][c];
        }
    }
}

// dw[i] (overwritten) = sum over s = 0 .. splits-1, in that order, of part[s count + i]
// (accumulated in double). part [splits, count].
extern "C" __global__ void conv2d_weight_reduce_f32(const float* part, float* dw, int splits,
                                                    long long count)
{
    NCSN_GRID_STRIDE_LOOP(i, count) {
        double sum = 0.0;
        for (int s = 0; s < splits; s++) sum += (double)part[(long long)s * count + i];
        dw[i] = (float)sum;
    }
}

// ---- bias gradient --------------------------------------------------------------------------
// db[co] (overwritten) = sum over n and p of dy[n, co, p]. One block (256 threads) per channel,
// each thread a strided run of every image's plane (coalesced), summed in double, then a fixed
// tree reduction: deterministic.
extern "C" __global__ void __launch_bounds__(256)
conv2d_bias_grad_f32(const float* dy, float* db, int n, int co, int P)
{
    __shared__ double scratch[32];
    const int c = blockIdx.x;
    double s = 0.0;
    for (int img = 0; img < n; img++) {
        const float* plane = dy + ((long long)img * co + c) * P;
        for (int p = threadIdx.x; p < P; p += blockDim.x) s += (double)plane[p];
    }
    s = ncsn_block_sum_d(s, scratch);
    if (threadIdx.x == 0) db[c] = (float)s;
}
