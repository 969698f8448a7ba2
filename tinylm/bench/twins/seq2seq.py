"""PyTorch twin of tinylm's recurrent encoder-decoder (tinylm/models/seq2seq_rnn.py): torch
Embeddings, nn.GRU/nn.LSTM (batch_first) and the same Luong attention in torch ops, with the
weights copied from a tinylm model. A padded source is packed (pack_padded_sequence), so the
decoder starts from each row's state at its own length, as in tinylm. A bidirectional
model's reverse stack is a second torch RNN that reads every row reversed within its length
(not nn.GRU(bidirectional=True), whose upper layers read both directions of the layer below:
tinylm's two stacks are independent).

Weight mapping: recurrent layers as tinylm/bench/twins/recurrent.py (W_x = weight_ih.T, ...);
w_att, w_c, w_out are used as they are (input-major, y = x W + b) as plain tensors.
``twin_seq2seq_loss`` runs the twin; ``twin_grads`` names its gradients as tinylm does,
``twin_arrays`` its weights, and ``twin_parameters`` lists its leaves for torch.optim.
"""

from __future__ import annotations

from tinylm.bench.twins.recurrent import torch_recurrent_class

HEAD_NAMES = ("w_att", "w_c", "b_c", "w_out", "b_out")


def _recurrent_from(torch, kind, layer, prefix, state, to):
    """A torch GRU/LSTM with tinylm layer ``prefix``'s weights."""
    rnn = torch_recurrent_class(torch, kind)(layer.input_size, layer.hidden_size,
                                             layer.num_layers, batch_first=True).to(to)
    with torch.no_grad():
        for l in range(layer.num_layers):
            t = lambda name: torch.tensor(state[f"{prefix}{name}_l{l}"])  # noqa: E731
            getattr(rnn, f"weight_ih_l{l}").copy_(t("W_x").T)
            getattr(rnn, f"weight_hh_l{l}").copy_(t("W_h").T)
            getattr(rnn, f"bias_ih_l{l}").copy_(t("b_x"))
            getattr(rnn, f"bias_hh_l{l}").copy_(t("b_h"))
    return rnn


def seq2seq_twin(torch, model) -> dict:
    """The twin of a tinylm Seq2SeqRNN (float64): a dict of torch modules and leaf tensors."""
    to, state, kind = torch.float64, model.state_dict(), model.config.cell
    twin = {}
    for side in ("src", "tgt"):
        table = torch.tensor(state[f"{side}_embedding.weight"])
        twin[f"{side}_embedding"] = torch.nn.Embedding.from_pretrained(table, freeze=False)
    twin["encoder"] = _recurrent_from(torch, kind, model.encoder, "encoder.", state, to)
    if model.config.bidirectional:
        twin["reverse_encoder"] = _recurrent_from(torch, kind, model.reverse_encoder,
                                                  "reverse_encoder.", state, to)
    twin["decoder"] = _recurrent_from(torch, kind, model.decoder, "decoder.", state, to)
    for name in HEAD_NAMES:
        if name in state:
            twin[name] = torch.tensor(state[name], requires_grad=True)
    return twin


def _run_packed(torch, rnn, x, lengths):
    """x [B, S, d], each row read up to its length (packed) -> (outputs [B, S, H] with
    zeros beyond a row's length, final state)."""
    rnn_utils = torch.nn.utils.rnn
    packed = rnn_utils.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, state = rnn(packed)
    keys, _ = rnn_utils.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return keys, state


def _reverse_rows(torch, x, lengths):
    """x [B, S, ...] with row b's first lengths[b] positions reversed (padding stays put);
    its own inverse."""
    S = x.shape[1]
    positions = torch.arange(S)[None, :]                                         # [1, S]
    flipped = lengths[:, None] - 1 - positions                                   # [B, S]
    index = torch.where(positions < lengths[:, None], flipped, positions)       # [B, S]
    return torch.gather(x, 1, index[:, :, None].expand(-1, -1, x.shape[2]))


