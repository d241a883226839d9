/* Private to CKernels: IEEE half <-> float conversions in portable C (the F16C instructions do
   the same where the AVX2 paths run). */
#ifndef SWITCHYARD_CKERNELS_HALF_H
#define SWITCHYARD_CKERNELS_HALF_H

#include <stdint.h>
#include <string.h>

/* The 16-bit value stored little-endian at p, at any alignment: a half or bfloat16 of a weight
   block. */
static inline uint16_t sy_load_u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

/* Exact: every half is a float. */
static inline float sy_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) bits = sign;
        else {  /* subnormal: normalise */
            int e = -1;
            do { mant <<= 1; e++; } while (!(mant & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 31) bits = sign | 0x7f800000 | (mant << 13);
    else bits = sign | ((exp + 112) << 23) | (mant << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Rounded to nearest, ties to even (as vcvtps2ph with _MM_FROUND_TO_NEAREST_INT): overflow gives
   infinity, tiny values subnormals or zero, NaN stays NaN. */
static inline uint16_t sy_float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, absx = x & 0x7fffffff;
    if (absx >= 0x7f800000) return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000 ? 0x200 : 0));
    if (absx >= 0x477ff000) return (uint16_t)(sign | 0x7c00);  /* rounds past 65504 */
    if (absx < 0x38800000) {  /* below the smallest normal half: a subnormal (or zero) */
        if (absx < 0x33000000) return (uint16_t)sign;  /* under half the smallest subnormal */
        uint32_t mant = (absx & 0x7fffff) | 0x800000;
        int shift = 126 - (int)(absx >> 23);  /* 14 .. 24 */
        uint32_t v = mant >> shift, rest = mant & ((1u << shift) - 1), halfway = 1u << (shift - 1);
        if (rest > halfway || (rest == halfway && (v & 1))) v++;
        return (uint16_t)(sign | v);
    }
    uint32_t v = ((absx >> 13) - (112u << 10)), rest = absx & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (v & 1))) v++;
    return (uint16_t)(sign | v);
}

#endif
