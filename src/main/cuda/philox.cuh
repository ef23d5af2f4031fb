// Philox4x32-10 with exactly the keying of ncsn.rng.Philox (see its class comment), shared by
// rng.cu (tensor fills) and langevin.cu (in-kernel noise):
//   key     = seed as two words, low first
//   counter = (block low, block high, stream low, stream high), block = offset + j / 4
//   element j takes word j % 4 of its block
//   uniform = (w >> 8) * 2^-24 in [0, 1)
//   normal  = Box-Muller in double on the word pairs (0,1) and (2,3): u1 = (w_even + 1) 2^-32,
//             r = sqrt(-2 ln u1), t = 2 pi (w_odd 2^-32); even word r cos t, odd word r sin t.
// So a GPU run draws the same numbers as a CPU run with the same (seed, stream, offset): uniforms
// bit for bit, normals up to CUDA's double log/sin/cos against Java's (a double ulp or so, which
// almost never changes the float the caller rounds to).
//
// The functions are __host__ __device__ so the arithmetic can be checked against the Java code on
// a machine without a GPU. 32x32 -> 64-bit products (one mul.wide.u32 on the device) replace
// __umulhi so the same source is valid host code. No fast-math anywhere: the double arithmetic
// uses _rn intrinsics on the device so that nvcc cannot contract a product and a sum into an FMA
// (the Java code rounds each operation separately).
#pragma once

#define NCSN_PHILOX_M0 0xD2511F53u
#define NCSN_PHILOX_M1 0xCD9E8D57u
#define NCSN_PHILOX_W0 0x9E3779B9u
#define NCSN_PHILOX_W1 0xBB67AE85u

// The raw generator: 10 rounds on counter c with key (k0, k1).
static __host__ __device__ __forceinline__ uint4 ncsn_philox4x32_10(uint4 c, unsigned int k0, unsigned int k1)
{
#pragma unroll
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += NCSN_PHILOX_W0;
            k1 += NCSN_PHILOX_W1;
        }
        unsigned long long p0 = (unsigned long long)NCSN_PHILOX_M0 * c.x;
        unsigned long long p1 = (unsigned long long)NCSN_PHILOX_M1 * c.z;
        unsigned int hi0 = (unsigned int)(p0 >> 32), lo0 = (unsigned int)p0;
        unsigned int hi1 = (unsigned int)(p1 >> 32), lo1 = (unsigned int)p1;
        c.x = hi1 ^ c.y ^ k0;
        c.y = lo1;
        c.z = hi0 ^ c.w ^ k1;
        c.w = lo0;
    }
    return c;
}

// Block `block` of the (seed, stream) sequence (the Java Philox.block(long, long, long, int[])).
static __host__ __device__ __forceinline__ uint4 ncsn_philox_block(unsigned long long seed, unsigned long long stream,
                                                                   unsigned long long block)
{
    uint4 c;
    c.x = (unsigned int)block;
    c.y = (unsigned int)(block >> 32);
    c.z = (unsigned int)stream;
    c.w = (unsigned int)(stream >> 32);
    return ncsn_philox4x32_10(c, (unsigned int)seed, (unsigned int)(seed >> 32));
}

// Word `lane` (0..3) of a block.
static __host__ __device__ __forceinline__ unsigned int ncsn_philox_word(uint4 w, int lane)
{
    return lane == 0 ? w.x : lane == 1 ? w.y : lane == 2 ? w.z : w.w;
}

// U[0, 1) from one word: (w >> 8) 2^-24, exact in float and double.
static __host__ __device__ __forceinline__ double ncsn_philox_uniform(unsigned int w)
{
    return (double)(w >> 8) * 0x1p-24;
}

static __host__ __device__ __forceinline__ double ncsn_dmul(double a, double b)
{
#ifdef __CUDA_ARCH__
    return __dmul_rn(a, b);
#else
    return a * b;
#endif
}

static __host__ __device__ __forceinline__ double ncsn_dadd(double a, double b)
{
#ifdef __CUDA_ARCH__
    return __dadd_rn(a, b);
#else
    return a + b;
#endif
}

// Box-Muller radius sqrt(-2 ln u1), u1 = (w + 1) 2^-32 in (0, 1] (Philox.boxMullerRadius).
// (w + 1) is exact in double; the product with 2^-32 is exact.
static __host__ __device__ __forceinline__ double ncsn_box_muller_radius(unsigned int even_word)
{
    return sqrt(ncsn_dmul(-2.0, log(((double)even_word + 1.0) * 0x1p-32)));
}

// Box-Muller angle 2 pi u2, u2 = w 2^-32 (Philox.boxMullerAngle). 0x1.921fb54442d18p2 is the
// double 2 * Math.PI exactly.
static __host__ __device__ __forceinline__ double ncsn_box_muller_angle(unsigned int odd_word)
{
    return ncsn_dmul(0x1.921fb54442d18p2, (double)odd_word * 0x1p-32);
}

// The two normals of a word pair: *z_even = r cos t, *z_odd = r sin t (Philox.normalOf).
static __host__ __device__ __forceinline__ void ncsn_box_muller(unsigned int even_word, unsigned int odd_word,
                                                                double* z_even, double* z_odd)
{
    double r = ncsn_box_muller_radius(even_word), t = ncsn_box_muller_angle(odd_word);
    double s, c;
#ifdef __CUDA_ARCH__
    sincos(t, &s, &c);
#else
    s = sin(t);
    c = cos(t);
#endif
    *z_even = ncsn_dmul(r, c);
    *z_odd = ncsn_dmul(r, s);
}