def _add_states(a, b):
    return tuple(x + y for x, y in zip(a, b)) if isinstance(a, tuple) else a + b


def _encode(torch, twin: dict, src, src_mask):
    """Each row read up to its length (packed), as tinylm's encoder groups rows by length;
    the keys beyond a row's length are zeros. A bidirectional twin also reads every row
    reversed within its length, concatenates the two outputs and sums the final states."""
    x = twin["src_embedding"](torch.as_tensor(src))                              # [B, S, d]
    lengths = (torch.full((x.shape[0],), x.shape[1]) if src_mask is None
               else torch.as_tensor(src_mask).sum(dim=1))
    keys, state = _run_packed(torch, twin["encoder"], x, lengths)               # [B, S, H]
    if "reverse_encoder" not in twin:
        return keys, state
    back, back_state = _run_packed(torch, twin["reverse_encoder"],
                                   _reverse_rows(torch, x, lengths), lengths)
    keys = torch.cat([keys, _reverse_rows(torch, back, lengths)], dim=-1)        # [B, S, 2H]
    return keys, _add_states(state, back_state)


def twin_seq2seq_loss(torch, twin: dict, attention: str, src, tgt_in, tgt_out,
                      src_mask=None, label_smoothing: float = 0.0) -> tuple:
    """-> (logits [B, T, V], mean cross-entropy over targets != -100)."""
    keys, state = _encode(torch, twin, src, src_mask)                              # [B, S, H]
    h, _ = twin["decoder"](twin["tgt_embedding"](torch.as_tensor(tgt_in)), state)  # [B, T, H]
    if attention == "none":
        top = h
    else:
        query = h @ twin["w_att"] if attention == "general" else h                # [B, T, H]
        scores = query @ keys.transpose(1, 2)                                      # [B, T, S]
        if src_mask is not None:
            mask = torch.as_tensor(src_mask)[:, None, :]
            scores = scores.masked_fill(~mask, float("-inf"))
        context = torch.softmax(scores, dim=-1) @ keys                             # [B, T, H]
        top = torch.tanh(torch.cat([context, h], dim=-1) @ twin["w_c"] + twin["b_c"])
    logits = top @ twin["w_out"] + twin["b_out"]                                   # [B, T, V]
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                             torch.as_tensor(tgt_out).reshape(-1),
                                             ignore_index=-100,
                                             label_smoothing=label_smoothing)
    return logits, loss


def twin_parameters(twin: dict) -> list:
    """Every leaf tensor of the twin (for a torch optimizer)."""
    params = []
    for name, value in twin.items():
        params.extend(value.parameters() if hasattr(value, "parameters") else [value])
    return params


def twin_arrays(twin: dict, attribute: str = "data") -> dict:
    """The twin's parameters (``"data"``) or gradients (``"grad"``) under tinylm's names
    and layout (NumPy)."""
    def get(tensor):
        return getattr(tensor, attribute).detach().numpy()

    arrays = {}
    for side in ("src", "tgt"):
        arrays[f"{side}_embedding.weight"] = get(twin[f"{side}_embedding"].weight)
    for prefix in ("encoder", "reverse_encoder", "decoder"):
        if prefix not in twin:
            continue
        rnn = twin[prefix]
        for l in range(rnn.num_layers):
            g = lambda name: get(getattr(rnn, f"{name}_l{l}"))  # noqa: E731
            arrays[f"{prefix}.W_x_l{l}"] = g("weight_ih").T
            arrays[f"{prefix}.W_h_l{l}"] = g("weight_hh").T
            arrays[f"{prefix}.b_x_l{l}"] = g("bias_ih")
            arrays[f"{prefix}.b_h_l{l}"] = g("bias_hh")
    for name in HEAD_NAMES:
        if name in twin:
            arrays[name] = get(twin[name])
    return arrays


def twin_grads(twin: dict) -> dict:
    """The twin's gradients under tinylm's parameter names and layout (NumPy)."""
    return twin_arrays(twin, "grad")
