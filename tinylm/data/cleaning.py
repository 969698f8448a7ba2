"""Text cleaning before tokenization (chapter 02). Each function is one decision a corpus
builder makes; none of them is applied silently by the tokenizers.

* ``normalize_unicode``: one code-point sequence per visible character (NFC), or also fold
  compatibility forms such as full-width Latin letters (NFKC), so that "Ａ" and "A" do not
  become two tokens.
* ``normalize_whitespace``: tabs and runs of spaces -> one space, no trailing spaces,
  Windows line ends -> "\\n".
* ``letters_only``: what d2l does to *The Time Machine*: every run of non-letters becomes one
  space, then lower case. It shrinks the character vocabulary to 28 symbols (26 letters,
  space, line break) but destroys punctuation, digits and case: a choice for a toy model,
  not a default.
* ``deduplicate_lines``: drop exact repeats of a non-empty line, keeping the first.

Removing stop words (去停用词, which the source documents list among the preprocessing
steps) is NOT done here: a language model must predict "the" and "of" like any other word.
"""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"[ \t\f\v]+")
_NON_LETTERS = re.compile(r"[^A-Za-z]+")


def normalize_unicode(text: str, form: str = "NFC") -> str:
    if form not in ("NFC", "NFKC", "NFD", "NFKD"):
        raise ValueError(f"unknown Unicode normal form {form!r}; use NFC, NFKC, NFD or NFKD.")
    return unicodedata.normalize(form, text)


def normalize_whitespace(text: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(_SPACES.sub(" ", line).strip(" ") for line in lines)


def letters_only(text: str) -> str:
    return "\n".join(_NON_LETTERS.sub(" ", line).strip().lower() for line in text.split("\n"))


def deduplicate_lines(text: str) -> str:
    seen, kept = set(), []
    for line in text.split("\n"):
        if line.strip() and line in seen:
            continue
        seen.add(line)
        kept.append(line)
    return "\n".join(kept)
