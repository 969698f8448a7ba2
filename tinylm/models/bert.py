"""BERT: a bidirectional Transformer encoder pre-trained by masked language modelling
(Devlin et al. 2019), laid out as the paper and Hugging Face's ``BertForPreTraining``
(chapter 09).

Sizes: B batch rows, T positions, D = n_embd, V the vocabulary, M the masked positions of
a batch (the targets that are not -100).

    ids [B, T] int, segments [B, T] in {0, 1} (sentence A / B), mask [B, T] bool (True =
    a real token, False = [PAD]; the keys attention may use)
    x = LN_emb(wte[ids] + wpe[0..T-1] + wtt[segments])          [B, T, D], then dropout
    h = Block_L(... Block_1(x, mask))                            bidirectional blocks
        post-LN as the paper (x1 = LN(x + attn(x)), ...); ``norm_first`` makes them
        pre-LN, with a final ``ln_f`` (the pre-LN stream is not normalised otherwise)
    MLM head, at the M masked positions only:
        g = LN_mlm(GELU(h_m W_t + b_t))                          [M, D]
        logits = g wte^T + b_mlm                                 [M, V]  tied to wte
    NSP head (``next_sentence``), on the [CLS] position:
        c = tanh(h_0 W_pool + b_pool)                            [B, D]  the pooler
        nsp = c W_nsp + b_nsp                                    [B, 2]  IsNext / NotNext
    loss = CE(logits, mlm targets) + CE(nsp, nsp targets)

The head runs only where there is a target: with 15 % of the positions masked that is a
seventh of the [B, T, V] product a full head would compute, and the vocabulary product is
the largest single matmul of a small BERT. Without targets (``forward(ids)``) the logits
of every position are returned, [B, T, V] (fill-in-the-blank).

BERT is an encoder: every token sees the whole text, so it cannot generate left to right;
``start_decoding`` refuses (the seeds' use of BERT for translation and generation is one
of the errors chapter 09 corrects). For a classifier, ``features(ids, mask, pooling)``
gives one vector per text: pooling "first" is the pooler above on the [CLS] state (the
vector NSP trains), "mean" the masked mean of h (tinylm/functional/pooling.py).

Initialisation as BERT: every weight and embedding ~ N(0, 0.02^2), biases 0, layer norms
(1, 0), eps 1e-12. Parameter names and their Hugging Face counterparts (interop):

    wte, wpe, wtt        embeddings.{word,position,token_type}_embeddings
    ln_emb               embeddings.LayerNorm
    h.i.*                encoder.layer.i (tinylm/functional/post_ln_block.py lists the map)
    pooler               pooler.dense
    mlm_transform        cls.predictions.transform.dense
    ln_mlm               cls.predictions.transform.LayerNorm
    mlm_bias             cls.predictions.bias (the decoder's weight is wte)
    nsp_head             cls.seq_relationship
"""

from __future__ import annotations

from dataclasses import dataclass

from tinylm.backend import default_rng, derive_seed, get_array_module
from tinylm.functional.activations import gelu_backward, gelu_forward
from tinylm.functional.cross_entropy import cross_entropy_backward, cross_entropy_forward
from tinylm.functional.embedding import check_ids, embedding_backward, embedding_forward
from tinylm.functional.linear import linear_backward, linear_forward
from tinylm.functional.pooling import pool_backward, pool_forward
from tinylm.functional.positional import (learned_positional_backward,
                                          learned_positional_forward)
from tinylm.functional.post_ln_block import BERT_LAYERNORM_EPS
from tinylm.models.base import (IGNORE_INDEX, LanguageModel, any_trainable,
                                check_positive, check_probability)
from tinylm.nn import init
from tinylm.nn.activation import Tanh
from tinylm.nn.containers import ModuleList
from tinylm.nn.dropout import Dropout
from tinylm.nn.layernorm import LayerNorm
from tinylm.nn.linear import Linear
from tinylm.nn.parameter import Parameter
from tinylm.nn.transformer import Block

INIT_STD = 0.02
GELUS = ("none", "tanh")
BERT_POOLINGS = ("first", "mean")


