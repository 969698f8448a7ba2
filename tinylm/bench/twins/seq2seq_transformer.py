"""PyTorch twin of tinylm's Transformer encoder-decoder (tinylm/models/seq2seq_transformer.py):
a ``torch.nn.Module`` of nn.Linear, nn.LayerNorm, nn.Embedding and
``F.scaled_dot_product_attention``, with tinylm's parameter names, built from a
``Seq2SeqTransformerConfig`` and (``seq2seq_transformer_twin``) given a tinylm model's
weights. It trains on its own (torch.optim.AdamW) for the benchmarks and decodes greedily.

Layout: tinylm's Linear weights are [in, out], torch's [out, in] (``to_torch_layout``
transposes every 2-D tensor but the embedding and position tables, and back again for
gradients). Dropout is modelled (``config.dropout``; torch's own masks, so parity tests use
0). ``forward(src, tgt_in, tgt_out=None, src_mask=None, label_smoothing=0.0)
-> (logits, loss or None)``.
"""

from __future__ import annotations

import math

import numpy

TABLES = ("src_embedding.weight", "tgt_embedding.weight", "src_wpe", "tgt_wpe")


def to_torch_layout(name: str, array):
    """A tinylm tensor in torch's layout (Linear weights transposed); its own inverse."""
    linear_weight = array.ndim == 2 and name not in TABLES
    return numpy.ascontiguousarray(array.T if linear_weight else array)


