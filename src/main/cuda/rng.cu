// Philox fills of float32 CUDA tensors (ncsn.rng.Rng.normal / uniform on a CUDA tensor; launched
// by ncsn.rng.Philox.Gpu). Element j of out[0 .. n) is draw j of (seed, stream) starting at block
// `offset` (philox.cuh has the keying), so a fill equals the CPU fill with the same arguments:
// uniforms bit for bit, normals to within CUDA's vs Java's double log/sin/cos (then rounded to
// float: identical or 1 ulp apart).
//
// One thread per Philox block (4 elements), grid-stride over ceil(n / 4) blocks; the last block
// writes only its n % 4 leading elements. Every output element is overwritten. 64-bit counts: a
// tensor may have up to 2^31 elements. seed/stream/offset arrive as long long (the Java longs,
// same bits). Double scalars arrive as their IEEE bits in a long long (the Java launcher has no
// double argument), decoded with __longlong_as_double.

#include "common.cuh"
#include "philox.cuh"

// out[j] = float(lo + scale * u_j), u_j = (w_j >> 8) 2^-24, the affine map computed in double
// with one rounding (Rng.uniform(t, lo, hi) on the CPU computes lo + (hi - lo) * u in double and
// stores the float). A plain U[0,1) fill passes lo = 0, scale = 1, which gives u exactly.
extern "C" __global__ void philox_uniform_f32(float* out, long long n, long long seed, long long stream,
                                              long long offset, long long lo_bits, long long scale_bits)
{
    const double lo = __longlong_as_double(lo_bits), scale = __longlong_as_double(scale_bits);
    const long long blocks = (n + 3) >> 2;
    NCSN_GRID_STRIDE_LOOP(b, blocks) {
        uint4 w = ncsn_philox_block((unsigned long long)seed, (unsigned long long)stream,
                                    (unsigned long long)offset + (unsigned long long)b);
        long long j = b << 2;
        int m = (int)min(4LL, n - j);
        for (int k = 0; k < m; k++)
            out[j + k] = __double2float_rn(ncsn_dadd(lo, ncsn_dmul(scale, ncsn_philox_uniform(ncsn_philox_word(w, k)))));
    }
}

// out[j] = float(z_j), z_j the Box-Muller normal of word j % 4 of block offset + j / 4.
extern "C" __global__ void philox_normal_f32(float* out, long long n, long long seed, long long stream,
                                             long long offset)
{
    const long long blocks = (n + 3) >> 2;
    NCSN_GRID_STRIDE_LOOP(b, blocks) {
        uint4 w = ncsn_philox_block((unsigned long long)seed, (unsigned long long)stream,
                                    (unsigned long long)offset + (unsigned long long)b);
        long long j = b << 2;
        long long m = min(4LL, n - j);
        double z0, z1;
        ncsn_box_muller(w.x, w.y, &z0, &z1);
        out[j] = __double2float_rn(z0);
        if (m > 1) out[j + 1] = __double2float_rn(z1);
        if (m > 2) {
            double z2, z3;
            ncsn_box_muller(w.z, w.w, &z2, &z3);
            out[j + 2] = __double2float_rn(z2);
            if (m > 3) out[j + 3] = __double2float_rn(z3);
        }
    }
}

// Known-answer check of the raw generator (PhiloxGpuTest): out[0..8) = the 4 output words of
// counter (c0..c3), key (k0, k1), each split into 16-bit halves (low half first) so they are exact
// in float32. One thread does the work.
extern "C" __global__ void philox_kat_f32(float* out, int c0, int c1, int c2, int c3, int k0, int k1)
{
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    uint4 w = ncsn_philox4x32_10(make_uint4((unsigned int)c0, (unsigned int)c1, (unsigned int)c2, (unsigned int)c3),
                                 (unsigned int)k0, (unsigned int)k1);
    for (int k = 0; k < 4; k++) {
        unsigned int v = ncsn_philox_word(w, k);
        out[2 * k] = (float)(v & 0xFFFFu);
        out[2 * k + 1] = (float)(v >> 16);
    }
}