@dataclass
class BERTConfig:
    vocab_size: int = 8192
    block_size: int = 128        # the longest input (rows of wpe)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 256
    type_vocab_size: int = 2     # segments (sentence A, sentence B)
    dropout: float = 0.1         # embeddings, attention weights and both residual branches
    norm_first: bool = False     # False: post-LN blocks (the paper); True: pre-LN + ln_f
    gelu: str = "none"           # "none": exact erf GELU (BERT); "tanh": GPT-2's form
    next_sentence: bool = False  # the NSP head (and its loss when nsp targets are given)
    layer_norm_eps: float = BERT_LAYERNORM_EPS
    seed: int = 0                # initial weights and the dropout generators

    def __post_init__(self):
        check_positive(self, "vocab_size", "block_size", "n_layer", "n_head", "n_embd",
                       "type_vocab_size")
        check_probability(self, "dropout")
        if self.n_embd % self.n_head:
            raise ValueError(f"BERTConfig.n_embd={self.n_embd} must be divisible by "
                             f"n_head={self.n_head} (each head gets n_embd / n_head channels).")
        if self.gelu not in GELUS:
            raise ValueError(f"BERTConfig.gelu={self.gelu!r} must be one of {list(GELUS)}.")
        if not self.layer_norm_eps > 0:
            raise ValueError(f"BERTConfig.layer_norm_eps={self.layer_norm_eps} must be > 0.")


