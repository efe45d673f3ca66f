/* Fused ASGCN for float32 on the CPU: one frame's adjacency is built and applied in cache.
 *
 * The PyTorch path (fgdm/model/focal.py) materialises (B, S, 2n+1, J, J) score maps and (B, S, K, J, J)
 * adjacencies and spends most of its time moving them through memory in small batched products. Here
 * each frame's maps live in a few tens of kilobytes of scratch: scores, sigmoid, W_Agg aggregation, the
 * prior, the semantic mask and the K message products happen in one pass, and the backward pass
 * recomputes them per frame instead of storing them. Same equations as focal.py (SPEC §4.3):
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
 * The B·S frames are split into one contiguous range per thread. Threads come from OpenMP: built with
 * -fopenmp next to PyTorch's own libgomp, the library shares PyTorch's thread pool (same soname), so the
 * kernel neither oversubscribes the cores nor waits for PyTorch's spinning workers to go to sleep.
 */
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

/* Rows i … i+R-1 of C[:, :8n] (+)= Σ_t A[i·as + t·at] · Bm[t·bs, :8n] (R and n constants after inlining,
 * so the R·n accumulators stay in registers: with several rows in flight each loaded Bm vector serves R
 * rows and enough independent FMA chains hide the FMA latency when n is small). */
static inline __attribute__((always_inline)) void rows_block(int64_t T, const float *a, int64_t as, int64_t at,
                                                             const float *b, int64_t bs, float *c, int64_t cs,
                                                             int accumulate, const int R, const int n) {
    v8 acc[4][8];
    for (int r = 0; r < R; r++)
        for (int j = 0; j < n; j++) acc[r][j] = accumulate ? load8(c + r * cs + 8 * j) : splat(0.0f);
    for (int64_t t = 0; t < T; t++) {
        const float *bt = b + t * bs;
        v8 bv[8];
        for (int j = 0; j < n; j++) bv[j] = load8(bt + 8 * j);
        for (int r = 0; r < R; r++) {
            const v8 sv = splat(a[r * as + t * at]);
            for (int j = 0; j < n; j++) acc[r][j] += sv * bv[j];
        }
    }
    for (int r = 0; r < R; r++)
        for (int j = 0; j < n; j++) store8(c + r * cs + 8 * j, acc[r][j]);
}

/* C (rows × 8·nv, row stride cs) (+)= A (rows × T, strides as, at) · Bm (T × 8·nv, row stride bs). */
static void gemm(int64_t rows, int64_t T, int64_t nv, const float *A, int64_t as, int64_t at, const float *Bm,
                 int64_t bs, float *C, int64_t cs, int accumulate) {
    int64_t i = 0;
    if (nv <= 2) /* narrow outputs (D = 8 or 16): four rows at a time */
        for (; i + 4 <= rows; i += 4) {
            if (nv == 1) rows_block(T, A + i * as, as, at, Bm, bs, C + i * cs, cs, accumulate, 4, 1);
            else rows_block(T, A + i * as, as, at, Bm, bs, C + i * cs, cs, accumulate, 4, 2);
        }
    for (; i < rows; i++) {
        for (int64_t v0 = 0; v0 < nv; v0 += 8) {
            const float *a = A + i * as, *b = Bm + 8 * v0;
            float *c = C + i * cs + 8 * v0;
            switch (nv - v0 < 8 ? nv - v0 : 8) {
            case 1: rows_block(T, a, as, at, b, bs, c, cs, accumulate, 1, 1); break;
            case 2: rows_block(T, a, as, at, b, bs, c, cs, accumulate, 1, 2); break;
            case 3: rows_block(T, a, as, at, b, bs, c, cs, accumulate, 1, 3); break;
            case 4: rows_block(T, a, as, at, b, bs, c, cs, accumulate, 1, 4); break;
            case 5: rows_block(T, a, as, at, b, bs, c, cs, accumulate, 1, 5); break;
            case 6: rows_block(T, a, as, at, b, bs, c, cs, accumulate, 1, 6); break;
            case 7: rows_block(T, a, as, at, b, bs, c, cs, accumulate, 1, 7); break;
            default: rows_block(T, a, as, at, b, bs, c, cs, accumulate, 1, 8); break;
            }
        }
    }
}

/* The exponential on 8 lanes: range reduction 2^n · p(r) with |r| ≤ ln2/2 and a degree-6 polynomial (the
 * Cephes expf coefficients, ~1 ulp on this range), inputs clamped to the float range (σ saturates long
 * before). Branch-free and on registers, where a libm call would keep every loop scalar. */
