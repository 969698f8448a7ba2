"""Writes notebooks/02-data-and-tokens.ipynb (without outputs) from the cells below.

    .venv/bin/python notebooks/build/build_02.py
"""

from pathlib import Path

import nbformat
from notebook_cells import build_notebook

OUT = Path(__file__).resolve().parents[1] / "02-data-and-tokens.ipynb"

CELLS = [
    ("md", r"""# 02 · Data and tokens: cleaning, characters, words, BPE and WordPiece

Companion to `chapters/02-data-and-tokens.md`.

1. Data by name, and cleaning
2. Characters and words, vocabularies and `<unk>`
3. BPE derived step by step on a tiny corpus
4. A byte-level BPE trained on Tiny Shakespeare, and the vocabulary growing
5. Bytes, and why GPT-2 writes them as printable characters
6. Pre-splitting with a regular expression, and what it prevents
7. GPT-2 and cl100k on English, Chinese, emoji and digits
8. WordPiece: the score, the greedy longest match, `[UNK]`
9. Pitfalls: numbers, spaces, Chinese, token counts and cost
10. Bytes per token by tokenizer and by kind of text

Set `TINYLM_FAST=1` to run everything with small settings (the test suite does)."""),
    ("code", r"""import os
import time
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np
import regex

from tinylm.data import (CharTokenizer, WordTokenizer, dataset_path, letters_only, load_text,
                         normalize_unicode, normalize_whitespace)
from tinylm.data.bpe import (GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, BPETokenizer, best_pair,
                             merge_pair, pair_counts, train_merges_by_recount,
                             train_merges_reference)
from tinylm.data.openai_bpe import OpenAIBPETokenizer, bytes_to_unicode
from tinylm.data.wordpiece import PairCounts, WordPieceTokenizer, initial_alphabet

FAST = os.environ.get("TINYLM_FAST") == "1"
START = time.perf_counter()
print("fast mode" if FAST else "full mode")"""),
    ("md", r"""## 1. Data by name, and cleaning

`load_text` finds a registered dataset (checked by its sha256) and returns its text. Cleaning
is a list of decisions; none is applied silently."""),
    ("code", r"""text = load_text("tinyshakespeare")
print(f"{len(text):,} characters, {len(set(text))} distinct; the first 80: {text[:80]!r}")

print(repr(normalize_unicode("e\u0301")), "NFC: one code point, from 'e' + a combining accent")
print(repr(normalize_unicode("ＡＢＣ１２３，", "NFKC")), "NFKC also folds full-width forms, the comma too")
print(repr(normalize_whitespace("a\t b  \r\nc")))
print(repr(letters_only("The Time-Machine, 1895!")), "d2l's cleaning: letters and spaces, lower case")"""),
    ("md", r"""## 2. Characters and words

A character vocabulary is small and never meets an unknown symbol inside its corpus; a word
vocabulary is large with a long tail. `min_freq` trades the vocabulary's size against how
much text becomes `<unk>`."""),
    ("code", r"""chars = CharTokenizer.from_text(text)
words = WordTokenizer.from_text(text)
counts = Counter(text.split())
print(f"characters: {chars.vocab_size} ids; words: {words.vocab_size:,} ids "
      f"(incl. <unk> and <eos>)")
print(f"{sum(n == 1 for n in counts.values()) / len(counts):.0%} of the {len(counts):,} distinct "
      "white-space words occur once")
print(chars.encode("First Citizen:")[:8], "->", repr(chars.decode(chars.encode("First Citizen:"))))

machine = letters_only(load_text("timemachine"))
for min_freq in (1, 2, 5, 10):
    tok = WordTokenizer.from_text(machine, min_freq=min_freq, eos=None)
    ids = tok.encode(machine)
    print(f"min_freq {min_freq:>2}: vocabulary {tok.vocab_size:>5,}, "
          f"<unk> {np.mean(ids == tok.token_to_id('<unk>')):.1%} of the tokens")
lines = text.splitlines(keepends=True)
cut = int(0.9 * len(lines))
train_text, held_out = "".join(lines[:cut]), "".join(lines[cut:])   # the first 90 %, the rest
seen = WordTokenizer.from_text(train_text, eos=None)
unknown = np.mean(seen.encode(held_out) == seen.token_to_id("<unk>"))
print(f"words of the first 90 %: {unknown:.1%} of the held-out words are <unk>")
try:
    CharTokenizer.from_text("abc").encode("abz")
except ValueError as error:
    print("ValueError:", error)"""),
    ("md", r"""## 3. BPE step by step

The corpus of Sennrich et al. (2016): "low" 5 times, "lower" 2, "newest" 6, "widest" 3. Each
word is its bytes. A step counts every adjacent pair (weighted by the word's count), merges
the most frequent pair into a new token (256, 257, ...) and rewrites the words. Ties go to
the smallest pair. The length of the corpus in tokens falls by the count of the pair merged
(when its two halves differ)."""),
    ("code", r"""corpus = {"low": 5, "lower": 2, "newest": 6, "widest": 3}
tiny_words = [list(w.encode("utf-8")) for w in corpus]
tiny_weights = list(corpus.values())
name = {b: chr(b) for b in range(256)}


def length(ws):
    return sum(len(w) * n for w, n in zip(ws, tiny_weights))


current = [list(w) for w in tiny_words]
print(f"start: {length(current)} tokens (bytes)")
for step in range(10):
    counts = pair_counts(current, tiny_weights)
    pair = best_pair(counts)
    new = 256 + step
    name[new] = name[pair[0]] + name[pair[1]]
    current = [merge_pair(w, pair, new) for w in current]
    runners_up = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[1:3]
    print(f"{step + 1:>2}  {name[pair[0]]!r:>7} + {name[pair[1]]!r:<6} count {counts[pair]}  "
          f"-> {new} {name[new]!r:<9} corpus {length(current):>2} tokens   "
          f"(next: {', '.join(f'{name[a]}+{name[b]} {n}' for (a, b), n in runners_up)})")
print(" / ".join(" ".join(name[t] for t in w) for w in current))

merges = train_merges_by_recount(tiny_words, tiny_weights, 10)
print("the loop above = train_merges_by_recount = train_merges_reference:",
      merges == [tuple(p) for p in train_merges_reference(tiny_words, tiny_weights, 10)])"""),
    ("md", r"""Encoding a new word replays the merges in the order they were learnt. Nothing is ever
unknown: a byte-level BPE falls back to single bytes."""),
    ("code", r"""tiny = BPETokenizer(merges, pattern=None)
for w in ["lowest", "newer", "wider", "slow"]:
    ids = tiny.encode(w)
    print(f"{w:>7}: {[tiny.token_bytes(int(i)).decode() for i in ids]}  ids {ids.tolist()}")"""),
    ("md", r"""## 4. A byte-level BPE on Tiny Shakespeare

Trained on the first 90 % of the lines, measured on the rest. `train` splits the text with
GPT-2's pattern, counts each distinct chunk once with its weight, and learns the merges."""),
    ("code", r"""vocab_size = 1024 if FAST else 4096
started = time.perf_counter()
bpe = BPETokenizer.train(train_text, vocab_size)
print(f"{bpe!r} in {time.perf_counter() - started:.2f} s")
print("the first 20 merges:", [bpe.token_bytes(256 + m).decode() for m in range(20)])
sample = "To be, or not to be, that is the question."
ids = bpe.encode(sample)
print(len(ids), "tokens:", "|".join(bpe.token_bytes(int(i)).decode() for i in ids))
assert bpe.decode(ids) == sample
n_bytes = len(held_out.encode("utf-8"))
print(f"held-out: {n_bytes / len(bpe.encode(held_out)):.3f} bytes per token")"""),
    ("md", r"""The vocabulary growing: the first $k$ merges of one tokenizer, for several $k$. The first
merges buy the most (the commonest pairs); later ones are rarer and buy less. (Fast mode
uses the first 200,000 characters of the training part and 50,000 of the held-out part.)"""),
    ("code", r"""sizes = [256, 384, 512, 768, 1024] if FAST else [256, 384, 512, 768, 1024, 2048, 4096]
part_train, part_held = (train_text[:200_000], held_out[:50_000]) if FAST else (train_text, held_out)
curves = {}
for label, pattern in (("GPT-2 split", GPT2_SPLIT_PATTERN), ("no split", None)):
    big = BPETokenizer.train(part_train, sizes[-1], pattern=pattern)
    curves[label] = [[len(t.encode("utf-8")) / len(BPETokenizer(big.merges[:v - 256], pattern)
                                                   .encode_ordinary(t))
                      for v in sizes] for t in (part_train, part_held)]
plt.figure(figsize=(6, 3.5))
for (label, (on_train, on_held)), color in zip(curves.items(), ("C0", "C1")):
    plt.plot(sizes, on_train, "o-", color=color, label=f"{label}, training text")
    plt.plot(sizes, on_held, "o--", color=color, label=f"{label}, held-out")
plt.xscale("log", base=2); plt.xlabel("vocabulary size"); plt.ylabel("bytes per token")
plt.legend(fontsize=8); plt.show()"""),
    ("md", r"""## 5. Bytes, and GPT-2's printable stand-ins

Every text is UTF-8 bytes, so the 256 byte values cover any string. GPT-2's files write each
byte as a visible character: the 188 printable bytes stand for themselves, the other 68
(controls, the space, U+00AD) take characters from U+0100 on. So the space is `Ġ` and the
line feed `Ċ`, and a merges file can be read and split on spaces."""),
    ("code", r"""table = bytes_to_unicode()
print(sum(chr(b) == c for b, c in table.items()), "bytes stand for themselves")
for b in (0x20, 0x0A, 0x09, 0x41, 0xAD, 0xE4):
    print(f"byte 0x{b:02X} -> {table[b]!r} (U+{ord(table[b]):04X})")
with open(dataset_path("gpt2.merges"), encoding="utf-8") as lines_of_merges:
    print("GPT-2's vocab.bpe begins:", [next(lines_of_merges).rstrip("\n") for _ in range(6)])
print("'中' is", [hex(b) for b in "中".encode("utf-8")], "->",
      "".join(table[b] for b in "中".encode("utf-8")))"""),
    ("md", r"""## 6. Pre-splitting

GPT-2 cuts the text into chunks first (contractions, letters with one leading space, digits,
other symbols, white space) and merges only inside a chunk. GPT-4's pattern also
cuts digits into groups of at most three and matches contractions in any case. Without a
split, BPE learns tokens that glue words to punctuation and to the next word."""),
    ("code", r"""for s in ["hello world", "don't STOP", "DON'T", "12345678", "x=1+2;  y\n\n"]:
    print(f"{s!r:>16}  gpt2 {regex.findall(GPT2_SPLIT_PATTERN, s)}  "
          f"gpt4 {regex.findall(GPT4_SPLIT_PATTERN, s)}")

no_split = BPETokenizer.train(train_text, vocab_size, pattern=None)
tokens = [no_split.token_bytes(256 + m).decode("utf-8", "replace")
          for m in range(len(no_split.merges))]
across = [t for t in tokens if len(regex.findall(GPT2_SPLIT_PATTERN, t)) > 1]
print(f"without a split, {len(across)} of {len(tokens)} learnt tokens span several GPT-2 chunks,"
      " e.g.", across[:12])
print(f"held-out bytes per token: split {n_bytes / len(bpe.encode(held_out)):.3f}, "
      f"no split {n_bytes / len(no_split.encode(held_out)):.3f}")"""),
    ("md", r"""## 7. GPT-2 and cl100k

`OpenAIBPETokenizer` reads the released ranks files and gives tiktoken's ids
(tests/test_openai_bpe.py checks them)."""),
    ("code", r"""gpt2, cl100k = OpenAIBPETokenizer("gpt2"), OpenAIBPETokenizer("cl100k")


def pieces(tok, s):
    return [tok.token_bytes(int(i)).decode("utf-8", "replace") for i in tok.encode(s)]


examples = ["The quick brown fox jumps over the lazy dog.", "人工智能的发展对人类社会有哪些影响？",
            "我爱北京天安门", "🙂 👍🏽", "12345678", "1,234,567", "    indented code"]
for s in examples:
    print(f"{s!r}: {len(s)} characters, {len(s.encode('utf-8'))} bytes")
    for name_, tok in (("gpt2", gpt2), ("cl100k", cl100k)):
        print(f"   {name_:>6}: {len(tok.encode(s)):>2} tokens {pieces(tok, s)}")
print(gpt2.encode("<|endoftext|>", allowed_special="all"), "GPT-2's only special token")"""),
    ("md", r"""A token may hold part of a character: `�` above is a token whose bytes are not a whole
UTF-8 character. The bytes join back exactly."""),
    ("code", r"""ids = gpt2.encode("我爱北京天安门")
print([gpt2.token_bytes(int(i)) for i in ids])
print(gpt2.decode(ids), "| the first token alone:", repr(gpt2.decode(ids[:1])))"""),
    ("md", r"""## 8. WordPiece

WordPiece starts from characters, the first of a word plain and the rest `##`-prefixed, and
merges the pair of highest score $\mathrm{count}(ab) / (\mathrm{count}(a)\,\mathrm{count}(b))$,
not the most frequent one. On the same tiny corpus:"""),
    ("code", r"""symbols, wp_words, wp_weights = initial_alphabet(Counter(corpus), None, 100)
state = PairCounts(wp_words, wp_weights, symbols)
print("alphabet:", symbols)
for step in range(8):
    ranked = sorted(state.pair_count, key=lambda p: (-state.score(p), -state.pair_count[p], p))
    a, b = ranked[0]
    row = (f"{step + 1}  {state.symbols[a]} + {state.symbols[b]}: {state.pair_count[a, b]} / "
           f"({state.symbol_count[a]} x {state.symbol_count[b]}) = {state.score((a, b)):.4f}")
    state.merge(a, b)
    print(f"{row:<42} -> {state.symbols[-1]:<6}",
          " / ".join(" ".join(state.symbols[s] for s in w) for w in state.words))

wp_tiny = WordPieceTokenizer.train(" ".join(w for w, n in corpus.items() for _ in range(n)),
                                   vocab_size=5 + len(symbols) + 8)
for w in ["lowest", "newer", "wider", "slow"]:
    print(f"{w:>7}: {wp_tiny.split(w)}")"""),
    ("md", r"""Encoding is greedy longest-match-first: the longest vocabulary entry at the word's start,
then the longest `##` continuation, and so on; a word that cannot be covered is `[UNK]` as a
whole. BERT's normaliser lower-cases, strips accents and puts spaces around CJK ideographs."""),
    ("code", r"""wordpiece = WordPieceTokenizer.train(train_text.splitlines(), 4096, min_frequency=20)
print(wordpiece)
print(wordpiece.split("To be, or not to be: that is the question. Whither wilt thou, Bolingbroke?"))
print(wordpiece.split("Naïve café, 我爱北京 🙂"))
print(repr(wordpiece.decode(wordpiece.encode("Hello,   World!"))), "(case and spacing are gone)")"""),
    ("md", r"""## 9. Pitfalls

Numbers are cut irregularly, a leading space makes a different token, capitals are split
more, a Chinese character is three bytes and often more than one GPT-2 token, and the
price and context length of a model are counted in tokens."""),
    ("code", r"""for s in ["2026", " 2026", "127 + 456 = 583", "3.14159"]:
    print(f"{s!r:>18}  gpt2 {pieces(gpt2, s)}   cl100k {pieces(cl100k, s)}")
for s in ["hello", " hello", "Hello", " Hello", "HELLO", " HELLO"]:
    print(f"{s!r:>9}  gpt2 ids {gpt2.encode(s).tolist()}  cl100k ids {cl100k.encode(s).tolist()}")

prompt = "人工智能的发展对人类社会有哪些影响？"        # seed 001's prompt, with max_tokens=100
english = "What impact does the development of artificial intelligence have on human society?"
for s in (prompt, english):
    print(f"{len(s):>3} characters: gpt2 {len(gpt2.encode(s))} tokens, "
          f"cl100k {len(cl100k.encode(s))} tokens")
han = "".join(ch for ch in load_text("tangshi300") if "\u4e00" <= ch <= "\u9fff")[:20_000]
print(f"{len(han):,} Han characters of 唐诗三百首: gpt2 {len(gpt2.encode(han)) / len(han):.2f}, "
      f"cl100k {len(cl100k.encode(han)) / len(han):.2f} tokens per character")"""),
    ("md", r"""## 10. Bytes per token by tokenizer and text

The table of `tinylm bench tokenizer --json`: the trainable tokenizers are trained on the first
90 % of each text's lines and measured on the rest (in fast mode, on the first 150,000
characters of each text)."""),
    ("code", r"""from tinylm.bench.tokenizer import bytes_per_token

table = bytes_per_token(150_000 if FAST else None, 4096)
kinds = ["english", "chinese", "code"]
print(f"{'':>16}" + "".join(f"{k:>10}" for k in kinds))
for name_, row in table.items():
    print(f"{name_:>16}" + "".join(f"{row[k]:>10.3f}" for k in kinds))
fig, ax = plt.subplots(figsize=(7, 3.2))
width = 0.8 / len(table)
for j, (name_, row) in enumerate(table.items()):
    ax.bar(np.arange(3) + (j - (len(table) - 1) / 2) * width, [row[k] for k in kinds], width,
           label=name_)
ax.set_yscale("log"); ax.set_xticks(range(3), kinds); ax.set_ylabel("bytes per token")
ax.legend(fontsize=7, ncol=3); plt.show()
print(f"notebook ran in {time.perf_counter() - START:.1f} s")"""),
    ("md", r"""## Exercises

The chapter's exercises have their solutions in the chapter. The tools are all above:
exercise 1 is section 3's loop and section 8's `PairCounts` on another corpus, exercise 3 is
`pieces` of section 7 on your own text, exercise 5 changes the split pattern of section 6,
and exercise 6 is the last cell of section 7."""),
]


if __name__ == "__main__":
    nbformat.write(build_notebook(CELLS), OUT)
    print("wrote", OUT)
