"""``CrossAttention``: multi-head attention of the decoder's positions over the encoder's
output (the encoder-decoder Transformer's middle sub-layer; chapter 07's attention with
queries and keys from two sequences).

    q      = q_attn(x)              Linear D -> D     [B, T, D]   from the decoder
    [k|v]  = c_attn(memory)         Linear D -> 2D    [B, S, 2D]  from the encoder
    y      = softmax(q k^T / sqrt(hd), padding keys masked) v, per head, merged  [B, T, D]
    out    = dropout(c_proj(y))     Linear D -> D     [B, T, D]

GPT-2's cross-attention names (``q_attn``, ``c_attn``, ``c_proj``). The maths is
tinylm/functional/encoder_attention.py's ``cross_attention_*`` pair, which this module calls
with its weights. Decoding needs k and v once per source sentence: ``memory_keys_values``
computes them, ``forward_cached`` attends with them.
"""

from __future__ import annotations

from tinylm.backend import derive_seed
from tinylm.functional.attention import (merge_heads, scaled_dot_product_attention_forward,
                                         split_heads)
from tinylm.functional.encoder_attention import (cross_attention_backward,
                                                 cross_attention_forward)
from tinylm.nn.dropout import Dropout, DropoutRng
from tinylm.nn.linear import Linear
from tinylm.nn.module import Module


class CrossAttention(Module):
    """Attention of ``n_head`` heads from width-``n_embd`` queries over a memory of the same
    width."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, rng=None, seed: int = 0):
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"CrossAttention: n_embd={n_embd} is not divisible by "
                             f"n_head={n_head}; choose n_head dividing the width.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"CrossAttention: dropout={dropout} must lie in [0, 1).")
        self.n_embd, self.n_head = n_embd, n_head
        self.q_attn = Linear(n_embd, n_embd, rng=rng)            # W_q [D, D]
        self.c_attn = Linear(n_embd, 2 * n_embd, rng=rng)        # W_kv [D, 2D]
        self.c_proj = Linear(n_embd, n_embd, rng=rng)            # W_o [D, D]
        self.attn_pdrop = dropout                                # on P [B, H, T, S]
        self.attn_dropout = DropoutRng(seed=seed)
        self.resid_dropout = Dropout(dropout, seed=derive_seed(seed, 1))

    def _weights(self):
        return [a for layer in (self.q_attn, self.c_attn, self.c_proj)
                for a in (layer.weight.data, layer.bias.data)]

    def forward(self, x, memory, src_mask=None):
        """x [B, T, D], memory [B, S, D], src_mask [B, S] bool (True = real) -> [B, T, D]."""
        p = self.attn_pdrop if self.training else 0.0
        rng = self.attn_dropout.rng_for(x) if p > 0.0 else None
        out, self._cache = cross_attention_forward(x, memory, *self._weights(), self.n_head,
                                                   src_mask, p, rng, self.training)
        return self.resid_dropout.forward(out)                                 # [B, T, D]

    def backward(self, dout):
        """dout [B, T, D] -> (dx [B, T, D], dmemory [B, S, D])."""
        dx, dmemory, *grads = cross_attention_backward(self.resid_dropout.backward(dout),
                                                       self._cache)
        params = [q for layer in (self.q_attn, self.c_attn, self.c_proj)
                  for q in (layer.weight, layer.bias)]
        for param, grad in zip(params, grads):
            param.accumulate(grad)
        return dx, dmemory

    @property
    def attention_weights(self):
        """P [B, H, T, S] of the last forward pass (before dropout), for alignment plots."""
        return self._cache.att

    def memory_keys_values(self, memory):
        """memory [B, S, D] -> (k, v), each [B, H, S, hd]: computed once per source."""
        heads = split_heads(self.c_attn.forward(memory), 2 * self.n_head)     # [B, 2H, S, hd]
        return heads[:, :self.n_head], heads[:, self.n_head:]

    def forward_cached(self, x, keys_values, src_mask=None):
        """Inference: x [B, t, D] and ``memory_keys_values``' (k, v) -> [B, t, D]."""
        k, v = keys_values
        q = split_heads(self.q_attn.forward(x), self.n_head)                   # [B, H, t, hd]
        allowed = None if src_mask is None else src_mask[:, None, None, :]    # [B, 1, 1, S]
        y, _ = scaled_dot_product_attention_forward(q, k, v, allowed, training=False)
        return self.c_proj.forward(merge_heads(y))                             # [B, t, D]

    def __repr__(self):
        return (f"CrossAttention(n_embd={self.n_embd}, n_head={self.n_head}, "
                f"dropout={self.attn_pdrop})")
