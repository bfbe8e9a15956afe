"""Element-wise non-linearities that LLVM can vectorize.

``math.tanh`` / ``math.exp`` are scalar libm calls that LLVM cannot vectorize
without SVML, and on the CPU they dominate an LSTM step (PITFALLS.md). For
float32 we therefore use a branch-free rational approximation of tanh (the
one in Eigen, max error a few ulp) built from multiplies, adds and one
division, which vectorizes to AVX2/AVX-512. float64 keeps ``math.tanh`` so
gradient checks and the float64 reference agree to 1e-10.

``sigmoid(x) = 0.5 + 0.5 * tanh(x / 2)`` exactly, so both share one code path.
NaN propagates (the clamp is written so a NaN input stays NaN).
"""
import math

from numba import types
from numba.extending import overload

# Eigen's generic_fast_tanh_float coefficients: tanh(x) ≈ x·P(x²) / Q(x²) on |x| <= 7.9053
_CLAMP = 7.90531110763549805
_A1, _A3, _A5, _A7 = 4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05, 5.12229709037114e-08
_A9, _A11, _A13 = -8.60467152213735e-11, 2.00018790482477e-13, -2.76076847742355e-16
_B0, _B2, _B4, _B6 = 4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06


def tanh(x):
    """tanh(x); float32 uses the vectorizable rational approximation inside @njit code."""
    return math.tanh(x)


def sigmoid(x):
    """Logistic function 1 / (1 + exp(-x))."""
    return 0.5 + 0.5 * math.tanh(0.5 * x)


@overload(tanh)
def _tanh_impl(x):
    if x == types.float32:
        c, a1, a3, a5, a7 = (types.float32(v) for v in (_CLAMP, _A1, _A3, _A5, _A7))
        a9, a11, a13 = (types.float32(v) for v in (_A9, _A11, _A13))
        b0, b2, b4, b6 = (types.float32(v) for v in (_B0, _B2, _B4, _B6))

        def fast_tanh(x):
            # clamp so P/Q stays in range; a NaN input fails both tests and stays NaN
            xc = c if x > c else x
            xc = -c if xc < -c else xc
            x2 = xc * xc
            p = x2 * a13 + a11
            p = x2 * p + a9
            p = x2 * p + a7
            p = x2 * p + a5
            p = x2 * p + a3
            p = x2 * p + a1
            p = xc * p
            q = x2 * b6 + b4
            q = x2 * q + b2
            q = x2 * q + b0
            return p / q

        return fast_tanh
    return lambda x: math.tanh(x)


@overload(sigmoid)
def _sigmoid_impl(x):
    if x == types.float32:
        half = types.float32(0.5)
        return lambda x: half + half * tanh(half * x)
    return lambda x: 1.0 / (1.0 + math.exp(-x))
