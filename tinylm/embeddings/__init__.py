"""Word embeddings (layer 5): Word2Vec (skip-gram and CBOW with negative sampling) and GloVe,
trained by hand on a corpus of millions of words, and the word vectors they produce
(nearest neighbours, analogies, the standard evaluations). Chapter 05.

The mathematics of each objective and its gradient lives in tinylm/functional/word2vec.py
and tinylm/functional/glove.py; the training loops that apply those gradients to one
(centre, context) pair or one co-occurrence entry at a time, millions of times, are numba
kernels in tinylm/kernels/.
"""
