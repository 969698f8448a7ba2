"""Use a trained seq2seq run: translate sentences (greedy or beam search, many at once),
score a held-out split, and read the attention of one translation.

    translator = load_translator("runs/fra-eng")      # the best parameters of the run
    translator.translate(["Je suis là."], beam=5)     # ["I'm here."]
    evaluate_split(translator, "test", beam=5)        # {"metric": "bleu", "score": ..., ...}
    weights, src_tokens, out_tokens = attention_of(translator, "Je suis là.")

**Batched decoding.** The sentences are sorted by source length and decoded in groups of
``rows`` (the recurrent encoder then reads each group as one or two length groups); greedy
decoding advances every row of a group at once (``tinylm.beam_search.greedy_decode``), beam
search keeps ``beam`` hypotheses per row and ranks finished ones by the GNMT length penalty
log P / ((5 + |y|) / 6) ** alpha (``tinylm.beam_search.beam_search``, alpha 0.6 by
default). The output is cut at ``max_tokens`` + 1 tokens (eos included), the longest
target the run trained on.

**Scores.** For the toy tasks the exact-match accuracy: the fraction of answers whose whole
decoded string equals the reference. For translation corpus BLEU (tinylm/bleu.py, equal to
sacreBLEU's default: 13a tokenisation, exp smoothing) of the detokenised output against the
raw reference sentences of the split, one reference per sentence.

**Unknown words and limits.** A source token the run's vocabulary lacks is read as
``<unk>``: the sentence is still translated, and ``check_sentence`` returns the unknown
tokens so the caller can name them. An empty sentence, or one longer than the run's
``max_tokens``, is refused with an error naming the limit.
"""

from __future__ import annotations

import dataclasses

import numpy

from tinylm.backend import to_numpy
from tinylm.beam_search import beam_search, greedy_decode
from tinylm.bleu import corpus_bleu
from tinylm.checkpoint import CheckpointError, split_prefix
from tinylm.data.pair_tokens import BOS_ID, EOS_ID, PAD_ID, SideVocabulary, tokens_of
from tinylm.data.pairs import pad_pairs
from tinylm.train.restore import SEQ2SEQ_MODEL, check_same_data, checkpoint_base, read_run
from tinylm.train.seq2seq_run import (Seq2SeqSettings, model_class, prepare_pairs,
                                      seq2seq_settings, source_ids)
from tinylm.typed_config import config_from_dict

UNLIMITED_OUTPUT = 100      # output tokens when the run set no max_tokens


@dataclasses.dataclass
class Translator:
    """A trained model (eval mode, best parameters) with its vocabularies and settings."""

    model: object
    source: SideVocabulary
    target: SideVocabulary
    settings: Seq2SeqSettings

    @property
    def max_output(self) -> int:
        """Output tokens at most, eos included."""
        limit = self.settings.max_tokens
        return limit + 1 if limit else UNLIMITED_OUTPUT

    def check_sentence(self, text: str) -> list[str]:
        """Refuse an empty or too long source; -> its tokens unknown to the vocabulary."""
        tokens = tokens_of(text.strip(), self.source.scheme)
        if not tokens:
            raise ValueError("the sentence to translate is empty; give some text.")
        limit = self.settings.max_tokens
        if limit and len(tokens) > limit:
            raise ValueError(f"the sentence has {len(tokens)} tokens, but the model was trained "
                             f"on sources of at most max_tokens={limit} tokens; shorten it or "
                             "split it into sentences.")
        return self.source.unknown_words(text.strip())

    def translate(self, sentences, beam: int = 1, alpha: float = 0.6,
                  rows: int = 256) -> list[str]:
        """Translate every sentence (decoded text, in the order given)."""
        ids = [source_ids(s.strip(), self.source, self.settings.reverse_source)
               for s in sentences]
        outputs = self.decode(ids, beam, alpha, rows)
        return [self.target.decode(out) for out in outputs]

    def decode(self, src_ids, beam: int = 1, alpha: float = 0.6, rows: int = 256) -> list:
        """Source id lists -> output token tuples (eos last when finished), batched."""
        order = sorted(range(len(src_ids)), key=lambda i: len(src_ids[i]))
        outputs = [None] * len(src_ids)
        for start in range(0, len(order), rows):
            group = order[start:start + rows]
            for i, result in zip(group, self._decode_group([src_ids[i] for i in group],
                                                           beam, alpha)):
                outputs[i] = result.tokens
        return outputs

    def _decode_group(self, src_ids, beam: int, alpha: float) -> list:
        batch = pad_pairs(src_ids, [[] for _ in src_ids], PAD_ID, BOS_ID, EOS_ID)
        state = self.model.encode(batch.src, batch.src_mask)
        if beam == 1:
            return greedy_decode(self.model.decode_step, state, len(src_ids), BOS_ID, EOS_ID,
                                 self.max_output)
        return beam_search(self.model.decode_step, state, len(src_ids), BOS_ID, EOS_ID,
                           beam_width=beam, max_len=self.max_output, length_penalty="gnmt",
                           alpha=alpha, reorder=self.model.reorder)


