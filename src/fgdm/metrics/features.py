"""Distribution metrics of pose-encoder features (docs/model.md §8).

- FID: Fréchet distance between Gaussians fitted to two feature sets (one row per sequence).
- Diversity: mean Euclidean distance between features of randomly paired sequences.
"""

from __future__ import annotations

import warnings

import numpy as np


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to (N_a, D) and (N_b, D) feature sets.

    ‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^½), the FID formula; 0 for identical sets.
    """
    from scipy import linalg

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sets must be (N, D) with the same D, got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError("FID needs at least two sequences per set")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("FID of feature sets with non-finite values (NaN or infinity)")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings(record=True) as said:  # SciPy's own warning names no metric and no sizes
        warnings.simplefilter("always", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(cov_a @ cov_b)  # (no ``disp``: SciPy 1.18 removed it)
        if not np.isfinite(covmean).all():  # near-singular product: regularise as the reference FID code does
            eps = np.eye(a.shape[1]) * 1e-6
            covmean = linalg.sqrtm((cov_a + eps) @ (cov_b + eps))
    said = [w for w in said if issubclass(w.category, linalg.LinAlgWarning)]  # (the only kind sqrtm gives)
    if said:
        warnings.warn(f"FID of {len(a)} and {len(b)} sequences of {a.shape[1]} features: {said[-1].message} (more "
                      "sequences make it reliable)", stacklevel=2)  # fmt: skip
    covmean = np.real(covmean)
    value = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean))
    return max(value, 0.0)


def diversity(features: np.ndarray, pairs: int = 300, seed: int = 0) -> float:
    """Mean distance between features of random pairs of distinct sequences (higher = more varied)."""
    features = np.asarray(features, dtype=np.float64)
    n = len(features)
    if not isinstance(pairs, int) or isinstance(pairs, bool) or pairs < 1:
        raise ValueError(f"diversity: pairs is a whole number ≥ 1, got {pairs!r}")
    if n < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, pairs)
    j = (i + rng.integers(1, n, pairs)) % n  # never the same sequence
    return float(np.linalg.norm(features[i] - features[j], axis=1).mean())
