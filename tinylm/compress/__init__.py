"""Model compression (chapter 11): pruning (``prune``), distillation (``distill``, with
``training`` shared by the two), and weight-only post-training quantisation (``quantize``).

Nothing is imported here: each module is imported by name, so that tinylm.train can use
``quantize`` without loading the training code that ``prune`` and ``distill`` build on."""
