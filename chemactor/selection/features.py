"""Views: each turns a batch of (description, actions) pairs into a bag of bucket ids per row.

A view is a fixed-size discrete space (``size`` buckets) and a rule that drops every row of a batch
into some of its buckets. Everything the selector does with a view (fit a reference distribution,
score one row, compare whole sets) only needs these bags, so a view is a few lines and every view is
scored by the same, tested divergence code. Bucket 0 of every view is reserved for "nothing there"
(empty text, no parsable action), which the reference rarely shows and so scores as unusual.

Bags are two flat arrays (row index, bucket id) per batch instead of one vector per row: memory is
proportional to the text in the batch, never to ``batch size x size``, and the arrays pickle cheaply
to ``datasets.map`` workers.

Text is hashed with numpy over the UTF-8 bytes of the whole batch at once (polynomial rolling hashes
modulo 2**64), so the lexical views cost a handful of vector operations per batch, not a Python call
per n-gram, and the hashes are identical in every process (unlike Python's salted ``hash``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from chemactor.actions import ACTION_NAMES, ActionParseError, action_types, iter_chemicals, parse_actions

__all__ = [
    "ActionTypeView",
    "Bags",
    "Batch",
    "ConsistencyView",
    "LengthView",
    "NgramView",
    "View",
    "default_views",
]

_BASE = 1_000_003  # odd, so it is invertible modulo 2**64
_BASE_INVERSE = pow(_BASE, -1, 1 << 64)
_PAIR = 0x9E3779B97F4A7C15  # combines two hashes into the hash of an n-gram of words
_MIX = 0xFF51AFD7ED558CCD  # spreads a hash's entropy into the high bits used for the bucket

_LOWER = np.arange(256, dtype=np.uint8)
_LOWER[ord("A") : ord("Z") + 1] += 32
_WORD_BYTE = np.zeros(256, dtype=bool)
for _low, _high in (("0", "9"), ("a", "z"), ("A", "Z")):
    _WORD_BYTE[ord(_low) : ord(_high) + 1] = True
_WORD_BYTE[128:] = True  # bytes of non-ASCII letters (Greek, accents, µ) belong to words

_SENTENCE_END = re.compile(r"[.!?](?:\s+|$)")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_NORMALIZE = re.compile(r"[\s\u200c]+")


@dataclass(frozen=True)
class Bags:
    """Bucket occurrences of a batch: ``buckets[i]`` belongs to batch row ``rows[i]``."""

    rows: np.ndarray
    buckets: np.ndarray
    n_rows: int


class Batch:
    """The rows of one ``datasets.map`` batch, with derived data computed once and shared by views."""

    def __init__(self, descriptions: Sequence[str | None], actions: Sequence[str | None], style: str = "readable"):
        self.descriptions = [text or "" for text in descriptions]
        self.actions = [text or "" for text in actions]
        self.style = style

    def __len__(self) -> int:
        return len(self.descriptions)

    @cached_property
    def action_types(self) -> list[list[str]]:
        """The leading keyword of every action (``UNKNOWN`` for one outside the grammar)."""
        return [action_types(text, style=self.style) if text.strip() else [] for text in self.actions]

    @cached_property
    def parsed_actions(self) -> list[list | None]:
        """The typed actions of every row; ``None`` where the string does not parse."""
        parsed: list[list | None] = []
        for text in self.actions:
            try:
                parsed.append(parse_actions(text, style=self.style) if text.strip() else None)
            except ActionParseError:
                parsed.append(None)
        return parsed


class View:
    """A discrete feature space of ``size`` buckets; subclasses say how rows fall into buckets."""

    name: str
    size: int
    #: the fields a reference row must have (non-empty) to be fitted on; the others are skipped
    fields: tuple[str, ...] = ("description", "actions")

    def bags(self, batch: Batch) -> Bags:
        raise NotImplementedError

    def labels(self) -> list[str] | None:
        """Human-readable bucket names, where buckets have them (for plots)."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, size={self.size})"


def _empty_rows_to_reserved(rows: np.ndarray, buckets: np.ndarray, n_rows: int) -> Bags:
    """Add bucket 0 for every row that produced nothing, so that no row has an empty distribution."""
    present = np.zeros(n_rows, dtype=bool)
    present[rows] = True
    missing = np.flatnonzero(~present)
    return Bags(
        rows=np.concatenate([rows, missing]).astype(np.int64),
        buckets=np.concatenate([buckets, np.zeros(len(missing), dtype=np.int64)]).astype(np.int64),
        n_rows=n_rows,
    )


