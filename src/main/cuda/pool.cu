// Pooling kernels: 5x5 average pool (ncsn.ops.AvgPool5) and 2x2 mean pool (ncsn.ops.MeanPool2),
// forward and backward, float32, one thread per output element (avgpool5: shared-memory tiles;
// meanpool2: grid-stride, any grid size).
// Inputs and outputs never alias (the ops allocate fresh outputs), hence __restrict__.
//
// Bytes per element (for GB/s, counting each tensor once):
//   avgpool5 (forward and backward): 8 per element (read 4 + write 4; the tile's halo re-reads
//     a few neighbours from L2);
//   meanpool2 forward: 5 per input element (read 4, write 1); backward: 5 per input element
//     (read 1 of dout, write 4 of dx).

#include "common.cuh"

// Output tile of one avgpool5 block: AVGPOOL5_TW x AVGPOOL5_TH, one thread per output; the block
// stages the tile plus a 2-pixel halo (zeros outside the plane) in shared memory.
#define AVGPOOL5_TW 32
#define AVGPOOL5_TH 8

// out [planes,H,W] = avgpool5(in [planes,H,W]): stride 1, zero padding 2, divisor always 25
// (count_include_pad). The operator is its own adjoint (symmetric box, constant divisor), so
// the op's backward launches this same kernel on dout.
// Launch: block = AVGPOOL5_TW*AVGPOOL5_TH = 256 threads (1-D), grid = planes * tilesY * tilesX
// (tilesX = ceil(W/32), tilesY = ceil(H/8); at most numel blocks, so it fits an int).
// Summed in the reference's row-major window order; the zeros of the halo add exactly nothing.
extern "C" __global__ void avgpool5_f32(const float* __restrict__ in, float* __restrict__ out,
                                        int H, int W, int tilesX, int tilesY)
{
    __shared__ float tile[AVGPOOL5_TH + 4][AVGPOOL5_TW + 4];
    int per = tilesX * tilesY;
    int q = blockIdx.x / per, t = blockIdx.x - q * per;
    int tyBlock = t / tilesX;
    int y0 = tyBlock * AVGPOOL5_TH, x0 = (t - tyBlock * tilesX) * AVGPOOL5_TW;
    long long plane = (long long)q * H * W;
    const float* p = in + plane;
    for (int idx = threadIdx.x; idx < (AVGPOOL5_TH + 4) * (AVGPOOL5_TW + 4); idx += blockDim.x) {
        int r = idx / (AVGPOOL5_TW + 4), c = idx - r * (AVGPOOL5_TW + 4);
        int gr = y0 + r - 2, gc = x0 + c - 2;
        tile[r][c] = (gr >= 0 && gr < H && gc >= 0 && gc < W) ? p[(long long)gr * W + gc] : 0.0f;
    }
    __syncthreads();
    int tx = threadIdx.x % AVGPOOL5_TW, ty = threadIdx.x / AVGPOOL5_TW;
    int i = y0 + ty, j = x0 + tx;
    if (ty < AVGPOOL5_TH && i < H && j < W) {
        float s = 0.0f;
        for (int dr = 0; dr < 5; dr++)
            for (int dc = 0; dc < 5; dc++) s += tile[ty + dr][tx + dc];
        out[plane + (long long)i * W + j] = s * (1.0f / 25.0f);
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
        int kk = (int)k;   // totalOut < 2^31 (Java tensors have int sizes): 32-bit division
        long long row = kk / Wo, j = kk - (kk / Wo) * Wo;
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
        int kk = (int)k;   // as above
        long long row = kk / Wo, j = kk - (kk / Wo) * Wo;
        float s = gout[k] * 0.25f;
        float* r0 = gx + 2 * row * W + 2 * j;
        float* r1 = r0 + W;
        r0[0] = s;
        r0[1] = s;
        r1[0] = s;
        r1[1] = s;
    }
}
