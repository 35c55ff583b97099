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
//                and 6 weight broadcasts feed 12 multiply-adds (measured 75-85 GFLOP/s on the
//                study's layers, one Zen 3 core, against 93 for a 512x512 sgemm);
//   weight grad: 3 taps x 3 output channels of accumulators over a whole output row and every lane;
//                per position, 3 gradient loads and 3 input loads feed 9 multiply-adds (~60);
//   input grad:  scatter form: per output position, every tap's input position gets a dot product
//                over the output channels added into the (zeroed) input gradient, so any stride and
//                padding works (~63).  (The gather form, the forward kernel over the zero-bordered
//                gradient with the flipped kernel, with the ReLU backward of the layer below fused,
//                measured no faster: on these small maps it computes 17-21% more products.)
// The loop order is fixed, so results are bit-identical run to run.
//
// Weights for forward / input grad are passed transposed: wt[(c*K + ky)*K + kx][o] ("tap-major").
#include <cstring>
#include <type_traits>
#include <vector>

template <typename T> struct Vec;
template <> struct Vec<float> { typedef float type __attribute__((vector_size(32))); };
template <> struct Vec<double> { typedef double type __attribute__((vector_size(32))); };

// KEEP(v): v stays in a register.  Without it GCC folds the load into every multiply-add that uses it
// (one load per use), which made the gradient kernels load-bound.
#if defined(__x86_64__) || defined(__i386__)
#define KEEP(v) asm("" : "+x"(v))
#else
#define KEEP(v) ((void)0)
#endif

template <typename T> static inline typename Vec<T>::type vload(const T* p) {
    typename Vec<T>::type v;
    std::memcpy(&v, p, sizeof(v));
    return v;
}
template <typename T> static inline void vstore(T* p, typename Vec<T>::type v) { std::memcpy(p, &v, sizeof(v)); }
static inline Vec<float>::type vsplat(float a) { return Vec<float>::type{a, a, a, a, a, a, a, a}; }  // one vbroadcastss
static inline Vec<double>::type vsplat(double a) { return Vec<double>::type{a, a, a, a}; }
template <typename T> static inline T hsum(typename Vec<T>::type v) {
    constexpr int L = 32 / sizeof(T);
    T s = 0;
    for (int i = 0; i < L; i++) s += v[i];
    return s;
}

// Calls f(std::integral_constant<int, n>) for a runtime n in 1..6 (register blocks are template sizes).
template <typename F> static inline void upto6(int n, F f) {
    switch (n) {
        case 6: f(std::integral_constant<int, 6>{}); break;
        case 5: f(std::integral_constant<int, 5>{}); break;
        case 4: f(std::integral_constant<int, 4>{}); break;
        case 3: f(std::integral_constant<int, 3>{}); break;
        case 2: f(std::integral_constant<int, 2>{}); break;
        default: f(std::integral_constant<int, 1>{}); break;
    }
}

// ---------------------------------------------------------------- forward
// The outputs of one block on their way out, with the ReLU if asked.
template <typename T, int OB>
static inline void fwd_store(typename Vec<T>::type (*a)[OB], T* op, long ocs, int relu) {
    typedef typename Vec<T>::type V;
    constexpr int L = 32 / sizeof(T);
    V zero = {};
    for (int j = 0; j < OB; j++) {
        V a0 = a[0][j], a1 = a[1][j];
        if (relu) {
            a0 = a0 > zero ? a0 : zero;
            a1 = a1 > zero ? a1 : zero;
        }
        vstore<T>(op + j * ocs, a0);
        vstore<T>(op + j * ocs + L, a1);
    }
}

// toff[t]: the input offset of tap t = (c, ky, kx); the weights of tap t are wt[t*O + o].
template <typename T, int OB>
static void fwd_block(const T* x, long xrs, const long* toff, int taps, const T* wt, const T* b, T* out, long ocs,
                      long ors, int O, int o0, int S, int Ho, int Wo, int NB, int relu) {
    typedef typename Vec<T>::type V;
    constexpr int L = 32 / sizeof(T);
    for (int y = 0; y < Ho; y++)
        for (int xo = 0; xo < Wo; xo++)
            for (int v = 0; v < NB; v += 2 * L) {
                V a[2][OB];
                for (int j = 0; j < OB; j++) a[0][j] = a[1][j] = vsplat(b[o0 + j]);
                const T* xp = x + (long)(S * y) * xrs + (long)(S * xo) * NB + v;
                const T* w = wt + o0;
                for (int t = 0; t < taps; t++, w += O) {
                    V x0 = vload<T>(xp + toff[t]), x1 = vload<T>(xp + toff[t] + L);
                    for (int j = 0; j < OB; j++) {
                        V wv = vsplat(w[j]);
                        a[0][j] += wv * x0;
                        a[1][j] += wv * x1;
                    }
                }
                fwd_store<T, OB>(a, out + o0 * ocs + (long)y * ors + (long)xo * NB + v, ocs, relu);
            }
}

