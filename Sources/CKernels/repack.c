/* Blocks of ggml types that have no native kernel, rewritten at load as blocks of a type that has
   one (CKernels.h: Q5_0, Q5_1, Q5_K, IQ4_NL and IQ4_XS as Q8_0, Q4_K as Q4_1; Q6_K's rewrite as F16
   is QuantizedMatrix's, from the Swift dequantisation). llama.cpp's quantiser falls back to Q5_0,
   Q5_1 or IQ4_NL for every tensor whose rows are not whole 256-value super-blocks (all of
   SmolLM2-135M's 576-wide projections), so these carry most of such files. */
#include "CKernels.h"
#include "half.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

/* The 32 five-bit values of a Q5_0/Q5_1 block from its 4 bytes of fifth bits at qh (bit j of the
   little-endian word for value j) and 16 bytes of nibbles at qs (value j low, j + 16 high). */
static void q5_values(const uint8_t *qh4, const uint8_t *qs, int q[32]) {
    uint32_t qh;
    memcpy(&qh, qh4, 4);
    for (int j = 0; j < 16; j++) {
        q[j] = (qs[j] & 0x0F) | (int)(((qh >> j) << 4) & 0x10);
        q[j + 16] = (qs[j] >> 4) | (int)((qh >> (j + 12)) & 0x10);
    }
}

void sy_q5_0_to_q8_0(const void *src, size_t blocks, void *dst) {
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *p = (const uint8_t *)src + 22 * b;
        uint8_t *o = (uint8_t *)dst + 34 * b;
        int q[32];
        q5_values(p + 2, p + 6, q);
        memcpy(o, p, 2);  /* the same half scale */
        for (int j = 0; j < 32; j++) o[2 + j] = (uint8_t)(int8_t)(q[j] - 16);
    }
}

/* Sub-block j's 6-bit scale and minimum from a K-quant block's 12 packed bytes (ggml's
   get_scale_min_k4). */
static void scale_min_k4(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

long sy_q4_K_to_q4_1(const void *src, size_t blocks, void *dst) {
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *p = (const uint8_t *)src + 144 * b;
        uint8_t *o = (uint8_t *)dst + 8 * 20 * b;
        /* Both products are exact in float (an 11-bit half times a 6-bit integer). */
        const float d = sy_half_to_float(sy_load_u16(p)), dmin = sy_half_to_float(sy_load_u16(p + 2));
        float dj[8], mj[8], largest = 0.f;
        for (int j = 0; j < 8; j++) {
            int sc, m;
            scale_min_k4(j, p + 4, &sc, &m);
            dj[j] = d * (float)sc;
            mj[j] = -dmin * (float)m;
            const float bound = 15.f * fabsf(dj[j]) + fabsf(mj[j]);  /* the sub-block's largest |w| */
            if (!(bound <= 3.0e38f)) return (long)b;                 /* NaN or infinite */
            if (bound > largest) largest = bound;
        }
        for (int j = 0; j < 8; j++) {
            const uint16_t hd = sy_float_to_half(dj[j]), hm = sy_float_to_half(mj[j]);
            const float err = 15.f * fabsf(sy_half_to_float(hd) - dj[j]) + fabsf(sy_half_to_float(hm) - mj[j]);
            /* Overflow gives infinity (err infinite); otherwise err ≤ 2^-11 of the sub-block's
               bound, as the products of a subnormal d are exact. */
            if (!(err <= largest * (1.f / 1024.f))) return (long)b;
            uint8_t *q = o + 20 * j;
            memcpy(q, &hd, 2);
            memcpy(q + 2, &hm, 2);
            /* Q4_K: chunk c's 32 bytes hold sub-block 2c in their low nibbles, 2c + 1 in their high
               ones. Q4_1: byte i holds value i (low nibble) and value i + 16 (high nibble). */
            const uint8_t *qs = p + 16 + 32 * (j / 2);
            for (int i = 0; i < 16; i++) {
                const uint8_t a = qs[i], c = qs[i + 16];
                q[4 + i] = (j & 1) ? (uint8_t)((a >> 4) | (c & 0xF0)) : (uint8_t)((a & 0x0F) | (c << 4));
            }
        }
    }
    return -1;
}

/* One 32-value block w_i = d·q_i + m (d the half `dh`) as a Q8_0 block at o plus the offset *r:
   w_i = d·(q_i + c) + r, c = round(m / d) kept so that q_i + c (q_i in 0..31) is a signed byte,
   r = m − c·d. Exact up to r's Float32 rounding (c·d is exact: a half times a small integer). */
