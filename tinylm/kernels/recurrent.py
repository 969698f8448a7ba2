"""Fused gate maths of the recurrent cells (RNN, LSTM, GRU), one time step at a time.

A recurrent layer spends its time in two places: the matmuls (BLAS does those) and the
element-wise gate maths between them. These kernels do the second part in one pass over the
units, reading and writing arrays the caller allocated once per sequence, so a time step
allocates nothing. Gate blocks lie along the last axis in PyTorch's order: RNN (one block),
LSTM (i, f, g, o), GRU (r, z, n); H is the hidden size.

Inputs named ``pre`` hold x_t W_x + b (the input projection, computed for all steps by one
matmul before the loop) and are overwritten with the gate activations, which the backward
pass needs; ``hg`` holds h_{t-1} W_h. ``dh_out`` is dL/dh_t arriving from the layer's output,
``dh_next`` the part arriving from step t+1.

RNN     h = tanh(a),  a = pre + hg
        da = (dh_out + dh_next) (1 - h^2)

LSTM    i = s(a_i), f = s(a_f), g = tanh(a_g), o = s(a_o)
        c = f c_prev + i g,   h = o tanh(c)
        dh = dh_out + dh_next;   dc_t = dc + dh o (1 - tanh(c)^2)
        da_i = dc_t g i (1 - i),  da_f = dc_t c_prev f (1 - f),
        da_g = dc_t i (1 - g^2),  da_o = dh tanh(c) o (1 - o),  dc_prev = dc_t f

GRU     r = s(pre_r + hg_r + b_hr), z = s(pre_z + hg_z + b_hz),
        hn = hg_n + b_hn,  n = tanh(pre_n + r hn),  h = (1 - z) n + z h_prev
        dh = dh_out + dh_next;  da_n = dh (1 - z) (1 - n^2);  da_z = dh (h_prev - n) z (1 - z)
        da_r = da_n hn r (1 - r);  d(pre) = (da_r, da_z, da_n);  d(hg + b_h) = (da_r, da_z, da_n r)
        and the direct path dh_prev = dh z (the matmul path is added by the caller).

s is the logistic sigmoid, computed as s(x) = (1 + tanh(x / 2)) / 2 (exact and stable).

The numba versions run the loops over (row, unit) with the unit loop innermost, which LLVM
turns into SIMD code. Numba has no vectorised tanh/exp of its own (no SVML here), so for
float32 they use a rational approximation of tanh (the one Eigen uses: 13/6-degree
polynomials on [-7.9, 7.9], error ~3e-7, about float32 rounding); float64 uses math.tanh, so
gradient checks and the PyTorch parity tests see correctly rounded values.
Chapter 06; the sequence loops live in tinylm/functional/{rnn,lstm,gru}.py.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os

from tinylm.backend import NUMBA_AVAILABLE, get_array_module, use_numba


# -- BLAS threads for the time loop --------------------------------------------------------

LOOP_THREADS_ENV_VAR = "TINYLM_LOOP_THREADS"

_OPENBLAS_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                     "openblas_set_num_threads64_", "openblas_set_num_threads")
_OPENBLAS_GETTERS = tuple(name.replace("set_", "get_") for name in _OPENBLAS_SETTERS)


def _find_openblas():
    """(set_num_threads, get_num_threads) of the OpenBLAS NumPy loaded, or None (another
    BLAS, or not Linux). Found the way threadpoolctl finds it: among the loaded libraries."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower()})
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for setter, getter in zip(_OPENBLAS_SETTERS, _OPENBLAS_GETTERS):
            if hasattr(lib, setter) and hasattr(lib, getter):
                return getattr(lib, setter), getattr(lib, getter)
    return None


_openblas = None


@contextlib.contextmanager
def single_threaded_blas():
    """Run NumPy's BLAS on one thread inside the block (a no-op for other BLAS libraries)."""
    global _openblas
    if _openblas is None:
        _openblas = _find_openblas() or False
    if not _openblas:
        yield
        return
    set_threads, get_threads = _openblas
    before = get_threads()
    set_threads(1)
    try:
        yield
    finally:
        set_threads(before)


