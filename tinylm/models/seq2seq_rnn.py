"""A recurrent encoder-decoder (sequence-to-sequence) model with Luong attention.

Sizes: B batch rows, S source positions, T target positions, d = n_embd, H = n_hidden,
L = n_layer, V = tgt_vocab.

    encoder:   e_s = E_src[x_s],  k_1..k_S, state_S = RNN_enc(e_1..e_S)      k_s [H] (top layer)
    decoder:   u_t = E_tgt[y_{t-1}],  h_1..h_T = RNN_dec(u_1..u_T; state_S)   teacher forcing
    attention: alpha_t = softmax_s(score(h_t, k_s)),  c_t = sum_s alpha_{t,s} k_s
               score = h_t^T W_a k_s ("general"), h_t^T k_s ("dot")
    output:    h~_t = tanh([c_t; h_t] W_c + b_c)      W_c [2H, H]
               z_t = h~_t W_out + b_out                W_out [H, V]
    ("none":   z_t = h_t W_out + b_out)

This is the "global attention" model of Luong, Pham & Manning 2015 (without input feeding:
the attention comes after the decoder, so all T steps are one batched computation). The
loss is the mean cross-entropy of z_t against tgt_out over non-padding (-100) targets.

Padding: sources are right-padded, ``src_mask`` [B, S] (True = real token, a prefix of each
row). Row b has n_b = sum_s m_{b,s} real tokens; the encoder reads exactly those, so the
decoder starts from the state after position n_b (as torch's pack_padded_sequence gives),
never from one that has read padding. The rows are grouped by length and each group runs
through the encoder on its own, src[rows, :n]; keys beyond n_b are zeros, and the mask
keeps attention off them. Without a mask every row has length S (one group). Batches
bucketed by length (tinylm/data/pairs.py) make this one group, as fast as no padding.

Backward, in reverse: the output and combination layers (linear backward, tanh' = 1 - h~^2),
the attention (tinylm/functional/encoder_attention.py) into dh and dk, the decoder (its
initial-state gradient is the encoder's final-state gradient), the encoder with dk added to
its outputs' gradient, and the two embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinylm.backend import default_rng, get_array_module
from tinylm.functional.cross_entropy import cross_entropy_backward, cross_entropy_forward
from tinylm.functional.embedding import check_ids, embedding_backward, embedding_forward
from tinylm.functional.encoder_attention import (multiplicative_attention_backward,
                                                 multiplicative_attention_forward)
from tinylm.functional.linear import linear_backward, linear_forward
from tinylm.models.base import check_positive
from tinylm.nn import init
from tinylm.nn.embedding import Embedding
from tinylm.nn.module import Module
from tinylm.nn.parameter import Parameter
from tinylm.nn.recurrent import GRU, LSTM

CELLS = {"gru": GRU, "lstm": LSTM}
ATTENTIONS = ("none", "dot", "general")
IGNORE_INDEX = -100
_CONSUMED = object()     # the loss cache after backward()


@dataclass
class Seq2SeqRNNConfig:
    src_vocab: int
    tgt_vocab: int
    n_embd: int = 64           # d: both embeddings' width
    n_hidden: int = 128        # H: hidden units per layer (encoder and decoder)
    n_layer: int = 1           # L: stacked recurrent layers (encoder and decoder)
    cell: str = "gru"          # "gru" | "lstm"
    attention: str = "general"  # "none" | "dot" | "general"
    seed: int = 0              # initial weights

    def __post_init__(self):
        check_positive(self, "src_vocab", "tgt_vocab", "n_embd", "n_hidden", "n_layer")
        if self.cell not in CELLS:
            raise ValueError(f"Seq2SeqRNNConfig.cell={self.cell!r} must be one of "
                             f"{sorted(CELLS)}.")
        if self.attention not in ATTENTIONS:
            raise ValueError(f"Seq2SeqRNNConfig.attention={self.attention!r} must be one of "
                             f"{list(ATTENTIONS)}.")


class Seq2SeqRNN(Module):
    """Embedding -> GRU/LSTM encoder; embedding -> GRU/LSTM decoder -> Luong attention ->
    linear. Parameters (tinylm's input-major layout, y = x W + b):

        src_embedding.weight [Vs, d]   encoder.*  (tinylm/nn/recurrent.py)
        tgt_embedding.weight [V, d]    decoder.*
        w_att [H, H] ("general")       w_c [2H, H], b_c [H] (unless "none")
        w_out [H, V], b_out [V]
    """

    config_class = Seq2SeqRNNConfig

    def __init__(self, config: Seq2SeqRNNConfig):
        super().__init__()
        self.config = config
        rng = default_rng(config.seed)
        Vs, V, d, H, L = (config.src_vocab, config.tgt_vocab, config.n_embd, config.n_hidden,
                          config.n_layer)
        layer = CELLS[config.cell]
        self.src_embedding = Embedding(Vs, d, rng=rng)
        self.encoder = layer(d, H, L, batch_first=False, rng=rng)
        self.tgt_embedding = Embedding(V, d, rng=rng)
        self.decoder = layer(d, H, L, batch_first=False, rng=rng)
        if config.attention == "general":
            self.w_att = Parameter(init.uniform_fan_in((H, H), H, rng))        # [H, H]
        if config.attention != "none":
            self.w_c = Parameter(init.uniform_fan_in((2 * H, H), 2 * H, rng))  # [2H, H]
            self.b_c = Parameter(init.uniform_fan_in((H,), 2 * H, rng))        # [H]
        self.w_out = Parameter(init.uniform_fan_in((H, V), H, rng))            # [H, V]
        self.b_out = Parameter(init.uniform_fan_in((V,), H, rng))              # [V]
        self._loss_cache, self._caches = None, None

    @property
    def vocab_size(self) -> int:
        return self.config.tgt_vocab

    # -- the inputs ------------------------------------------------------------------------
    def _check_source(self, src, src_mask, owner):
        check_ids(src, self.config.src_vocab, owner, "src", "source token id")
        if src.ndim != 2 or src.shape[0] == 0 or src.shape[1] == 0:
            raise ValueError(f"{owner}: src must be [batch, source length] token ids with at "
                             f"least one row and one position, got shape {tuple(src.shape)}.")
        if src_mask is not None and tuple(src_mask.shape) != tuple(src.shape):
            raise ValueError(f"{owner}: src_mask {tuple(src_mask.shape)} must have the shape "
                             f"of src {tuple(src.shape)} (True = real token).")

    def _check_target(self, tgt_in, tgt_out, batch, owner):
        V = self.config.tgt_vocab
        check_ids(tgt_in, V, owner, "tgt_in", "target token id")
        if tgt_in.ndim != 2 or tgt_in.shape[0] != batch or tgt_in.shape[1] == 0:
            raise ValueError(f"{owner}: tgt_in must be [batch, target length] = [{batch}, T] "
                             f"with T >= 1, got shape {tuple(tgt_in.shape)}.")
        if tgt_out is None:
            return
        check_ids(tgt_out, V, owner, "tgt_out", "target token id", ignore_index=IGNORE_INDEX)
        if tgt_out.shape != tgt_in.shape:
            raise ValueError(f"{owner}: tgt_out {tuple(tgt_out.shape)} must have the shape of "
                             f"tgt_in {tuple(tgt_in.shape)}.")

    # -- computation --------------------------------------------------------------------------
    def _length_groups(self, src_mask, B, S, xp):
        """[(rows [B_n], n)]: the rows with n real tokens, for each length n present."""
        if src_mask is None:
            return [(xp.arange(B), S)]
        lengths = src_mask.sum(axis=1)                                 # [B]
        prefix = xp.arange(S)[None, :] < lengths[:, None]              # [B, S]
        if not bool((prefix == src_mask).all()) or int(lengths.min()) == 0:
            raise ValueError(f"{type(self).__name__}: src_mask must mark a non-empty prefix "
                             "of each row (right padding, True = real token), got "
                             f"lengths {lengths.tolist()} and a mask that is not a prefix "
                             "or has an empty row.")
        return [(xp.flatnonzero(lengths == n), int(n)) for n in xp.unique(lengths).tolist()]

    def _encode(self, src, src_mask):
        """src [B, S] -> (keys [B, S, H], final states at each row's length); one encoder
        forward per length group, whose caches are kept for backward."""
        xp = get_array_module(self.b_out.data)
        (B, S), H, E = src.shape, self.config.n_hidden, self.src_embedding.weight.data
        keys = xp.zeros((B, S, H), dtype=E.dtype)                      # [B, S, H]
        finals = [xp.zeros((self.config.n_layer, B, H), dtype=E.dtype)
                  for _ in range(2 if self.config.cell == "lstm" else 1)]
        self._groups = []
        for rows, n in self._length_groups(src_mask, B, S, xp):
            x, lookup = embedding_forward(src[rows, :n].T, E)          # [n, B_n, d]
            ks, state = self.encoder.forward(x)                        # [n, B_n, H]
            keys[rows, :n] = ks.transpose(1, 0, 2)
            for f, s in zip(finals, state if isinstance(state, tuple) else (state,)):
                f[:, rows] = s
            self._groups.append((rows, n, lookup, self.encoder._caches))
        return keys, (tuple(finals) if len(finals) == 2 else finals[0])

    def _encoder_backward(self, dkeys, dstate):
        """dkeys [B, S, H] (or None), dstate like the final state -> parameters' grads."""
        xp = get_array_module(dkeys if dkeys is not None else self.b_out.data)
        for rows, n, lookup, caches in self._groups:
            dks = (xp.zeros((n, len(rows), self.config.n_hidden), dtype=self.b_out.dtype)
                   if dkeys is None else dkeys[rows, :n].transpose(1, 0, 2))  # [n, B_n, H]
            ds = (tuple(d[:, rows] for d in dstate) if isinstance(dstate, tuple)
                  else dstate[:, rows])
            self.encoder._caches = caches             # this group's forward (one per length)
            dx, _ = self.encoder.backward(dks, ds)                     # [n, B_n, d]
            embedding_backward(dx, lookup, dW=self.src_embedding.weight.grad)

    def _head(self, h, keys, mask):
        """h [B, (T,) H] decoder states -> (logits [B, (T,) V], caches)."""
        xp = get_array_module(h)
        if self.config.attention == "none":
            logits, out_cache = linear_forward(h, self.w_out.data, self.b_out.data)
            return logits, (None, None, None, out_cache)
        W = self.w_att.data if self.config.attention == "general" else None
        context, att_cache = multiplicative_attention_forward(h, keys, keys, W, mask)
        joined = xp.concatenate([context, h], axis=-1)                 # [B, (T,) 2H]
        pre, c_cache = linear_forward(joined, self.w_c.data, self.b_c.data)
        combined = xp.tanh(pre)                                        # [B, (T,) H]
        logits, out_cache = linear_forward(combined, self.w_out.data, self.b_out.data)
        return logits, (att_cache, c_cache, combined, out_cache)

    def forward(self, src, tgt_in, tgt_out=None, src_mask=None, label_smoothing=0.0):
        """src [B, S], tgt_in [B, T] (teacher forcing), tgt_out [B, T] or None (-100 =
        padding), src_mask [B, S] bool or None -> (logits [B, T, V], mean loss or None).
        ``label_smoothing`` eps: the loss against (1 - eps) one-hot + eps / V uniform."""
        owner = f"{type(self).__name__}.forward"
        self._check_source(src, src_mask, owner)
        self._check_target(tgt_in, tgt_out, src.shape[0], owner)
        keys, state = self._encode(src, src_mask)                      # [B, S, H]
        u = self.tgt_embedding.forward(tgt_in.T)                       # [T, B, d]
        hs, _ = self.decoder.forward(u, state)                         # [T, B, H]
        h = hs.transpose(1, 0, 2)                                      # [B, T, H]
        logits, self._caches = self._head(h, keys, src_mask)           # [B, T, V]
        if tgt_out is None:
            self._loss_cache = None
            return logits, None
        loss, self._loss_cache = cross_entropy_forward(logits, tgt_out, IGNORE_INDEX,
                                                       label_smoothing)
        return logits, loss

    def backward(self, dloss=1.0):
        """Back-propagate the last loss into every parameter's grad (see the module
        docstring for the order)."""
        dlogits = cross_entropy_backward(dloss, self._take_loss_cache())   # [B, T, V]
        dh, dkeys = self._head_backward(dlogits)                           # [B, T, H], [B, S, H]
        du, dstate = self.decoder.backward(dh.transpose(1, 0, 2))          # [T, B, d]
        self.tgt_embedding.backward(du)
        self._encoder_backward(dkeys, dstate)                              # dkeys None: "none"

    def _take_loss_cache(self):
        name = f"{type(self).__name__}.backward()"
        if self._loss_cache is _CONSUMED:
            raise RuntimeError(f"{name}: the loss of the last forward was already "
                               "back-propagated, and a second backward would add its gradient "
                               "again; call forward(src, tgt_in, tgt_out) before each "
                               "backward().")
        if self._loss_cache is None:
            raise RuntimeError(f"{name}: there is no loss to differentiate; call "
                               "forward(src, tgt_in, tgt_out) with targets first.")
        cache, self._loss_cache = self._loss_cache, _CONSUMED
        return cache

    def _head_backward(self, dlogits):
        """dlogits [B, T, V] -> (dh [B, T, H], dkeys [B, S, H] or None)."""
        att_cache, c_cache, combined, out_cache = self._caches
        dz_in, dW_out, db_out = linear_backward(dlogits, out_cache)
        self.w_out.accumulate(dW_out)
        self.b_out.accumulate(db_out)
        if att_cache is None:
            return dz_in, None
        dpre = dz_in * (1.0 - combined * combined)                         # tanh'
        djoined, dW_c, db_c = linear_backward(dpre, c_cache)               # [B, T, 2H]
        self.w_c.accumulate(dW_c)
        self.b_c.accumulate(db_c)
        H = self.config.n_hidden
        dq, dk, dv, dW = multiplicative_attention_backward(djoined[..., :H], att_cache)
        if dW is not None:
            self.w_att.accumulate(dW)
        return djoined[..., H:] + dq, dk + dv

    # -- decoding --------------------------------------------------------------------------
    def encode(self, src, src_mask=None):
        """src [B, S] -> the decoding state (decoder state [L, B, H] or a pair of them,
        keys [B, S, H], src_mask [B, S] or None)."""
        self._check_source(src, src_mask, f"{type(self).__name__}.encode")
        keys, state = self._encode(src, src_mask)
        self._loss_cache = None
        return state, keys, src_mask

    def decode_step(self, prev_ids, state):
        """prev_ids [B] (bos first) -> (log-probabilities [B, V], next state): one decoder
        step, step(tokens, state) for tinylm/beam_search.py."""
        check_ids(prev_ids, self.config.tgt_vocab, f"{type(self).__name__}.decode_step",
                  "prev_ids", "target token id")
        dec_state, keys, mask = state
        xp = get_array_module(keys)
        u = self.tgt_embedding.weight.data[prev_ids][None]             # [1, B, d]
        hs, dec_state = self.decoder.forward(u, dec_state)             # [1, B, H]
        logits, _ = self._head(hs[0], keys, mask)                      # [B, V]
        self._loss_cache = None
        shifted = logits - logits.max(axis=-1, keepdims=True)
        log_probs = shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))
        return log_probs, (dec_state, keys, mask)

    @staticmethod
    def reorder(state, indices):
        """Select batch rows of a decoding state (beam search's reorder): the decoder state
        [L, B, H] along axis 1, keys [B, S, H] and the mask [B, S] along axis 0."""
        dec_state, keys, mask = state
        xp = get_array_module(keys)
        indices = xp.asarray(indices)
        take1 = lambda a: xp.take(a, indices, axis=1)                  # noqa: E731
        dec_state = (tuple(take1(a) for a in dec_state) if isinstance(dec_state, tuple)
                     else take1(dec_state))
        mask = None if mask is None else xp.take(mask, indices, axis=0)
        return dec_state, xp.take(keys, indices, axis=0), mask
