"""``DivergenceSelector``: fit on real data, score a pool with ``datasets.map``, keep the closest rows.

Per view ``v`` (see :mod:`chemactor.selection.features`) a row gets its divergence ``d_v`` from the
smoothed reference distribution (KL by default, see :mod:`chemactor.selection.divergence`). Raw
divergences of different views live on different scales, so each is standardized by how *unseen* real
data scores: the reference is split into ``folds`` parts, every part is scored against the distribution
fitted on the others, and the mean ``mu_v`` and standard deviation ``sigma_v`` of those out-of-fold
scores give ``z_v = (d_v - mu_v) / sigma_v``. A fresh real pair is then at about 0 in every view, a
bad one several units above. The combined score is a one-sided weighted mean

    divergence = sum_v w_v softplus(z_v) / sum_v w_v,    softplus(z) = log(1 + exp(z))

with :data:`DEFAULT_WEIGHTS` (the four lexical views share the weight of one view each for the
description and the actions; action types, lengths and consistency count one each).
softplus is a smooth max(z, 0): a view adds little while a row is as typical as unseen real data and
adds linearly beyond, so being extra typical in one view cannot buy back a divergence in another (a
fluent, on-topic description does not excuse actions that do not match it), and ranks stay strict.

Duplicates add nothing but weight to a mode of the pool. A row is marked ``duplicate`` when an earlier
or better-scored row has the same description and actions, or the same description, after lowercasing
and dropping spaces and punctuation; :meth:`DivergenceSelector.select` never keeps one.

Memory: the reference distributions are fixed-size arrays (a few MB), ``score`` is a batched
``datasets.map`` (Arrow-backed, any ``num_proc``), and the only per-row state held at once is two
hashes and a float per row (plus sort indices) for deduplication and ranking, under 50 bytes a row.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence

import datasets
import numpy as np
from tqdm.auto import tqdm

from chemactor.errors import InputError
from chemactor.selection.divergence import DIVERGENCES, bag_counts, sample_divergences, set_divergences, smoothed
from chemactor.selection.features import Bags, Batch, View, default_views

__all__ = ["DEFAULT_WEIGHTS", "DivergenceSelector", "SelectionInputError"]

INPUT_COLUMNS: tuple[str, ...] = ("description", "actions")
DEFAULT_WEIGHTS: dict[str, float] = {
    "description_words": 0.5,
    "description_chars": 0.5,
    "actions_words": 0.5,
    "actions_chars": 0.5,
    "action_types": 1.0,
    "lengths": 1.0,
    "consistency": 1.0,
}
_DEDUP_TEXT = re.compile(r"[\W_]+")


class SelectionInputError(InputError):
    """The reference or the pool cannot be used as given; the message names the dataset and the problem."""


def _check_columns(dataset: datasets.Dataset, what: str, columns: Sequence[str] = INPUT_COLUMNS) -> None:
    if not isinstance(dataset, datasets.Dataset):
        raise SelectionInputError(f"{what} must be a datasets.Dataset, got {type(dataset).__name__}")
    missing = [name for name in columns if name not in dataset.column_names]
    if missing:
        raise SelectionInputError(
            f"{what} is missing column(s) {', '.join(missing)}; it has {', '.join(dataset.column_names) or 'none'}"
        )


def _dedup_key(text: str) -> int:
    digest = hashlib.blake2b(_DEDUP_TEXT.sub("", text.lower()).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def _restrict(bags: Bags, keep: np.ndarray) -> Bags:
    """The occurrences of the rows where ``keep`` is true (other rows keep their index but no buckets)."""
    mask = keep[bags.rows]
    return Bags(rows=bags.rows[mask], buckets=bags.buckets[mask], n_rows=bags.n_rows)


class DivergenceSelector:
    """Scores candidate (description, actions) pairs by their divergence from real annotated data.

    ``views``: the feature views (default :func:`~chemactor.selection.features.default_views`);
    ``weights``: per-view weights of the combined score (default :data:`DEFAULT_WEIGHTS`, 1 for others);
    ``divergence``: ``"kl"`` or ``"js"``; ``smoothing``: the uniform share ``lam`` of every reference
    distribution; ``style``: the action format of the data (``readable`` or ``placeholder``);
    ``deduplicate``: mark duplicates (never selected); off, every ``duplicate`` is false.
    """

    def __init__(
        self,
        views: Sequence[View] | None = None,
        weights: Mapping[str, float] | None = None,
        divergence: str = "kl",
        smoothing: float = 0.1,
        style: str = "readable",
        folds: int = 5,
        batch_size: int = 1000,
        deduplicate: bool = True,
    ):
        if divergence not in DIVERGENCES:
            raise ValueError(f"divergence must be 'kl' or 'js', got {divergence!r}")
        if not 0 < smoothing < 1:
            raise ValueError(f"smoothing must be in (0, 1), got {smoothing}")
        if folds < 2:
            raise ValueError(f"folds must be at least 2, got {folds}")
        self.views = list(views) if views is not None else default_views()
        names = [view.name for view in self.views]
        if len(set(names)) != len(names):
            raise ValueError(f"view names must be unique, got {names}")
        weights = dict(weights or {})
        unknown = sorted(set(weights) - set(names))
        if unknown:
            raise ValueError(f"weights given for unknown view(s) {', '.join(unknown)}; views are {', '.join(names)}")
        self.weights = {name: float(weights.get(name, DEFAULT_WEIGHTS.get(name, 1.0))) for name in names}
        if sum(self.weights.values()) <= 0:
            raise ValueError("the view weights must not all be zero")
        self.divergence, self.smoothing, self.style = divergence, smoothing, style
        self.folds, self.batch_size, self.deduplicate = folds, batch_size, deduplicate
        self.reference_counts: dict[str, np.ndarray] = {}
        self.log_p: dict[str, np.ndarray] = {}
        self.mean: dict[str, float] = {}
        self.std: dict[str, float] = {}

    # --- fitting --------------------------------------------------------------------------------

    def _batches(self, dataset: datasets.Dataset, desc: str) -> Iterator[Batch]:
        columns = dataset.select_columns(list(INPUT_COLUMNS))
        total = -(-len(dataset) // self.batch_size)
        for batch in tqdm(columns.iter(batch_size=self.batch_size), total=total, desc=desc, leave=False):
            yield Batch(batch["description"], batch["actions"], self.style)

    def _usable(self, batch: Batch, view: View) -> np.ndarray:
        """Rows that carry every field the view reads (an ORD row has no actions to fit on)."""
        usable = np.ones(len(batch), dtype=bool)
        for field in view.fields:
            texts = batch.descriptions if field == "description" else batch.actions
            usable &= np.fromiter((bool(text.strip()) for text in texts), dtype=bool, count=len(texts))
        return usable

    def fit(self, reference: datasets.Dataset) -> DivergenceSelector:
        """Fit every view's reference distribution and its out-of-fold standardization on ``reference``."""
        _check_columns(reference, "reference")
        if len(reference) == 0:
            raise SelectionInputError("reference is empty: the selector needs real annotated pairs to compare with")
        batches = list(self._batches(reference, "Fitting reference"))
        # every row's fold per view (row index modulo folds), -1 where it lacks the fields the view reads
        folds_of, start = [], 0
        for batch in batches:
            index = start + np.arange(len(batch))
            start += len(batch)
            folds_of.append({v.name: np.where(self._usable(batch, v), index % self.folds, -1) for v in self.views})
        empty = [view.name for view in self.views if all((folds[view.name] < 0).all() for folds in folds_of)]
        if empty:
            raise SelectionInputError(
                f"reference has no row with the fields of view(s) {', '.join(empty)} "
                "(every such row has an empty description or actions); drop those views or add such rows"
            )
        for view in self.views:
            counts = np.zeros((self.folds, view.size))
            for batch, folds in zip(batches, folds_of, strict=True):
                bags = view.bags(batch)
                for fold in range(self.folds):
                    counts[fold] += bag_counts(_restrict(bags, folds[view.name] == fold), view.size)
            total = counts.sum(axis=0)
            self.reference_counts[view.name] = total
            self.log_p[view.name] = np.log(smoothed(total, self.smoothing))
            # each fold scored against the distribution of the others: how unseen real data scores
            held_out = [np.log(smoothed(total - counts[fold], self.smoothing)) for fold in range(self.folds)]
            scores = []
            for batch, folds in zip(batches, folds_of, strict=True):
                bags = view.bags(batch)
                for fold in range(self.folds):
                    rows = folds[view.name] == fold
                    if rows.any():
                        scores.append(sample_divergences(_restrict(bags, rows), held_out[fold], self.divergence)[rows])
            scores = np.concatenate(scores)
            self.mean[view.name] = float(scores.mean())
            self.std[view.name] = float(scores.std()) if scores.std() > 1e-9 else 1.0
        return self

    @property
    def fitted(self) -> bool:
        return bool(self.log_p)

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError("the selector is not fitted: call fit(reference) first")

    # --- scoring --------------------------------------------------------------------------------

    @property
    def score_columns(self) -> list[str]:
        """The per-view columns ``score`` adds (standardized divergences), in view order."""
        return [f"divergence_{view.name}" for view in self.views]

    def score_batch(self, descriptions: Sequence[str | None], actions: Sequence[str | None]) -> dict[str, np.ndarray]:
        """Standardized per-view divergences and the combined ``divergence`` of a batch of pairs."""
        self._check_fitted()
        batch = Batch(descriptions, actions, self.style)
        combined = np.zeros(len(batch))
        result: dict[str, np.ndarray] = {}
        for view, column in zip(self.views, self.score_columns, strict=True):
            raw = sample_divergences(view.bags(batch), self.log_p[view.name], self.divergence)
            standardized = (raw - self.mean[view.name]) / self.std[view.name]
            result[column] = standardized
            combined += self.weights[view.name] * np.logaddexp(0.0, standardized)
        result["divergence"] = combined / sum(self.weights.values())
        return result

    def _map_batch(self, batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        scores = self.score_batch(batch["description"], batch["actions"])
        descriptions = [text or "" for text in batch["description"]]
        scores["_pair_key"] = [
            _dedup_key(f"{d}\x00{a or ''}") for d, a in zip(descriptions, batch["actions"], strict=True)
        ]
        # rows without a description share no text: give each its own key (its row index)
        scores["_text_key"] = [_dedup_key(d) if d.strip() else i for i, d in zip(indices, descriptions, strict=True)]
        return scores

    def score(self, pool: datasets.Dataset, num_proc: int | None = None, **map_kwargs) -> datasets.Dataset:
        """``pool`` with the per-view columns, ``divergence`` (lower = closer to the reference) and ``duplicate``.

        Runs as ``pool.map(batched=True)``; ``num_proc`` and other ``map`` arguments (``cache_file_name``,
        ``load_from_cache_file``, ...) pass through, so a pool loaded from disk is scored shard by shard and
        a finished run is reused from the datasets cache.
        """
        self._check_fitted()
        _check_columns(pool, "pool")
        features = pool.features.copy()
        for column in [*self.score_columns, "divergence"]:
            features[column] = datasets.Value("float64")
        features["_pair_key"] = features["_text_key"] = datasets.Value("int64")
        map_kwargs.setdefault("batch_size", self.batch_size)
        if len(pool) == 0:  # map returns an empty dataset as it is, without the new columns
            scored = datasets.Dataset.from_dict({name: [] for name in features}, features=features)
        else:
            scored = pool.map(
                self._map_batch,
                batched=True,
                with_indices=True,
                num_proc=num_proc,
                features=features,
                desc="Scoring divergence",
                **map_kwargs,
            )
        duplicate = self._duplicates(scored) if self.deduplicate else np.zeros(len(scored), dtype=bool)
        return scored.remove_columns(["_pair_key", "_text_key"]).add_column("duplicate", duplicate)

    @staticmethod
    def _duplicates(scored: datasets.Dataset) -> np.ndarray:
        """Rows that another row of the same key group beats (lower divergence, then earlier)."""
        table = scored.data
        divergence = table.column("divergence").to_numpy()
        duplicate = np.zeros(len(divergence), dtype=bool)
        for key in ("_pair_key", "_text_key"):
            keys = table.column(key).to_numpy()
            order = np.lexsort((np.arange(len(keys)), divergence, keys))
            sorted_keys = keys[order]
            later = np.zeros(len(keys), dtype=bool)
            later[1:] = sorted_keys[1:] == sorted_keys[:-1]
            duplicate[order[later]] = True
        return duplicate

    # --- selecting ------------------------------------------------------------------------------

    def selection_mask(
        self,
        scored: datasets.Dataset,
        *,
        fraction: float | None = None,
        k: int | None = None,
        threshold: float | None = None,
    ) -> np.ndarray:
        """Which rows of ``scored`` to keep (a boolean array); duplicates are never kept.

        Exactly one of ``fraction`` (of all rows), ``k`` (rows) or ``threshold`` (highest ``divergence``
        kept) says how many: the lowest-divergence rows are taken.
        """
        options = {"fraction": fraction, "k": k, "threshold": threshold}
        given = [name for name, value in options.items() if value is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of fraction, k or threshold (got {', '.join(given) or 'none'})")
        _check_columns(scored, "scored dataset", ("divergence", "duplicate"))
        divergence = scored.data.column("divergence").to_numpy(zero_copy_only=False).astype(float)
        eligible = ~scored.data.column("duplicate").to_numpy(zero_copy_only=False) & ~np.isnan(divergence)
        if threshold is not None:
            return eligible & (divergence <= threshold)
        if fraction is not None:
            if not 0 <= fraction <= 1:
                raise ValueError(f"fraction must be in [0, 1], got {fraction}")
            k = round(fraction * len(scored))
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        candidates = np.flatnonzero(eligible)
        keep = np.zeros(len(scored), dtype=bool)
        keep[candidates[np.argsort(divergence[candidates], kind="stable")[:k]]] = True
        return keep

    def select(
        self,
        scored: datasets.Dataset,
        *,
        fraction: float | None = None,
        k: int | None = None,
        threshold: float | None = None,
    ) -> datasets.Dataset:
        """The rows :meth:`selection_mask` keeps, in their original order."""
        mask = self.selection_mask(scored, fraction=fraction, k=k, threshold=threshold)
        return scored.select(np.flatnonzero(mask))

    # --- whole sets -----------------------------------------------------------------------------

    def counts(self, dataset: datasets.Dataset) -> dict[str, np.ndarray]:
        """The summed bags of every view over ``dataset`` (its distribution in each view, unnormalized)."""
        _check_columns(dataset, "dataset")
        totals = {view.name: np.zeros(view.size) for view in self.views}
        for batch in self._batches(dataset, "Counting"):
            for view in self.views:
                totals[view.name] += bag_counts(view.bags(batch), view.size)
        return totals

    def set_divergences(self, counts: Mapping[str, np.ndarray]) -> dict[str, dict[str, float]]:
        """Per view, KL and JS (nats) from the reference of a set given by its :meth:`counts`."""
        self._check_fitted()
        return {name: set_divergences(counts[name], self.reference_counts[name], self.smoothing) for name in self.log_p}
