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
description and the actions; action types, lengths, consistency and form count one each, and the two
views of text-action agreement, which a fluent but wrong row fails, one and a half each). Every check of
generation's cross-check that a row failed (``meta.crosscheck``) adds ``crosscheck_penalty``.
softplus is a smooth max(z, 0): a view adds little while a row is as typical as unseen real data and
adds linearly beyond, so being extra typical in one view cannot buy back a divergence in another (a
fluent, on-topic description does not excuse actions that do not match it), and ranks stay strict.

Novelty is not divergence. The lexical views read the *form* of a row: the compounds of its actions and
its digits are masked, so a correct pair about new compounds and amounts is not far for its content.
Near-copies are the opposite case, new form of old content, and add nothing: a row is a ``seed_copy`` when
a reference row has the same content (compounds and numbers, :func:`~chemactor.selection.text.content_signature`)
and a canonical form at least ``copy_threshold`` similar (rapidfuzz ratio; case, spacing, punctuation,
tense and connectives do not count). Within the pool, a row is a ``duplicate`` when a better-scored row has
the same canonical description (or description and actions), and every seed copy is a duplicate too;
:meth:`DivergenceSelector.select` never keeps one. ``fit(reference, held_out=...)`` also indexes the
validation and test rows of the seed sources: a pool row that shares a run of
:data:`CONTAMINATION_NGRAM` words with a held-out description, copies one as a seed copy would, or
repeats a specific held-out action sequence is ``contaminated`` and never kept either.

A fitted selector is shared with :meth:`DivergenceSelector.save_pretrained` and
:meth:`DivergenceSelector.from_pretrained` (a folder with a JSON config and a NumPy archive); the loaded
selector scores every row exactly as the saved one did.

Memory: the reference distributions are fixed-size arrays (a few MB), ``score`` is a batched
``datasets.map`` (Arrow-backed, any ``num_proc``), and the only per-row state held at once is two
hashes, two flags and a float per row (plus sort indices) for deduplication and ranking, under 50 bytes a row.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from rapidfuzz import fuzz, process
from tqdm.auto import tqdm

from chemactor.cpu import cyclic_gc_paused
from chemactor.errors import InputError
from chemactor.selection.divergence import DIVERGENCES, bag_counts, sample_divergences, set_divergences, smoothed
from chemactor.selection.features import VIEW_CLASSES, Bags, Batch, View, default_views, word_ngram_hashes
from chemactor.selection.text import canonical_text, content_signature, mask_content

__all__ = ["DEFAULT_WEIGHTS", "FLAG_COLUMNS", "DivergenceSelector", "SelectionInputError"]

INPUT_COLUMNS: tuple[str, ...] = ("description", "actions")
DEFAULT_WEIGHTS: dict[str, float] = {
    "description_words": 0.5,
    "description_chars": 0.5,
    "actions_words": 0.5,
    "actions_chars": 0.5,
    "action_types": 1.0,
    "lengths": 1.0,
    "consistency": 1.0,
    "agreement": 1.5,
    "coverage": 1.5,
    "form": 1.0,
}
#: the columns ``score`` adds besides the divergences: why a row is never selected, and failed cross-checks
FLAG_COLUMNS: tuple[str, ...] = ("crosscheck_failed", "seed_copy", "contaminated", "duplicate")
CONFIG_NAME, ARRAYS_NAME = "selector_config.json", "selector_arrays.npz"
FORMAT_VERSION = 1
_DEDUP_ACTIONS = re.compile(r"[\W_]+")
_ASCII_NOT_ALNUM = bytes(byte for byte in range(128) if not chr(byte).isalnum())
CONTAMINATION_NGRAM = 10  # words: a shared run this long is copied text, not a shared phrase


def _specific_actions(actions: str) -> str:
    """The canonical form of an action sequence specific enough to identify its source: one with at least
    four actions and a quantity (generic work-up sequences recur across unrelated procedures)."""
    if actions.count(";") < 3 or not any(char.isdigit() for char in actions):
        return ""
    return canonical_text(actions)


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


