// Direct convolution kernels for training (forward, weight gradient, input gradient).
//
// Compiled at first use by train/_ckernels.py (g++ -O3 -march=native, loaded with ctypes); see there.
//
// Layout: a feature map is "batch-innermost": element (c, y, x, n) of a map sits at
//     base + c*cs + y*rs + x*NB + n
// with NB the batch padded to a multiple of 16 (lanes past the real batch hold zeros on the input
// and get zero gradients), cs/rs the channel and row strides in elements.  Every vector below is
// NB-contiguous, so a convolution of any stride is a sum of plain SIMD multiply-adds over the batch
// lanes: no im2col, no transposes between layers.  Padding is done by the caller (a zero-bordered
// input buffer): the kernels read input position (S*y + ky, S*x + kx) of the buffer they are given.
//
// Register blocking (16 ymm registers on AVX2):
//   forward:     6 output channels x 2 lane-vectors of accumulators; per kernel tap, 2 input loads
//                and 6 weight broadcasts feed 12 multiply-adds;
//   weight grad: 2 taps x 6 output channels of accumulators over a row of output positions and a
//                16-lane chunk; per position, 6 gradient loads and 2 input loads feed 12 multiply-adds;
//   input grad:  scatter form: per output position, the gradient of every tap's input position is
//                one 6-term dot product over the output channels, added into the (zeroed) input
//                gradient, so any stride and padding works.
// The loop order is fixed, so results are bit-identical run to run.
//
// Weights for forward / input grad are passed transposed: wt[(c*K + ky)*K + kx][o] ("tap-major").
#include <cstring>
#include <cstdint>

template <typename T> struct Vec;
template <> struct Vec<float> { typedef float type __attribute__((vector_size(32))); };
template <> struct Vec<double> { typedef double type __attribute__((vector_size(32))); };

template <typename T> static inline typename Vec<T>::type vload(const T* p) {
    typename Vec<T>::type v;
    std::memcpy(&v, p, sizeof(v));
    return v;
}
template <typename T> static inline void vstore(T* p, typename Vec<T>::type v) { std::memcpy(p, &v, sizeof(v)); }
template <typename T> static inline typename Vec<T>::type vsplat(T a) {
    typename Vec<T>::type v = {};
    return v + a;
}
template <typename T> static inline T hsum(typename Vec<T>::type v) {
    constexpr int L = 32 / sizeof(T);
    T s = 0;
    for (int i = 0; i < L; i++) s += v[i];
    return s;
}

// ---------------------------------------------------------------- forward
template <typename T, int OB>
static void fwd_block(const T* x, long xcs, long xrs, const T* wt, const T* b, T* out, long ocs, long ors,
                      int C, int O, int o0, int K, int S, int Ho, int Wo, int NB, int relu) {
    typedef typename Vec<T>::type V;
    constexpr int L = 32 / sizeof(T);
    const int taps = C * K * K;
    for (int y = 0; y < Ho; y++)
        for (int xo = 0; xo < Wo; xo++)
            for (int v = 0; v < NB; v += 2 * L) {
                V a0[OB], a1[OB];
                for (int j = 0; j < OB; j++) a0[j] = a1[j] = vsplat<T>(b[o0 + j]);
                const T* xp = x + (long)(S * y) * xrs + (long)(S * xo) * NB + v;
                for (int c = 0; c < C; c++)
                    for (int ky = 0; ky < K; ky++) {
                        const T* row = xp + c * xcs + ky * xrs;
                        const T* wrow = wt + (long)((c * K + ky) * K) * O + o0;
                        for (int kx = 0; kx < K; kx++) {
                            V x0 = vload<T>(row + (long)kx * NB), x1 = vload<T>(row + (long)kx * NB + L);
                            const T* w = wrow + kx * O;
                            for (int j = 0; j < OB; j++) {
                                V wv = vsplat<T>(w[j]);
                                a0[j] += wv * x0;
                                a1[j] += wv * x1;
                            }
                        }
                    }
                (void)taps;
                V zero = {};
                for (int j = 0; j < OB; j++) {
                    if (relu) {
                        a0[j] = a0[j] > zero ? a0[j] : zero;
                        a1[j] = a1[j] > zero ? a1[j] : zero;
                    }
                    T* op = out + (o0 + j) * ocs + (long)y * ors + (long)xo * NB + v;
                    vstore<T>(op, a0[j]);
                    vstore<T>(op + L, a1[j]);
                }
            }
}

