"""Fused gate maths of the recurrent cells (RNN, LSTM, GRU), one time step, in numba.

The maths, its derivation and the reference each kernel must equal are in
tinylm/functional/{rnn,lstm,gru}.py (``*_step_forward_reference`` and
``*_step_backward_reference``), which also decide when these kernels run. Each kernel takes
the same arguments as its reference and writes the same arrays in place, so a time step
allocates nothing. Gate blocks lie along the last axis in PyTorch's order: RNN (one block),
LSTM (i, f, g, o), GRU (r, z, n); H is the hidden size.

The loops run over (row, unit) with the unit loop innermost, which LLVM turns into SIMD
code. Each row is taken apart into 1-D views (one per gate block) so that LLVM can prove the
blocks do not overlap and vectorise the unit loop; indexing the 2-D arrays directly stays
scalar. Numba has no vectorised tanh/exp of its own (no SVML here), so for float32 they use
the rational tanh of tinylm/kernels/tanh.py (error ~3e-7, about float32 rounding); float64
uses math.tanh, so gradient checks and the PyTorch parity tests see correctly rounded values.
The logistic sigmoid is s(x) = (1 + tanh(x / 2)) / 2 (exact and stable). Chapter 06.
"""

from __future__ import annotations

import math

from tinylm.backend import NUMBA_AVAILABLE
from tinylm.kernels import JIT

if NUMBA_AVAILABLE:
    import numba
    from numba import types
    from numba.extending import overload

    from tinylm.kernels.tanh import RATIONAL_TANH, rational_tanh

    def _tanh(x):
        """Scalar tanh for jitted code: the rational form in float32, libm in float64."""
        return math.tanh(x)

    def _sigmoid(x):
        """Scalar logistic sigmoid for jitted code, (1 + tanh(x / 2)) / 2."""
        return 0.5 * (1.0 + math.tanh(0.5 * x))

    def _is_float32(x):
        return isinstance(x, types.Float) and x.bitwidth == 32

    @overload(_tanh)
    def _tanh_overload(x):
        if _is_float32(x):
            return lambda x: rational_tanh(x, RATIONAL_TANH)
        return lambda x: math.tanh(x)

    @overload(_sigmoid)
    def _sigmoid_overload(x):
        if _is_float32(x):
            def sigmoid_float32(x):
                half = numba.float32(0.5)
                return half + half * rational_tanh(half * x, RATIONAL_TANH)
            return sigmoid_float32
        return lambda x: 0.5 * (1.0 + math.tanh(0.5 * x))

    @numba.njit(**JIT)
    def rnn_step_forward(pre, hg, h):
        """rnn_step_forward_reference in tinylm/functional/rnn.py, fused."""
        B, H = h.shape
        for b in range(B):
            a, q, hb = pre[b], hg[b], h[b]
            for j in range(H):
                hb[j] = _tanh(a[j] + q[j])

    @numba.njit(**JIT)
    def rnn_step_backward(dh_out, dh_next, h, dpre):
        """rnn_step_backward_reference in tinylm/functional/rnn.py, fused."""
        B, H = h.shape
        one = h.dtype.type(1.0)
        for b in range(B):
            dy, dn, hb, da = dh_out[b], dh_next[b], h[b], dpre[b]
            for j in range(H):
                da[j] = (dy[j] + dn[j]) * (one - hb[j] * hb[j])

    @numba.njit(**JIT)
    def lstm_step_forward(pre, hg, c_prev, c, tanh_c, h):
        """lstm_step_forward_reference in tinylm/functional/lstm.py, fused."""
        B, H = c.shape
        for b in range(B):
            ai, af, ag, ao = pre[b, :H], pre[b, H:2 * H], pre[b, 2 * H:3 * H], pre[b, 3 * H:]
            qi, qf, qg, qo = hg[b, :H], hg[b, H:2 * H], hg[b, 2 * H:3 * H], hg[b, 3 * H:]
            cp, cb, tb, hb = c_prev[b], c[b], tanh_c[b], h[b]
            for j in range(H):
                i = _sigmoid(ai[j] + qi[j])
                f = _sigmoid(af[j] + qf[j])
                g = _tanh(ag[j] + qg[j])
                o = _sigmoid(ao[j] + qo[j])
                ct = f * cp[j] + i * g
                tc = _tanh(ct)
                cb[j] = ct
                tb[j] = tc
                hb[j] = o * tc
                ai[j] = i
                af[j] = f
                ag[j] = g
                ao[j] = o

    @numba.njit(**JIT)
    def lstm_step_backward(dh_out, dh_next, dc, gates, c_prev, tanh_c, dpre):
        """lstm_step_backward_reference in tinylm/functional/lstm.py, fused."""
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

    @numba.njit(**JIT)
    def gru_step_forward(pre, hg, b_h, h_prev, hn, h):
        """gru_step_forward_reference in tinylm/functional/gru.py, fused."""
        B, H = h.shape
        one = h.dtype.type(1.0)
        br, bz, bn = b_h[:H], b_h[H:2 * H], b_h[2 * H:]
        for b in range(B):
            ar, az, an = pre[b, :H], pre[b, H:2 * H], pre[b, 2 * H:]
            qr, qz, qn = hg[b, :H], hg[b, H:2 * H], hg[b, 2 * H:]
            hp, hnb, hb = h_prev[b], hn[b], h[b]
            for j in range(H):
                r = _sigmoid(ar[j] + qr[j] + br[j])
                z = _sigmoid(az[j] + qz[j] + bz[j])
                m = qn[j] + bn[j]
                n = _tanh(an[j] + r * m)
                hnb[j] = m
                hb[j] = (one - z) * n + z * hp[j]
                ar[j] = r
                az[j] = z
                an[j] = n

    @numba.njit(**JIT)
    def gru_step_backward(dh_out, dh_next, gates, h_prev, hn, dxg, dhg):
        """gru_step_backward_reference in tinylm/functional/gru.py, fused."""
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
