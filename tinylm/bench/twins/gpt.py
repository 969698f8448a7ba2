"""nanoGPT in PyTorch with tinylm's GPT parameter names (``wte``, ``h.0.attn.c_attn.weight``,
...) and, given a tinylm ``GPT``, its exact weights.

``fused_attention=False`` writes attention out (masked_fill + softmax), an independent
specification for the parity tests; ``True`` uses ``F.scaled_dot_product_attention`` as
nanoGPT does, for the benchmarks. ``forward(idx, targets) -> (logits, loss)``.
"""

from __future__ import annotations

import math

import numpy


def to_torch_layout(name: str, array):
    """tinylm Linear weights are [in, out]; torch's are [out, in] (and back again)."""
    linear_weight = array.ndim == 2 and name not in ("wte", "wpe")
    return numpy.ascontiguousarray(array.T if linear_weight else array)


def _attention(torch, q, k, v, fused: bool):
    """Causal attention of q, k, v [B, H, T, hd]."""
    F = torch.nn.functional
    if fused:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    T = q.shape[2]
    att = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    future = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
    return F.softmax(att.masked_fill(future, float("-inf")), dim=-1) @ v


def gpt_twin_class(torch, config, fused_attention: bool = False):
    """The twin's class for a ``GPTConfig`` (dropout is not modelled: timings and parity
    are of the arithmetic)."""
    nn, F = torch.nn, torch.nn.functional
    c = config

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = nn.Linear(c.n_embd, 3 * c.n_embd)
            self.c_proj = nn.Linear(c.n_embd, c.n_embd)

        def forward(self, x):
            B, T, D = x.shape
            q, k, v = self.c_attn(x).split(D, dim=2)
            q, k, v = (t.view(B, T, c.n_head, D // c.n_head).transpose(1, 2) for t in (q, k, v))
            y = _attention(torch, q, k, v, fused_attention)
            return self.c_proj(y.transpose(1, 2).reshape(B, T, D))

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_fc = nn.Linear(c.n_embd, 4 * c.n_embd)
            self.c_proj = nn.Linear(4 * c.n_embd, c.n_embd)

        def forward(self, x):
            return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.attn = nn.LayerNorm(c.n_embd), Attention()
            self.ln_2, self.mlp = nn.LayerNorm(c.n_embd), MLP()

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class TwinGPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Parameter(torch.zeros(c.vocab_size, c.n_embd))
            self.wpe = nn.Parameter(torch.zeros(c.block_size, c.n_embd))
            self.h = nn.ModuleList([Block() for _ in range(c.n_layer)])
            self.ln_f = nn.LayerNorm(c.n_embd)

        def forward(self, idx, targets):
            x = self.wte[idx] + self.wpe[:idx.shape[1]]
            for block in self.h:
                x = block(x)
            logits = self.ln_f(x) @ self.wte.T                      # tied head
            loss = F.cross_entropy(logits.reshape(-1, c.vocab_size), targets.reshape(-1))
            return logits, loss

    return TwinGPT


def with_weights_of(torch, twin, model, layout=to_torch_layout):
    """``twin`` in ``model``'s dtype, holding its weights: each tinylm parameter copied
    into the twin's parameter of the same name, in torch's layout (``layout``)."""
    twin = twin.to(torch.float64 if model.wte.dtype == numpy.float64 else torch.float32)
    params = dict(twin.named_parameters())
    with torch.no_grad():
        for name, p in model.named_parameters():
            params[name].copy_(torch.from_numpy(layout(name, p.data)))
    return twin


def gpt_twin(torch, model, fused_attention: bool = False):
    """The twin of the tinylm ``GPT`` ``model``, in its dtype, with its weights."""
    return with_weights_of(torch, gpt_twin_class(torch, model.config, fused_attention)(), model)
