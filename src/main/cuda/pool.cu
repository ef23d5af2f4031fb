// Pooling kernels: 5x5 average pool (ncsn.ops.AvgPool5) and 2x2 mean pool (ncsn.ops.MeanPool2),
// forward and backward, float32, one thread per output element (grid-stride, any grid size).
// Inputs and outputs never alias (the ops allocate fresh outputs), hence __restrict__.
//
// Bytes per element (for GB/s, counting each tensor once):
//   avgpool5 (forward and backward): 8 per element (read 4 + write 4; the 25-tap window
//     re-reads neighbours from L1/L2);
//   meanpool2 forward: 5 per input element (read 4, write 1); backward: 5 per input element
//     (read 1 of dout, write 4 of dx).

#include "common.cuh"

// out [planes,H,W] = avgpool5(in [planes,H,W]): stride 1, zero padding 2, divisor always 25
// (count_include_pad). The operator is its own adjoint (symmetric box, constant divisor), so
// the op's backward launches this same kernel on dout. total = planes*H*W.
extern "C" __global__ void avgpool5_f32(const float* __restrict__ in, float* __restrict__ out,
                                        int H, int W, long long total)
{
    long long hw = (long long)H * W;
    NCSN_GRID_STRIDE_LOOP(k, total) {
        long long q = k / hw;
        int rem = (int)(k - q * hw);
        int i = rem / W, j = rem - (rem / W) * W;
        const float* p = in + q * hw;
        int r0 = max(i - 2, 0), r1 = min(i + 2, H - 1);
        int c0 = max(j - 2, 0), c1 = min(j + 2, W - 1);
        float s = 0.0f;
        for (int r = r0; r <= r1; r++)
            for (int c = c0; c <= c1; c++) s += p[(long long)r * W + c];
        out[k] = s * (1.0f / 25.0f);
    }
}

// out [planes,Ho,Wo] = meanpool2(x [planes,2Ho,2Wo]). Output row k of the flattened
// [planes*Ho, Wo] view reads input rows 2k and 2k+1 of the flattened [planes*2Ho, 2Wo] view.
// Summed in the reference's order: (x[2i,2j] + x[2i+1,2j] + x[2i,2j+1] + x[2i+1,2j+1]) / 4.
// totalOut = planes*Ho*Wo.
extern "C" __global__ void meanpool2_forward_f32(const float* __restrict__ x, float* __restrict__ out,
                                                 int Wo, long long totalOut)
{
    long long W = 2LL * Wo;
    NCSN_GRID_STRIDE_LOOP(k, totalOut) {
        long long row = k / Wo, j = k - row * Wo;
        const float* r0 = x + 2 * row * W + 2 * j;
        const float* r1 = r0 + W;
        out[k] = (r0[0] + r1[0] + r0[1] + r1[1]) * 0.25f;
    }
}

// gx [planes,2Ho,2Wo] written (every element: the windows tile the plane) = dout/4 spread over
// each window. totalOut = planes*Ho*Wo.
extern "C" __global__ void meanpool2_backward_f32(const float* __restrict__ gout, float* __restrict__ gx,
                                                  int Wo, long long totalOut)
{
    long long W = 2LL * Wo;
    NCSN_GRID_STRIDE_LOOP(k, totalOut) {
        long long row = k / Wo, j = k - row * Wo;
        float s = gout[k] * 0.25f;
        float* r0 = gx + 2 * row * W + 2 * j;
        float* r1 = r0 + W;
        r0[0] = s;
        r0[1] = s;
        r1[0] = s;
        r1[1] = s;
    }
}
