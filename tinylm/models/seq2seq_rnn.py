"""A recurrent encoder-decoder (sequence-to-sequence) model with Luong attention.

Sizes: B batch rows, S source positions, T target positions, d = n_embd, H = n_hidden,
L = n_layer, V = tgt_vocab, K = the width of an encoder state (H, or 2H bidirectional).

    encoder:   e_s = E_src[x_s],  k_1..k_S, state_S = RNN_enc(e_1..e_S)      k_s [H] (top layer)
    decoder:   u_t = E_tgt[y_{t-1}],  h_1..h_T = RNN_dec(u_1..u_T; state_S)   teacher forcing
    attention: alpha_t = softmax_s(score(h_t, k_s)),  c_t = sum_s alpha_{t,s} k_s
               score = h_t^T W_a k_s ("general", W_a [H, K]), h_t^T k_s ("dot", K = H)
    output:    h~_t = tanh([c_t; h_t] W_c + b_c)      W_c [K + H, H]
               z_t = h~_t W_out + b_out                W_out [H, V]
    ("none":   z_t = h_t W_out + b_out)

Bidirectional encoder (``bidirectional=True``, Bahdanau et al. 2014): a second stack,
``reverse_encoder``, reads each source from its last real token to its first. Position s
then has k_s = [k->_s; k<-_s] [2H]: what precedes it and what follows it. The decoder
starts from the sum of the two stacks' final states (each layer's, and for an LSTM both h
and c), so no parameter is added there and the gradient of the initial state reaches both
stacks unchanged. "dot" needs K = H and is refused with a bidirectional encoder.

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
from tinylm.functional.embedding import embedding_backward, embedding_forward
from tinylm.functional.encoder_attention import (multiplicative_attention_backward,
                                                 multiplicative_attention_forward)
from tinylm.functional.linear import linear_backward, linear_forward
from tinylm.models.base import check_positive
from tinylm.models.encoder_decoder import EncoderDecoder
from tinylm.nn import init
from tinylm.nn.embedding import Embedding
from tinylm.nn.parameter import Parameter
from tinylm.nn.recurrent import GRU, LSTM

CELLS = {"gru": GRU, "lstm": LSTM}
ATTENTIONS = ("none", "dot", "general")


@dataclass
class Seq2SeqRNNConfig:
    src_vocab: int
    tgt_vocab: int
    n_embd: int = 64           # d: both embeddings' width
    n_hidden: int = 128        # H: hidden units per layer (encoder and decoder)
    n_layer: int = 1           # L: stacked recurrent layers (encoder and decoder)
    cell: str = "gru"          # "gru" | "lstm"
    attention: str = "general"  # "none" | "dot" | "general"
    bidirectional: bool = False  # a second encoder stack reads each source right to left
    seed: int = 0              # initial weights

    def __post_init__(self):
        check_positive(self, "src_vocab", "tgt_vocab", "n_embd", "n_hidden", "n_layer")
        if self.cell not in CELLS:
            raise ValueError(f"Seq2SeqRNNConfig.cell={self.cell!r} must be one of "
                             f"{sorted(CELLS)}.")
        if self.attention not in ATTENTIONS:
            raise ValueError(f"Seq2SeqRNNConfig.attention={self.attention!r} must be one of "
                             f"{list(ATTENTIONS)}.")
        if self.bidirectional and self.attention == "dot":
            raise ValueError("Seq2SeqRNNConfig: attention='dot' compares a decoder state [H] "
                             "with an encoder state of the same width, but a bidirectional "
                             "encoder's states are [2H]; use attention='general'.")

    @property
    def key_width(self) -> int:
        """K: the width of an encoder state, H or 2H (both directions concatenated)."""
        return (2 if self.bidirectional else 1) * self.n_hidden


def _reversed(steps, xp):
    """steps [n, ...] in reverse time order, as a contiguous array (for the kernels)."""
    return xp.ascontiguousarray(steps[::-1])


class Seq2SeqRNN(EncoderDecoder):
    """Embedding -> GRU/LSTM encoder; embedding -> GRU/LSTM decoder -> Luong attention ->
    linear. Parameters (tinylm's input-major layout, y = x W + b):

        src_embedding.weight [Vs, d]   encoder.*  (tinylm/nn/recurrent.py)
        tgt_embedding.weight [V, d]    decoder.*  reverse_encoder.* (bidirectional)
        w_att [H, K] ("general")       w_c [K + H, H], b_c [H] (unless "none")
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
        K = config.key_width
        if config.bidirectional:
            self.reverse_encoder = layer(d, H, L, batch_first=False, rng=rng)
        if config.attention == "general":
            self.w_att = Parameter(init.uniform_fan_in((H, K), H, rng))        # [H, K]
        if config.attention != "none":
            self.w_c = Parameter(init.uniform_fan_in((K + H, H), K + H, rng))  # [K + H, H]
            self.b_c = Parameter(init.uniform_fan_in((H,), K + H, rng))        # [H]
        self.w_out = Parameter(init.uniform_fan_in((H, V), H, rng))            # [H, V]
        self.b_out = Parameter(init.uniform_fan_in((V,), H, rng))              # [V]
        self._loss_cache, self._caches = None, None

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

    def _stacks(self) -> list:
        """The encoder stacks: [encoder] or [encoder, reverse_encoder]."""
        if self.config.bidirectional:
            return [self.encoder, self.reverse_encoder]
        return [self.encoder]

    def _encode(self, src, src_mask):
        """src [B, S] -> (keys [B, S, K], final states at each row's length); one forward of
        each stack per length group, whose caches are kept for backward. The reverse stack
        reads the group's positions n-1 .. 0; its outputs are put back in source order."""
        xp = get_array_module(self.b_out.data)
        (B, S), H, E = src.shape, self.config.n_hidden, self.src_embedding.weight.data
        keys = xp.zeros((B, S, self.config.key_width), dtype=E.dtype)  # [B, S, K]
        finals = [xp.zeros((self.config.n_layer, B, H), dtype=E.dtype)
                  for _ in range(2 if self.config.cell == "lstm" else 1)]
        self._groups = []
        for rows, n in self._length_groups(src_mask, B, S, xp):
            x, lookup = embedding_forward(src[rows, :n].T, E)          # [n, B_n, d]
            caches = []
            for i, stack in enumerate(self._stacks()):
                ks, state = stack.forward(x if i == 0 else _reversed(x, xp))  # [n, B_n, H]
                ks = ks if i == 0 else ks[::-1]                        # back in source order
                keys[rows, :n, i * H:(i + 1) * H] = ks.transpose(1, 0, 2)
                for f, s in zip(finals, state if isinstance(state, tuple) else (state,)):
                    f[:, rows] += s                                    # the sum of both stacks
                caches.append(stack._caches)
            self._groups.append((rows, n, lookup, caches))
        return keys, (tuple(finals) if len(finals) == 2 else finals[0])

    def _encoder_backward(self, dkeys, dstate):
        """dkeys [B, S, K] (or None), dstate like the final state -> parameters' grads.
        Each stack gets its half of dkeys (the reverse one in its own reading order) and
        the whole dstate (the initial state was their sum)."""
        xp = get_array_module(dkeys if dkeys is not None else self.b_out.data)
        H = self.config.n_hidden
        for rows, n, lookup, caches in self._groups:
            ds = (tuple(d[:, rows] for d in dstate) if isinstance(dstate, tuple)
                  else dstate[:, rows])
            dx = 0.0
            for i, (stack, cache) in enumerate(zip(self._stacks(), caches)):
                dks = (xp.zeros((n, len(rows), H), dtype=self.b_out.dtype) if dkeys is None
                       else dkeys[rows, :n, i * H:(i + 1) * H].transpose(1, 0, 2))  # [n, B_n, H]
                stack._caches = cache                 # this group's forward (one per length)
                dxi, _ = stack.backward(dks if i == 0 else _reversed(dks, xp), ds)  # [n, B_n, d]
                dx = dx + (dxi if i == 0 else dxi[::-1])
            embedding_backward(dx, lookup, dW=self.src_embedding.weight.grad)

    def _head(self, h, keys, mask):
        """h [B, (T,) H] decoder states -> (logits [B, (T,) V], caches)."""
        xp = get_array_module(h)
        if self.config.attention == "none":
            logits, out_cache = linear_forward(h, self.w_out.data, self.b_out.data)
            return logits, (None, None, None, out_cache)
        W = self.w_att.data if self.config.attention == "general" else None
        context, att_cache = multiplicative_attention_forward(h, keys, keys, W, mask)
        joined = xp.concatenate([context, h], axis=-1)                 # [B, (T,) K + H]
        pre, c_cache = linear_forward(joined, self.w_c.data, self.b_c.data)
        combined = xp.tanh(pre)                                        # [B, (T,) H]
        logits, out_cache = linear_forward(combined, self.w_out.data, self.b_out.data)
        return logits, (att_cache, c_cache, combined, out_cache)

    def forward(self, src, tgt_in, tgt_out=None, src_mask=None, label_smoothing: float = 0.0):
        """src [B, S], tgt_in [B, T] (teacher forcing), tgt_out [B, T] or None (-100 =
        padding), src_mask [B, S] bool or None -> (logits [B, T, V], mean loss or None);
        ``label_smoothing`` as PyTorch's cross_entropy."""
        owner = f"{type(self).__name__}.forward"
        self._check_source(src, src_mask, owner)
        self._check_target(tgt_in, tgt_out, src.shape[0], owner)
        keys, state = self._encode(src, src_mask)                      # [B, S, H]
        u = self.tgt_embedding.forward(tgt_in.T)                       # [T, B, d]
        hs, _ = self.decoder.forward(u, state)                         # [T, B, H]
        h = hs.transpose(1, 0, 2)                                      # [B, T, H]
        logits, self._caches = self._head(h, keys, src_mask)           # [B, T, V]
        return logits, self._loss(logits, tgt_out, label_smoothing)

    def backward(self, dloss=1.0):
        """Back-propagate the last loss into every parameter's grad (see the module
        docstring for the order)."""
        dlogits = self._dlogits(dloss)                                     # [B, T, V]
        dh, dkeys = self._head_backward(dlogits)                           # [B, T, H], [B, S, H]
        du, dstate = self.decoder.backward(dh.transpose(1, 0, 2))          # [T, B, d]
        self.tgt_embedding.backward(du)
        self._encoder_backward(dkeys, dstate)                              # dkeys None: "none"

    def _head_backward(self, dlogits):
        """dlogits [B, T, V] -> (dh [B, T, H], dkeys [B, S, K] or None)."""
        att_cache, c_cache, combined, out_cache = self._caches
        dz_in, dW_out, db_out = linear_backward(dlogits, out_cache)
        self.w_out.accumulate(dW_out)
        self.b_out.accumulate(db_out)
        if att_cache is None:
            return dz_in, None
        dpre = dz_in * (1.0 - combined * combined)                         # tanh'
        djoined, dW_c, db_c = linear_backward(dpre, c_cache)               # [B, T, K + H]
        self.w_c.accumulate(dW_c)
        self.b_c.accumulate(db_c)
        K = self.config.key_width
        dq, dk, dv, dW = multiplicative_attention_backward(djoined[..., :K], att_cache)
        if dW is not None:
            self.w_att.accumulate(dW)
        return djoined[..., K:] + dq, dk + dv

    # -- decoding --------------------------------------------------------------------------
    def encode(self, src, src_mask=None):
        """src [B, S] -> the decoding state (decoder state [L, B, H] or a pair of them,
        keys [B, S, K], src_mask [B, S] or None)."""
        self._check_source(src, src_mask, f"{type(self).__name__}.encode")
        keys, state = self._encode(src, src_mask)
        self._loss_cache = None
        return state, keys, src_mask

    def decode_step(self, prev_ids, state):
        """prev_ids [B] (bos first) -> (log-probabilities [B, V], next state): one decoder
        step, step(tokens, state) for tinylm/beam_search.py."""
        self._check_prev_ids(prev_ids)
        dec_state, keys, mask = state
        u = self.tgt_embedding.weight.data[prev_ids][None]             # [1, B, d]
        hs, dec_state = self.decoder.forward(u, dec_state)             # [1, B, H]
        logits, _ = self._head(hs[0], keys, mask)                      # [B, V]
        self._loss_cache = None
        return self._log_probs(logits), (dec_state, keys, mask)

    @staticmethod
    def reorder(state, indices):
        """Select batch rows of a decoding state (beam search's reorder): the decoder state
        [L, B, H] along axis 1, keys [B, S, K] and the mask [B, S] along axis 0."""
        dec_state, keys, mask = state
        xp = get_array_module(keys)
        indices = xp.asarray(indices)
        take1 = lambda a: xp.take(a, indices, axis=1)                  # noqa: E731
        dec_state = (tuple(take1(a) for a in dec_state) if isinstance(dec_state, tuple)
                     else take1(dec_state))
        mask = None if mask is None else xp.take(mask, indices, axis=0)
        return dec_state, xp.take(keys, indices, axis=0), mask