def sinusoidal_table(torch, T: int, D: int, dtype):
    """The paper's PE [T, D] (as tinylm.functional.positional.sinusoidal_encoding)."""
    pos = torch.arange(T, dtype=torch.float64)[:, None]
    freq = 10000.0 ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)
    pe = torch.zeros(T, D, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, :D // 2]
    return pe.to(dtype)


def seq2seq_transformer_twin_class(torch, config):
    """The twin's class for a ``Seq2SeqTransformerConfig``."""
    nn, F = torch.nn, torch.nn.functional
    c = config
    D, H, p = c.n_embd, c.n_head, c.dropout

    def heads(x):                                       # [B, t, D] -> [B, H, t, hd]
        B, t, _ = x.shape
        return x.view(B, t, H, D // H).transpose(1, 2)

    def merged(y):                                      # [B, H, t, hd] -> [B, t, D]
        B, _, t, _ = y.shape
        return y.transpose(1, 2).reshape(B, t, D)

    class SelfAttention(nn.Module):
        def __init__(self, causal):
            super().__init__()
            self.causal = causal
            self.c_attn, self.c_proj = nn.Linear(D, 3 * D), nn.Linear(D, D)

        def forward(self, x, keys=None):
            q, k, v = (heads(t) for t in self.c_attn(x).split(D, dim=2))
            drop = p if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=keys, dropout_p=drop,
                                               is_causal=self.causal)
            return F.dropout(self.c_proj(merged(y)), p, self.training)

    class CrossAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.q_attn, self.c_attn, self.c_proj = (nn.Linear(D, D), nn.Linear(D, 2 * D),
                                                     nn.Linear(D, D))

        def forward(self, x, memory, keys=None):
            k, v = (heads(t) for t in self.c_attn(memory).split(D, dim=2))
            drop = p if self.training else 0.0
            y = F.scaled_dot_product_attention(heads(self.q_attn(x)), k, v, attn_mask=keys,
                                               dropout_p=drop)
            return F.dropout(self.c_proj(merged(y)), p, self.training)

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_fc, self.c_proj = nn.Linear(D, 4 * D), nn.Linear(4 * D, D)

        def forward(self, x):
            h = F.gelu(self.c_fc(x), approximate="tanh")
            return F.dropout(self.c_proj(h), p, self.training)

    class EncoderBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.attn = nn.LayerNorm(D), SelfAttention(causal=False)
            self.ln_2, self.mlp = nn.LayerNorm(D), MLP()

        def forward(self, x, keys):
            x = x + self.attn(self.ln_1(x), keys)
            return x + self.mlp(self.ln_2(x))

    class DecoderBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.attn = nn.LayerNorm(D), SelfAttention(causal=True)
            self.ln_cross_attn, self.crossattention = nn.LayerNorm(D), CrossAttention()
            self.ln_2, self.mlp = nn.LayerNorm(D), MLP()

        def forward(self, x, memory, keys):
            x = x + self.attn(self.ln_1(x))
            x = x + self.crossattention(self.ln_cross_attn(x), memory, keys)
            return x + self.mlp(self.ln_2(x))

    class TwinSeq2SeqTransformer(nn.Module):
        def __init__(self):
            super().__init__()
            if not c.share_embeddings:
                self.src_embedding = nn.Embedding(c.src_vocab, D)
            self.tgt_embedding = nn.Embedding(c.tgt_vocab, D)
            if c.positions == "learned":
                self.src_wpe = nn.Parameter(torch.zeros(c.max_len, D))
                self.tgt_wpe = nn.Parameter(torch.zeros(c.max_len, D))
            self.encoder = nn.ModuleList([EncoderBlock() for _ in range(c.n_enc_layer)])
            self.encoder_ln = nn.LayerNorm(D)
            self.decoder = nn.ModuleList([DecoderBlock() for _ in range(c.n_dec_layer)])
            self.decoder_ln = nn.LayerNorm(D)

        def _embed(self, ids, side):
            table = (self.tgt_embedding if side == "tgt" or c.share_embeddings
                     else self.src_embedding)
            x = table(ids) * math.sqrt(D)                                  # [B, t, D]
            T = ids.shape[1]
            pos = (getattr(self, f"{side}_wpe")[:T] if c.positions == "learned"
                   else sinusoidal_table(torch, T, D, x.dtype))
            return F.dropout(x + pos, p, self.training)

        def encode(self, src, src_mask=None):
            """src [B, S] -> (memory [B, S, D], key mask [B, 1, 1, S] or None)."""
            keys = None if src_mask is None else src_mask[:, None, None, :]
            x = self._embed(src, "src")
            for block in self.encoder:
                x = block(x, keys)
            return self.encoder_ln(x), keys

        def decode(self, tgt_in, memory, keys):
            """tgt_in [B, T] -> logits [B, T, V] (tied head)."""
            x = self._embed(tgt_in, "tgt")
            for block in self.decoder:
                x = block(x, memory, keys)
            return self.decoder_ln(x) @ self.tgt_embedding.weight.T

        def forward(self, src, tgt_in, tgt_out=None, src_mask=None, label_smoothing=0.0):
            logits = self.decode(tgt_in, *self.encode(src, src_mask))          # [B, T, V]
            if tgt_out is None:
                return logits, None
            loss = F.cross_entropy(logits.reshape(-1, c.tgt_vocab), tgt_out.reshape(-1),
                                   ignore_index=-100, label_smoothing=label_smoothing)
            return logits, loss

        @torch.no_grad()
        def greedy(self, src, bos_id: int, eos_id: int, max_len: int, src_mask=None):
            """Greedy decoding by recomputing the decoder each step -> ids [B, <= max_len]
            (bos excluded; rows that ended continue with eos)."""
            memory, keys = self.encode(src, src_mask)
            ids = torch.full((src.shape[0], 1), bos_id, dtype=torch.long)     # [B, 1]
            done = torch.zeros(src.shape[0], dtype=torch.bool)
            for _ in range(max_len):
                best = self.decode(ids, memory, keys)[:, -1].argmax(dim=-1)   # [B]
                best = torch.where(done, eos_id, best)
                ids, done = torch.cat([ids, best[:, None]], dim=1), done | (best == eos_id)
                if bool(done.all()):
                    break
            return ids[:, 1:]

    return TwinSeq2SeqTransformer


def seq2seq_transformer_twin(torch, model):
    """The twin of a tinylm ``Seq2SeqTransformer``, in its dtype, with its weights."""
    dtype = torch.float64 if model.tgt_embedding.weight.dtype == numpy.float64 else torch.float32
    twin = seq2seq_transformer_twin_class(torch, model.config)().to(dtype)
    load_tinylm_state(torch, twin, model.state_dict())
    return twin


def load_tinylm_state(torch, twin, state: dict) -> None:
    """Copy a tinylm state dict into the twin (every name must match, both ways)."""
    params = dict(twin.named_parameters())
    if set(params) != set(state):
        raise KeyError(f"twin and tinylm parameters differ: only in the twin "
                       f"{sorted(set(params) - set(state))}, only in tinylm "
                       f"{sorted(set(state) - set(params))}.")
    with torch.no_grad():
        for name, array in state.items():
            params[name].copy_(torch.from_numpy(to_torch_layout(name, array)))


def twin_arrays(twin, attribute: str = "data") -> dict:
    """The twin's parameters (``"data"``) or gradients (``"grad"``) in tinylm's names and
    layout, as NumPy arrays."""
    return {name: to_torch_layout(name, getattr(p, attribute).detach().numpy())
            for name, p in twin.named_parameters()}
