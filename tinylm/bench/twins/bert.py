"""BERT in PyTorch with tinylm's BERT parameter names (``wte``, ``h.0.attn.c_attn.weight``,
``mlm_transform.weight``, ...) and, given a tinylm ``BERT``, its exact weights.

Written from the paper's equations with PyTorch's own layers (``nn.LayerNorm``,
``nn.Linear``, ``F.gelu``, ``F.softmax``), independently of tinylm's code: the
specification the parity tests (tests/test_bert.py) and ``tinylm bench bert`` hold tinylm
to. As tinylm does, the MLM head runs on the masked positions only. Dropout is not modelled
(parity and timings are of the arithmetic).

``forward(ids, targets, segments, mask, nsp_targets) -> (logits [M, V], loss)``.
"""

from __future__ import annotations

import math

from tinylm.bench.twins.gpt import to_torch_layout as _gpt_layout
from tinylm.bench.twins.gpt import with_weights_of


def to_torch_layout(name: str, array):
    """tinylm Linear weights are [in, out]; torch's are [out, in] (and back again)."""
    table = name in ("wte", "wpe", "wtt")
    return _gpt_layout("wte" if table else name, array)


def bert_twin_class(torch, config, fused_attention: bool = False):
    """The twin's class for a ``BERTConfig``; ``fused_attention`` uses
    ``F.scaled_dot_product_attention`` (the benchmarks), otherwise the softmax is written
    out (the parity tests)."""
    nn, F = torch.nn, torch.nn.functional
    c = config
    D, eps, approximate = c.n_embd, c.layer_norm_eps, c.gelu

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = nn.Linear(D, 3 * D)
            self.c_proj = nn.Linear(D, D)

        def forward(self, x, keys):                    # keys [B, 1, 1, T] bool or None
            B, T, _ = x.shape
            q, k, v = self.c_attn(x).split(D, dim=2)
            q, k, v = (t.view(B, T, c.n_head, D // c.n_head).transpose(1, 2) for t in (q, k, v))
            if fused_attention:
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=keys)
            else:
                att = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
                if keys is not None:
                    att = att.masked_fill(~keys, float("-inf"))
                y = F.softmax(att, dim=-1) @ v
            return self.c_proj(y.transpose(1, 2).reshape(B, T, D))

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_fc = nn.Linear(D, 4 * D)
            self.c_proj = nn.Linear(4 * D, D)

        def forward(self, x):
            return self.c_proj(F.gelu(self.c_fc(x), approximate=approximate))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.attn = nn.LayerNorm(D, eps=eps), Attention()
            self.ln_2, self.mlp = nn.LayerNorm(D, eps=eps), MLP()

        def forward(self, x, keys):
            if c.norm_first:
                x = x + self.attn(self.ln_1(x), keys)
                return x + self.mlp(self.ln_2(x))
            x = self.ln_1(x + self.attn(x, keys))
            return self.ln_2(x + self.mlp(x))

    class TwinBERT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Parameter(torch.zeros(c.vocab_size, D))
            self.wpe = nn.Parameter(torch.zeros(c.block_size, D))
            self.wtt = nn.Parameter(torch.zeros(c.type_vocab_size, D))
            self.ln_emb = nn.LayerNorm(D, eps=eps)
            self.h = nn.ModuleList([Block() for _ in range(c.n_layer)])
            if c.norm_first:
                self.ln_f = nn.LayerNorm(D, eps=eps)
            self.pooler = nn.Linear(D, D)
            self.mlm_transform = nn.Linear(D, D)
            self.ln_mlm = nn.LayerNorm(D, eps=eps)
            self.mlm_bias = nn.Parameter(torch.zeros(c.vocab_size))
            if c.next_sentence:
                self.nsp_head = nn.Linear(D, 2)

        def forward(self, ids, targets, segments=None, mask=None, nsp_targets=None):
            T = ids.shape[1]
            segments = torch.zeros_like(ids) if segments is None else segments
            x = self.ln_emb(self.wte[ids] + self.wpe[:T] + self.wtt[segments])
            keys = None if mask is None else mask[:, None, None, :]
            for block in self.h:
                x = block(x, keys)
            if c.norm_first:
                x = self.ln_f(x)
            flat = targets.reshape(-1)
            chosen = flat != -100
            g = self.ln_mlm(F.gelu(self.mlm_transform(x.reshape(-1, D)[chosen]),
                                   approximate=approximate))
            logits = g @ self.wte.T + self.mlm_bias                 # tied decoder
            loss = F.cross_entropy(logits, flat[chosen])
            if nsp_targets is not None:
                pooled = torch.tanh(self.pooler(x[:, 0]))
                loss = loss + F.cross_entropy(self.nsp_head(pooled), nsp_targets)
            return logits, loss

    return TwinBERT


def bert_twin(torch, model, fused_attention: bool = False):
    """The twin of the tinylm ``BERT`` ``model``, in its dtype, with its weights."""
    return with_weights_of(torch, bert_twin_class(torch, model.config, fused_attention)(), model,
                           to_torch_layout)