static void q8_0_with_offset(const int q[32], uint16_t dh, float m, uint8_t *o, float *r) {
    const float d = sy_half_to_float(dh);
    long c = d != 0.f ? lrintf(m / d) : 0;
    if (c < -127) c = -127;
    if (c > 96) c = 96;
    memcpy(o, &dh, 2);
    for (int i = 0; i < 32; i++) o[2 + i] = (uint8_t)(int8_t)(q[i] + c);
    *r = m - (float)c * d;
}

long sy_q5_1_to_q8_0(const void *src, size_t blocks, void *dst, float *offsets) {
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *p = (const uint8_t *)src + 24 * b;
        int q[32];
        q5_values(p + 4, p + 8, q);
        const float m = sy_half_to_float(sy_load_u16(p + 2));
        if (!isfinite(m) || !isfinite(sy_half_to_float(sy_load_u16(p)))) return (long)b;
        q8_0_with_offset(q, sy_load_u16(p), m, (uint8_t *)dst + 34 * b, offsets + b);
    }
    return -1;
}

long sy_q5_K_to_q8_0(const void *src, size_t blocks, void *dst, float *offsets) {
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *p = (const uint8_t *)src + 176 * b, *qh = p + 16, *qs = p + 48;
        const float d = sy_half_to_float(sy_load_u16(p)), dmin = sy_half_to_float(sy_load_u16(p + 2));
        for (int j = 0; j < 8; j++) {
            int sc, mm;
            scale_min_k4(j, p + 4, &sc, &mm);
            const float dj = d * (float)sc, mj = -dmin * (float)mm;  /* both exact in Float32 */
            const uint16_t dh = sy_float_to_half(dj);
            if (!isfinite(sy_half_to_float(dh)) || !isfinite(mj)) return (long)b;
            /* Chunk j / 2's 32 bytes: sub-block j in their low (j even) or high (j odd) nibbles,
               its fifth bits bit j of qh[l]. */
            const uint8_t *c = qs + 32 * (j / 2);
            int q[32];
            for (int l = 0; l < 32; l++)
                q[l] = ((j & 1) ? c[l] >> 4 : c[l] & 0x0F) | (((qh[l] >> j) & 1) << 4);
            q8_0_with_offset(q, dh, mj, (uint8_t *)dst + 34 * (8 * b + j), offsets + 8 * b + j);
        }
    }
    return -1;
}

/* ggml's kvalues_iq4nl: the values IQ4_NL and IQ4_XS nibbles stand for. */
static const int8_t iq4nl_values[16] = { -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113 };

/* 16 bytes of IQ4_NL nibbles (value j low, j + 16 high) as the 32 signed bytes of a Q8_0 block. */
static void iq4_nibbles(const uint8_t *qs, uint8_t *o) {
    for (int j = 0; j < 16; j++) {
        o[j] = (uint8_t)iq4nl_values[qs[j] & 0x0F];
        o[j + 16] = (uint8_t)iq4nl_values[qs[j] >> 4];
    }
}

void sy_iq4_nl_to_q8_0(const void *src, size_t blocks, void *dst) {
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *p = (const uint8_t *)src + 18 * b;
        uint8_t *o = (uint8_t *)dst + 34 * b;
        memcpy(o, p, 2);
        iq4_nibbles(p + 2, o + 2);
    }
}

long sy_iq4_xs_to_q8_0(const void *src, size_t blocks, void *dst) {
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *p = (const uint8_t *)src + 136 * b;
        const float d = sy_half_to_float(sy_load_u16(p));
        const uint16_t high = sy_load_u16(p + 2);
        for (int ib = 0; ib < 8; ib++) {
            const int ls = ((p[4 + ib / 2] >> (4 * (ib % 2))) & 0x0F) | (((high >> (2 * ib)) & 3) << 4);
            /* Exact in float (a half times a 6-bit integer); rounded to half once. */
            const uint16_t dh = sy_float_to_half(d * (float)(ls - 32));
            if (!isfinite(sy_half_to_float(dh))) return (long)b;
            uint8_t *o = (uint8_t *)dst + 34 * (8 * b + ib);
            memcpy(o, &dh, 2);
            iq4_nibbles(p + 8 + 16 * ib, o + 2);
        }
    }
    return -1;
}