def machine_is_oversubscribed() -> bool:
    """True when more threads want to run than there are cores (1-minute load average)."""
    try:
        return os.getloadavg()[0] > (os.cpu_count() or 1)
    except OSError:                  # no load average on this platform
        return False


def time_loop_blas():
    """The BLAS threading for a recurrent time loop: a context manager.

    Each step's product h_{t-1} W_h is small ([B, H] x [H, G*H]) and the steps are strictly
    sequential, so a BLAS thread team forks and joins on every step. On an idle machine that
    still pays (measured for [32, 256] x [256, 1024] on 2 cores: 155 us with two OpenBLAS
    threads, 274 us with one). On an oversubscribed machine it is a disaster: a team member
    that is not scheduled stalls the others, which spin while they wait, and the time loop
    ran ten times slower than on one thread. So the loop keeps BLAS's own threading unless
    the load average says the cores are oversubscribed; then it runs on one thread.
    ``$TINYLM_LOOP_THREADS`` overrides: ``1`` always one thread, ``blas`` always BLAS's own
    threading, ``auto`` (the default) decides by the load.
    """
    choice = os.environ.get(LOOP_THREADS_ENV_VAR, "auto").strip().lower()
    if choice not in ("auto", "1", "blas"):
        raise ValueError(f"{LOOP_THREADS_ENV_VAR}={choice!r} is not one of 'auto', '1', 'blas'.")
    if choice == "1" or (choice == "auto" and machine_is_oversubscribed()):
        return single_threaded_blas()
    return contextlib.nullcontext()


# -- reference implementations (the specification; NumPy or CuPy) ---------------------------

def _sigmoid(x):
    xp = get_array_module(x)
    return 0.5 * (1.0 + xp.tanh(0.5 * x))


def rnn_step_forward_reference(pre, hg, h):
    xp = get_array_module(pre)
    h[...] = xp.tanh(pre + hg)


def rnn_step_backward_reference(dh_out, dh_next, h, dpre):
    dpre[...] = (dh_out + dh_next) * (1.0 - h * h)


def lstm_step_forward_reference(pre, hg, c_prev, c, tanh_c, h):
    xp = get_array_module(pre)
    H = c.shape[1]
    a = pre + hg                                                    # [B, 4H]
    i, f = _sigmoid(a[:, :H]), _sigmoid(a[:, H:2 * H])              # [B, H] each
    g, o = xp.tanh(a[:, 2 * H:3 * H]), _sigmoid(a[:, 3 * H:])
    c[...] = f * c_prev + i * g
    tanh_c[...] = xp.tanh(c)
    h[...] = o * tanh_c
    pre[:, :H], pre[:, H:2 * H], pre[:, 2 * H:3 * H], pre[:, 3 * H:] = i, f, g, o


def lstm_step_backward_reference(dh_out, dh_next, dc, gates, c_prev, tanh_c, dpre):
    H = dc.shape[1]
    i, f = gates[:, :H], gates[:, H:2 * H]
    g, o = gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    dh = dh_out + dh_next                                           # [B, H]
    dct = dc + dh * o * (1.0 - tanh_c * tanh_c)                     # dL/dc_t, both paths
    dpre[:, :H] = dct * g * i * (1.0 - i)
    dpre[:, H:2 * H] = dct * c_prev * f * (1.0 - f)
    dpre[:, 2 * H:3 * H] = dct * i * (1.0 - g * g)
    dpre[:, 3 * H:] = dh * tanh_c * o * (1.0 - o)
    dc[...] = dct * f


