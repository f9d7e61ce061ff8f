"""Smoothed reference distributions, per-sample divergences from them, and set-level divergences.

Reference distribution of a view with ``D`` buckets, from bucket counts ``c`` (total ``N``), smoothed
by interpolation with the uniform distribution so that unseen buckets keep a small, finite mass:

    p_i = (1 - lam) * c_i / N + lam / D

A sample's bag of buckets, normalized, is its own distribution ``q``. Its divergence from the
reference (summing over the buckets ``S`` the sample touches; the rest contribute nothing to KL):

    KL(q || p) = sum_{i in S} q_i log(q_i / p_i)
    JS(q, p)   = 1/2 sum_{i in S} [q_i log(q_i / m_i) + p_i log(p_i / m_i)] + 1/2 log(2) (1 - sum_{i in S} p_i),
                 with m = (q + p) / 2

Both vanish when the sample looks exactly like the reference. KL grows without bound for mass on
buckets the reference never shows (``-log(lam / D)`` per unit), JS is bounded by ``log 2``.
Whole sets (the pool, the selection) are compared the same way with their summed bags as ``q``.
"""

from __future__ import annotations

import numpy as np

from chemactor.selection.features import Bags

__all__ = ["DIVERGENCES", "bag_counts", "sample_divergences", "set_divergences", "smoothed"]

DIVERGENCES: tuple[str, ...] = ("kl", "js")


def smoothed(counts: np.ndarray, smoothing: float) -> np.ndarray:
    """The distribution ``(1 - smoothing) * counts / N + smoothing / D`` (uniform when ``N`` is 0)."""
    total = counts.sum()
    uniform = np.full(len(counts), 1.0 / len(counts))
    if total <= 0:
        return uniform
    return (1.0 - smoothing) * counts / total + smoothing * uniform


def bag_counts(bags: Bags, size: int) -> np.ndarray:
    """The summed bucket counts of all rows of ``bags`` (a set's distribution before normalizing)."""
    return np.bincount(bags.buckets, minlength=size).astype(np.float64)


def _distinct_occurrences(bags: Bags, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (row, bucket) pairs of ``bags``, sorted by row then bucket, and how often each occurs.

    What ``np.unique(rows * size + buckets, return_counts=True)`` gives, in the same order (so every row's
    divergence is summed in the same order, to the bit), faster: sorting is most of the cost, and numpy's
    merge sort (``kind="stable"``) is faster than its default on keys that come in runs of rows (a
    view's occurrences are in row order, n-gram length by n-gram length); the keys are 32-bit whenever the
    batch's ``n_rows * size`` fits.
    """
    dtype = np.uint32 if bags.n_rows * size <= 1 << 32 else np.uint64
    keys = bags.rows.astype(dtype) * dtype(size) + bags.buckets.astype(dtype)
    keys.sort(kind="stable")
    first = np.ones(len(keys), dtype=bool)
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    counts = np.diff(starts, append=len(keys))
    distinct = keys[starts]
    return distinct // dtype(size), distinct % dtype(size), counts


def sample_divergences(bags: Bags, log_p: np.ndarray, divergence: str = "kl") -> np.ndarray:
    """The divergence of every row's normalized bag from the reference ``exp(log_p)``, one per row."""
    if divergence not in DIVERGENCES:
        raise ValueError(f"divergence must be one of {', '.join(DIVERGENCES)}, got {divergence!r}")
    size = len(log_p)
    rows, buckets, counts = _distinct_occurrences(bags, size)
    totals = np.bincount(rows, weights=counts, minlength=bags.n_rows)
    q = counts / totals[rows]
    if divergence == "kl":
        return np.bincount(rows, weights=q * (np.log(q) - log_p[buckets]), minlength=bags.n_rows)
    p = np.exp(log_p[buckets])
    log_m = np.log((q + p) / 2)
    touched = np.bincount(rows, weights=q * (np.log(q) - log_m) + p * (log_p[buckets] - log_m), minlength=bags.n_rows)
    untouched_mass = 1.0 - np.bincount(rows, weights=p, minlength=bags.n_rows)
    return 0.5 * touched + 0.5 * np.log(2) * np.clip(untouched_mass, 0.0, 1.0)


def set_divergences(counts: np.ndarray, reference_counts: np.ndarray, smoothing: float) -> dict[str, float]:
    """KL(Q || P) and JS(Q, P) in nats between a set's summed bags and the reference, both smoothed."""
    # imported here: scipy.stats takes most of a second to import, and scoring rows never needs it
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import entropy

    q, p = smoothed(counts, smoothing), smoothed(reference_counts, smoothing)
    return {"kl": float(entropy(q, p)), "js": float(jensenshannon(q, p) ** 2)}