template <typename T>
static void fwd(const T* x, long xcs, long xrs, const T* wt, const T* b, T* out, long ocs, long ors,
                int C, int O, int K, int S, int Ho, int Wo, int NB, int relu) {
    for (int o0 = 0; o0 < O; o0 += 6) {
        int ob = O - o0 < 6 ? O - o0 : 6;
        switch (ob) {
            case 6: fwd_block<T, 6>(x, xcs, xrs, wt, b, out, ocs, ors, C, O, o0, K, S, Ho, Wo, NB, relu); break;
            case 5: fwd_block<T, 5>(x, xcs, xrs, wt, b, out, ocs, ors, C, O, o0, K, S, Ho, Wo, NB, relu); break;
            case 4: fwd_block<T, 4>(x, xcs, xrs, wt, b, out, ocs, ors, C, O, o0, K, S, Ho, Wo, NB, relu); break;
            case 3: fwd_block<T, 3>(x, xcs, xrs, wt, b, out, ocs, ors, C, O, o0, K, S, Ho, Wo, NB, relu); break;
            case 2: fwd_block<T, 2>(x, xcs, xrs, wt, b, out, ocs, ors, C, O, o0, K, S, Ho, Wo, NB, relu); break;
            default: fwd_block<T, 1>(x, xcs, xrs, wt, b, out, ocs, ors, C, O, o0, K, S, Ho, Wo, NB, relu); break;
        }
    }
}

// ---------------------------------------------------------------- weight and bias gradient
// acc: scratch of taps*O vectors (tap-major, then o), zeroed here.
template <typename T, int OB, int TB>
static void wgrad_block(const T* x, long xcs, long xrs, const T* g, long gcs, long grs, typename Vec<T>::type* acc,
                        int O, int o0, int t0, int K, int S, int Ho, int Wo, int NB, int y, int v) {
    typedef typename Vec<T>::type V;
    constexpr int L = 32 / sizeof(T);
    V a[TB][OB];
    const T* xq[TB];
    for (int t = 0; t < TB; t++) {
        int tap = t0 + t, c = tap / (K * K), ky = (tap / K) % K, kx = tap % K;
        xq[t] = x + c * xcs + (long)(S * y + ky) * xrs + (long)kx * NB + v;
        for (int j = 0; j < OB; j++) a[t][j] = acc[(long)tap * O + o0 + j];
    }
    const T* gq = g + o0 * gcs + (long)y * grs + v;
    for (int xo = 0; xo < Wo; xo++) {
        for (int h = 0; h < 2 * L; h += L) {
            V gv[OB];
            for (int j = 0; j < OB; j++) gv[j] = vload<T>(gq + j * gcs + (long)xo * NB + h);
            for (int t = 0; t < TB; t++) {
                V xv = vload<T>(xq[t] + (long)(S * xo) * NB + h);
                for (int j = 0; j < OB; j++) a[t][j] += gv[j] * xv;
            }
        }
    }
    for (int t = 0; t < TB; t++)
        for (int j = 0; j < OB; j++) acc[(long)(t0 + t) * O + o0 + j] = a[t][j];
}

template <typename T, int OB>
static void wgrad_oblock(const T* x, long xcs, long xrs, const T* g, long gcs, long grs, typename Vec<T>::type* acc,
                         int taps, int O, int o0, int K, int S, int Ho, int Wo, int NB, int y, int v) {
    int t0 = 0;
    for (; t0 + 2 <= taps; t0 += 2) wgrad_block<T, OB, 2>(x, xcs, xrs, g, gcs, grs, acc, O, o0, t0, K, S, Ho, Wo, NB, y, v);
    if (t0 < taps) wgrad_block<T, OB, 1>(x, xcs, xrs, g, gcs, grs, acc, O, o0, t0, K, S, Ho, Wo, NB, y, v);
}

template <typename T>
static void wgrad(const T* x, long xcs, long xrs, const T* g, long gcs, long grs, T* gw, T* gb, void* scratch,
                  int C, int O, int K, int S, int Ho, int Wo, int NB) {
    typedef typename Vec<T>::type V;
    constexpr int L = 32 / sizeof(T);
    const int taps = C * K * K;
    V* acc = (V*)scratch;
    V zero = {};
    for (long i = 0; i < (long)taps * O; i++) acc[i] = zero;
    for (int y = 0; y < Ho; y++)
        for (int v = 0; v < NB; v += 2 * L)
            for (int o0 = 0; o0 < O; o0 += 6) {
                int ob = O - o0 < 6 ? O - o0 : 6;
                switch (ob) {
                    case 6: wgrad_oblock<T, 6>(x, xcs, xrs, g, gcs, grs, acc, taps, O, o0, K, S, Ho, Wo, NB, y, v); break;
                    case 5: wgrad_oblock<T, 5>(x, xcs, xrs, g, gcs, grs, acc, taps, O, o0, K, S, Ho, Wo, NB, y, v); break;
                    case 4: wgrad_oblock<T, 4>(x, xcs, xrs, g, gcs, grs, acc, taps, O, o0, K, S, Ho, Wo, NB, y, v); break;
                    case 3: wgrad_oblock<T, 3>(x, xcs, xrs, g, gcs, grs, acc, taps, O, o0, K, S, Ho, Wo, NB, y, v); break;
                    case 2: wgrad_oblock<T, 2>(x, xcs, xrs, g, gcs, grs, acc, taps, O, o0, K, S, Ho, Wo, NB, y, v); break;
                    default: wgrad_oblock<T, 1>(x, xcs, xrs, g, gcs, grs, acc, taps, O, o0, K, S, Ho, Wo, NB, y, v); break;
                }
            }
    // gw in torch's (O, C, K, K) order
    for (int o = 0; o < O; o++)
        for (int t = 0; t < taps; t++) gw[(long)o * taps + t] = hsum<T>(acc[(long)t * O + o]);
    for (int o = 0; o < O; o++) {
        V s = zero;
        for (int y = 0; y < Ho; y++)
            for (int xo = 0; xo < Wo; xo++)
                for (int v = 0; v < NB; v += L) s += vload<T>(g + o * gcs + (long)y * grs + (long)xo * NB + v);
        gb[o] = hsum<T>(s);
    }
}