def gru_step_forward_reference(pre, hg, b_h, h_prev, hn, h):
    xp = get_array_module(pre)
    H = h.shape[1]
    hgb = hg + b_h                                                  # [B, 3H]
    r = _sigmoid(pre[:, :H] + hgb[:, :H])
    z = _sigmoid(pre[:, H:2 * H] + hgb[:, H:2 * H])
    hn[...] = hgb[:, 2 * H:]
    n = xp.tanh(pre[:, 2 * H:] + r * hn)
    h[...] = (1.0 - z) * n + z * h_prev
    pre[:, :H], pre[:, H:2 * H], pre[:, 2 * H:] = r, z, n


def gru_step_backward_reference(dh_out, dh_next, gates, h_prev, hn, dxg, dhg):
    H = hn.shape[1]
    r, z, n = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:]
    dh = dh_out + dh_next                                           # [B, H]
    dan = dh * (1.0 - z) * (1.0 - n * n)
    daz = dh * (h_prev - n) * z * (1.0 - z)
    dar = dan * hn * r * (1.0 - r)
    dxg[:, :H], dxg[:, H:2 * H], dxg[:, 2 * H:] = dar, daz, dan
    dhg[:, :H], dhg[:, H:2 * H], dhg[:, 2 * H:] = dar, daz, dan * r
    dh_next[...] = dh * z


# -- numba versions ----------------------------------------------------------------------

