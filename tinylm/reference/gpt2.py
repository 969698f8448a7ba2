"""The whole GPT-2 in one file: forward, the complete hand-written backward, and AdamW, as
pure functions over a dict of NumPy arrays (chapter 07's one-screen summary).

The rest of tinylm builds the same model from modules (tinylm/models/gpt.py on
tinylm/functional/ and tinylm/nn/); this file is the same mathematics read top to bottom,
with nothing to look up elsewhere, and it imports only NumPy. tests/test_reference_gpt2.py
proves the two equal in float64: logits, loss, every gradient and ten AdamW steps.

Parameters, GPT-2's names and layouts (weights [in, out]):

    wte [V, D]  wpe [T_max, D]
    h.{l}.ln_1.weight/bias [D]   h.{l}.attn.c_attn.weight [D, 3D]  .bias [3D]
    h.{l}.attn.c_proj.weight [D, D]  .bias [D]   h.{l}.ln_2.weight/bias [D]
    h.{l}.mlp.c_fc.weight [D, 4D]  .bias [4D]    h.{l}.mlp.c_proj.weight [4D, D]  .bias [D]
    ln_f.weight/bias [D]

The model (no dropout: evaluation mode, as picoGPT and llm.c's test):

    x     = wte[idx] + wpe[:T]                              [B, T, D]
    block: x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))     pre-LN residual blocks
    attn  : q, k, v = split(h W_attn + b_attn), H heads of size d = D / H
            A = softmax(q k^T / sqrt(d) + causal mask);  y = merge(A v) W_proj + b_proj
    mlp   : gelu(h W_fc + b_fc) W_proj + b_proj,  gelu(u) = u/2 (1 + tanh(c (u + 0.044715 u^3)))
    logits = ln_f(x) wte^T                                  [B, T, V]  (tied head)
    loss   = mean over B*T of -log softmax(logits)[target]

Every backward below is the chain rule applied to the line above it, in reverse order.
"""

import numpy as np

LN_EPS = 1e-5
GELU_C = np.sqrt(2.0 / np.pi)


# -- the pieces: each forward returns (output, cache), each backward takes (dout, cache) ------
def layernorm_forward(x, w, b):
    mean = x.mean(-1, keepdims=True)                                     # [B, T, 1]
    rstd = 1.0 / np.sqrt(x.var(-1, keepdims=True) + LN_EPS)              # [B, T, 1]
    xhat = (x - mean) * rstd                                             # [B, T, D]
    return xhat * w + b, (xhat, rstd, w)


def layernorm_backward(dout, cache):
    xhat, rstd, w = cache
    dw = (dout * xhat).sum((0, 1))                                       # [D]
    db = dout.sum((0, 1))                                                # [D]
    g = dout * w                                                         # dL/dxhat [B, T, D]
    dx = rstd * (g - g.mean(-1, keepdims=True)
                 - xhat * (g * xhat).mean(-1, keepdims=True))            # [B, T, D]
    return dx, dw, db


def linear_forward(x, w, b):
    return x @ w + b, (x, w)                                             # [..., out]


def linear_backward(dout, cache):
    x, w = cache
    dw = x.reshape(-1, x.shape[-1]).T @ dout.reshape(-1, dout.shape[-1])  # [in, out]
    return dout @ w.T, dw, dout.sum(tuple(range(dout.ndim - 1)))         # dx, dw, db


def gelu_forward(u):
    t = np.tanh(GELU_C * (u + 0.044715 * u ** 3))
    return 0.5 * u * (1.0 + t), (u, t)


def gelu_backward(dout, cache):
    u, t = cache
    dt_du = (1.0 - t * t) * GELU_C * (1.0 + 3 * 0.044715 * u * u)
    return dout * (0.5 * (1.0 + t) + 0.5 * u * dt_du)


def attention_forward(x, n_head):
    """x = LN(h) W_attn + b_attn [B, T, 3D] -> merged heads [B, T, D] before c_proj."""
    B, T, D3 = x.shape
    D, d = D3 // 3, D3 // 3 // n_head
    q, k, v = (x[..., i * D:(i + 1) * D].reshape(B, T, n_head, d).transpose(0, 2, 1, 3)
               for i in range(3))                                        # [B, H, T, d] each
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d)                    # [B, H, T, T]
    scores = np.where(np.tril(np.ones((T, T), dtype=bool)), scores, -np.inf)
    a = np.exp(scores - scores.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)                                        # softmax rows
    y = (a @ v).transpose(0, 2, 1, 3).reshape(B, T, D)                   # [B, T, D]
    return y, (q, k, v, a)


def attention_backward(dy, cache):
    q, k, v, a = cache
    B, H, T, d = q.shape
    dy = dy.reshape(B, T, H, d).transpose(0, 2, 1, 3)                    # [B, H, T, d]
    da = dy @ v.transpose(0, 1, 3, 2)                                    # [B, H, T, T]
    dv = a.transpose(0, 1, 3, 2) @ dy                                    # [B, H, T, d]
    ds = a * (da - (da * a).sum(-1, keepdims=True)) / np.sqrt(d)         # softmax backward
    dq = ds @ k                                                          # [B, H, T, d]
    dk = ds.transpose(0, 1, 3, 2) @ q                                    # [B, H, T, d]
    merge = [g.transpose(0, 2, 1, 3).reshape(B, T, H * d) for g in (dq, dk, dv)]
    return np.concatenate(merge, axis=-1)                                # [B, T, 3D]


