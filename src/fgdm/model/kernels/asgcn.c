/* Fused ASGCN for float32 on the CPU: one frame's adjacency is built and applied in cache.
 *
 * The PyTorch path (fgdm/model/asgcn.py) materialises (B, S, 2n+1, J, J) score maps and (B, S, K, J, J)
 * adjacencies and spends most of its time moving them through memory in small batched products. Here
 * each frame's maps live in a few tens of kilobytes of scratch: scores, sigmoid, W_Agg aggregation, the
 * prior, the semantic mask and the K message products happen in one pass, and the backward pass
 * recomputes them per frame instead of storing them. Same equations as asgcn.py (docs/model.md §4.3):
 *
 *   C_m   = σ(q_i k_{i+m-n}^T)                        (J, J), m = 0 … W-1 (W = 2n+1)
 *   A_a,k = b_k + Σ_m W_Agg[k,m] valid_m C_m           (only with the contextual term)
 *   P_k   = A_a,k + A_b,k                              (A_b = prior + learnable offset)
 *   M_k   = 2 σ(w_k M̄ + b'_k),  M̄ = Σ_l g_l Proto_l   (only with the semantic mask)
 *   A_k   = P_k ⊙ M_k,          out = Σ_k A_k x_k      (out[r] = Σ_c A_k[r, c] x_k[c])
 *
 * Layouts (row-major float32; Jp and Dp are J and D rounded up to a multiple of 8, padding is zero):
 * q (B, S, J, D) scaled by 1/√D; kt (B, S + 2n, D, Jp) keys transposed per frame and kk (B, S + 2n, J, Dp)
 * the same keys untransposed (backward only), both zero outside the sequence; valid (B, S, W);
 * x (B, S, J, K, Dp) and its bias xb (K, Dp) (W_k H + b_k, the bias added here: a broadcast copy of it
 * would cost more than the products); out and grad (B, S, J, Dp); g (B, S, L); proto (B, L, J, Jp);
 * prior (K, J, Jp).
 * Every J×J map is held as J rows of Jp floats; the padded columns carry values that are never read
 * as adjacency entries, and their gradients are zero because the padded key and x columns are zero.
 * Vectors are 8 floats (AVX, or the compiler's generic vectors), and 16 where the CPU has AVX-512: rows are
 * then walked 16 columns at a time with an 8-lane tail (Jp = 56 for J = 50), so the layouts stay the same.
 * The B·S frames are split into one contiguous range per thread. Threads come from OpenMP: built with
 * -fopenmp next to PyTorch's own libgomp, the library shares PyTorch's thread pool (same soname), so the
 * kernel neither oversubscribes the cores nor waits for PyTorch's spinning workers to go to sleep.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t S, J, D, K, W, L, Jp, Dp;
    const float *q, *kt, *kk, *valid, *wagg, *bagg; /* NULL q: no contextual term */
    const float *prior;                             /* NULL: no topology prior */
    const float *g, *proto, *sw, *sb;               /* NULL g: no semantic mask */
    const float *x, *xb; /* NULL xb: no bias */
} asgcn_args;

typedef float v8 __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

