"""``MultiHeadAttention``: multi-head self-attention with a fused QKV projection, and the
``KVCache`` that incremental decoding keeps per layer (chapters 07 and 10).

    qkv = c_attn(x)            Linear D -> 3D          [B, T, 3D]
    y   = heads(qkv)           causal softmax(q k^T / sqrt(hd)) v per head, merged [B, T, D]
    out = dropout(c_proj(y))   Linear D -> D           [B, T, D]

The maths of every step is in tinylm/functional/attention.py; the module owns the weights,
the attention weights' dropout probability ``attn_pdrop`` with its seeded generator
``attn_dropout`` (functional applies the mask), and the output's ``resid_dropout``, named
as in nanoGPT/GPT-2.
"""

from __future__ import annotations

from tinylm.backend import derive_seed, get_array_module
from tinylm.functional.attention import (attention_heads_backward, attention_heads_forward,
                                         merge_heads, scaled_dot_product_attention_forward,
                                         split_qkv)
from tinylm.nn.dropout import Dropout, DropoutRng
from tinylm.nn.linear import Linear
from tinylm.nn.module import Module


class KVCache:
    """Keys and values of the tokens seen so far, k, v [B, H, capacity, hd], filled up to
    ``length``. Decoding one token then costs one query against ``length`` cached keys
    instead of recomputing every earlier token."""

    def __init__(self, batch: int, n_head: int, capacity: int, head_dim: int, xp, dtype):
        self.k = xp.zeros((batch, n_head, capacity, head_dim), dtype=dtype)
        self.v = xp.zeros((batch, n_head, capacity, head_dim), dtype=dtype)
        self.length = 0

    @property
    def capacity(self) -> int:
        return self.k.shape[2]

    def select_rows(self, indices) -> "KVCache":
        """A new cache holding batch rows ``indices`` [B'] of this one (beam search keeps,
        drops and duplicates hypotheses between steps); the length carries over."""
        xp = get_array_module(self.k)
        rows = xp.asarray(indices)
        chosen = KVCache.__new__(KVCache)
        chosen.k, chosen.v = xp.take(self.k, rows, axis=0), xp.take(self.v, rows, axis=0)
        chosen.length = self.length
        return chosen

    def append(self, k, v):
        """k, v [B, H, t, hd] -> all cached keys and values [B, H, length + t, hd] (views)."""
        t = k.shape[2]
        if self.length + t > self.capacity:
            raise ValueError(f"KVCache: {self.length} cached + {t} new positions exceed the "
                             f"capacity {self.capacity} (block_size); start a new cache.")
        self.k[:, :, self.length:self.length + t] = k
        self.v[:, :, self.length:self.length + t] = v
        self.length += t
        return self.k[:, :, :self.length], self.v[:, :, :self.length]


class MultiHeadAttention(Module):
    """Self-attention of ``n_head`` heads over width ``n_embd`` (causal for a decoder)."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, causal: bool = True,
                 rng=None, seed: int = 0):
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"MultiHeadAttention: n_embd={n_embd} is not divisible by "
                             f"n_head={n_head}; choose n_head dividing the width.")
        self.n_embd, self.n_head, self.causal = n_embd, n_head, causal
        self.c_attn = Linear(n_embd, 3 * n_embd, rng=rng)        # W [D, 3D], b [3D]
        self.c_proj = Linear(n_embd, n_embd, rng=rng)            # W [D, D], b [D]
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"MultiHeadAttention: dropout={dropout} must lie in [0, 1).")
        self.attn_pdrop = dropout                                # on P [B, H, T, T]
        self.attn_dropout = DropoutRng(seed=seed)                # its generator
        self.resid_dropout = Dropout(dropout, seed=derive_seed(seed, 1))

    def forward(self, x, mask=None):
        """x [B, T, D] -> [B, T, D]; ``mask`` bool [B, 1, Tq|1, T], True = may attend."""
        qkv = self.c_attn.forward(x)                                           # [B, T, 3D]
        p = self.attn_pdrop if self.training else 0.0
        rng = self.attn_dropout.rng_for(x) if p > 0.0 else None
        y, self._cache = attention_heads_forward(qkv, self.n_head, mask, self.causal, p, rng,
                                                 self.training)                # [B, T, D]
        return self.resid_dropout.forward(self.c_proj.forward(y))              # [B, T, D]

    def backward(self, dout):
        dy = self.c_proj.backward(self.resid_dropout.backward(dout))           # [B, T, D]
        return self.c_attn.backward(attention_heads_backward(dy, self._cache))  # [B, T, D]

    @property
    def attention_weights(self):
        """P [B, H, T, T] of the last forward pass (before dropout), for plots."""
        return self._cache.att

    def new_cache(self, batch: int, capacity: int, like) -> KVCache:
        xp = get_array_module(like)
        return KVCache(batch, self.n_head, capacity, self.n_embd // self.n_head, xp, like.dtype)

    def forward_cached(self, x, cache: KVCache):
        """Inference on new positions: x [B, t, D] -> [B, t, D], appending their keys and
        values to ``cache``; the queries see every cached position and themselves."""
        qkv = self.c_attn.forward(x)                                           # [B, t, 3D]
        q, k, v = split_qkv(qkv, self.n_head)                                  # [B, H, t, hd]
        keys, values = cache.append(k, v)                                      # [B, H, L, hd]
        y, _ = scaled_dot_product_attention_forward(q, keys, values, causal=self.causal,
                                                    training=False)            # [B, H, t, hd]
        return self.c_proj.forward(merge_heads(y))                             # [B, t, D]

    def __repr__(self):
        return (f"MultiHeadAttention(n_embd={self.n_embd}, n_head={self.n_head}, "
                f"causal={self.causal}, dropout={self.attn_pdrop})")