def _to_bucket(hashes: np.ndarray, size: int) -> np.ndarray:
    """Map 64-bit hashes onto buckets 1..size-1 (0 stays reserved)."""
    mixed = hashes * np.uint64(_MIX)
    return ((mixed >> np.uint64(33)) % np.uint64(size - 1)).astype(np.int64) + 1


def _batch_bytes(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Lowercased UTF-8 bytes of all texts back to back, and the row of every byte."""
    encoded = [text.encode("utf-8") for text in texts]
    lengths = np.fromiter((len(chunk) for chunk in encoded), dtype=np.int64, count=len(encoded))
    data = _LOWER[np.frombuffer(b"".join(encoded), dtype=np.uint8)]
    return data, np.repeat(np.arange(len(texts), dtype=np.int64), lengths)


def char_ngram_hashes(texts: Sequence[str], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every lowercased byte n-gram that lies inside one text, with its row."""
    data, row_of = _batch_bytes(texts)
    if len(data) < n:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint64)
    starts = np.arange(len(data) - n + 1)
    starts = starts[row_of[starts] == row_of[starts + n - 1]]
    hashes = np.zeros(len(starts), dtype=np.uint64)
    values = data.astype(np.uint64) + np.uint64(1)
    for offset in range(n):
        hashes = hashes * np.uint64(_BASE) + values[starts + offset]
    return row_of[starts], hashes