def _model_of(meta: dict, arrays: dict, settings: Seq2SeqSettings, where):
    """The run's model with its best parameters, checked to be finite, in eval mode."""
    cls = model_class(settings.family)
    model = cls(config_from_dict(cls.config_class, meta["model_config"], owner=cls.__name__))
    model.to(dtype=numpy.float32)
    model.load_state_dict(split_prefix(arrays, "best"))
    for name, p in model.named_parameters():
        if not bool(numpy.isfinite(to_numpy(p.data)).all()):
            raise CheckpointError(f"{where}: tensor {name!r} holds NaN or infinite values; "
                                  "the run diverged. Retrain with a lower learning rate.")
    return model.eval()


def load_translator(run, same_data: bool = False) -> Translator:
    """The Translator of a ``tinylm train seq2seq`` run folder (its best parameters);
    ``same_data`` also refuses a run whose data files have changed (for evaluation)."""
    arrays, meta = read_run(run)
    where = checkpoint_base(run).with_suffix(".json")
    if meta["model"] != SEQ2SEQ_MODEL:
        raise CheckpointError(f"{where} holds a {meta['model']!r} run, not a seq2seq model; "
                              "translate with a run of `tinylm train seq2seq`.")
    settings = seq2seq_settings(meta["train_config"])
    if same_data:
        check_same_data(meta, settings.dataset)
    vocab = meta["provenance"].get("vocab") or {}
    try:
        source, target = (SideVocabulary.from_dict(vocab.get(side)) for side in ("source",
                                                                                 "target"))
    except ValueError as e:
        raise CheckpointError(f"{where}: the vocabularies cannot be rebuilt ({e}).") from e
    model = _model_of(meta, arrays, settings, where)
    if (model.config.src_vocab, model.config.tgt_vocab) != (len(source), len(target)):
        raise CheckpointError(f"{where}: the model's vocabulary sizes do not match its "
                              "vocabularies; the checkpoint is inconsistent.")
    return Translator(model, source, target, settings)


def evaluate_split(translator: Translator, split: str = "test", beam: int = 1,
                   alpha: float = 0.6, limit: int = 0) -> dict:
    """Exact-match accuracy (toy tasks) or corpus BLEU (translation) of the run on ``split``
    ("val" or "test"), its first ``limit`` pairs (0: all), with hypotheses and references."""
    data = prepare_pairs(translator.settings, (translator.source, translator.target))
    pairs = {"val": data.valid, "test": data.test}[split]
    pairs = pairs[:limit] if limit else pairs
    sources, references = [s for s, _ in pairs], [t for _, t in pairs]
    hypotheses = translator.translate(sources, beam, alpha)
    result = {"metric": translator.settings.metric, "split": split, "pairs": len(pairs),
              "beam": beam, "hypotheses": hypotheses, "references": references}
    if result["metric"] == "exact":
        result["score"] = float(numpy.mean([h == r for h, r in zip(hypotheses, references)]))
    else:
        result["bleu"] = corpus_bleu(hypotheses, [references])
        result["score"] = result["bleu"].score
    return result


def cross_attention(model):
    """The attention weights [B, T, S] of the model's last forward: the Transformer's
    ``attention_maps()`` (one [B, heads, T, S] per decoder block: the last block's, averaged
    over its heads), or Seq2SeqRNN's Luong attention alpha."""
    if hasattr(model, "attention_maps"):
        return to_numpy(model.attention_maps()[-1]).mean(axis=1)
    if getattr(model.config, "attention", None) == "none":
        raise ValueError("this model has no attention (attention='none'); there is no "
                         "attention to draw.")
    return to_numpy(model._caches[0].alpha)                       # Seq2SeqRNN's head cache


def attention_of(translator: Translator, sentence: str, beam: int = 1):
    """-> (weights [T, S], source tokens as the encoder read them, output tokens): the
    model's translation of ``sentence`` re-read with teacher forcing, so row t is the
    attention while predicting output token t (eos last)."""
    src = source_ids(sentence.strip(), translator.source, translator.settings.reverse_source)
    out = list(translator.decode([src], beam)[0])
    xp_src = numpy.asarray([src], dtype=numpy.int64)
    tgt_in = numpy.asarray([[BOS_ID, *out[:-1]]], dtype=numpy.int64)
    translator.model.forward(xp_src, tgt_in, src_mask=numpy.ones_like(xp_src, dtype=bool))
    weights = cross_attention(translator.model)[0]                  # [T, S]
    src_tokens = tokens_of(sentence.strip(), translator.source.scheme)
    if translator.settings.reverse_source:
        src_tokens = src_tokens[::-1]
    out_tokens = [translator.target.vocab.id_to_token(int(i)) for i in out]
    return weights, src_tokens, out_tokens
