"""The word-embedding families by name, imported only when used (as tinylm.models does for
the language models): ``get_embedding_class("glove")`` -> (GloVe, GloVeConfig)."""

from __future__ import annotations

import importlib

EMBEDDING_FAMILIES = {
    "word2vec": "tinylm.embeddings.word2vec:Word2Vec:Word2VecConfig",
    "glove": "tinylm.embeddings.glove:GloVe:GloVeConfig",
}


def get_embedding_class(name: str):
    """-> (trainer class, its configuration dataclass)."""
    if name not in EMBEDDING_FAMILIES:
        raise ValueError(f"unknown embedding family {name!r}; choose one of "
                         f"{sorted(EMBEDDING_FAMILIES)}.")
    module_name, trainer, config = EMBEDDING_FAMILIES[name].split(":")
    module = importlib.import_module(module_name)
    return getattr(module, trainer), getattr(module, config)
