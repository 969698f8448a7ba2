"""The Transformer encoder-decoder (Vaswani et al. 2017) for translation, pre-LN.

Sizes: B batch rows, S source positions, T target positions, D = n_embd, Vs / V the source
and target vocabularies, N_e / N_d the encoder and decoder blocks.

    encoder:  e = sqrt(D) E_src[src] + P[0..S-1]            [B, S, D]  (then dropout)
              e = Block_enc(e, key-padding mask)  x N_e       bidirectional self-attention
              memory = LN_enc(e)                              [B, S, D]
    decoder:  u = sqrt(D) E_tgt[tgt_in] + P[0..T-1]          [B, T, D]  (then dropout)
              u = DecoderBlock(u, memory, src_mask)  x N_d    causal self-attn, cross-attn
              logits = LN_dec(u) E_tgt^T                      [B, T, V]  tied output head
    loss:     mean cross-entropy of logits against tgt_out over targets != -100

Blocks are pre-LN (the layer norm inside each residual branch, as GPT-2, with a final
layer norm after each stack), not the paper's post-LN: pre-LN trains without the warm-up the
post-LN model needs to not diverge. The MLP is GPT-2's (D -> 4D -> D, GELU with the tanh
approximation) rather than the paper's ReLU; the blocks are tinylm/nn/transformer.py's
``Block`` (``causal=False``) and tinylm/nn/decoder_block.py's ``DecoderBlock``.

Positions P: "sinusoidal" (the paper's fixed table, tinylm/functional/positional.py, the
same for both sides) or "learned" (a table per side, ``src_wpe`` and ``tgt_wpe``
[max_len, D]). ``max_len`` bounds both sentence lengths.

Initialisation: the token tables ~ N(0, 1/D) and scaled by sqrt(D) on input (section 3.4
of the paper), so a token vector has unit-size entries, like the sinusoidal table, while
the tied head E_tgt^T applied to a layer-normed state gives logits of unit scale. That
start has a flaw with the tied head: the residual stream still holds the input token's own
vector, so the untrained model predicts its input with logit about sqrt(D) (a first loss of
14 rather than ln V = 9 for fra-eng's 8,008 targets), and the first hundred steps go to
unlearning it. ``embedding_std`` = 0.02 (the fra-eng preset) starts the tables small:
input entries 0.02 sqrt(D), below the positions, logits near 0, the first loss ln V. Learned
positions, every Linear weight ~ N(0, 0.02^2) as GPT-2, biases 0, layer norms (1, 0), and
each residual output projection (attn.c_proj, crossattention.c_proj, mlp.c_proj)
~ N(0, (0.02 / sqrt(R))^2), R the number of residual branches of its stack (2 N_e in the
encoder, 3 N_d in the decoder). ``share_embeddings`` uses one table for both languages
(``tgt_embedding``; they must then have one vocabulary), which also ties it to the head.

Backward, in reverse: the head (into the target table and LN_dec), the decoder blocks
(each returns dx and dmemory; dmemory is summed over blocks), LN_enc, the encoder blocks,
and the two lookups (scatter-adds into the tables, times sqrt(D)).

Decoding (``encode`` / ``decode_step``): the encoder runs once; each decoder block keeps a
``KVCache`` of its self-attention and the cross-attention's memory keys and values, so a
step computes one new position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from tinylm.backend import default_rng, derive_seed, get_array_module
from tinylm.functional.embedding import embedding_backward, embedding_forward
from tinylm.functional.linear import linear_backward, linear_forward
from tinylm.functional.positional import (learned_positional_backward,
                                          learned_positional_forward,
                                          sinusoidal_positional_forward)
from tinylm.models.base import check_positive, check_probability
from tinylm.models.encoder_decoder import EncoderDecoder
from tinylm.nn import init
from tinylm.nn.containers import ModuleList
from tinylm.nn.decoder_block import DecoderBlock
from tinylm.nn.dropout import Dropout
from tinylm.nn.embedding import Embedding
from tinylm.nn.layernorm import LayerNorm
from tinylm.nn.linear import Linear
from tinylm.nn.parameter import Parameter
from tinylm.nn.transformer import Block

INIT_STD = 0.02
POSITIONS = ("sinusoidal", "learned")


@dataclass
class Seq2SeqTransformerConfig:
    src_vocab: int
    tgt_vocab: int
    n_embd: int = 256            # D: the model width
    n_head: int = 4
    n_enc_layer: int = 3
    n_dec_layer: int = 3
    max_len: int = 64            # the longest source and target (rows of learned positions)
    positions: str = "sinusoidal"    # "sinusoidal" | "learned"
    share_embeddings: bool = False   # one table for source and target (equal vocabularies)
    dropout: float = 0.1         # embeddings, attention weights and every residual branch
    embedding_std: float | None = None   # token tables ~ N(0, std^2); None: 1/sqrt(D)
    seed: int = 0                # initial weights and the dropout generators

    def __post_init__(self):
        check_positive(self, "src_vocab", "tgt_vocab", "n_embd", "n_head", "n_enc_layer",
                       "n_dec_layer", "max_len")
        check_probability(self, "dropout")
        if self.embedding_std is not None and not self.embedding_std > 0:
            raise ValueError(f"Seq2SeqTransformerConfig.embedding_std={self.embedding_std} must "
                             "be positive, or None for the paper's 1/sqrt(n_embd).")
        if self.n_embd % self.n_head:
            raise ValueError(f"Seq2SeqTransformerConfig.n_embd={self.n_embd} is not divisible "
                             f"by n_head={self.n_head}; choose n_head dividing n_embd.")
        if self.positions not in POSITIONS:
            raise ValueError(f"Seq2SeqTransformerConfig.positions={self.positions!r} must be "
                             f"one of {list(POSITIONS)}.")
        if self.share_embeddings and self.src_vocab != self.tgt_vocab:
            raise ValueError(f"Seq2SeqTransformerConfig.share_embeddings needs one vocabulary "
                             f"for both languages, but src_vocab={self.src_vocab} and "
                             f"tgt_vocab={self.tgt_vocab}; build a joint vocabulary or set "
                             "share_embeddings=False.")


class DecodingState(NamedTuple):
    """What ``decode_step`` carries: per decoder block, its self-attention's KV cache and
    the cross-attention's memory (k, v) [B, H, S, hd]; the source mask [B, S] or None."""
    caches: list
    memory_kv: list
    src_mask: object