class BERT(LanguageModel):
    """wte [V, D], wpe [block_size, D], wtt [type_vocab_size, D], ln_emb, h = L Blocks
    (ln_f with norm_first), pooler, mlm_transform, ln_mlm, mlm_bias [V], nsp_head."""

    config_class = BERTConfig

    def __init__(self, config: BERTConfig):
        super().__init__()
        self.config = c = config
        rng = default_rng(c.seed)
        D = c.n_embd
        self.wte = Parameter(init.normal((c.vocab_size, D), INIT_STD, rng))       # [V, D]
        self.wpe = Parameter(init.normal((c.block_size, D), INIT_STD, rng))       # [T, D]
        self.wtt = Parameter(init.normal((c.type_vocab_size, D), INIT_STD, rng))  # [2, D]
        self.ln_emb = LayerNorm(D, c.layer_norm_eps)
        self.drop = Dropout(c.dropout, seed=derive_seed(c.seed, 0))
        self.h = ModuleList([Block(D, c.n_head, c.dropout, rng=rng, causal=False,
                                   norm_first=c.norm_first, approximate=c.gelu,
                                   eps=c.layer_norm_eps, seed=derive_seed(c.seed, 10 * (i + 1)))
                             for i in range(c.n_layer)])
        if c.norm_first:
            self.ln_f = LayerNorm(D, c.layer_norm_eps)
        self.pooler = Linear(D, D, rng=rng)
        self.pooler_act = Tanh()
        self.mlm_transform = Linear(D, D, rng=rng)
        self.ln_mlm = LayerNorm(D, c.layer_norm_eps)
        self.mlm_bias = Parameter(init.zeros((c.vocab_size,)))                    # [V]
        if c.next_sentence:
            self.nsp_head = Linear(D, 2, rng=rng)
        for _, module in self.named_modules():
            if isinstance(module, Linear):
                module.reset_parameters(rng, weight_std=INIT_STD, zero_bias=True)

    @property
    def longest_window(self) -> int:
        return self.config.block_size                    # rows of wpe

    # -- the inputs ------------------------------------------------------------------------
    def _check_inputs(self, ids, segments, mask, owner):
        check_ids(ids, self.config.vocab_size, owner, "ids", "token id",
                  "Encode with the model's tokenizer.")
        if ids.ndim != 2 or ids.shape[1] == 0:
            raise ValueError(f"{owner}: ids must be [batch, time] token ids, got shape "
                             f"{tuple(ids.shape)}; add a batch axis with ids[None].")
        if ids.shape[1] > self.config.block_size:
            raise ValueError(f"{owner}: {ids.shape[1]} positions are more than block_size="
                             f"{self.config.block_size}; shorten the text (the model has no "
                             "position beyond it).")
        if segments is not None:
            check_ids(segments, self.config.type_vocab_size, owner, "segments", "segment id")
            if segments.shape != ids.shape:
                raise ValueError(f"{owner}: segments {tuple(segments.shape)} must have the "
                                 f"shape of ids {tuple(ids.shape)}.")
        if mask is None:
            return
        if getattr(mask, "dtype", None) != bool or tuple(mask.shape) != tuple(ids.shape):
            raise ValueError(f"{owner}: mask must be a bool array of the shape of ids "
                             f"{tuple(ids.shape)} (True = real token), got "
                             f"{getattr(mask, 'dtype', type(mask).__name__)} "
                             f"{tuple(getattr(mask, 'shape', ()))}.")
        if not bool(mask.any(axis=1).all()):
            raise ValueError(f"{owner}: a row of mask has no real token; every text needs at "
                             "least one ([CLS]).")

    # -- the encoder -----------------------------------------------------------------------
    def encode(self, ids, segments=None, mask=None):
        """ids [B, T], segments [B, T] or None (all 0), mask [B, T] bool or None (no
        padding) -> h [B, T, D], caches kept for ``encode_backward``."""
        self._check_inputs(ids, segments, mask, f"{type(self).__name__}.encode")
        xp = get_array_module(self.wte.data)
        segments = xp.zeros_like(ids) if segments is None else segments
        tok, self._tok_cache = embedding_forward(ids, self.wte.data)              # [B, T, D]
        seg, self._seg_cache = embedding_forward(segments, self.wtt.data)         # [B, T, D]
        x, self._pos_cache = learned_positional_forward(tok + seg, self.wpe.data)
        x = self.drop.forward(self.ln_emb.forward(x))                             # [B, T, D]
        keys = None if mask is None else mask[:, None, None, :]                  # [B,1,1,T]
        for block in self.h:
            x = block.forward(x, keys)                                            # [B, T, D]
        return self.ln_f.forward(x) if self.config.norm_first else x

    def encode_backward(self, dh) -> None:
        """dh [B, T, D] into every parameter of the encoder that needs a gradient; the
        backward stops below the last block with a trainable parameter (a frozen bottom
        costs nothing)."""
        if self.config.norm_first:
            dh = self.ln_f.backward(dh)
        for i in reversed(range(len(self.h))):
            if not any_trainable(self._below(i)):
                return
            dh = self.h[i].backward(dh)                                           # [B, T, D]
        if not any_trainable(self._below(0)):
            return
        dx = self.ln_emb.backward(self.drop.backward(dh))                         # [B, T, D]
        dx, dwpe = learned_positional_backward(dx, self._pos_cache)
        self.wpe.accumulate(dwpe)
        for table, cache in ((self.wtt, self._seg_cache), (self.wte, self._tok_cache)):
            if table.requires_grad:
                table.accumulate(embedding_backward(dx, cache))

    def _below(self, i: int) -> list:
        """Block i, every block under it and the embeddings: what a gradient entering block
        i can reach."""
        return [*self.h[:i + 1], self.ln_emb, self.wte, self.wpe, self.wtt]

    # -- pre-training: masked LM (and next-sentence prediction) ------------------------------
    def forward(self, ids, targets=None, segments=None, mask=None, nsp_targets=None):
        """ids [B, T] -> (logits, loss).

        targets [B, T] (the original ids at the masked positions, -100 elsewhere): logits
        [M, V] of the M masked positions and the mean MLM loss (plus the NSP loss with
        nsp_targets [B] in {0 IsNext, 1 NotNext}). targets None: logits [B, T, V] of every
        position and loss None."""
        owner = f"{type(self).__name__}.forward"
        h = self.encode(ids, segments, mask)                                      # [B, T, D]
        self._nsp_cache = None
        if targets is None:
            if nsp_targets is not None:
                raise ValueError(f"{owner}: nsp_targets need MLM targets too.")
            self._loss_cache = None
            return self._mlm_head(h.reshape(-1, h.shape[-1])).reshape(*ids.shape, -1), None
        check_ids(targets, self.config.vocab_size, owner, "targets", "token id",
                  ignore_index=IGNORE_INDEX)
        if targets.shape != ids.shape:
            raise ValueError(f"{owner}: targets {tuple(targets.shape)} must have the shape of "
                             f"ids {tuple(ids.shape)} (-100 where nothing is predicted).")
        xp = get_array_module(h)
        flat = targets.reshape(-1)                                                # [B T]
        self._masked = xp.nonzero(flat != IGNORE_INDEX)[0]                        # [M]
        if self._masked.size == 0:
            raise ValueError(f"{owner}: targets has no masked position (all -100); mask at "
                             "least one token per batch (tinylm/data/masking.py).")
        self._h_shape = h.shape
        logits = self._mlm_head(h.reshape(-1, h.shape[-1])[self._masked])         # [M, V]
        loss, self._loss_cache = cross_entropy_forward(logits, flat[self._masked])
        if nsp_targets is not None:
            loss = loss + self._nsp_loss(h, nsp_targets, owner)
        return logits, loss

    def _mlm_head(self, h):
        """h [N, D] -> logits [N, V] (caches kept)."""
        u = self.mlm_transform.forward(h)                                         # [N, D]
        g, self._gelu_cache = gelu_forward(u, self.config.gelu)
        g = self.ln_mlm.forward(g)                                                # [N, D]
        logits, self._decoder_cache = linear_forward(g, self.wte.data.T, self.mlm_bias.data)
        return logits                                                             # [N, V]

    def _nsp_loss(self, h, nsp_targets, owner):
        if not self.config.next_sentence:
            raise ValueError(f"{owner}: nsp_targets given, but the model has no NSP head; "
                             "build it with next_sentence=True.")
        check_ids(nsp_targets, 2, owner, "nsp_targets", "NSP label")
        if nsp_targets.shape != (h.shape[0],):
            raise ValueError(f"{owner}: nsp_targets must be [B] = [{h.shape[0]}], got "
                             f"{tuple(nsp_targets.shape)}.")
        logits = self.nsp_head.forward(self._pool_first(h))                       # [B, 2]
        self.nsp_logits = logits
        loss, self._nsp_cache = cross_entropy_forward(logits, nsp_targets)
        return loss

    def backward(self, dloss=1.0):
        """Back-propagate the last loss (MLM, and NSP if it was computed)."""
        dlogits = self._dlogits(dloss)                                            # [M, V]
        dg, dwte, dbias = linear_backward(dlogits, self._decoder_cache)           # dW [D, V]
        self.wte.accumulate(dwte.T)                                               # tied
        self.mlm_bias.accumulate(dbias)
        du = gelu_backward(self.ln_mlm.backward(dg), self._gelu_cache)            # [M, D]
        dsel = self.mlm_transform.backward(du)                                    # [M, D]
        xp = get_array_module(dsel)
        B, T, D = self._h_shape
        dh = xp.zeros((B * T, D), dtype=dsel.dtype)
        dh[self._masked] = dsel                                                   # unique rows
        dh = dh.reshape(B, T, D)
        if self._nsp_cache is not None:
            dnsp = cross_entropy_backward(dloss, self._nsp_cache)                 # [B, 2]
            self._nsp_cache = None
            dh = dh + self._pool_first_backward(self.nsp_head.backward(dnsp))
        self.encode_backward(dh)

    # -- one vector per text (classification) ------------------------------------------------
    def _pool_first(self, h):
        """h [B, T, D] -> the pooler's tanh(h_0 W_pool + b_pool) [B, D]."""
        return self.pooler_act.forward(self.pooler.forward(h[:, 0]))

    def _pool_first_backward(self, dc):
        """dc [B, D] -> dh [B, T, D] (nonzero at position 0 only)."""
        xp = get_array_module(dc)
        dh = xp.zeros(self._h_shape, dtype=dc.dtype)
        dh[:, 0] = self.pooler.backward(self.pooler_act.backward(dc))
        return dh

    @property
    def feature_size(self) -> int:
        return self.config.n_embd

    def features(self, ids, mask=None, pooling: str = "first", segments=None):
        """ids [B, T] (with [CLS] first), mask [B, T] bool or None -> one vector per text
        [B, D]: the pooler on [CLS] ("first") or the masked mean of h ("mean")."""
        if pooling not in BERT_POOLINGS:
            raise ValueError(f"BERT pools with one of {list(BERT_POOLINGS)}, not {pooling!r} "
                             "(a bidirectional encoder has no privileged last token).")
        h = self.encode(ids, segments, mask)                                      # [B, T, D]
        self._h_shape, self._pooling = h.shape, pooling
        if pooling == "first":
            return self._pool_first(h)
        p, self._pool_cache = pool_forward(h, mask, "mean")
        return p

    def features_backward(self, dp) -> None:
        """dp [B, D] into the encoder (and the pooler for "first")."""
        if self._pooling == "first":
            dh = self._pool_first_backward(dp)
        else:
            dh = pool_backward(dp, self._pool_cache)
        self.encode_backward(dh)

    def start_decoding(self, prompt):
        raise TypeError("BERT is a bidirectional encoder: every position sees the whole text, "
                        "so it cannot generate text left to right. Generate with a GPT; use "
                        "BERT to fill in [MASK] tokens (forward(ids)) or to classify.")

