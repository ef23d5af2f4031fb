// Bilinear resize with align_corners = true (ncsn.ops.BilinearResize), forward and backward,
// float32. Source coordinates are computed in float exactly as the CPU kernel's Axis tables:
// src = scale*d (scale = (in-1)/(out-1) as float, passed from Java; 0 when out == 1),
// i0 = min(floor(src), in-1), i1 = min(i0+1, in-1), lambda = clamp(src - i0, 0, 1).
//
// The backward is a GATHER (no atomics, deterministic): one thread per input pixel sums the
// output gradients that sample it. i0(d) is non-decreasing in d (float rounding is monotone),
// and source index r is used by d exactly when i0(d) is r-1 (through i1) or r, so the outputs
// touching r form the contiguous range [first d with i0 >= r-1, first d with i0 >= r+1),
// found per axis from the inverse map plus exact correction steps.
//
// Bytes per element (for GB/s): forward 4 per input element read + 4 per output element
// written; backward 4 per output element read (dout) + 4 per input element written (dx).
// Neighbouring reads repeat from L1/L2.

#include "common.cuh"

// Source index pair and weights of destination index d on one axis.
static __device__ __forceinline__ void resize_axis(int d, int in, float scale, int& i0, int& i1,
                                                   float& l0, float& l1)
{
    float src = __fmul_rn(scale, (float)d);   // rounded product (no FMA contraction), as the CPU's float
    int a = min((int)floorf(src), in - 1);
    float lam = fminf(fmaxf(src - (float)a, 0.0f), 1.0f);
    i0 = a;
    i1 = min(a + 1, in - 1);
    l1 = lam;
    l0 = 1.0f - lam;
}

static __device__ __forceinline__ int resize_i0(int d, int in, float scale)
{
    return min((int)floorf(__fmul_rn(scale, (float)d)), in - 1);
}

// Smallest d in [0, out] with i0(d) >= target (out when there is none): a guess from the
// real-valued inverse, then corrected step by step with the exact i0 (monotone), so the answer
// is exact whatever the guess's rounding; usually zero or one correction step.
static __device__ int resize_first_at_least(int target, int in, int out, float scale)
{
    if (target <= 0) return 0;                  // i0 >= 0 everywhere
    if (target > in - 1 || scale <= 0.0f) return out;   // i0 <= in-1; scale 0: i0 = 0 everywhere
    float gf = ceilf((float)target / scale);
    int g = gf >= (float)out ? out : (int)gf;   // gf >= 1 here
    while (g > 0 && resize_i0(g - 1, in, scale) >= target) g--;
    while (g < out && resize_i0(g, in, scale) < target) g++;
    return g;
}

// out [planes,OH,OW] from x [planes,H,W]: horizontal pairs first, then vertical (the CPU
// kernel's order). total = planes*OH*OW.
extern "C" __global__ void resize_bilinear_forward_f32(const float* __restrict__ x, float* __restrict__ out,
                                                       int H, int W, int OH, int OW, float sy, float sx,
                                                       long long total)
{
    int ohw = OH * OW;   // sizes < 2^31 (Java tensors have int sizes): 32-bit index arithmetic
    NCSN_GRID_STRIDE_LOOP(k, total) {
        int kk = (int)k;
        long long q = kk / ohw;
        int rem = kk - (int)q * ohw;
        int i = rem / OW, j = rem - (rem / OW) * OW;
        int y0, y1, x0, x1;
        float ly0, ly1, lx0, lx1;
        resize_axis(i, H, sy, y0, y1, ly0, ly1);
        resize_axis(j, W, sx, x0, x1, lx0, lx1);
        const float* p = x + q * H * W;
        const float* ra = p + (long long)y0 * W;
        const float* rc = p + (long long)y1 * W;
        float ta = lx0 * ra[x0] + lx1 * ra[x1];
        float tc = lx0 * rc[x0] + lx1 * rc[x1];
        out[k] = ly0 * ta + ly1 * tc;
    }
}

// gx [planes,H,W] written (every element) from gout [planes,OH,OW]:
// gx[r,c] = sum_i wy(i,r) * sum_j wx(j,c) * gout[i,j], with wy(i,r) = l0(i)[i0(i)==r] +
// l1(i)[i1(i)==r] (both when i0 == i1 == r, as the reference's scatter adds both). total = planes*H*W.
extern "C" __global__ void resize_bilinear_backward_f32(const float* __restrict__ gout, float* __restrict__ gx,
                                                        int H, int W, int OH, int OW, float sy, float sx,
                                                        long long total)
{
    int hw = H * W;   // as in the forward: 32-bit index arithmetic
    NCSN_GRID_STRIDE_LOOP(k, total) {
        int kk = (int)k;
        long long q = kk / hw;
        int rem = kk - (int)q * hw;
        int r = rem / W, c = rem - (rem / W) * W;
        int ilo = resize_first_at_least(r - 1, H, OH, sy), ihi = resize_first_at_least(r + 1, H, OH, sy);
        int jlo = resize_first_at_least(c - 1, W, OW, sx), jhi = resize_first_at_least(c + 1, W, OW, sx);
        const float* g = gout + q * OH * OW;
        float acc = 0.0f;
        for (int i = ilo; i < ihi; i++) {
            int y0, y1;
            float ly0, ly1;
            resize_axis(i, H, sy, y0, y1, ly0, ly1);
            float wy = (y0 == r ? ly0 : 0.0f) + (y1 == r ? ly1 : 0.0f);
            const float* gr = g + (long long)i * OW;
            float row = 0.0f;
            for (int j = jlo; j < jhi; j++) {
                int x0, x1;
                float lx0, lx1;
                resize_axis(j, W, sx, x0, x1, lx0, lx1);
                float wx = (x0 == c ? lx0 : 0.0f) + (x1 == c ? lx1 : 0.0f);
                row += wx * gr[j];
            }
            acc += wy * row;
        }
        gx[k] = acc;
    }
}
