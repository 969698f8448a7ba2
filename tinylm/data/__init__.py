"""Data (layer 5): datasets by name, cleaning, tokenizers, vocabularies, batches. Chapter 02.

    text = load_text("tinyshakespeare")                 # datasets.py: resolve, verify, read
                                                        # (verify.py: the sha256, paid once)
    tok = CharTokenizer.from_text(text)                 # tokenizers.py (vocab.py underneath)
    train, val = split_train_val(tok.encode(text), 0.1) # batching.py
    x, y, _ = RandomWindowBatcher(train, 32, 64, seed=0).next_batch()
"""

from tinylm.data.batching import (RandomWindowBatcher, SequentialBatcher, iterate_eval_windows,
                                  split_train_val)
from tinylm.data.cleaning import (deduplicate_lines, letters_only, normalize_unicode,
                                  normalize_whitespace)
from tinylm.data.datasets import (DATASETS, DatasetChecksumError, DatasetEncodingError,
                                  DatasetFile, dataset_info, dataset_path, load_text)
from tinylm.data.tokenizers import (CharTokenizer, WordTokenizer, load_tokenizer,
                                    tokenizer_from_dict)
from tinylm.data.vocab import Vocabulary

__all__ = [
    "DATASETS", "DatasetFile", "dataset_info", "dataset_path", "load_text",
    "DatasetChecksumError", "DatasetEncodingError",
    "normalize_unicode", "normalize_whitespace", "letters_only", "deduplicate_lines",
    "Vocabulary", "CharTokenizer", "WordTokenizer", "load_tokenizer", "tokenizer_from_dict",
    "split_train_val", "RandomWindowBatcher", "SequentialBatcher", "iterate_eval_windows",
]