static inline v8 select8(v8i mask, v8 yes, v8 no) { return (v8)((mask & (v8i)yes) | (~mask & (v8i)no)); }

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
    const v8 nf = __builtin_convertvector(n, v8);
    const v8 r = x - nf * 0.693359375f + nf * 2.12194440e-4f;
    v8 p = splat(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    return p * (v8)((n + 127) << 23);
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

/* One row u of the score map, columns [8·v0, 8·(v0 + n)): s = σ(q_u · kt[:, cols]), kept in `c` (when not
 * NULL) and added, weighted by w[k], to each of the K maps of P (row pointer `p`, maps N floats apart). */
static inline __attribute__((always_inline)) void score_block(int64_t D, int64_t Jp, const float *qu, const float *kt,
                                                              int64_t K, int64_t N, const float *w, float *c, float *p,
                                                              const int n) {
    v8 acc[8];
    for (int j = 0; j < n; j++) acc[j] = splat(0.0f);
    for (int64_t d = 0; d < D; d++) {
        const v8 s = splat(qu[d]);
        const float *kd = kt + d * Jp;
        for (int j = 0; j < n; j++) acc[j] += s * load8(kd + 8 * j);
    }
    for (int j = 0; j < n; j++) acc[j] = sigmoid8(acc[j]);
    if (c)
        for (int j = 0; j < n; j++) store8(c + 8 * j, acc[j]);
    for (int64_t k = 0; k < K; k++) {
        const v8 wk = splat(w[k]);
        float *pk = p + k * N;
        for (int j = 0; j < n; j++) store8(pk + 8 * j, load8(pk + 8 * j) + wk * acc[j]);
    }
}

/* P_k += w_k σ(q kt) for one key offset: scores, sigmoid and aggregation in registers, row by row. */
static void contextual_scores(const asgcn_args *a, const float *qf, const float *kt, const float *w, float *cmap,
                              float *pre) {
    const int64_t J = a->J, D = a->D, K = a->K, Jp = a->Jp, N = J * Jp, nv = Jp / 8;
    for (int64_t u = 0; u < J; u++) {
        for (int64_t v0 = 0; v0 < nv; v0 += 8) {
            const float *qu = qf + u * D, *kv = kt + 8 * v0;
            float *c = cmap ? cmap + u * Jp + 8 * v0 : NULL, *p = pre + u * Jp + 8 * v0;
            switch (nv - v0 < 8 ? nv - v0 : 8) {
            case 1: score_block(D, Jp, qu, kv, K, N, w, c, p, 1); break;
            case 2: score_block(D, Jp, qu, kv, K, N, w, c, p, 2); break;
            case 3: score_block(D, Jp, qu, kv, K, N, w, c, p, 3); break;
            case 4: score_block(D, Jp, qu, kv, K, N, w, c, p, 4); break;
            case 5: score_block(D, Jp, qu, kv, K, N, w, c, p, 5); break;
            case 6: score_block(D, Jp, qu, kv, K, N, w, c, p, 6); break;
            case 7: score_block(D, Jp, qu, kv, K, N, w, c, p, 7); break;
            default: score_block(D, Jp, qu, kv, K, N, w, c, p, 8); break;
            }
        }
    }
}

/* P (K maps) for frame f, keeping the W score maps (when cmaps), M̄ and M (with the mask) and A = P ⊙ M
 * in adj (adj is pre when there is no mask). */
static void adjacency(const asgcn_args *a, int64_t f, float *pre, float *cmaps, float *scratch, float *mbar,
                      float *mask, float *adj) {
    const int64_t S = a->S, J = a->J, D = a->D, K = a->K, W = a->W, L = a->L, Jp = a->Jp, N = J * Jp;
    const int64_t b = f / S, i = f % S;
    for (int64_t k = 0; k < K; k++) {
        float *pk = pre + k * N;
        const float base = a->q ? a->bagg[k] : 0.0f;
        if (a->prior) {
            const float *ak = a->prior + k * N;
            for (int64_t e = 0; e < N; e++) pk[e] = ak[e] + base;
        } else {
            for (int64_t e = 0; e < N; e++) pk[e] = base;
        }
    }
    if (a->q) {
        const float *qf = a->q + f * J * D;
        for (int64_t m = 0; m < W; m++) {
            const float valid = a->valid[f * W + m];
            if (valid == 0.0f) continue; /* outside the sequence or a padded frame: weight 0 */
            for (int64_t k = 0; k < K; k++) scratch[k] = a->wagg[k * W + m] * valid;
            const float *kt = a->kt + (b * (S + W - 1) + i + m) * D * Jp;
            contextual_scores(a, qf, kt, scratch, cmaps ? cmaps + m * N : NULL, pre);
        }
    }
    if (a->g) {
        const float *gf = a->g + f * L;
        for (int64_t e = 0; e < N; e++) mbar[e] = 0.0f;
        for (int64_t l = 0; l < L; l++) {
            const float gl = gf[l];
            const float *pl = a->proto + (b * L + l) * N;
            for (int64_t e = 0; e < N; e++) mbar[e] += gl * pl[e];
        }
        for (int64_t k = 0; k < K; k++) { /* 8 entries at a time: N is a multiple of 8 */
            const v8 w = splat(a->sw[k]), bias = splat(a->sb[k]);
            float *mk = mask + k * N, *ak = adj + k * N;
            const float *pk = pre + k * N;
            for (int64_t e = 0; e < N; e += 8) {
                const v8 m = 2.0f * sigmoid8(w * load8(mbar + e) + bias);
                store8(mk + e, m);
                store8(ak + e, load8(pk + e) * m);
            }
        }
    }
}

static int forward_range(const asgcn_args *a, int64_t f0, int64_t f1, float *out) {
    const int64_t J = a->J, K = a->K, Jp = a->Jp, Dp = a->Dp, N = J * Jp;
    float *buf = malloc((size_t)((3 * K + 2) * N + K * J) * sizeof(float));
    if (!buf) return 1;
    float *pre = buf, *scratch = pre + K * N, *mbar = scratch + N, *mask = mbar + N, *adj = mask + K * N;
    float *rows = adj + K * N;
    for (int64_t f = f0; f < f1; f++) {
        float *A = a->g ? adj : pre;
        adjacency(a, f, pre, NULL, scratch, mbar, mask, A);
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

/* Gradients for frames [f0, f1); see asgcn_backward. Parameter gradients go to this range's own buffers. */
static int backward_range(const asgcn_args *a, int64_t f0, int64_t f1, const float *grad, float *dq, float *dkwin,
                          float *dx, float *dmbar, float *dwagg, float *dbagg, float *dprior, float *dsw, float *dsb) {
    const int64_t S = a->S, J = a->J, D = a->D, K = a->K, W = a->W, Jp = a->Jp, Dp = a->Dp, N = J * Jp;
    const size_t floats = (size_t)((4 * K + W + 3) * N + K * Dp * Jp);
    float *buf = calloc(floats, sizeof(float)); /* the padded columns of xT stay zero */
    if (!buf) return 1;
    float *pre = buf, *cmaps = pre + K * N, *scratch = cmaps + W * N, *mbar = scratch + N;
    float *mask = mbar + N, *adj = mask + K * N, *dA = adj + K * N, *ds = dA + K * N, *xT = ds + N;
    for (int64_t f = f0; f < f1; f++) {
        const int64_t b = f / S, i = f % S;
        float *A = a->g ? adj : pre;
        adjacency(a, f, pre, a->q ? cmaps : NULL, scratch, mbar, mask, A);
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
            for (int64_t k = 0; k < K; k++) {
                float *dak = dA + k * N;
                const float *mk = mask + k * N, *pk = pre + k * N;
                const float w = a->sw[k];
                float gw = 0.0f, gb = 0.0f;
                for (int64_t e = 0; e < N; e++) {
                    const float dz = dak[e] * pk[e] * mk[e] * (1.0f - 0.5f * mk[e]);
                    dm[e] += w * dz;
                    gw += dz * mbar[e];
                    gb += dz;
                    dak[e] *= mk[e];
                }
                dsw[k] += gw;
                dsb[k] += gb;
            }
        }
        if (a->prior) {
            for (int64_t e = 0; e < K * N; e++) dprior[e] += dA[e];
        }
        if (!a->q) continue;
        for (int64_t k = 0; k < K; k++) {
            const float *dak = dA + k * N;
            float s = 0.0f;
            for (int64_t e = 0; e < N; e++) s += dak[e];
            dbagg[k] += s;
        }
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
                float s = 0.0f;
                for (int64_t e = 0; e < N; e++) s += dak[e] * c[e];
                dwagg[k * W + m] += valid * s;
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

/* 1 when built for AVX (the __AVX__ branches above), 0 for the generic-vector branch: the tests check that
 * the portable build really runs the latter. */
int asgcn_uses_avx(void) {
#ifdef __AVX__
    return 1;
#else
    return 0;
#endif
}
