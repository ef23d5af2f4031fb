// CIN++ (conditional instance normalisation ++, spec section 4) on the GPU: float32 data,
// statistics in double. Launched by ncsn.ops.CondInstanceNormPlus.Gpu; the float64 reference
// and the closed-form backward are in CondInstanceNormPlus.java's class comment.
//
// Shapes: x, out, dout, dx [N,C,P] (P = H*W, one "plane" per (n,c)); embed [L,3C] = gamma |
// alpha | beta per label row; labels [N] as float32 (exact integers < 2^24).
// Saved between forward and backward (double buffers living in float32 tensors of twice the
// length; fresh allocations, so 256-byte aligned):
//   st [N,3,C] double: mu, rstd = 1/sqrt(var+eps), mhat = (mu - m)/sqrt(v+eps)
//   rs [N]     double: 1/sqrt(v+eps)
// Per-plane float coefficients (built by the per-image kernels, read by the per-plane writes):
//   coef  [N*C,3]: muf, scale, shift        out = (x - muf)*scale + shift
//   gcoef [N*C,5]: muf, meanG, a, b, d      dx  = a*(dout - meanG) + b*(x - muf) + d
// Subtracting the float-rounded mean (and the mean gradient) before scaling keeps precision
// when |mu| is large next to the spread, as the CPU kernel does.
//
// Launch shapes: the plane kernels use one block per plane (grid N*C, block 256); the
// across-channel kernels one block per image (grid N, block 256); the embedding-gradient kernel
// is grid-stride over L*3C. Every block-reduction kernel needs blockDim.x a multiple of 32.
//
// Bytes per element of x (for GB/s): stats 8 (x read twice; the second read is usually an L2
// hit), write 8 (x read, out written); backward sums 8 (dout, x), dx 12 (dout, x read, dx
// written). The per-image kernels touch O(N*C) bytes.

#include "common.cuh"

#define CIN_PP_EPS 1e-5

// st[n,0,c] = mu, st[n,1,c] = rstd of plane q = n*C + c (blockIdx.x). Two passes over the
// plane (mean, then squared deviations from the double mean), each thread summing in double.
// Overwrites those two entries only.
extern "C" __global__ void cin_pp_stats_f32(const float* x, double* st, int C, long long P)
{
    __shared__ double scratch[32];
    long long q = blockIdx.x;
    const float* xp = x + q * P;
    double s = 0.0;
    for (long long i = threadIdx.x; i < P; i += blockDim.x) s += (double)xp[i];
    double mu = ncsn_block_sum_d(s, scratch) / (double)P;
    double s2 = 0.0;
    for (long long i = threadIdx.x; i < P; i += blockDim.x) {
        double d = (double)xp[i] - mu;
        s2 += d * d;
    }
    double var = ncsn_block_sum_d(s2, scratch) / (double)P;
    if (threadIdx.x == 0) {
        long long n = q / C, c = q - n * C;
        st[n * 3 * C + c] = mu;
        st[n * 3 * C + C + c] = 1.0 / sqrt(var + CIN_PP_EPS);
    }
}

// Image n = blockIdx.x: m = mean_c mu, v = sum_c (mu - m)^2 / (C-1) (unbiased, C >= 2);
// writes rs[n], st[n,2,:] = mhat and coef[n*C + c, 0..2] from the embedding row labels[n].
extern "C" __global__ void cin_pp_across_f32(double* st, double* rs, float* coef, const float* embed,
                                             const float* labels, int C)
{
    __shared__ double scratch[32];
    int n = blockIdx.x;
    double* mu = st + (long long)n * 3 * C;
    const double* rstd = mu + C;
    double* mhat = mu + 2 * C;
    double s = 0.0;
    for (int c = threadIdx.x; c < C; c += blockDim.x) s += mu[c];
    double m = ncsn_block_sum_d(s, scratch) / (double)C;
    double s2 = 0.0;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        double d = mu[c] - m;
        s2 += d * d;
    }
    double v = ncsn_block_sum_d(s2, scratch) / (double)(C - 1);
    double r = 1.0 / sqrt(v + CIN_PP_EPS);
    if (threadIdx.x == 0) rs[n] = r;
    const float* e = embed + (long long)(int)labels[n] * 3 * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        double mh = (mu[c] - m) * r;
        mhat[c] = mh;
        double gamma = e[c], alpha = e[C + c], beta = e[2 * C + c];
        float muf = (float)mu[c];
        double scale = gamma * rstd[c];
        float* k = coef + ((long long)n * C + c) * 3;
        k[0] = muf;
        k[1] = (float)scale;
        k[2] = (float)(gamma * alpha * mh + beta + scale * ((double)muf - mu[c]));
    }
}

// out = (x - muf)*scale + shift on plane blockIdx.x (coef as cin_pp_across_f32 left it).
extern "C" __global__ void cin_pp_write_f32(const float* x, const float* coef, float* out, long long P)
{
    long long q = blockIdx.x;
    float muf = coef[q * 3], scale = coef[q * 3 + 1], shift = coef[q * 3 + 2];
    const float* xp = x + q * P;
    float* op = out + q * P;
    for (long long i = threadIdx.x; i < P; i += blockDim.x) op[i] = (xp[i] - muf) * scale + shift;
}