if NUMBA_AVAILABLE:
    import numba
    import numpy
    from numba import types
    from numba.extending import overload, register_jitable

    def _tanh(x):
        """Scalar tanh for jitted code: fast rational form in float32, libm in float64."""
        return math.tanh(x)

    def _sigm(x):
        """Scalar logistic sigmoid for jitted code, (1 + tanh(x / 2)) / 2."""
        return 0.5 * (1.0 + math.tanh(0.5 * x))

    @register_jitable
    def _tanh_float32(x):
        # Eigen's generic_fast_tanh_float: odd 13th-degree over even 6th-degree polynomial,
        # clamped where tanh is 1 to float32 precision. Branch-free, so the loops vectorise.
        bound = numpy.float32(7.90531110763549805)
        xc = bound if x > bound else x
        xc = -bound if xc < -bound else xc
        x2 = xc * xc
        p = numpy.float32(-2.76076847742355e-16)
        p = p * x2 + numpy.float32(2.00018790482477e-13)
        p = p * x2 + numpy.float32(-8.60467152213735e-11)
        p = p * x2 + numpy.float32(5.12229709037114e-08)
        p = p * x2 + numpy.float32(1.48572235717979e-05)
        p = p * x2 + numpy.float32(6.37261928875436e-04)
        p = p * x2 + numpy.float32(4.89352455891786e-03)
        q = numpy.float32(1.19825839466702e-06)
        q = q * x2 + numpy.float32(1.18534705686654e-04)
        q = q * x2 + numpy.float32(2.26843463243900e-03)
        q = q * x2 + numpy.float32(4.89352518554385e-03)
        return xc * p / q

    @register_jitable
    def _sigmoid_float32(x):
        half = numpy.float32(0.5)
        return half + half * _tanh_float32(half * x)

    def _is_float32(x):
        return isinstance(x, types.Float) and x.bitwidth == 32

    @overload(_tanh)
    def _tanh_overload(x):
        if _is_float32(x):
            return _tanh_float32
        return lambda x: math.tanh(x)

    @overload(_sigm)
    def _sigm_overload(x):
        if _is_float32(x):
            return _sigmoid_float32
        return lambda x: 0.5 * (1.0 + math.tanh(0.5 * x))

    # error_model="numpy": no ZeroDivisionError branch inside the loops. Each row is taken
    # apart into 1-D views (one per gate block) so that LLVM can prove the blocks do not
    # overlap and vectorise the unit loop; indexing the 2-D arrays directly stays scalar.
    _jit = numba.njit(cache=True, error_model="numpy")

    @_jit
    def _rnn_step_forward_numba(pre, hg, h):
        B, H = h.shape
        for b in range(B):
            a, q, hb = pre[b], hg[b], h[b]
            for j in range(H):
                hb[j] = _tanh(a[j] + q[j])

    @_jit
    def _rnn_step_backward_numba(dh_out, dh_next, h, dpre):
        B, H = h.shape
        one = h.dtype.type(1.0)
        for b in range(B):
            dy, dn, hb, da = dh_out[b], dh_next[b], h[b], dpre[b]
            for j in range(H):
                da[j] = (dy[j] + dn[j]) * (one - hb[j] * hb[j])

    @_jit
    def _lstm_step_forward_numba(pre, hg, c_prev, c, tanh_c, h):
        B, H = c.shape
        for b in range(B):
            ai, af, ag, ao = pre[b, :H], pre[b, H:2 * H], pre[b, 2 * H:3 * H], pre[b, 3 * H:]
            qi, qf, qg, qo = hg[b, :H], hg[b, H:2 * H], hg[b, 2 * H:3 * H], hg[b, 3 * H:]
            cp, cb, tb, hb = c_prev[b], c[b], tanh_c[b], h[b]
            for j in range(H):
                i = _sigm(ai[j] + qi[j])
                f = _sigm(af[j] + qf[j])
                g = _tanh(ag[j] + qg[j])
                o = _sigm(ao[j] + qo[j])
                ct = f * cp[j] + i * g
                tc = _tanh(ct)
                cb[j] = ct
                tb[j] = tc
                hb[j] = o * tc
                ai[j] = i
                af[j] = f
                ag[j] = g
                ao[j] = o

    @_jit
    def _lstm_step_backward_numba(dh_out, dh_next, dc, gates, c_prev, tanh_c, dpre):
        B, H = dc.shape
        one = dc.dtype.type(1.0)
        for b in range(B):
            gi, gf = gates[b, :H], gates[b, H:2 * H]
            gg, go = gates[b, 2 * H:3 * H], gates[b, 3 * H:]
            di, df = dpre[b, :H], dpre[b, H:2 * H]
            dg, do = dpre[b, 2 * H:3 * H], dpre[b, 3 * H:]
            dy, dn, dcb, cp, tb = dh_out[b], dh_next[b], dc[b], c_prev[b], tanh_c[b]
            for j in range(H):
                i, f, g, o, tc = gi[j], gf[j], gg[j], go[j], tb[j]
                dh = dy[j] + dn[j]
                dct = dcb[j] + dh * o * (one - tc * tc)
                di[j] = dct * g * i * (one - i)
                df[j] = dct * cp[j] * f * (one - f)
                dg[j] = dct * i * (one - g * g)
                do[j] = dh * tc * o * (one - o)
                dcb[j] = dct * f

    @_jit
    def _gru_step_forward_numba(pre, hg, b_h, h_prev, hn, h):
        B, H = h.shape
        one = h.dtype.type(1.0)
        br, bz, bn = b_h[:H], b_h[H:2 * H], b_h[2 * H:]
        for b in range(B):
            ar, az, an = pre[b, :H], pre[b, H:2 * H], pre[b, 2 * H:]
            qr, qz, qn = hg[b, :H], hg[b, H:2 * H], hg[b, 2 * H:]
            hp, hnb, hb = h_prev[b], hn[b], h[b]
            for j in range(H):
                r = _sigm(ar[j] + qr[j] + br[j])
                z = _sigm(az[j] + qz[j] + bz[j])
                m = qn[j] + bn[j]
                n = _tanh(an[j] + r * m)
                hnb[j] = m
                hb[j] = (one - z) * n + z * hp[j]
                ar[j] = r
                az[j] = z
                an[j] = n

    @_jit
    def _gru_step_backward_numba(dh_out, dh_next, gates, h_prev, hn, dxg, dhg):
        B, H = hn.shape
        one = hn.dtype.type(1.0)
        for b in range(B):
            gr, gz, gn = gates[b, :H], gates[b, H:2 * H], gates[b, 2 * H:]
            xr, xz, xn = dxg[b, :H], dxg[b, H:2 * H], dxg[b, 2 * H:]
            qr, qz, qn = dhg[b, :H], dhg[b, H:2 * H], dhg[b, 2 * H:]
            dy, dn, hp, hnb = dh_out[b], dh_next[b], h_prev[b], hn[b]
            for j in range(H):
                r, z, n = gr[j], gz[j], gn[j]
                dh = dy[j] + dn[j]
                dan = dh * (one - z) * (one - n * n)
                daz = dh * (hp[j] - n) * z * (one - z)
                dar = dan * hnb[j] * r * (one - r)
                xr[j] = dar
                xz[j] = daz
                xn[j] = dan
                qr[j] = dar
                qz[j] = daz
                qn[j] = dan * r
                dn[j] = dh * z