class Seq2SeqTransformer(EncoderDecoder):
    """Parameters (tinylm's input-major layout, y = x W + b):

        src_embedding.weight [Vs, D] (absent with share_embeddings)
        tgt_embedding.weight [V, D]  (also the output head)
        src_wpe, tgt_wpe [max_len, D] (positions="learned")
        encoder.i.*  Block (ln_1, attn, ln_2, mlp)          encoder_ln.weight/bias [D]
        decoder.i.*  DecoderBlock (ln_1, attn, ln_cross_attn, crossattention, ln_2, mlp)
        decoder_ln.weight/bias [D]
    """

    config_class = Seq2SeqTransformerConfig

    def __init__(self, config: Seq2SeqTransformerConfig):
        super().__init__()
        self.config = config
        c, rng = config, default_rng(config.seed)
        D = c.n_embd
        std = 1.0 / math.sqrt(D) if c.embedding_std is None else c.embedding_std
        if not c.share_embeddings:
            self.src_embedding = Embedding(c.src_vocab, D, std=std, rng=rng)
        self.tgt_embedding = Embedding(c.tgt_vocab, D, std=std, rng=rng)
        if c.positions == "learned":
            self.src_wpe = Parameter(init.normal((c.max_len, D), INIT_STD, rng))
            self.tgt_wpe = Parameter(init.normal((c.max_len, D), INIT_STD, rng))
        self.src_drop = Dropout(c.dropout, seed=derive_seed(c.seed, 0))
        self.tgt_drop = Dropout(c.dropout, seed=derive_seed(c.seed, 1))
        self.encoder = ModuleList([Block(D, c.n_head, c.dropout, rng=rng, causal=False,
                                         seed=derive_seed(c.seed, 10 * (i + 1)))
                                   for i in range(c.n_enc_layer)])
        self.encoder_ln = LayerNorm(D)
        self.decoder = ModuleList([DecoderBlock(D, c.n_head, c.dropout, rng=rng,
                                                seed=derive_seed(c.seed, 10 * (c.n_enc_layer
                                                                               + i + 1)))
                                   for i in range(c.n_dec_layer)])
        self.decoder_ln = LayerNorm(D)
        _init_linears(self.encoder, 2 * c.n_enc_layer, rng)
        _init_linears(self.decoder, 3 * c.n_dec_layer, rng)

    @property
    def src_table(self) -> Parameter:
        """The source token table (the target's with ``share_embeddings``)."""
        return (self.tgt_embedding if self.config.share_embeddings
                else self.src_embedding).weight

    # -- the inputs ------------------------------------------------------------------------
    def _check_lengths(self, src, tgt_in, owner):
        n = self.config.max_len
        for name, ids in (("src", src), ("tgt_in", tgt_in)):
            if ids is not None and ids.shape[1] > n:
                raise ValueError(f"{owner}: {name} has {ids.shape[1]} positions, more than "
                                 f"max_len={n}; split or drop longer sentences, or build the "
                                 "model with a larger max_len.")

    def _check_mask(self, src_mask, owner):
        if src_mask is not None and not bool(src_mask.any(axis=1).all()):
            raise ValueError(f"{owner}: every row of src_mask needs at least one real token "
                             "(True); a row without one is an empty source sentence.")

    def _check_inputs(self, src, src_mask, owner, tgt_in=None, tgt_out=None):
        """The source (and, given tgt_in, the targets): ids, shapes, mask, lengths."""
        self._check_source(src, src_mask, owner)
        if tgt_in is not None:
            self._check_target(tgt_in, tgt_out, src.shape[0], owner)
        self._check_mask(src_mask, owner)
        self._check_lengths(src, tgt_in, owner)

    # -- embeddings ------------------------------------------------------------------------
    def _embed(self, ids, table: Parameter, wpe, start: int = 0):
        """ids [B, t] -> (sqrt(D) table[ids] + P[start..start+t-1] [B, t, D], caches of the
        lookup and of the learned positions (None for sinusoidal ones))."""
        tok, lookup = embedding_forward(ids, table.data)                       # [B, t, D]
        tok = tok * tok.dtype.type(math.sqrt(self.config.n_embd))
        if wpe is None:
            return sinusoidal_positional_forward(tok, start)[0], (lookup, None)
        x, positions = learned_positional_forward(tok, wpe.data, start)
        return x, (lookup, positions)

    def _embed_backward(self, dx, caches, table: Parameter, wpe):
        """dx [B, t, D] into the table (scatter-add, times sqrt(D)) and the learned positions."""
        lookup, positions = caches
        if wpe is not None:
            wpe.accumulate(learned_positional_backward(dx, positions)[1])
        embedding_backward(dx * dx.dtype.type(math.sqrt(self.config.n_embd)), lookup,
                           dW=table.grad)

    def _positions(self, side: str):
        """The learned position table of ``side`` ("src" or "tgt"), or None (sinusoidal)."""
        return getattr(self, f"{side}_wpe") if self.config.positions == "learned" else None

    # -- computation -------------------------------------------------------------------------
    def _encode(self, src, src_mask):
        """src [B, S] -> memory [B, S, D] (caches kept for backward)."""
        e, self._src_embedding_caches = self._embed(src, self.src_table,
                                                    self._positions("src"))    # [B, S, D]
        e = self.src_drop.forward(e)                                           # [B, S, D]
        keys = None if src_mask is None else src_mask[:, None, None, :]       # [B, 1, 1, S]
        for block in self.encoder:
            e = block.forward(e, keys)                                         # [B, S, D]
        return self.encoder_ln.forward(e)                                      # [B, S, D]

    def _encoder_backward(self, dmemory):
        de = self.encoder_ln.backward(dmemory)                                 # [B, S, D]
        for block in reversed(list(self.encoder)):
            de = block.backward(de)
        self._embed_backward(self.src_drop.backward(de), self._src_embedding_caches,
                             self.src_table, self._positions("src"))

    def forward(self, src, tgt_in, tgt_out=None, src_mask=None, label_smoothing: float = 0.0):
        """src [B, S], tgt_in [B, T] (teacher forcing), tgt_out [B, T] or None (-100 =
        padding), src_mask [B, S] bool or None -> (logits [B, T, V], mean loss or None);
        ``label_smoothing`` as PyTorch's cross_entropy."""
        owner = f"{type(self).__name__}.forward"
        self._check_inputs(src, src_mask, owner, tgt_in, tgt_out)
        memory = self._encode(src, src_mask)                                   # [B, S, D]
        u, self._tgt_embedding_caches = self._embed(tgt_in, self.tgt_embedding.weight,
                                                    self._positions("tgt"))    # [B, T, D]
        u = self.tgt_drop.forward(u)                                           # [B, T, D]
        for block in self.decoder:
            u = block.forward(u, memory, src_mask)                             # [B, T, D]
        h = self.decoder_ln.forward(u)                                         # [B, T, D]
        logits, self._head_cache = linear_forward(h, self.tgt_embedding.weight.data.T)
        return logits, self._loss(logits, tgt_out, label_smoothing)           # [B, T, V]

    def backward(self, dloss=1.0):
        """Back-propagate the last loss into every parameter's grad (module docstring)."""
        dlogits = self._dlogits(dloss)                                         # [B, T, V]
        dh, dtable, _ = linear_backward(dlogits, self._head_cache)             # dW [D, V]
        self.tgt_embedding.weight.accumulate(dtable.T)                         # tied head
        du = self.decoder_ln.backward(dh)                                      # [B, T, D]
        dmemory = 0
        for block in reversed(list(self.decoder)):
            du, dm = block.backward(du)
            dmemory = dmemory + dm                                             # [B, S, D]
        self._embed_backward(self.tgt_drop.backward(du), self._tgt_embedding_caches,
                             self.tgt_embedding.weight, self._positions("tgt"))
        self._encoder_backward(dmemory)

    def attention_maps(self) -> list:
        """The cross-attention weights [B, H, T, S] of every decoder block from the last
        forward pass: row t of head h is where target position t looked in the source."""
        return [block.crossattention.attention_weights for block in self.decoder]

    # -- decoding ----------------------------------------------------------------------------
    def encode(self, src, src_mask=None) -> DecodingState:
        """src [B, S] -> the decoding state: empty KV caches (capacity max_len) and each
        block's cross-attention keys and values of the source."""
        self._check_inputs(src, src_mask, f"{type(self).__name__}.encode")
        memory = self._encode(src, src_mask)                                   # [B, S, D]
        self._loss_cache = None
        B = src.shape[0]
        caches = [block.attn.new_cache(B, self.config.max_len, memory) for block in self.decoder]
        memory_kv = [block.crossattention.memory_keys_values(memory) for block in self.decoder]
        return DecodingState(caches, memory_kv, src_mask)

    def decode_step(self, prev_ids, state: DecodingState):
        """prev_ids [B] (bos first) -> (log-probabilities [B, V] of the next token, state):
        one new position through every decoder block, step(tokens, state) for
        tinylm/beam_search.py. The state's KV caches grow in place."""
        self._check_prev_ids(prev_ids)
        t = state.caches[0].length
        if t >= self.config.max_len:
            raise ValueError(f"{type(self).__name__}.decode_step: the target already has "
                             f"{t} tokens, max_len={self.config.max_len}; decode with "
                             f"max_len <= {self.config.max_len}.")
        u, _ = self._embed(prev_ids[:, None], self.tgt_embedding.weight,
                           self._positions("tgt"), start=t)                    # [B, 1, D]
        for block, cache, kv in zip(self.decoder, state.caches, state.memory_kv):
            u = block.forward_cached(u, cache, kv, state.src_mask)             # [B, 1, D]
        h = self.decoder_ln.forward(u[:, 0])                                   # [B, D]
        logits, _ = linear_forward(h, self.tgt_embedding.weight.data.T)        # [B, V]
        self._loss_cache = None
        return self._log_probs(logits), state

    @staticmethod
    def reorder(state: DecodingState, indices) -> DecodingState:
        """Select batch rows ``indices`` [N'] of a decoding state (beam search's reorder)."""
        xp = get_array_module(state.memory_kv[0][0])
        rows = xp.asarray(indices)
        memory_kv = [(xp.take(k, rows, axis=0), xp.take(v, rows, axis=0))
                     for k, v in state.memory_kv]
        mask = None if state.src_mask is None else xp.take(state.src_mask, rows, axis=0)
        return DecodingState([c.select_rows(rows) for c in state.caches], memory_kv, mask)


def _init_linears(blocks, residual_branches: int, rng) -> None:
    """Every Linear of ``blocks``: W ~ N(0, 0.02^2), or N(0, (0.02 / sqrt(R))^2) for the
    residual output projections c_proj (R = ``residual_branches``); b = 0."""
    proj_std = INIT_STD / math.sqrt(residual_branches)
    for name, module in blocks.named_modules():
        if isinstance(module, Linear):
            std = proj_std if name.endswith("c_proj") else INIT_STD
            module.reset_parameters(rng, weight_std=std, zero_bias=True)