# -- the model ---------------------------------------------------------------------------------
def block_forward(x, p, prefix, n_head):
    h1, c_ln1 = layernorm_forward(x, p[prefix + "ln_1.weight"], p[prefix + "ln_1.bias"])
    qkv, c_qkv = linear_forward(h1, p[prefix + "attn.c_attn.weight"],
                                p[prefix + "attn.c_attn.bias"])          # [B, T, 3D]
    y, c_att = attention_forward(qkv, n_head)                            # [B, T, D]
    o, c_o = linear_forward(y, p[prefix + "attn.c_proj.weight"], p[prefix + "attn.c_proj.bias"])
    x = x + o                                                            # residual 1
    h2, c_ln2 = layernorm_forward(x, p[prefix + "ln_2.weight"], p[prefix + "ln_2.bias"])
    u, c_fc = linear_forward(h2, p[prefix + "mlp.c_fc.weight"], p[prefix + "mlp.c_fc.bias"])
    g, c_gelu = gelu_forward(u)                                          # [B, T, 4D]
    m, c_m = linear_forward(g, p[prefix + "mlp.c_proj.weight"], p[prefix + "mlp.c_proj.bias"])
    return x + m, (c_ln1, c_qkv, c_att, c_o, c_ln2, c_fc, c_gelu, c_m)   # residual 2


def block_backward(dx, cache, grads, prefix):
    c_ln1, c_qkv, c_att, c_o, c_ln2, c_fc, c_gelu, c_m = cache
    dg, grads[prefix + "mlp.c_proj.weight"], grads[prefix + "mlp.c_proj.bias"] = \
        linear_backward(dx, c_m)
    du = gelu_backward(dg, c_gelu)
    dh2, grads[prefix + "mlp.c_fc.weight"], grads[prefix + "mlp.c_fc.bias"] = \
        linear_backward(du, c_fc)
    dln2, grads[prefix + "ln_2.weight"], grads[prefix + "ln_2.bias"] = \
        layernorm_backward(dh2, c_ln2)
    dx = dx + dln2                                                       # through residual 2
    dy, grads[prefix + "attn.c_proj.weight"], grads[prefix + "attn.c_proj.bias"] = \
        linear_backward(dx, c_o)
    dqkv = attention_backward(dy, c_att)
    dh1, grads[prefix + "attn.c_attn.weight"], grads[prefix + "attn.c_attn.bias"] = \
        linear_backward(dqkv, c_qkv)
    dln1, grads[prefix + "ln_1.weight"], grads[prefix + "ln_1.bias"] = \
        layernorm_backward(dh1, c_ln1)
    return dx + dln1                                                     # through residual 1


def gpt2_forward(p, idx, targets, n_layer, n_head):
    """idx, targets [B, T] ints -> (logits [B, T, V], mean cross-entropy, cache)."""
    B, T = idx.shape
    x = p["wte"][idx] + p["wpe"][:T]                                     # [B, T, D]
    block_caches = []
    for layer in range(n_layer):
        x, cache = block_forward(x, p, f"h.{layer}.", n_head)
        block_caches.append(cache)
    xf, c_lnf = layernorm_forward(x, p["ln_f.weight"], p["ln_f.bias"])   # [B, T, D]
    logits = xf @ p["wte"].T                                             # [B, T, V]
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    loss = -np.take_along_axis(log_probs, targets[..., None], -1).mean()
    return logits, loss, (idx, targets, log_probs, xf, c_lnf, block_caches)


def gpt2_backward(p, cache, n_layer):
    """The gradient of the mean cross-entropy -> {name: dL/dname}, one per parameter."""
    idx, targets, log_probs, xf, c_lnf, block_caches = cache
    B, T = idx.shape
    dlogits = np.exp(log_probs)                                          # softmax [B, T, V]
    np.put_along_axis(dlogits, targets[..., None],
                      np.take_along_axis(dlogits, targets[..., None], -1) - 1.0, -1)
    dlogits /= B * T                                                     # mean over positions
    grads = {"wte": np.einsum("btv,btd->vd", dlogits, xf)}               # tied head: 1st use
    dxf = dlogits @ p["wte"]                                             # [B, T, D]
    dx, grads["ln_f.weight"], grads["ln_f.bias"] = layernorm_backward(dxf, c_lnf)
    for layer in reversed(range(n_layer)):
        dx = block_backward(dx, block_caches[layer], grads, f"h.{layer}.")
    np.add.at(grads["wte"], idx, dx)                                     # lookup: 2nd use
    grads["wpe"] = np.zeros_like(p["wpe"])
    grads["wpe"][:T] = dx.sum(0)
    return grads


# -- the optimizer -----------------------------------------------------------------------------
def adamw_step(p, grads, state, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    """One AdamW step in place: decoupled decay on matrices only (ndim >= 2), then Adam with
    bias correction. ``state`` is {"t": steps taken, "m": {}, "v": {}}, filled on first use."""
    beta1, beta2 = betas
    state["t"] += 1
    bias1, bias2 = 1.0 - beta1 ** state["t"], 1.0 - beta2 ** state["t"]
    for name, g in grads.items():
        m = state["m"].setdefault(name, np.zeros_like(g))
        v = state["v"].setdefault(name, np.zeros_like(g))
        if p[name].ndim >= 2:
            p[name] *= 1.0 - lr * weight_decay                           # theta -= lr wd theta
        m[...] = beta1 * m + (1.0 - beta1) * g
        v[...] = beta2 * v + (1.0 - beta2) * g * g
        p[name] -= (lr / bias1) * m / (np.sqrt(v) / np.sqrt(bias2) + eps)
