// Fused Langevin step on float32 CUDA tensors (ncsn.sample.LangevinUpdate, op "langevin_update",
// spec section 6; launched by LangevinUpdate.Gpu):
//   x[j] <- x[j] + step * score[j] + noise * z[j]     in place, j = 0 .. n-1, noise = sqrt(2 step)
//   z[j]  = N(0,1) draw j of Philox (seed, stream) at block offset (philox.cuh, as Philox.normalOf)
// Masked (inpainting): where mask[j] != 0, x[j] <- known[j] instead; draw j is skipped but keeps
// its number, so masked and unmasked runs share the noise of the free pixels.
//
// Each element is computed in double from its float inputs, the operations in the Java order
// ((x + step*score) + noise*z, each rounded: _rn intrinsics stop nvcc from contracting them into
// FMAs) and rounded to float once, like LangevinUpdate.Cpu; the only difference to the CPU is
// CUDA's double log/sin/cos in z.
//
// One thread per Philox block (4 elements), grid-stride over ceil(n / 4) blocks, so the noise
// words are generated once per block; x, score, mask, known are read and x written only at the
// thread's own elements (x may not alias score: it never does in the drivers).
// Scalars: step and noise as IEEE double bits in long long (the Java launcher has no double
// argument).

#include "common.cuh"
#include "philox.cuh"

static __device__ __forceinline__ void ncsn_langevin_put(float* x, const float* score, const float* mask,
                                                         const float* known, double step, double noise,
                                                         long long j, double z)
{
    if (mask != nullptr && mask[j] != 0.0f) {
        x[j] = known[j];
    } else {
        double v = ncsn_dadd(ncsn_dadd((double)x[j], ncsn_dmul(step, (double)score[j])), ncsn_dmul(noise, z));
        x[j] = __double2float_rn(v);
    }
}

// The whole step over ceil(n / 4) Philox blocks, grid-stride; shared by langevin_update_f32 and
// langevin_update_dev_f32 so that both do exactly the same arithmetic (a CUDA graph replay must be
// bit-identical to the plain launches).
static __device__ __forceinline__ void ncsn_langevin_step(float* x, const float* score, const float* mask,
                                                          const float* known, long long n, double step, double noise,
                                                          long long seed, long long stream, long long offset)
{
    const long long blocks = (n + 3) >> 2;
    NCSN_GRID_STRIDE_LOOP(b, blocks) {
        uint4 w = ncsn_philox_block((unsigned long long)seed, (unsigned long long)stream,
                                    (unsigned long long)offset + (unsigned long long)b);
        long long j = b << 2;
        long long m = min(4LL, n - j);
        double z0, z1;
        ncsn_box_muller(w.x, w.y, &z0, &z1);
        ncsn_langevin_put(x, score, mask, known, step, noise, j, z0);
        if (m > 1) ncsn_langevin_put(x, score, mask, known, step, noise, j + 1, z1);
        if (m > 2) {
            double z2, z3;
            ncsn_box_muller(w.z, w.w, &z2, &z3);
            ncsn_langevin_put(x, score, mask, known, step, noise, j + 2, z2);
            if (m > 3) ncsn_langevin_put(x, score, mask, known, step, noise, j + 3, z3);
        }
    }
}

// mask and known: both null (plain step) or both float[n].
extern "C" __global__ void langevin_update_f32(float* x, const float* score, const float* mask, const float* known,
                                               long long n, long long step_bits, long long noise_bits,
                                               long long seed, long long stream, long long offset)
{
    ncsn_langevin_step(x, score, mask, known, n, __longlong_as_double(step_bits), __longlong_as_double(noise_bits),
                       seed, stream, offset);
}

// ---- CUDA graph replay (ncsn.sample.LangevinGraph) -------------------------------------------------
// A captured step cannot take per-step scalars as launch arguments (they are baked into the graph),
// so the graph variant reads them from a tiny device buffer p[5] = {step bits, noise bits, seed,
// stream, Philox block offset} (long long each): set once before the replays by
// langevin_params_set_f32, read by langevin_update_dev_f32, and advanced by
// langevin_params_advance_f32, a separate one-thread kernel captured after the update (stream order
// makes it run after every thread of the update has read the offset).

// p[0..4] = the five scalars; launch with one thread.
extern "C" __global__ void langevin_params_set_f32(long long* p, long long step_bits, long long noise_bits,
                                                   long long seed, long long stream, long long offset)
{
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        p[0] = step_bits;
        p[1] = noise_bits;
        p[2] = seed;
        p[3] = stream;
        p[4] = offset;
    }
}

// p[4] += blocks (the next step's Philox offset); launch with one thread.
extern "C" __global__ void langevin_params_advance_f32(long long* p, long long blocks)
{
    if (blockIdx.x == 0 && threadIdx.x == 0) p[4] += blocks;
}

// langevin_update_f32 with the scalars read from p (see above); p is only read here.
extern "C" __global__ void langevin_update_dev_f32(float* x, const float* score, const float* mask, const float* known,
                                                   long long n, const long long* p)
{
    const long long step_bits = p[0], noise_bits = p[1], seed = p[2], stream = p[3], offset = p[4];
    ncsn_langevin_step(x, score, mask, known, n, __longlong_as_double(step_bits), __longlong_as_double(noise_bits),
                       seed, stream, offset);
}

// x[j] = known[j] wherever mask[j] != 0 (LangevinUpdate.assignMasked); other elements untouched.
extern "C" __global__ void langevin_assign_masked_f32(float* x, const float* mask, const float* known, long long n)
{
    NCSN_GRID_STRIDE_LOOP(j, n) {
        if (mask[j] != 0.0f) x[j] = known[j];
    }
}
