// Softplus (beta = 1, threshold = 20, PyTorch's defaults) for ncsn.ops.Softplus, float32 in and
// out. Each element is evaluated in double and rounded once, like the CPU kernel, so the two
// agree to the last bit except where the GPU's double exp / log1p differ from Java's in the
// last double place (then at most a 1-ulp float difference after rounding).
// Bytes per element: forward 8 (x in, out), backward 12 (g, x in, gx out).

#include "common.cuh"

// out = x > 20 ? x : log1p(exp(-|x|)) + max(x, 0)   (no overflow for large x, no underflow to 0
// of log1p(exp(x)) for x << 0). out may alias x.
extern "C" __global__ void softplus_forward_f32(const float* x, float* out, long long n)
{
    NCSN_GRID_STRIDE_LOOP(i, n) {
        float v = x[i];
        out[i] = v > 20.0f ? v : (float)(log1p(exp(-fabs((double)v))) + (double)fmaxf(v, 0.0f));
    }
}

// gx = g for x > 20, g * sigmoid(x) otherwise; sigmoid from e = exp(-|x|) in the form that
// cannot overflow: 1 / (1 + e) for x >= 0, e / (1 + e) for x < 0. gx may alias g.
extern "C" __global__ void softplus_backward_f32(const float* g, const float* x, float* gx, long long n)
{
    NCSN_GRID_STRIDE_LOOP(i, n) {
        float v = x[i];
        if (v > 20.0f) {
            gx[i] = g[i];
        } else {
            double e = exp(-fabs((double)v));
            double s = v >= 0.0f ? 1.0 / (1.0 + e) : e / (1.0 + e);
            gx[i] = (float)((double)g[i] * s);
        }
    }
}
