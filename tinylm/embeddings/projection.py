"""A 2-D map of word vectors by principal component analysis, for the chapter's embedding
plot (chapter 05).

    xy = pca_2d(wv.vectors[:300])       # [300, 2]: plot xy[:, 0] against xy[:, 1]

PCA keeps the two directions along which the vectors vary most. Centre the rows,
X_c = X - mean(X), and take the singular value decomposition X_c = U S V^T. The covariance
is C = X_c^T X_c / (n - 1) = V S^2 V^T / (n - 1), so the right singular vectors (rows of
V^T) are C's eigenvectors, ordered by variance s_k^2 / (n - 1); the map is the coordinates
along the first two, X_c V[:, :2] (= U[:, :2] S[:2]). The SVD of X_c is used rather than
an eigendecomposition of C because forming C squares the condition number; it is also what
tests/test_word_vectors.py checks against.

An eigenvector is defined only up to sign (v and -v both are), and LAPACK's choice may
differ between machines, mirroring the plot. Each component is therefore turned so that
its loading of largest magnitude is positive, which makes the map deterministic.
"""

from __future__ import annotations

import numpy


def pca_2d(vectors):
    """The rows of ``vectors`` [V, D] (V >= 2, D >= 2) projected on their first two
    principal components, [V, 2] float64 (module docstring)."""
    centred = _centred(vectors)
    _, _, components = numpy.linalg.svd(centred, full_matrices=False)
    top_two = fix_signs(components[:2])
    return centred @ top_two.T


def fix_signs(components):
    """Each row of ``components`` [k, D] multiplied by the sign of its entry of largest
    magnitude (the first such entry on a tie), so that entry is positive."""
    components = numpy.asarray(components, dtype=numpy.float64)
    largest = numpy.argmax(numpy.abs(components), axis=1)
    signs = numpy.sign(components[numpy.arange(len(components)), largest])
    return components * numpy.where(signs == 0, 1.0, signs)[:, None]


def _centred(vectors):
    x = numpy.asarray(vectors, dtype=numpy.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError(f"pca_2d needs a [V, D] matrix with V >= 2 rows and D >= 2 columns; "
                         f"got shape {x.shape}.")
    if not numpy.isfinite(x).all():
        raise ValueError("pca_2d: the vectors contain NaN or infinity; a diverged model "
                         "has no meaningful map.")
    return x - x.mean(axis=0)
