"""``DecoderBlock``: the pre-LN decoder block of the Transformer encoder-decoder, as modules.

    x1  = x  + attn(ln_1(x))                              causal self-attention
    x2  = x1 + crossattention(ln_cross_attn(x1), memory)  attention over the source
    out = x2 + mlp(ln_2(x2))                              position-wise MLP

The same block as one functional pair, with its derivation, is
tinylm/functional/transformer_decoder_block.py; tests check that the two agree. Decoding
keeps the self-attention's ``KVCache`` and the cross-attention's memory keys and values.
"""

from __future__ import annotations

from tinylm.backend import derive_seed
from tinylm.nn.attention import KVCache, MultiHeadAttention
from tinylm.nn.cross_attention import CrossAttention
from tinylm.nn.layernorm import LayerNorm
from tinylm.nn.module import Module
from tinylm.nn.transformer import MLP


class DecoderBlock(Module):
    """ln_1, attn, ln_cross_attn, crossattention, ln_2, mlp (GPT-2's names)."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, rng=None,
                 seed: int = 0):
        super().__init__()
        self.ln_1 = LayerNorm(n_embd)
        self.attn = MultiHeadAttention(n_embd, n_head, dropout, causal=True, rng=rng,
                                       seed=seed)
        self.ln_cross_attn = LayerNorm(n_embd)
        self.crossattention = CrossAttention(n_embd, n_head, dropout, rng=rng,
                                             seed=derive_seed(seed, 2))
        self.ln_2 = LayerNorm(n_embd)
        self.mlp = MLP(n_embd, dropout, rng=rng, seed=derive_seed(seed, 4))

    def forward(self, x, memory, src_mask=None):
        """x [B, T, D], memory [B, S, D], src_mask [B, S] bool or None -> [B, T, D]."""
        x = x + self.attn.forward(self.ln_1.forward(x))                        # [B, T, D]
        x = x + self.crossattention.forward(self.ln_cross_attn.forward(x), memory, src_mask)
        return x + self.mlp.forward(self.ln_2.forward(x))                      # [B, T, D]

    def backward(self, dout):
        """dout [B, T, D] -> (dx [B, T, D], dmemory [B, S, D])."""
        dx2 = dout + self.ln_2.backward(self.mlp.backward(dout))               # [B, T, D]
        dh, dmemory = self.crossattention.backward(dx2)
        dx1 = dx2 + self.ln_cross_attn.backward(dh)                            # [B, T, D]
        return dx1 + self.ln_1.backward(self.attn.backward(dx1)), dmemory

    def forward_cached(self, x, cache: KVCache, memory_kv, src_mask=None):
        """Inference on new positions x [B, t, D]: the self-attention appends to ``cache``,
        the cross-attention reads ``memory_kv`` (its ``memory_keys_values``)."""
        x = x + self.attn.forward_cached(self.ln_1.forward(x), cache)
        x = x + self.crossattention.forward_cached(self.ln_cross_attn.forward(x), memory_kv,
                                                   src_mask)
        return x + self.mlp.forward(self.ln_2.forward(x))