// ---------------------------------------------------------------- input gradient (scatter form)
// dx: the input buffer's geometry (xcs, xrs), zeroed by the caller; padding rows/columns receive
// gradient too (the caller drops them).
template <typename T, int OB>
static void igrad_block(const T* g, long gcs, long grs, const T* wt, T* dx, long xcs, long xrs,
                        int C, int O, int o0, int K, int S, int Ho, int Wo, int NB) {
    typedef typename Vec<T>::type V;
    constexpr int L = 32 / sizeof(T);
    for (int y = 0; y < Ho; y++)
        for (int xo = 0; xo < Wo; xo++)
            for (int v = 0; v < NB; v += 2 * L) {
                V g0[OB], g1[OB];
                const T* gq = g + o0 * gcs + (long)y * grs + (long)xo * NB + v;
                for (int j = 0; j < OB; j++) {
                    g0[j] = vload<T>(gq + j * gcs);
                    g1[j] = vload<T>(gq + j * gcs + L);
                }
                T* dq = dx + (long)(S * y) * xrs + (long)(S * xo) * NB + v;
                for (int c = 0; c < C; c++)
                    for (int ky = 0; ky < K; ky++) {
                        T* drow = dq + c * xcs + ky * xrs;
                        const T* wrow = wt + (long)((c * K + ky) * K) * O + o0;
                        for (int kx = 0; kx < K; kx++) {
                            const T* w = wrow + kx * O;
                            V s0 = {}, s1 = {};
                            for (int j = 0; j < OB; j++) {
                                V wv = vsplat<T>(w[j]);
                                s0 += wv * g0[j];
                                s1 += wv * g1[j];
                            }
                            T* d = drow + (long)kx * NB;
                            vstore<T>(d, vload<T>(d) + s0);
                            vstore<T>(d + L, vload<T>(d + L) + s1);
                        }
                    }
            }
}

template <typename T>
static void igrad(const T* g, long gcs, long grs, const T* wt, T* dx, long xcs, long xrs,
                  int C, int O, int K, int S, int Ho, int Wo, int NB) {
    for (int o0 = 0; o0 < O; o0 += 6) {
        int ob = O - o0 < 6 ? O - o0 : 6;
        switch (ob) {
            case 6: igrad_block<T, 6>(g, gcs, grs, wt, dx, xcs, xrs, C, O, o0, K, S, Ho, Wo, NB); break;
            case 5: igrad_block<T, 5>(g, gcs, grs, wt, dx, xcs, xrs, C, O, o0, K, S, Ho, Wo, NB); break;
            case 4: igrad_block<T, 4>(g, gcs, grs, wt, dx, xcs, xrs, C, O, o0, K, S, Ho, Wo, NB); break;
            case 3: igrad_block<T, 3>(g, gcs, grs, wt, dx, xcs, xrs, C, O, o0, K, S, Ho, Wo, NB); break;
            case 2: igrad_block<T, 2>(g, gcs, grs, wt, dx, xcs, xrs, C, O, o0, K, S, Ho, Wo, NB); break;
            default: igrad_block<T, 1>(g, gcs, grs, wt, dx, xcs, xrs, C, O, o0, K, S, Ho, Wo, NB); break;
        }
    }
}

#define EXPORT(SUF, T)                                                                                              \
    extern "C" void conv_fwd_##SUF(const T* x, long xcs, long xrs, const T* wt, const T* b, T* out, long ocs,      \
                                   long ors, int C, int O, int K, int S, int Ho, int Wo, int NB, int relu) {       \
        fwd<T>(x, xcs, xrs, wt, b, out, ocs, ors, C, O, K, S, Ho, Wo, NB, relu);                                   \
    }                                                                                                               \
    extern "C" void conv_wgrad_##SUF(const T* x, long xcs, long xrs, const T* g, long gcs, long grs, T* gw, T* gb,  \
                                     void* scratch, int C, int O, int K, int S, int Ho, int Wo, int NB) {          \
        wgrad<T>(x, xcs, xrs, g, gcs, grs, gw, gb, scratch, C, O, K, S, Ho, Wo, NB);                               \
    }                                                                                                               \
    extern "C" void conv_igrad_##SUF(const T* g, long gcs, long grs, const T* wt, T* dx, long xcs, long xrs, int C, \
                                     int O, int K, int S, int Ho, int Wo, int NB) {                                 \
        igrad<T>(g, gcs, grs, wt, dx, xcs, xrs, C, O, K, S, Ho, Wo, NB);                                           \
    }

EXPORT(f32, float)
EXPORT(f64, double)