// Backward, plane q = n*C + c (blockIdx.x): sums[n,0,c] = S1 = sum dout,
// sums[n,1,c] = S2 = sum dout*(x - mu), in double. Overwrites those two entries.
extern "C" __global__ void cin_pp_bwd_sums_f32(const float* gout, const float* x, const double* st,
                                               double* sums, int C, long long P)
{
    __shared__ double scratch[32];
    long long q = blockIdx.x;
    long long n = q / C, c = q - n * C;
    double mu = st[n * 3 * C + c];
    const float* gp = gout + q * P;
    const float* xp = x + q * P;
    double s1 = 0.0, s2 = 0.0;
    for (long long i = threadIdx.x; i < P; i += blockDim.x) {
        double g = gp[i];
        s1 += g;
        s2 += g * ((double)xp[i] - mu);
    }
    s1 = ncsn_block_sum_d(s1, scratch);
    s2 = ncsn_block_sum_d(s2, scratch);
    if (threadIdx.x == 0) {
        sums[n * 3 * C + c] = s1;
        sums[n * 3 * C + C + c] = s2;
    }
}

// Backward across channels, image n = blockIdx.x. With dmhat_c = gamma*alpha*S1_c:
//   dmu_c = rs*(dmhat_c - mean_c dmhat - mhat_c * sum_c(dmhat*mhat)/(C-1))
// writes gcoef[n*C + c, 0..4] (dx of the plane) and partial[n,:,c] = dgamma | dalpha | dbeta of
// this image (summed into label rows by cin_pp_bwd_embed_f32). partial [N,3C] double.
extern "C" __global__ void cin_pp_bwd_across_f32(const double* sums, const double* st, const double* rs,
                                                 const float* embed, const float* labels, float* gcoef,
                                                 double* partial, int C, long long P)
{
    __shared__ double scratch[32];
    int n = blockIdx.x;
    const double* s1v = sums + (long long)n * 3 * C;
    const double* s2v = s1v + C;
    const double* mu = st + (long long)n * 3 * C;
    const double* rstd = mu + C;
    const double* mhat = mu + 2 * C;
    const float* e = embed + (long long)(int)labels[n] * 3 * C;
    double mean = 0.0, dot = 0.0;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        double dmhat = (double)e[c] * (double)e[C + c] * s1v[c];
        mean += dmhat;
        dot += dmhat * mhat[c];
    }
    mean = ncsn_block_sum_d(mean, scratch) / (double)C;
    dot = ncsn_block_sum_d(dot, scratch) / (double)(C - 1);
    double r = rs[n];
    double inv = 1.0 / (double)P;
    double* pg = partial + (long long)n * 3 * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        double gamma = e[c], alpha = e[C + c];
        double s1 = s1v[c], s2 = s2v[c];
        double dmu = r * (gamma * alpha * s1 - mean - mhat[c] * dot);
        double m = mu[c], rd = rstd[c];
        float muf = (float)m, meanG = (float)(s1 * inv);
        double a = gamma * rd;
        double b = -a * rd * rd * s2 * inv;
        float* k = gcoef + ((long long)n * C + c) * 5;
        k[0] = muf;
        k[1] = meanG;
        k[2] = (float)a;
        k[3] = (float)b;
        k[4] = (float)(dmu * inv + b * ((double)muf - m) - a * (s1 * inv - (double)meanG));
        pg[c] = s2 * rd + alpha * mhat[c] * s1;   // dgamma
        pg[C + c] = gamma * mhat[c] * s1;         // dalpha
        pg[2 * C + c] = s1;                       // dbeta
    }
}

// dx = a*(dout - meanG) + b*(x - muf) + d on plane blockIdx.x (gcoef from cin_pp_bwd_across_f32).
extern "C" __global__ void cin_pp_bwd_dx_f32(const float* gout, const float* x, const float* gcoef,
                                             float* gx, long long P)
{
    long long q = blockIdx.x;
    const float* k = gcoef + q * 5;
    float muf = k[0], meanG = k[1], a = k[2], b = k[3], d = k[4];
    const float* gp = gout + q * P;
    const float* xp = x + q * P;
    float* dp = gx + q * P;
    for (long long i = threadIdx.x; i < P; i += blockDim.x)
        dp[i] = a * (gp[i] - meanG) + b * (xp[i] - muf) + d;
}

// ge [L,3C] = sum over images i with labels[i] == row of partial[i,:] (written, not
// accumulated; rows no image uses get 0). One thread per element of ge, images in index order:
// deterministic, no atomics (N is a batch size, so the loop over images is short).
extern "C" __global__ void cin_pp_bwd_embed_f32(const double* partial, const float* labels, float* ge,
                                                int N, int C3, long long total)
{
    NCSN_GRID_STRIDE_LOOP(k, total) {
        long long row = k / C3, col = k - row * C3;
        double acc = 0.0;
        for (int i = 0; i < N; i++)
            if ((long long)(int)labels[i] == row) acc += partial[(long long)i * C3 + col];
        ge[k] = (float)acc;
    }
}