def _dedup_key(text: str | bytes) -> int:
    """A 64-bit key of a text or of its UTF-8 bytes (stable across processes, unlike ``hash``)."""
    digest = hashlib.blake2b(text.encode("utf-8") if isinstance(text, str) else text, digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def _letters_and_digits(text: str) -> bytes:
    """The UTF-8 bytes of ``text`` lowercased without the characters that are not letters or digits.

    ``_DEDUP_ACTIONS.sub("", text.lower())``; an ASCII text (most action strings) drops them with
    ``bytes.translate`` in a fraction of the time, and the same bytes result.
    """
    lowered = text.lower()
    if lowered.isascii():
        return lowered.encode("ascii").translate(None, _ASCII_NOT_ALNUM)
    return _DEDUP_ACTIONS.sub("", lowered).encode("utf-8")


def _crosscheck_failures(meta: Any) -> int:
    """How many of generation's cross-checks a row failed (``meta.crosscheck.checks``); 0 without a verdict."""
    if isinstance(meta, str):
        if "crosscheck" not in meta and "\\" not in meta:
            return 0  # no verdict, and no escape that could spell its key: not worth parsing the JSON
        try:
            meta = json.loads(meta) if meta.strip() else {}
        except json.JSONDecodeError:
            return 0
    verdict = (meta or {}).get("crosscheck") if isinstance(meta, Mapping) else None
    if not isinstance(verdict, Mapping):
        return 0
    failed = sum(not passed for passed in (verdict.get("checks") or {}).values())
    return max(failed, int(verdict.get("passed") is False))


class _CopyIndex:
    """Descriptions to recognize again under trivial rewording: grouped by content (their compounds and
    numbers), each kept as its canonical form with content masked. A text is a copy when a text of the same
    content has a form at least ``threshold`` similar (rapidfuzz ratio, 0-100)."""

    def __init__(self, forms: Mapping[str, list[str]] | None = None) -> None:
        self.forms: dict[str, list[str]] = {key: list(value) for key, value in (forms or {}).items()}
        self._numbers = {key.rpartition("#")[2] for key in self.forms}

    @staticmethod
    def key_and_form(description: str, names: Sequence[str]) -> tuple[str, str]:
        return content_signature(description, names), canonical_text(mask_content(description, names))

    def add(self, description: str, names: Sequence[str]) -> None:
        if description.strip():
            key, form = self.key_and_form(description, names)
            self.forms.setdefault(key, []).append(form)
            self._numbers.add(key.rpartition("#")[2])

    def matches(self, batch: Batch, threshold: float) -> np.ndarray:
        found = np.zeros(len(batch), dtype=bool)
        if not self.forms:
            return found
        for row, (description, names, numbers) in enumerate(
            zip(batch.descriptions, batch.compound_names, batch.description_numbers, strict=True)
        ):
            if not description.strip() or numbers not in self._numbers:
                continue  # most rows: no reference row has the same numbers, so none has the same content
            choices = self.forms.get(content_signature(description, names, numbers))
            if choices:  # the form only matters, and is only computed, where the content is the same
                form = canonical_text(mask_content(description, names))
                found[row] = process.extractOne(form, choices, scorer=fuzz.ratio, score_cutoff=threshold) is not None
        return found


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
    ``deduplicate``: mark duplicates and seed copies as ``duplicate`` (never selected); off, every
    ``duplicate`` is false; ``copy_threshold``: the form similarity (rapidfuzz ratio, 0-100) of a seed copy;
    ``crosscheck_penalty``: what each failed cross-check adds to the combined divergence.
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
        copy_threshold: float = 90.0,
        crosscheck_penalty: float = 1.0,
    ):
        if divergence not in DIVERGENCES:
            raise ValueError(f"divergence must be 'kl' or 'js', got {divergence!r}")
        if not 0 < smoothing < 1:
            raise ValueError(f"smoothing must be in (0, 1), got {smoothing}")
        if folds < 2:
            raise ValueError(f"folds must be at least 2, got {folds}")
        if not 0 < copy_threshold <= 100:
            raise ValueError(f"copy_threshold must be in (0, 100], got {copy_threshold}")
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
        self.copy_threshold, self.crosscheck_penalty = copy_threshold, crosscheck_penalty
        self.reference_counts: dict[str, np.ndarray] = {}
        self.log_p: dict[str, np.ndarray] = {}
        self.mean: dict[str, float] = {}
        self.std: dict[str, float] = {}
        self.seed_copies = _CopyIndex()
        self.held_out_copies = _CopyIndex()
        self.held_out_ngrams = np.zeros(0, dtype=np.uint64)
        self.held_out_actions: set[str] = set()

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

    def fit(self, reference: datasets.Dataset, held_out: datasets.Dataset | None = None) -> DivergenceSelector:
        """Fit every view's reference distribution and its out-of-fold standardization on ``reference``.

        A view that learns from the reference (``view.learned``) is fitted on the other folds before it
        describes a fold's rows, so its standardization, too, is that of unseen real pairs.
        ``held_out``: rows that must not reach training (the validation and test splits of the seed
        sources); :meth:`score` marks generated rows that overlap them as ``contaminated``.
        """
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
            fold_rows = [[folds[view.name] == fold for folds in folds_of] for fold in range(self.folds)]
            bags = None if view.learned else [view.bags(batch) for batch in batches]
            counts = np.zeros((self.folds, view.size))
            fold_bags: list[list[Bags]] = []
            for fold in range(self.folds):
                if view.learned:  # learn from the other folds, then describe this one
                    view.fit(batches, [(folds[view.name] >= 0) & (folds[view.name] != fold) for folds in folds_of])
                    bags = [view.bags(batch) for batch in batches]
                fold_bags.append([_restrict(b, rows) for b, rows in zip(bags, fold_rows[fold], strict=True)])
                counts[fold] = sum(bag_counts(b, view.size) for b in fold_bags[fold])
            if view.learned:
                view.fit(batches, [folds[view.name] >= 0 for folds in folds_of])
            total = counts.sum(axis=0)
            self.reference_counts[view.name] = total
            self.log_p[view.name] = np.log(smoothed(total, self.smoothing))
            # each fold scored against the distribution of the others: how unseen real data scores
            scores = []
            for fold in range(self.folds):
                held = np.log(smoothed(total - counts[fold], self.smoothing))
                for b, rows in zip(fold_bags[fold], fold_rows[fold], strict=True):
                    if rows.any():
                        scores.append(sample_divergences(b, held, self.divergence)[rows])
            scores = np.concatenate(scores)
            self.mean[view.name] = float(scores.mean())
            self.std[view.name] = float(scores.std()) if scores.std() > 1e-9 else 1.0
        self.seed_copies = _CopyIndex()
        for batch in batches:
            for description, names in zip(batch.descriptions, batch.compound_names, strict=True):
                self.seed_copies.add(description, names)
        self.held_out_copies, self.held_out_actions = _CopyIndex(), set()
        self.held_out_ngrams = np.zeros(0, dtype=np.uint64)
        if held_out is not None:
            self.add_held_out(held_out)
        return self

    def add_held_out(self, held_out: datasets.Dataset) -> DivergenceSelector:
        """Index more rows that must not reach training, besides those given to :meth:`fit`: a fitted selector
        loaded elsewhere also keeps out the evaluation rows of the run that scores with it. Scores do not
        change; only ``contaminated``. The rows are saved with the selector."""
        if len(held_out) == 0:
            return self
        _check_columns(held_out, "held_out")
        ngrams = [self.held_out_ngrams]
        for batch in self._batches(held_out, "Indexing held-out rows"):
            for description, names in zip(batch.descriptions, batch.compound_names, strict=True):
                self.held_out_copies.add(description, names)
            ngrams.append(self._long_ngrams(batch)[1])
            self.held_out_actions.update(key for key in map(_specific_actions, batch.actions) if key)
        self.held_out_ngrams = np.unique(np.concatenate(ngrams))
        return self

    @staticmethod
    def _long_ngrams(batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        [(rows, hashes)] = word_ngram_hashes(batch.descriptions, (CONTAMINATION_NGRAM, CONTAMINATION_NGRAM))
        return rows, hashes

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

    def score_batch(
        self,
        descriptions: Sequence[str | None],
        actions: Sequence[str | None],
        meta: Sequence[Any] | None = None,
    ) -> dict[str, np.ndarray]:
        """Standardized per-view divergences, ``crosscheck_failed`` and the combined ``divergence`` of a batch.

        ``meta``: the rows' ``meta`` (JSON strings or mappings); every check of generation's cross-check
        that a row failed adds ``crosscheck_penalty`` to its combined divergence.
        """
        return self._score(Batch(descriptions, actions, self.style), meta)

    def _score(self, batch: Batch, meta: Sequence[Any] | None) -> dict[str, np.ndarray]:
        self._check_fitted()
        combined = np.zeros(len(batch))
        result: dict[str, np.ndarray] = {}
        for view, column in zip(self.views, self.score_columns, strict=True):
            raw = sample_divergences(view.bags(batch), self.log_p[view.name], self.divergence)
            standardized = (raw - self.mean[view.name]) / self.std[view.name]
            result[column] = standardized
            combined += self.weights[view.name] * np.logaddexp(0.0, standardized)
        failed = np.array([_crosscheck_failures(item) for item in meta] if meta is not None else [0] * len(batch))
        result["crosscheck_failed"] = failed
        result["divergence"] = combined / sum(self.weights.values()) + self.crosscheck_penalty * failed
        return result

    def _map_batch(self, batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        with cyclic_gc_paused():
            return self._scores_and_flags(batch, indices)

    def _scores_and_flags(self, batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        rows = Batch(batch["description"], batch["actions"], self.style)
        scores = self._score(rows, batch.get("meta"))
        scores["seed_copy"] = self.seed_copies.matches(rows, self.copy_threshold)
        scores["contaminated"] = self.held_out_copies.matches(rows, self.copy_threshold)
        if len(self.held_out_ngrams):
            ngram_rows, hashes = self._long_ngrams(rows)
            shared = np.zeros(len(rows), dtype=bool)
            shared[ngram_rows[np.isin(hashes, self.held_out_ngrams)]] = True
            scores["contaminated"] |= shared
        if self.held_out_actions:
            scores["contaminated"] |= np.array(
                [_specific_actions(text) in self.held_out_actions for text in rows.actions]
            )
        # keys of the canonical description (trivial rewording ignored), alone and with the actions
        canonical = rows.canonical_descriptions
        scores["_pair_key"] = [
            _dedup_key(b"%s\x00%s" % (d.encode("utf-8"), _letters_and_digits(a)))
            for d, a in zip(canonical, rows.actions, strict=True)
        ]
        # rows without a description share no text: give each its own key (its row index)
        scores["_text_key"] = [_dedup_key(d) if d else i for i, d in zip(indices, canonical, strict=True)]
        return scores

    def score(self, pool: datasets.Dataset, num_proc: int | None = None, **map_kwargs) -> datasets.Dataset:
        """``pool`` with the per-view columns, ``divergence`` (lower = closer to the reference) and flags.

        Flags: ``seed_copy`` (a reference row again, up to trivial rewording), ``duplicate`` (a seed copy,
        or a row that a better-scored row of the pool repeats up to trivial rewording), ``contaminated``
        (overlaps the ``held_out`` rows given to :meth:`fit`) and ``crosscheck_failed`` (the number of failed
        cross-checks in ``meta``, when the pool has that column). None of the flagged rows is selected.

        Runs as ``pool.map(batched=True)``; ``num_proc`` and other ``map`` arguments (``cache_file_name``,
        ``load_from_cache_file``, ...) pass through, so a pool loaded from disk is scored shard by shard and
        a finished run is reused from the datasets cache.
        """
        self._check_fitted()
        _check_columns(pool, "pool")
        features = pool.features.copy()
        for column in [*self.score_columns, "divergence"]:
            features[column] = datasets.Value("float64")
        features["crosscheck_failed"] = datasets.Value("int64")
        features["seed_copy"] = features["contaminated"] = datasets.Value("bool")
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
        if self.deduplicate:
            seed_copy = scored.data.column("seed_copy").to_numpy(zero_copy_only=False).astype(bool)
            duplicate = self._duplicates(scored) | seed_copy
        else:
            duplicate = np.zeros(len(scored), dtype=bool)
        return scored.remove_columns(["_pair_key", "_text_key"]).add_column("duplicate", duplicate)

    @staticmethod
    def _duplicates(scored: datasets.Dataset) -> np.ndarray:
        """Rows that another row of the same key group beats (lower divergence, then earlier)."""
        table = scored.data
        divergence = table.column("divergence").to_numpy()
        duplicate = np.zeros(len(divergence), dtype=bool)
        for key in ("_pair_key", "_text_key"):
            keys = table.column(key).to_numpy()
            order = np.lexsort((divergence, keys))  # stable: on a tie the earlier row comes first
            keys = keys[order]
            later = np.zeros(len(keys), dtype=bool)
            np.equal(keys[1:], keys[:-1], out=later[1:])
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
        """Which rows of ``scored`` to keep (a boolean array); duplicates and contaminated rows are never kept.

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
        if "contaminated" in scored.column_names:
            eligible &= ~scored.data.column("contaminated").to_numpy(zero_copy_only=False)
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

    # --- sharing a fitted selector ----------------------------------------------------------------

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write the fitted selector to ``directory``: ``selector_config.json`` (settings, views, what learned
        views learned, standardization, seed and held-out indexes) and ``selector_arrays.npz`` (reference
        counts, held-out n-grams). :meth:`from_pretrained` restores it and scores exactly as this one does.
        """
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {
            "format_version": FORMAT_VERSION,
            "views": [{"class": type(view).__name__, "config": view.config()} for view in self.views],
            "view_states": {view.name: view.state() for view in self.views if view.learned},
            "weights": self.weights,
            "divergence": self.divergence,
            "smoothing": self.smoothing,
            "style": self.style,
            "folds": self.folds,
            "batch_size": self.batch_size,
            "deduplicate": self.deduplicate,
            "copy_threshold": self.copy_threshold,
            "crosscheck_penalty": self.crosscheck_penalty,
            "mean": self.mean,
            "std": self.std,
            "seed_copies": self.seed_copies.forms,
            "held_out_copies": self.held_out_copies.forms,
            "held_out_actions": sorted(self.held_out_actions),
        }
        (directory / CONFIG_NAME).write_text(json.dumps(config, indent=1, ensure_ascii=False), encoding="utf-8")
        arrays = {f"reference_counts/{name}": counts for name, counts in self.reference_counts.items()}
        np.savez_compressed(directory / ARRAYS_NAME, held_out_ngrams=self.held_out_ngrams, **arrays)
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> DivergenceSelector:
        """The selector :meth:`save_pretrained` wrote to ``directory``."""
        directory = Path(directory)
        path = directory / CONFIG_NAME
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SelectionInputError(f"{directory}: no {CONFIG_NAME}; not a saved selector") from None
        except json.JSONDecodeError as exc:
            raise SelectionInputError(f"{path}: not valid JSON ({exc})") from None
        if config.get("format_version") != FORMAT_VERSION:
            raise SelectionInputError(
                f"{path}: format_version {config.get('format_version')!r}, this version reads {FORMAT_VERSION}"
            )
        views = []
        for spec in config["views"]:
            if spec["class"] not in VIEW_CLASSES:
                raise SelectionInputError(f"{path}: unknown view class {spec['class']!r}")
            view = VIEW_CLASSES[spec["class"]](**spec["config"])
            if view.learned:
                view.load_state(config["view_states"][view.name])
            views.append(view)
        names = ("divergence", "smoothing", "style", "folds", "batch_size", "deduplicate", "copy_threshold")
        selector = cls(
            views=views,
            weights=config["weights"],
            crosscheck_penalty=config["crosscheck_penalty"],
            **{name: config[name] for name in names},
        )
        with np.load(directory / ARRAYS_NAME) as arrays:
            for view in views:
                counts = arrays[f"reference_counts/{view.name}"]
                selector.reference_counts[view.name] = counts
                selector.log_p[view.name] = np.log(smoothed(counts, selector.smoothing))
            selector.held_out_ngrams = arrays["held_out_ngrams"]
        selector.mean, selector.std = dict(config["mean"]), dict(config["std"])
        selector.seed_copies = _CopyIndex(config["seed_copies"])
        selector.held_out_copies = _CopyIndex(config["held_out_copies"])
        selector.held_out_actions = set(config["held_out_actions"])
        return selector