# -- dispatch: numba on NumPy arrays when allowed, else the reference ----------------------

def rnn_step_forward(pre, hg, h):
    """pre, hg [B, H] -> h [B, H] (written in place)."""
    if use_numba(pre, hg, h):
        _rnn_step_forward_numba(pre, hg, h)
    else:
        rnn_step_forward_reference(pre, hg, h)


def rnn_step_backward(dh_out, dh_next, h, dpre):
    """-> dpre [B, H] = dL/d(pre-activation) (written in place)."""
    if use_numba(dh_out, dh_next, h, dpre):
        _rnn_step_backward_numba(dh_out, dh_next, h, dpre)
    else:
        rnn_step_backward_reference(dh_out, dh_next, h, dpre)


def lstm_step_forward(pre, hg, c_prev, c, tanh_c, h):
    """pre [B, 4H] (in: x W_x + b, out: i, f, g, o), hg [B, 4H], c_prev [B, H]
    -> c, tanh_c, h [B, H] (written in place)."""
    if use_numba(pre, hg, c_prev, c, tanh_c, h):
        _lstm_step_forward_numba(pre, hg, c_prev, c, tanh_c, h)
    else:
        lstm_step_forward_reference(pre, hg, c_prev, c, tanh_c, h)


def lstm_step_backward(dh_out, dh_next, dc, gates, c_prev, tanh_c, dpre):
    """dc [B, H] (in: dL/dc_t from step t+1, out: dL/dc_{t-1}); -> dpre [B, 4H]."""
    if use_numba(dh_out, dh_next, dc, gates, c_prev, tanh_c, dpre):
        _lstm_step_backward_numba(dh_out, dh_next, dc, gates, c_prev, tanh_c, dpre)
    else:
        lstm_step_backward_reference(dh_out, dh_next, dc, gates, c_prev, tanh_c, dpre)


def gru_step_forward(pre, hg, b_h, h_prev, hn, h):
    """pre [B, 3H] (in: x W_x + b_x, out: r, z, n), hg [B, 3H] = h_prev W_h, b_h [3H]
    -> hn = h_prev W_hn + b_hn [B, H], h [B, H] (written in place)."""
    if use_numba(pre, hg, b_h, h_prev, hn, h):
        _gru_step_forward_numba(pre, hg, b_h, h_prev, hn, h)
    else:
        gru_step_forward_reference(pre, hg, b_h, h_prev, hn, h)


def gru_step_backward(dh_out, dh_next, gates, h_prev, hn, dxg, dhg):
    """-> dxg = dL/d(x W_x + b_x), dhg = dL/d(h W_h + b_h) [B, 3H]; dh_next [B, H]
    (in: dL/dh_t from step t+1, out: the direct part dL/dh_{t-1} = dh z)."""
    if use_numba(dh_out, dh_next, gates, h_prev, hn, dxg, dhg):
        _gru_step_backward_numba(dh_out, dh_next, gates, h_prev, hn, dxg, dhg)
    else:
        gru_step_backward_reference(dh_out, dh_next, gates, h_prev, hn, dxg, dhg)