def word_hashes(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every word (maximal run of letters and digits, lowercased), with its row.

    A word's hash is sum(b_t * BASE**(end-1-t)); with prefix sums of b_t * BASE**-t (BASE is odd, so
    invertible modulo 2**64) every word is hashed at once without a Python loop over tokens.
    """
    data, row_of = _batch_bytes(texts)
    is_word = _WORD_BYTE[data]
    # a word cannot run across two texts: mark the first byte of every text as a boundary
    boundary = np.ones(len(data), dtype=bool)
    boundary[1:] = row_of[1:] != row_of[:-1]
    previous = np.zeros(len(data), dtype=bool)
    previous[1:] = is_word[:-1]
    starts = np.flatnonzero(is_word & (~previous | boundary))
    following = np.zeros(len(data), dtype=bool)
    following[:-1] = is_word[1:] & ~boundary[1:]
    ends = np.flatnonzero(is_word & ~following) + 1
    with np.errstate(over="ignore"):
        powers = np.cumprod(np.full(len(data) + 1, _BASE, dtype=np.uint64))
        powers[1:] = powers[:-1]
        powers[0] = 1
        inverse_powers = np.cumprod(np.full(len(data) + 1, _BASE_INVERSE, dtype=np.uint64))
        inverse_powers[1:] = inverse_powers[:-1]
        inverse_powers[0] = 1
        prefix = np.zeros(len(data) + 1, dtype=np.uint64)
        np.cumsum((data.astype(np.uint64) + np.uint64(1)) * inverse_powers[:-1], out=prefix[1:])
        hashes = (prefix[ends] - prefix[starts]) * powers[ends - 1]
    return row_of[starts], hashes


class NgramView(View):
    """Hashed word n-grams or byte n-grams of one field (``description`` or ``actions``).

    ``kind="words"`` with ``ngram_range=(1, 2)`` gives unigrams and bigrams of words;
    ``kind="chars"`` with ``ngram_range=(3, 4)`` gives byte 3- and 4-grams (spelling, chemical names,
    punctuation and formatting, which words alone do not see).
    """

    def __init__(self, field: str, kind: str = "words", ngram_range: tuple[int, int] = (1, 2), size: int = 1 << 18):
        if field not in ("description", "actions"):
            raise ValueError(f"field must be 'description' or 'actions', got {field!r}")
        if kind not in ("words", "chars"):
            raise ValueError(f"kind must be 'words' or 'chars', got {kind!r}")
        low, high = ngram_range
        if not 1 <= low <= high:
            raise ValueError(f"ngram_range must satisfy 1 <= low <= high, got {ngram_range}")
        self.field, self.kind, self.ngram_range, self.size = field, kind, (low, high), size
        self.name = f"{field}_{kind}"
        self.fields = (field,)

    def bags(self, batch: Batch) -> Bags:
        texts = batch.descriptions if self.field == "description" else batch.actions
        rows, hashes = [], []
        if self.kind == "chars":
            for n in range(self.ngram_range[0], self.ngram_range[1] + 1):
                row, found = char_ngram_hashes(texts, n)
                rows.append(row)
                hashes.append(found)
        else:
            word_rows, words = word_hashes(texts)
            with np.errstate(over="ignore"):
                gram = words
                for n in range(1, self.ngram_range[1] + 1):
                    if n > 1:
                        # extend every (n-1)-gram by the next word when that word is in the same row
                        same_row = word_rows[n - 1 :] == word_rows[: len(word_rows) - n + 1]
                        gram = (gram[:-1] * np.uint64(_PAIR) + words[n - 1 :]) * same_row
                        grams_rows = np.where(same_row, word_rows[: len(gram)], -1)
                    else:
                        grams_rows = word_rows
                    if n >= self.ngram_range[0]:
                        keep = grams_rows >= 0
                        rows.append(grams_rows[keep])
                        hashes.append(gram[keep])
        all_rows = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        all_hashes = np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.uint64)
        with np.errstate(over="ignore"):
            return _empty_rows_to_reserved(all_rows, _to_bucket(all_hashes, self.size), len(batch))


class ActionTypeView(View):
    """Unigrams and bigrams of action types (with start and end marks), from the lenient tokenizer.

    An action outside the grammar is ``UNKNOWN``; an empty or unparsable action string lands in the
    reserved bucket. Neither is seen in well-formed reference data, so both score as divergent.
    """

    name = "action_types"
    fields = ("actions",)

    def __init__(self) -> None:
        self.vocabulary: tuple[str, ...] = (*ACTION_NAMES, "UNKNOWN")
        self._index = {name: index for index, name in enumerate(self.vocabulary)}
        # unigrams take buckets 1..V; bigrams over V types plus start/end marks take the rest
        self._states = len(self.vocabulary) + 2
        self.size = 1 + len(self.vocabulary) + self._states * self._states

    def bags(self, batch: Batch) -> Bags:
        rows: list[int] = []
        buckets: list[int] = []
        unknown = self._index["UNKNOWN"]
        start, end = len(self.vocabulary), len(self.vocabulary) + 1
        offset = 1 + len(self.vocabulary)
        for row, types in enumerate(batch.action_types):
            if not types:
                continue
            indices = [self._index.get(name, unknown) for name in types]
            chain = [start, *indices, end]
            rows.extend([row] * (len(indices) + len(chain) - 1))
            buckets.extend(1 + index for index in indices)
            buckets.extend(offset + a * self._states + b for a, b in itertools.pairwise(chain))
        return _empty_rows_to_reserved(
            np.asarray(rows, dtype=np.int64), np.asarray(buckets, dtype=np.int64), len(batch)
        )

    def labels(self) -> list[str]:
        return ["<empty>", *self.vocabulary]


class _ScalarView(View):
    """Several scalar features per row, each cut into fixed bins; every feature adds one occurrence.

    A row's bag then holds one bucket per feature, so its per-sample KL against the reference is the
    mean over features of -log p(feature bin): a point mass compared with the reference histogram.
    """

    features: tuple[str, ...]
    edges: tuple[np.ndarray, ...]

    def _values(self, batch: Batch) -> np.ndarray:
        """A (rows, features) array; NaN means 'not applicable' and gets its own bin."""
        raise NotImplementedError

    @cached_property
    def _offsets(self) -> np.ndarray:
        bins = [len(edges) + 2 for edges in self.edges]  # digitize gives 0..len(edges), plus a NaN bin
        return np.concatenate([[1], 1 + np.cumsum(bins)[:-1]]).astype(np.int64)

    @property
    def size(self) -> int:
        return int(1 + sum(len(edges) + 2 for edges in self.edges))

    def bags(self, batch: Batch) -> Bags:
        values = self._values(batch)
        columns = []
        for feature, edges in enumerate(self.edges):
            column = values[:, feature]
            bins = np.where(np.isnan(column), len(edges) + 1, np.digitize(np.nan_to_num(column), edges))
            columns.append(self._offsets[feature] + bins)
        buckets = np.stack(columns, axis=1).reshape(-1) if columns else np.zeros(0, dtype=np.int64)
        rows = np.repeat(np.arange(len(batch), dtype=np.int64), len(self.edges))
        return Bags(rows=rows, buckets=buckets.astype(np.int64), n_rows=len(batch))

    def labels(self) -> list[str]:
        names = ["<empty>"]
        for feature, edges in zip(self.features, self.edges, strict=True):
            bounds = ["-inf", *(f"{edge:g}" for edge in edges), "inf"]
            names.extend(f"{feature} [{low}, {high})" for low, high in itertools.pairwise(bounds))
            names.append(f"{feature} n/a")
        return names


_COUNT_EDGES = np.array([1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512], dtype=float)
_RATIO_EDGES = np.array([0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8, 12], dtype=float)
_FRACTION_EDGES = np.array([0.2, 0.4, 0.6, 0.8, 0.999], dtype=float)


class LengthView(_ScalarView):
    """Description length in words, number of actions, actions per sentence and words per action.

    The two ratios tie the lengths of the two sides together: a truncated or padded action list keeps
    plausible lengths on each side but not in proportion.
    """

    name = "lengths"
    features = ("description_words", "actions", "actions_per_sentence", "words_per_action")
    edges = (_COUNT_EDGES, _COUNT_EDGES, _RATIO_EDGES, _COUNT_EDGES)

    def _values(self, batch: Batch) -> np.ndarray:
        words = np.array([len(text.split()) for text in batch.descriptions], dtype=float)
        n_actions = np.array([len(types) for types in batch.action_types], dtype=float)
        sentences = np.array([len(_SENTENCE_END.findall(text.strip() + " ")) or 1 for text in batch.descriptions])
        per_sentence = np.where(words > 0, n_actions / sentences, np.nan)
        per_action = np.where((words > 0) & (n_actions > 0), words / np.maximum(n_actions, 1), np.nan)
        return np.stack([np.where(words > 0, words, np.nan), n_actions, per_sentence, per_action], axis=1)


def _normalize(text: str) -> str:
    """Lowercase without whitespace (and the U+200C the readable format inserts before ``(``)."""
    return _NORMALIZE.sub("", text).lower()


def _fraction_found(needles: list[str], haystack: str) -> float:
    return sum(needle in haystack for needle in needles) / len(needles) if needles else np.nan


class ConsistencyView(_ScalarView):
    """Agreement between a description and its actions, so a fluent text with wrong actions scores badly.

    Three fractions per row: the compounds named in the actions that occur in the description, their
    quantities that occur in it, and the numbers of the description that reappear in the actions
    (actions that skip half the procedure lose them). Each is NaN when there is nothing to check;
    actions that do not parse count as finding nothing.
    """

    name = "consistency"
    features = ("compounds_in_text", "quantities_in_text", "text_numbers_in_actions")
    edges = (_FRACTION_EDGES, _FRACTION_EDGES, _FRACTION_EDGES)

    def _values(self, batch: Batch) -> np.ndarray:
        values = np.full((len(batch), 3), np.nan)
        for row, (description, actions, parsed) in enumerate(
            zip(batch.descriptions, batch.actions, batch.parsed_actions, strict=True)
        ):
            if not description.strip():
                continue
            text = _normalize(description)
            if parsed is None:
                values[row, :2] = 0.0
            else:
                chemicals = [chemical for chemical in iter_chemicals(parsed) if chemical.name]
                names = [_normalize(c.name) for c in chemicals if "$" not in c.name and c.name != "SLN"]
                quantities = [_normalize(quantity) for chemical in chemicals for quantity in chemical.quantity]
                values[row, 0] = _fraction_found([name for name in names if name], text)
                values[row, 1] = _fraction_found([quantity for quantity in quantities if quantity], text)
            action_numbers = set(_NUMBER.findall(actions))
            description_numbers = _NUMBER.findall(description)
            if description_numbers:
                values[row, 2] = np.mean([number in action_numbers for number in description_numbers])
        return values


def default_views() -> list[View]:
    """The views the selector uses unless told otherwise."""
    return [
        NgramView("description", "words", (1, 2)),
        NgramView("description", "chars", (3, 4)),
        NgramView("actions", "words", (1, 2)),
        NgramView("actions", "chars", (3, 4)),
        ActionTypeView(),
        LengthView(),
        ConsistencyView(),
    ]