static inline v8 load8(const float *p) {
    v8 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store8(float *p, v8 v) { memcpy(p, &v, sizeof v); }

static inline v8 splat(float s) { return (v8){s, s, s, s, s, s, s, s}; }

/* The exponential on 8 lanes: range reduction 2^n · p(r) with |r| ≤ ln2/2 and a degree-6 polynomial (the
 * Cephes expf coefficients, ~1 ulp on this range), inputs clamped to the float range (σ saturates long
 * before). Branch-free and on registers, where a libm call would keep every loop scalar. */
static inline v8 select8(v8i mask, v8 yes, v8 no) { return (v8)((mask & (v8i)yes) | (~mask & (v8i)no)); }

/* e^x = 2^n · e^r with r = x − n ln2 (ln2 in two parts, so r is exact) and e^r by the polynomial; for x
 * already clamped and n = round(x log2 e), on any vector type V of floats with VI its integers. */
#define DEFINE_EXP_REDUCED(name, V, VI)                                 \
    static inline V name(V x, VI n) {                                   \
        const V nf = __builtin_convertvector(n, V);                     \
        const V r = x - nf * 0.693359375f + nf * 2.12194440e-4f;        \
        V p = r * 1.9875691500e-4f + 1.3981999507e-3f;                  \
        p = p * r + 8.3334519073e-3f;                                   \
        p = p * r + 4.1665795894e-2f;                                   \
        p = p * r + 1.6666665459e-1f;                                   \
        p = p * r + 5.0000001201e-1f;                                   \
        p = p * r * r + r + 1.0f;                                       \
        return p * (V)((n + 127) << 23);                                \
    }
DEFINE_EXP_REDUCED(exp_reduced8, v8, v8i)

static inline v8 exp8(v8 x) {
#ifdef __AVX__ /* clamp by min/max and n = round(x log2 e) by one conversion (the default rounding mode) */
    x = __builtin_ia32_minps256(__builtin_ia32_maxps256(x, splat(-87.0f)), splat(88.0f));
    const v8i n = __builtin_ia32_cvtps2dq256(x * 1.44269504088896341f);
#else
    x = select8(x < splat(-87.0f), splat(-87.0f), x);
    x = select8(x > splat(88.0f), splat(88.0f), x);
    const v8 y = x * 1.44269504088896341f + 0.5f;
    v8i n = __builtin_convertvector(y, v8i);  /* truncation toward zero … */
    n += (v8i)(__builtin_convertvector(n, v8) > y); /* … then down to the floor (true is -1) */
#endif
    return exp_reduced8(x, n);
}

/* 1/d: on AVX the approximate reciprocal and one Newton step (~1 ulp, a fraction of a division's cost) */
static inline v8 reciprocal8(v8 d) {
#ifdef __AVX__
    const v8 r = __builtin_ia32_rcpps256(d);
    return r * (2.0f - d * r);
#else
    return 1.0f / d;
#endif
}

static inline v8 sigmoid8(v8 v) { return reciprocal8(1.0f + exp8(-v)); }

/* The wide vector: 16 lanes where the CPU has AVX-512 (the same exponential, and the reciprocal from its
 * 14-bit estimate and one Newton step), else the 8 lanes above. Rows of Jp columns (a multiple of 8) are
 * walked VW columns at a time, and an 8-lane tail where VW = 16 does not divide Jp (J = 50: 3 × 16 + 8). */
#ifdef __AVX512F__
#include <immintrin.h>
#define VW 16
typedef float vw __attribute__((vector_size(64)));
typedef int32_t vwi __attribute__((vector_size(64)));
DEFINE_EXP_REDUCED(exp_reduced16, vw, vwi)

static inline vw loadw(const float *p) {
    vw v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void storew(float *p, vw v) { memcpy(p, &v, sizeof v); }

static inline vw splatw(float s) { return (vw)_mm512_set1_ps(s); }

static inline vw expw(vw x) {
    x = (vw)_mm512_min_ps(_mm512_max_ps((__m512)x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
    return exp_reduced16(x, (vwi)_mm512_cvtps_epi32((__m512)(x * 1.44269504088896341f)));
}

static inline vw sigmoidw(vw v) {
    const vw d = 1.0f + expw(-v);
    const vw r = (vw)_mm512_rcp14_ps((__m512)d);
    return r * (2.0f - d * r);
}
#else
#define VW 8
typedef v8 vw;
#define loadw load8
#define storew store8
#define splatw splat
#define sigmoidw sigmoid8
#endif

/* Rows i … i+R-1 of C[:, :VW·nw + 8·tail] (+)= Σ_t A[i·as + t·at] · Bm[t·bs, same columns] (R, nw and tail
 * constants after inlining, so the accumulators stay in registers: with several rows in flight each loaded
 * Bm vector serves R rows and enough independent FMA chains hide the FMA latency when the rows are narrow). */
static inline __attribute__((always_inline)) void rows_block(int64_t T, const float *a, int64_t as, int64_t at,
                                                             const float *b, int64_t bs, float *c, int64_t cs,
                                                             int accumulate, const int R, const int nw, const int tail) {
    vw acc[8][64 / VW];
    v8 last[8];
    for (int r = 0; r < R; r++) {
        for (int j = 0; j < nw; j++) acc[r][j] = accumulate ? loadw(c + r * cs + VW * j) : splatw(0.0f);
        if (tail) last[r] = accumulate ? load8(c + r * cs + VW * nw) : splat(0.0f);
    }
    for (int64_t t = 0; t < T; t++) {
        const float *bt = b + t * bs;
        vw bv[64 / VW];
        for (int j = 0; j < nw; j++) bv[j] = loadw(bt + VW * j);
        const v8 bl = tail ? load8(bt + VW * nw) : splat(0.0f);
        for (int r = 0; r < R; r++) {
            const float ar = a[r * as + t * at];
            for (int j = 0; j < nw; j++) acc[r][j] += splatw(ar) * bv[j];
            if (tail) last[r] += splat(ar) * bl;
        }
    }
    for (int r = 0; r < R; r++) {
        for (int j = 0; j < nw; j++) storew(c + r * cs + VW * j, acc[r][j]);
        if (tail) store8(c + r * cs + VW * nw, last[r]);
    }
}

/* Column blocks of up to 64: (nw, tail) as a switch label, and the cases a VW build can meet */
#define WIDTH_CASE(nw, tail) (2 * (nw) + (tail))
#if VW == 16
#define FOR_WIDTHS(X) X(0, 1) X(1, 0) X(1, 1) X(2, 0) X(2, 1) X(3, 0) X(3, 1) X(4, 0)
#else
#define FOR_WIDTHS(X) X(1, 0) X(2, 0) X(3, 0) X(4, 0) X(5, 0) X(6, 0) X(7, 0) X(8, 0)
#endif
#define NARROW_ROWS (VW == 16 ? 8 : 4) /* rows in flight for outputs of one wide vector or less */

/* C (rows × 8·nv, row stride cs) (+)= A (rows × T, strides as, at) · Bm (T × 8·nv, row stride bs). */
static void gemm(int64_t rows, int64_t T, int64_t nv, const float *A, int64_t as, int64_t at, const float *Bm,
                 int64_t bs, float *C, int64_t cs, int accumulate) {
    int64_t i = 0;
    if (nv <= 2) /* narrow outputs (D = 8 or 16): several rows at a time */
        for (; i + NARROW_ROWS <= rows; i += NARROW_ROWS) {
            const float *a = A + i * as;
            float *c = C + i * cs;
#define NARROW(nw, tail)                                                                     \
    case WIDTH_CASE(nw, tail):                                                               \
        rows_block(T, a, as, at, Bm, bs, c, cs, accumulate, NARROW_ROWS, nw, tail);          \
        break;
            switch (WIDTH_CASE(8 * nv / VW, 8 * nv % VW / 8)) {
#if VW == 16
                NARROW(0, 1) NARROW(1, 0)
#else
                NARROW(1, 0) NARROW(2, 0)
#endif
            }
#undef NARROW
        }
    for (; i < rows; i++) {
        for (int64_t c0 = 0; c0 < 8 * nv; c0 += 64) {
            const int64_t cols = 8 * nv - c0 < 64 ? 8 * nv - c0 : 64;
            const float *a = A + i * as, *b = Bm + c0;
            float *c = C + i * cs + c0;
#define WIDE(nw, tail)                                                       \
    case WIDTH_CASE(nw, tail):                                               \
        rows_block(T, a, as, at, b, bs, c, cs, accumulate, 1, nw, tail);     \
        break;
            switch (WIDTH_CASE(cols / VW, cols % VW / 8)) { FOR_WIDTHS(WIDE) }
#undef WIDE
        }
    }
}

/* Rows u … u+R-1 of the score map, columns [0, VW·nw + 8·tail): s = σ(q_u · kt[:, cols]), kept in `c` (when
 * not NULL, rows Jp apart) and added, weighted by w[k], to each of the K maps of P (`p`, rows Jp apart, maps
 * N apart). R, nw and tail are constants after inlining, so the accumulators stay in registers; two rows in
 * flight share each key load and give the FMA units enough independent chains. */
static inline __attribute__((always_inline)) void score_block(int64_t D, int64_t Jp, const float *q, const float *kt,
                                                              int64_t K, int64_t N, const float *w, float *c, float *p,
                                                              const int R, const int nw, const int tail) {
    vw acc[2][64 / VW];
    v8 last[2] = {splat(0.0f), splat(0.0f)};
    for (int r = 0; r < R; r++)
        for (int j = 0; j < nw; j++) acc[r][j] = splatw(0.0f);
    for (int64_t d = 0; d < D; d++) {
        const float *kd = kt + d * Jp;
        for (int j = 0; j < nw; j++) {
            const vw kv = loadw(kd + VW * j);
            for (int r = 0; r < R; r++) acc[r][j] += splatw(q[r * D + d]) * kv;
        }
        if (tail)
            for (int r = 0; r < R; r++) last[r] += splat(q[r * D + d]) * load8(kd + VW * nw);
    }
    for (int r = 0; r < R; r++) {
        for (int j = 0; j < nw; j++) acc[r][j] = sigmoidw(acc[r][j]);
        if (tail) last[r] = sigmoid8(last[r]);
    }
    for (int r = 0; r < R; r++) {
        if (c) {
            for (int j = 0; j < nw; j++) storew(c + r * Jp + VW * j, acc[r][j]);
            if (tail) store8(c + r * Jp + VW * nw, last[r]);
        }
        for (int64_t k = 0; k < K; k++) {
            float *pk = p + k * N + r * Jp;
            for (int j = 0; j < nw; j++) storew(pk + VW * j, loadw(pk + VW * j) + splatw(w[k]) * acc[r][j]);
            if (tail) store8(pk + VW * nw, load8(pk + VW * nw) + splat(w[k]) * last[r]);
        }
    }
}

/* score_block over rows [0, J) of Jp columns: two rows and 64 columns at a time */
static void score_rows(int64_t J, int64_t D, int64_t Jp, const float *q, const float *kt, int64_t K, int64_t N,
                       const float *w, float *c, float *p) {
#define SCORE(nw, tail)                                                                                 \
    case WIDTH_CASE(nw, tail):                                                                             \
        if (R == 2) score_block(D, Jp, qu, kt + c0, K, N, w, c ? cu + c0 : NULL, pu + c0, 2, nw, tail); \
        else score_block(D, Jp, qu, kt + c0, K, N, w, c ? cu + c0 : NULL, pu + c0, 1, nw, tail);        \
        break;
    for (int64_t u = 0; u < J; u += 2) {
        const int R = J - u >= 2 ? 2 : 1;
        const float *qu = q + u * D;
        float *cu = c ? c + u * Jp : NULL, *pu = p + u * Jp;
        for (int64_t c0 = 0; c0 < Jp; c0 += 64) {
            const int64_t cols = Jp - c0 < 64 ? Jp - c0 : 64;
            switch (WIDTH_CASE(cols / VW, cols % VW / 8)) { FOR_WIDTHS(SCORE) }
        }
    }
#undef SCORE
}

/* M̄ = Σ_l g_l Proto_l (N entries) */
static void mix(const float *g, const float *proto, int64_t L, int64_t N, float *mbar) {
    for (int64_t e = 0; e < N; e++) mbar[e] = 0.0f;
    for (int64_t l = 0; l < L; l++) {
        const float gl = g[l], *pl = proto + l * N;
        for (int64_t e = 0; e < N; e++) mbar[e] += gl * pl[e];
    }
}

/* M = 2σ(w M̄ + b) and A = P ⊙ M over n entries (a multiple of 8); M kept in `mask` when not NULL */
static void apply_mask(float w, float b, const float *mbar, const float *pre, float *mask, float *adj, int64_t n) {
    int64_t e = 0;
    for (; e + VW <= n; e += VW) {
        const vw m = 2.0f * sigmoidw(splatw(w) * loadw(mbar + e) + splatw(b));
        if (mask) storew(mask + e, m);
        storew(adj + e, loadw(pre + e) * m);
    }
    for (; e < n; e += 8) {
        const v8 m = 2.0f * sigmoid8(splat(w) * load8(mbar + e) + splat(b));
        if (mask) store8(mask + e, m);
        store8(adj + e, load8(pre + e) * m);
    }
}

/* P_k = A_b,k + b_k (the aggregation's bias, with the contextual term) for the K maps */
static void start_maps(const asgcn_args *a, float *pre) {
    const int64_t N = a->J * a->Jp;
    for (int64_t k = 0; k < a->K; k++) {
        float *pk = pre + k * N;
        const float base = a->q ? a->bagg[k] : 0.0f;
        if (a->prior) {
            const float *ak = a->prior + k * N;
            for (int64_t e = 0; e < N; e++) pk[e] = ak[e] + base;
        } else {
            for (int64_t e = 0; e < N; e++) pk[e] = base;
        }
    }
}

/* The W_Agg weights of each offset m for frame f, valid_m W_Agg[k, m] (W × K); returns the offsets' key
 * frames (transposed keys, D × Jp each, consecutive frames) */
static const float *offset_weights(const asgcn_args *a, int64_t f, float *wm) {
    const int64_t S = a->S, K = a->K, W = a->W, b = f / S, i = f % S;
    for (int64_t m = 0; m < W; m++)
        for (int64_t k = 0; k < K; k++) wm[m * K + k] = a->wagg[k * W + m] * a->valid[f * W + m];
    return a->kt + (b * (S + W - 1) + i) * a->D * a->Jp;
}

/* P (K maps) for frame f, M̄ and A = P ⊙ M in adj (adj is pre when there is no mask), keeping for the backward
 * pass the W score maps in cmaps and M in mask when they are not NULL. */
static void adjacency(const asgcn_args *a, int64_t f, float *pre, float *cmaps, float *wm, float *mbar, float *mask,
                      float *adj) {
    const int64_t J = a->J, D = a->D, K = a->K, W = a->W, L = a->L, Jp = a->Jp, N = J * Jp;
    start_maps(a, pre);
    if (a->q) {
        const float *qf = a->q + f * J * D, *kt = offset_weights(a, f, wm);
        for (int64_t m = 0; m < W; m++) {
            if (a->valid[f * W + m] == 0.0f) continue; /* outside the sequence or a padded frame: weight 0 */
            score_rows(J, D, Jp, qf, kt + m * D * Jp, K, N, wm + m * K, cmaps ? cmaps + m * N : NULL, pre);
        }
    }
    if (a->g) {
        mix(a->g + f * L, a->proto + (f / a->S) * L * N, L, N, mbar);
        for (int64_t k = 0; k < K; k++)
            apply_mask(a->sw[k], a->sb[k], mbar, pre + k * N, mask ? mask + k * N : NULL, adj + k * N, N);
    }
}

static int forward_range(const asgcn_args *a, int64_t f0, int64_t f1, float *out) {
    const int64_t J = a->J, K = a->K, Jp = a->Jp, Dp = a->Dp, N = J * Jp;
    float *buf = malloc((size_t)((2 * K + 1) * N + K * J + a->W * K) * sizeof(float));
    if (!buf) return 1;
    float *pre = buf, *mbar = pre + K * N, *adj = mbar + N, *rows = adj + K * N, *wm = rows + K * J;
    for (int64_t f = f0; f < f1; f++) {
        float *A = a->g ? adj : pre;
        adjacency(a, f, pre, NULL, wm, mbar, NULL, A);
        const float *xf = a->x + f * J * K * Dp;
        float *o = out + f * J * Dp;
        for (int64_t k = 0; k < K; k++)  /* out (J × Dp) += A_k (J × J) · x_k (J × Dp) */
            gemm(J, J, Dp / 8, A + k * N, Jp, 1, xf + k * Dp, K * Dp, o, Dp, k > 0);
        if (a->xb) { /* Σ_k A_k (1 b_kᵀ) = Σ_k rowsum(A_k) b_kᵀ: out (J × Dp) += rows (J × K) · xb (K × Dp) */
            for (int64_t k = 0; k < K; k++)
                for (int64_t r = 0; r < J; r++) {
                    const float *ar = A + k * N + r * Jp;
                    float s = 0.0f;
                    for (int64_t c = 0; c < J; c++) s += ar[c];
                    rows[k * J + r] = s;
                }
            gemm(J, K, Dp / 8, rows, 1, J, a->xb, Dp, o, Dp, 1);
        }
    }
    free(buf);
    return 0;
}

/* Σ_e x[e]·y[e] (y NULL: Σ_e x[e]) over n floats, a multiple of 8, in four independent chains (one chain
 * would wait on the addition's latency at every step). */
static float dot(const float *x, const float *y, int64_t n) {
    vw acc[4] = {splatw(0.0f), splatw(0.0f), splatw(0.0f), splatw(0.0f)};
    v8 last = splat(0.0f);
    int64_t e = 0;
    for (; e + 4 * VW <= n; e += 4 * VW)
        for (int j = 0; j < 4; j++) acc[j] += loadw(x + e + VW * j) * (y ? loadw(y + e + VW * j) : splatw(1.0f));
    for (; e + VW <= n; e += VW) acc[0] += loadw(x + e) * (y ? loadw(y + e) : splatw(1.0f));
    for (; e < n; e += 8) last += load8(x + e) * (y ? load8(y + e) : splat(1.0f));
    const vw sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    float s = 0.0f;
    for (int j = 0; j < VW; j++) s += sum[j];
    for (int j = 0; j < 8; j++) s += last[j];
    return s;
}

/* The semantic mask's gradients for map k over n floats (a multiple of 8): dZ = dA ⊙ P ⊙ M (1 − M/2),
 * dM̄ += w dZ, dA ← dA ⊙ M (= dP); adds Σ dZ·M̄ (for dW_s) to *gw and Σ dZ (for db_s) to *gb. */
static void mask_grad(float w, const float *pre, const float *mask, const float *mbar, float *dA, float *dm,
                      int64_t n, float *gw, float *gb) {
    vw sw = splatw(0.0f), sb = splatw(0.0f);
    v8 tw = splat(0.0f), tb = splat(0.0f);
    int64_t e = 0;
    for (; e + VW <= n; e += VW) {
        const vw m = loadw(mask + e), da = loadw(dA + e);
        const vw dz = da * loadw(pre + e) * m * (1.0f - 0.5f * m);
        storew(dm + e, loadw(dm + e) + splatw(w) * dz);
        sw += dz * loadw(mbar + e);
        sb += dz;
        storew(dA + e, da * m);
    }
    for (; e < n; e += 8) {
        const v8 m = load8(mask + e), da = load8(dA + e);
        const v8 dz = da * load8(pre + e) * m * (1.0f - 0.5f * m);
        store8(dm + e, load8(dm + e) + splat(w) * dz);
        tw += dz * load8(mbar + e);
        tb += dz;
        store8(dA + e, da * m);
    }
    float a = 0.0f, b = 0.0f;
    for (int j = 0; j < VW; j++) a += sw[j], b += sb[j];
    for (int j = 0; j < 8; j++) a += tw[j], b += tb[j];
    *gw += a;
    *gb += b;
}

/* Gradients for frames [f0, f1); see asgcn_backward. Parameter gradients go to this range's own buffers. */
static int backward_range(const asgcn_args *a, int64_t f0, int64_t f1, const float *grad, float *dq, float *dkwin,
                          float *dx, float *dmbar, float *dwagg, float *dbagg, float *dprior, float *dsw, float *dsb) {
    const int64_t S = a->S, J = a->J, D = a->D, K = a->K, W = a->W, Jp = a->Jp, Dp = a->Dp, N = J * Jp;
    const size_t floats = (size_t)((4 * K + W + 2) * N + K * Dp * Jp + W * K);
    float *buf = calloc(floats, sizeof(float)); /* the padded columns of xT stay zero */
    if (!buf) return 1;
    float *pre = buf, *cmaps = pre + K * N, *mbar = cmaps + W * N, *mask = mbar + N, *adj = mask + K * N;
    float *dA = adj + K * N, *ds = dA + K * N, *xT = ds + N, *wm = xT + K * Dp * Jp;
    for (int64_t f = f0; f < f1; f++) {
        const int64_t b = f / S, i = f % S;
        float *A = a->g ? adj : pre;
        adjacency(a, f, pre, a->q ? cmaps : NULL, wm, mbar, mask, A);
        const float *G = grad + f * J * Dp, *xf = a->x + f * J * K * Dp;
        for (int64_t c = 0; c < J; c++)  /* xT[k, d, c] = x[c, k, d] + b[k, d] */
            for (int64_t k = 0; k < K; k++)
                for (int64_t d = 0; d < D; d++)
                    xT[(k * Dp + d) * Jp + c] = xf[(c * K + k) * Dp + d] + (a->xb ? a->xb[k * Dp + d] : 0.0f);
        float *dxf = dx + f * J * K * Dp;
        for (int64_t k = 0; k < K; k++) {
            /* dA_k (J × Jp) = G (J × D) · x_k^T (D × Jp);  dx_k (J × Dp) = A_k^T (J × J) · G (J × Dp) */
            gemm(J, D, Jp / 8, G, Dp, 1, xT + k * Dp * Jp, Jp, dA + k * N, Jp, 0);
            gemm(J, J, Dp / 8, A + k * N, 1, Jp, G, Dp, dxf + k * Dp, K * Dp, 0);
        }
        /* mask: dZ = dA ⊙ P ⊙ M (1 − M/2); dM̄ = Σ_k w_k dZ_k; then dA becomes dP = dA ⊙ M */
        if (a->g) {
            float *dm = dmbar + f * N;
            for (int64_t e = 0; e < N; e++) dm[e] = 0.0f;
            for (int64_t k = 0; k < K; k++)
                mask_grad(a->sw[k], pre + k * N, mask + k * N, mbar, dA + k * N, dm, N, dsw + k, dsb + k);
        }
        if (a->prior) {
            for (int64_t e = 0; e < K * N; e++) dprior[e] += dA[e];
        }
        if (!a->q) continue;
        for (int64_t k = 0; k < K; k++) dbagg[k] += dot(dA + k * N, NULL, N);
        /* contextual: dW_Agg[k, m] += valid_m ⟨dP_k, C_m⟩; dS_m = (Σ_k W_Agg[k, m] valid_m dP_k) ⊙ C_m (1 − C_m) */
        const float *qf = a->q + f * J * D;
        float *dqf = dq + f * J * Dp;
        for (int64_t e = 0; e < J * Dp; e++) dqf[e] = 0.0f;
        for (int64_t m = 0; m < W; m++) {
            float *dkm = dkwin + (f * W + m) * D * Jp;
            const float valid = a->valid[f * W + m];
            if (valid == 0.0f) {
                for (int64_t e = 0; e < D * Jp; e++) dkm[e] = 0.0f;
                continue;
            }
            const float *c = cmaps + m * N;
            for (int64_t e = 0; e < N; e++) ds[e] = 0.0f;
            for (int64_t k = 0; k < K; k++) {
                const float *dak = dA + k * N;
                dwagg[k * W + m] += valid * dot(dak, c, N);
                const float w = a->wagg[k * W + m] * valid;
                for (int64_t e = 0; e < N; e++) ds[e] += w * dak[e];
            }
            for (int64_t e = 0; e < N; e++) ds[e] *= c[e] * (1.0f - c[e]);
            /* dq (J × Dp) += dS (J × J) · k (J × Dp);  dkt (D × Jp) = q^T (D × J) · dS (J × Jp) */
            const int64_t key = b * (S + W - 1) + i + m;
            gemm(J, J, Dp / 8, ds, Jp, 1, a->kk + key * J * Dp, Dp, dqf, Dp, 1);
            gemm(D, J, Jp / 8, qf, 1, D, ds, Jp, dkm, Jp, 0);
        }
    }
    free(buf);
    return 0;
}

/* Runs body(t, f0, f1) for `threads` contiguous frame ranges, in parallel when built with OpenMP; returns the
 * number of ranges that failed (could not allocate their scratch memory). */
#define FOR_RANGES(frames, threads, body)                                 \
    int failed = 0;                                                       \
    _Pragma("omp parallel for num_threads(threads) reduction(+ : failed)") \
    for (int t = 0; t < threads; t++) {                                   \
        const int64_t f0 = (frames) * t / threads;                        \
        const int64_t f1 = (frames) * (t + 1) / threads;                  \
        failed += (body) != 0;                                            \
    }                                                                     \
    return failed;

/* out (B, S, J, Dp) for all `frames` = B·S frames. */
int asgcn_forward(const asgcn_args *a, int64_t frames, int threads, float *out) {
    FOR_RANGES(frames, threads, forward_range(a, f0, f1, out))
}

/* Gradients of all frames. Per-frame outputs: dq (B, S, J, Dp), dkwin (B, S, W, D, Jp) (the gradient of
 * each frame's transposed key window; zero for invalid offsets), dx (B, S, J, K, Dp), dmbar (B, S, J, Jp).
 * Parameter gradients are accumulated per thread, into zeroed buffers with a leading `threads` axis:
 * dwagg (K, W), dbagg (K), dprior (K, J, Jp), dsw (K), dsb (K). Unused outputs may be NULL. */
int asgcn_backward(const asgcn_args *a, int64_t frames, int threads, const float *grad, float *dq, float *dkwin,
                   float *dx, float *dmbar, float *dwagg, float *dbagg, float *dprior, float *dsw, float *dsb) {
    const int64_t K = a->K, W = a->W, N = a->J * a->Jp;
#define PART(p, size) ((p) ? (p) + (int64_t)t * (size) : NULL)
    FOR_RANGES(frames, threads,
               backward_range(a, f0, f1, grad, dq, dkwin, dx, dmbar, PART(dwagg, K * W), PART(dbagg, K),
                              PART(dprior, K * N), PART(dsw, K), PART(dsb, K)))
#undef PART
}

/* LayerNorm over rows of D floats, the Focal stage's norm after ASGCN and after the TCN (D = D_f, 8 or 16).
 * PyTorch's CPU LayerNorm vectorises along a row, so rows narrower than its vector run its scalar loop, and its
 * backward pass accumulates the weight's and bias's gradients in per-thread rows that share cache lines;
 * here each row is a few scalar loops over D, and the gradients' partial sums stay local to each thread:
 *   out = (x − μ) ρ ⊙ w + b,  μ = mean(x),  ρ = 1 / √(var(x) + eps)  (var biased, as nn.LayerNorm)
 *   dx = ρ (g − mean(g) − x̂ mean(g ⊙ x̂)),  g = dy ⊙ w,  x̂ = (x − μ) ρ;  dw = Σ dy ⊙ x̂,  db = Σ dy */
static void norm_range(const float *x, const float *w, const float *b, float eps, int64_t D, int64_t r0, int64_t r1,
                       float *out, float *mean, float *rstd) {
    for (int64_t r = r0; r < r1; r++) {
        const float *xr = x + r * D;
        float s = 0.0f, v = 0.0f;
        for (int64_t d = 0; d < D; d++) s += xr[d];
        const float mu = s / (float)D;
        for (int64_t d = 0; d < D; d++) v += (xr[d] - mu) * (xr[d] - mu);
        const float rho = 1.0f / sqrtf(v / (float)D + eps);
        float *o = out + r * D;
        for (int64_t d = 0; d < D; d++) o[d] = (xr[d] - mu) * rho * w[d] + b[d];
        mean[r] = mu;
        rstd[r] = rho;
    }
}

static int norm_backward_range(const float *x, const float *w, const float *mean, const float *rstd, const float *dy,
                               int64_t D, int64_t r0, int64_t r1, float *dx, float *dw, float *db) {
    float *acc = calloc((size_t)(2 * D), sizeof(float)); /* this range's Σ dy ⊙ x̂ and Σ dy */
    if (!acc) return 1;
    for (int64_t r = r0; r < r1; r++) {
        const float *xr = x + r * D, *g = dy + r * D;
        const float mu = mean[r], rho = rstd[r];
        float sg = 0.0f, sgx = 0.0f;
        for (int64_t d = 0; d < D; d++) {
            const float xh = (xr[d] - mu) * rho, gw = g[d] * w[d];
            sg += gw;
            sgx += gw * xh;
            acc[d] += g[d] * xh;
            acc[D + d] += g[d];
        }
        sg /= (float)D;
        sgx /= (float)D;
        float *o = dx + r * D;
        for (int64_t d = 0; d < D; d++) o[d] = rho * (g[d] * w[d] - sg - (xr[d] - mu) * rho * sgx);
    }
    memcpy(dw, acc, (size_t)D * sizeof(float));
    memcpy(db, acc + D, (size_t)D * sizeof(float));
    free(acc);
    return 0;
}

/* out (rows, D) and each row's μ and ρ (rows), for x (rows, D) and w, b (D) */
int rownorm_forward(const float *x, const float *w, const float *b, float eps, int64_t rows, int64_t D, int threads,
                    float *out, float *mean, float *rstd) {
    FOR_RANGES(rows, threads, (norm_range(x, w, b, eps, D, f0, f1, out, mean, rstd), 0))
}

/* dx (rows, D); dw and db (threads, D): each thread's partial sums, to be added up by the caller */
int rownorm_backward(const float *x, const float *w, const float *mean, const float *rstd, const float *dy,
                     int64_t rows, int64_t D, int threads, float *dx, float *dw, float *db) {
    FOR_RANGES(rows, threads, norm_backward_range(x, w, mean, rstd, dy, D, f0, f1, dx, dw + t * D, db + t * D))
}

/* 1 when built for AVX (the __AVX__ branches above), 0 for the generic-vector branch; and the width of the
 * wide vector (16 with AVX-512, else 8): the tests check that each build runs the branch it is meant to. */
int asgcn_uses_avx(void) {
#ifdef __AVX__
    return 1;
#else
    return 0;
#endif
}

int asgcn_lanes(void) { return VW; }