template <typename T>
static void fwd(const T* x, long xcs, long xrs, const T* wt, const T* b, T* out, long ocs, long ors,
                int C, int O, int K, int S, int Ho, int Wo, int NB, int relu) {
    const int taps = C * K * K;
    std::vector<long> toff(taps);
    for (int c = 0; c < C; c++)
        for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++) toff[(c * K + ky) * K + kx] = c * xcs + ky * xrs + (long)kx * NB;
    for (int o0 = 0; o0 < O; o0 += 6) {
        upto6(O - o0 < 6 ? O - o0 : 6, [&](auto ob) {
            fwd_block<T, decltype(ob)::value>(x, xrs, toff.data(), taps, wt, b, out, ocs, ors, O, o0, S, Ho, Wo, NB, relu);
        });
    }
}

// ---------------------------------------------------------------- weight and bias gradient
// acc: scratch of taps*O vectors (tap-major, then o), zeroed here.  toff[t]: the input offset of tap t.
// Blocks of OB <= 3 output channels (their gradients stay in registers) x TB <= 3 taps (one input load
// feeds OB multiply-adds): 9 accumulators, 6 loads per 9 multiply-adds; one block runs over a whole
// output row and every lane (long inner loops: measured faster than 16-lane tiles or 2 x 6 blocks).
template <typename T, int OB, int TB>
static void wgrad_block(const T* x, const long* toff, const T* g, long gcs, typename Vec<T>::type* acc,
                        int O, int o0, int t0, int S, int Wo, int NB) {
    typedef typename Vec<T>::type V;
    constexpr int L = 32 / sizeof(T);
    V a[TB][OB];
    const T* xq[TB];
    for (int t = 0; t < TB; t++) {
        xq[t] = x + toff[t0 + t];
        for (int j = 0; j < OB; j++) a[t][j] = acc[(long)(t0 + t) * O + o0 + j];
    }
    const T* gq = g + o0 * gcs;
    const long xstep = (long)S * NB;
    for (int xo = 0; xo < Wo; xo++) {
        for (int h = 0; h < NB; h += L) {
            V gv[OB];
            for (int j = 0; j < OB; j++) {
                gv[j] = vload<T>(gq + j * gcs + (long)xo * NB + h);
                KEEP(gv[j]);
            }
            for (int t = 0; t < TB; t++) {
                V xv = vload<T>(xq[t] + xo * xstep + h);
                KEEP(xv);
                for (int j = 0; j < OB; j++) a[t][j] += gv[j] * xv;
            }
        }
    }
    for (int t = 0; t < TB; t++)
        for (int j = 0; j < OB; j++) acc[(long)(t0 + t) * O + o0 + j] = a[t][j];
}

template <typename T, int OB>
static void wgrad_oblock(const T* x, const long* toff, const T* g, long gcs, typename Vec<T>::type* acc,
                         int taps, int O, int o0, int S, int Wo, int NB) {
    int t0 = 0;
    for (; t0 + 3 <= taps; t0 += 3) wgrad_block<T, OB, 3>(x, toff, g, gcs, acc, O, o0, t0, S, Wo, NB);
    if (t0 < taps) upto6(taps - t0, [&](auto tb) { wgrad_block<T, OB, decltype(tb)::value>(x, toff, g, gcs, acc, O, o0, t0, S, Wo, NB); });
}

template <typename T>
static void wgrad(const T* x, long xcs, long xrs, const T* g, long gcs, long grs, T* gw, T* gb, void* scratch,
                  int C, int O, int K, int S, int Ho, int Wo, int NB) {
    typedef typename Vec<T>::type V;
    constexpr int L = 32 / sizeof(T);
    const int taps = C * K * K;
    V* acc = (V*)scratch;
    long* toff = (long*)(acc + (long)taps * O);  // the scratch holds taps*O vectors, then taps offsets
    for (int c = 0; c < C; c++)
        for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++) toff[(c * K + ky) * K + kx] = c * xcs + ky * xrs + (long)kx * NB;
    V zero = {};
    for (long i = 0; i < (long)taps * O; i++) acc[i] = zero;
    for (int o = 0; o < O; o++) gb[o] = 0;
    for (int y = 0; y < Ho; y++) {  // one output row (all lanes) at a time: its gradient stays in cache
        const T* xy = x + (long)(S * y) * xrs;
        const T* gy = g + (long)y * grs;
        for (int o0 = 0; o0 < O; o0 += 3) {
            upto6(O - o0 < 3 ? O - o0 : 3, [&](auto ob) {
                wgrad_oblock<T, decltype(ob)::value>(xy, toff, gy, gcs, acc, taps, O, o0, S, Wo, NB);
            });
        }
        for (int o = 0; o < O; o++) {  // the bias gradient: the row's sum, added per row
            V s0 = zero, s1 = zero;
            const T* gr = gy + o * gcs;
            for (long i = 0; i < (long)Wo * NB; i += 2 * L) {
                s0 += vload<T>(gr + i);
                s1 += vload<T>(gr + i + L);
            }
            gb[o] += hsum<T>(s0 + s1);
        }
    }
    // gw in torch's (O, C, K, K) order
    for (int o = 0; o < O; o++)
        for (int t = 0; t < taps; t++) gw[(long)o * taps + t] = hsum<T>(acc[(long)t * O + o]);
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
                                V wv = vsplat(w[j]);
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
        upto6(O - o0 < 6 ? O - o0 : 6, [&](auto ob) {
            igrad_block<T, decltype(ob)::value>(g, gcs, grs, wt, dx, xcs, xrs, C, O, o0, K, S, Ho, Wo, NB);
        });
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
