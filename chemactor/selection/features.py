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

import bisect
import functools
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np

from chemactor.actions import ACTION_NAMES, SOLUTION, ActionParseError, iter_chemicals
from chemactor.actions.converter import ZWNJ, converter
from chemactor.selection.text import clauses, content_stems, mask_digits, mask_names, numbers_key, stem, words

__all__ = [
    "VIEW_CLASSES",
    "ActionTypeView",
    "AgreementView",
    "Bags",
    "Batch",
    "ConsistencyView",
    "CoverageView",
    "FormView",
    "LengthView",
    "NgramView",
    "View",
    "default_views",
    "word_ngram_hashes",
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
_LOWER_ZERO = _LOWER.copy()
_LOWER_ZERO[ord("1") : ord("9") + 1] = ord("0")
_OTHER_DIGIT = re.compile(r"[^\D0-9]")  # a decimal digit of another script than 0-9

_SENTENCE_END = re.compile(r"[.!?](?:\s+|$)")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
# actions whose argument changes what they mean: which layer is kept, which phase of a filtration
_QUALIFIED = frozenset({"COLLECTLAYER", "FILTER"})


class ActionText(NamedTuple):
    """What the views read from the text of one action (see :func:`read_action`)."""

    kind: str  # the lenient tokenizer's type: the keyword, or UNKNOWN
    event: str  # the type, with the layer or phase kept for COLLECTLAYER and FILTER
    parses: bool
    names: tuple[str, ...]  # its compound names, not SLN or placeholders (where it parses)
    anchors: tuple[str, ...]  # the names of its compounds that can locate it in a description, lowercased
    normalized_names: tuple[str, ...]  # for ConsistencyView: names and quantities, :func:`_normalize`d
    normalized_quantities: tuple[str, ...]


@functools.lru_cache(maxsize=1 << 14)
def read_action(text: str, style: str) -> ActionText:
    """Parse the text of one action of a sequence and keep what the views read of it.

    Memoized: generated pools repeat the same actions across rows ("CONCENTRATE", "DRYSOLUTION over
    sodium sulfate", "STIR for 2 h at RT"), and parsing is the most expensive step of reading a row.
    """
    keyword = text.partition(" ")[0]
    kind = keyword if keyword in ACTION_NAMES else "UNKNOWN"
    keyword, _, rest = text.strip().partition(" ")
    event = keyword if keyword in ACTION_NAMES else "UNKNOWN"
    if event in _QUALIFIED and rest:
        event = f"{event}:{rest.split()[-1].lower().rstrip('.')}"
    try:
        chemicals = list(iter_chemicals([converter(style).parse_action(text)]))
    except ActionParseError:
        return ActionText(kind, event, False, (), (), (), ())
    named = [chemical for chemical in chemicals if chemical.name]
    normalized_names = (_normalize(c.name) for c in named if "$" not in c.name and c.name != SOLUTION)
    normalized_quantities = (_normalize(quantity) for c in named for quantity in c.quantity)
    return ActionText(
        kind,
        event,
        True,
        tuple(c.name for c in named if c.name != SOLUTION and "$" not in c.name),
        tuple(c.name.lower() for c in chemicals if len(c.name) >= 3 and "$" not in c.name),
        tuple(name for name in normalized_names if name),
        tuple(quantity for quantity in normalized_quantities if quantity),
    )


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
    def action_texts(self) -> list[list[ActionText]]:
        """Every action of every row, read once (:func:`read_action`); none for an empty action string."""
        split, style = converter(self.style).split, self.style
        return [[read_action(part, style) for part in split(text)] if text.strip() else [] for text in self.actions]

    @cached_property
    def parses(self) -> list[bool]:
        """Whether every row's action string parses (an empty one does not)."""
        return [
            bool(text.strip()) and all(action.parses for action in actions)
            for text, actions in zip(self.actions, self.action_texts, strict=True)
        ]

    @cached_property
    def action_types(self) -> list[list[str]]:
        """The leading keyword of every action (``UNKNOWN`` for one outside the grammar)."""
        return [[action.kind for action in actions] for actions in self.action_texts]

    @cached_property
    def action_numbers(self) -> list[set[str]]:
        """The numbers written in every row's actions."""
        return [set(_NUMBER.findall(text)) for text in self.actions]

    @cached_property
    def compound_names(self) -> list[list[str]]:
        """The compound names of every row's actions (not ``SLN`` or placeholders); none where they do not parse."""
        return [
            [name for action in actions for name in action.names] if parses else []
            for actions, parses in zip(self.action_texts, self.parses, strict=True)
        ]

    @cached_property
    def masked_description_bytes(self) -> TextBytes:
        """The bytes (:func:`batch_bytes`) of the descriptions with the compounds of their actions and their digits
        masked (:func:`~chemactor.selection.text.mask_content`): the form without the content."""
        texts = zip(self.descriptions, self.compound_names, strict=True)
        return batch_bytes([mask_names(text, names) for text, names in texts], zero_digits=True)

    @cached_property
    def masked_action_bytes(self) -> TextBytes:
        """The bytes of the action strings with their compounds and digits masked."""
        texts = zip(self.actions, self.compound_names, strict=True)
        return batch_bytes([mask_names(text, names) for text, names in texts], zero_digits=True)

    @cached_property
    def steps(self) -> list[list[tuple[str, tuple[str, ...]]]]:
        """Every action as (event, anchors): its keyword, with the layer or phase kept where it says one, and
        the lowercased names of its compounds (where the row parses) that locate it in the description."""
        return [
            [(action.event, action.anchors) for action in actions] if parses else [(a.event, ()) for a in actions]
            for actions, parses in zip(self.action_texts, self.parses, strict=True)
        ]

    @cached_property
    def description_words(self) -> list[list[str]]:
        """The lowercased words of every description (:func:`~chemactor.selection.text.words`)."""
        return [words(text) for text in self.descriptions]

    @cached_property
    def description_numbers(self) -> list[str]:
        """:func:`~chemactor.selection.text.numbers_key` of every description: the numbers among its words."""
        return [numbers_key(found) for found in self.description_words]

    @cached_property
    def description_stems(self) -> list[list[str]]:
        """The stemmed content words of every description: its canonical form, word by word."""
        return [content_stems(found) for found in self.description_words]

    @cached_property
    def canonical_descriptions(self) -> list[str]:
        """:func:`~chemactor.selection.text.canonical_text` of every description."""
        return [" ".join(stems) for stems in self.description_stems]

    @cached_property
    def description_contexts(self) -> list[frozenset[str]]:
        """The context tokens (:func:`_tokens`) of every whole description."""
        return [_tokens(stems) for stems in self.description_stems]

    @cached_property
    def step_contexts(self) -> list[list[tuple[str, frozenset[str] | None]]]:
        """Every action's event and context: the stems of the clause of the description that mentions its
        compound, or ``None`` when it names none (or none that the text mentions): then its context is the
        whole description, whose tokens (stems and word pairs) are :attr:`description_contexts`."""
        result = []
        for description, steps in zip(self.descriptions, self.steps, strict=True):
            lowered = description.lower()
            spans: list[tuple[int, int]] | None = None
            by_span: dict[tuple[int, int], frozenset[str]] = {}
            row = []
            for event, anchors in steps:
                context = None
                for anchor in anchors:
                    position = lowered.find(anchor)
                    if position >= 0:
                        if spans is None:
                            spans = clauses(description)
                            starts = [begin for begin, _ in spans]
                        index = bisect.bisect_right(starts, position) - 1
                        span = spans[index] if index >= 0 and position < spans[index][1] else (0, len(description))
                        if span not in by_span:  # a clause is short: its stems alone, without word pairs
                            by_span[span] = frozenset(content_stems(words(description[span[0] : span[1]])))
                        context = by_span[span]
                        break
                row.append((event, context))
            result.append(row)
        return result


class View:
    """A discrete feature space of ``size`` buckets; subclasses say how rows fall into buckets."""

    name: str
    size: int
    #: the fields a reference row must have (non-empty) to be fitted on; the others are skipped
    fields: tuple[str, ...] = ("description", "actions")

    #: whether the view learns from the reference (:meth:`fit`); the selector then fits it out of fold
    learned: bool = False

    def bags(self, batch: Batch) -> Bags:
        raise NotImplementedError

    def config(self) -> dict:
        """The constructor arguments that rebuild this view (saved with a fitted selector)."""
        return {}

    def fit(self, batches: Sequence[Batch], rows: Sequence[np.ndarray]) -> None:
        """Learn from the rows ``rows[i]`` (a boolean mask) of every reference batch ``batches[i]``."""

    def state(self) -> dict:
        """What :meth:`fit` learned, as JSON-serializable data (saved with a fitted selector)."""
        return {}

    def load_state(self, state: dict) -> None:
        """Restore what :meth:`state` returned."""

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
    if len(missing):
        rows = np.concatenate([rows, missing])
        buckets = np.concatenate([buckets, np.zeros(len(missing), dtype=np.int64)])
    return Bags(rows=rows.astype(np.int64, copy=False), buckets=buckets.astype(np.int64, copy=False), n_rows=n_rows)


def _to_bucket(hashes: np.ndarray, size: int) -> np.ndarray:
    """Map 64-bit hashes onto buckets 1..size-1 (0 stays reserved)."""
    mixed = hashes * np.uint64(_MIX)
    # multiply-shift range reduction of the high 32 bits: as uniform as a modulo, without a 64-bit division
    mixed >>= np.uint64(32)
    mixed *= np.uint64(size - 1)
    mixed >>= np.uint64(32)
    buckets = mixed.view(np.int64)  # below 2**32: the same numbers
    buckets += 1
    return buckets


class TextBytes(NamedTuple):
    """The lowercased UTF-8 bytes of the texts of a batch back to back (``data``), and the row of every byte."""

    data: np.ndarray
    rows: np.ndarray


def batch_bytes(texts: Sequence[str], zero_digits: bool = False) -> TextBytes:
    """The :class:`TextBytes` of ``texts``; with ``zero_digits``, of the texts with every decimal digit written 0
    (:func:`~chemactor.selection.text.mask_digits`).

    Digits are masked by the lookup table that lowercases the bytes, at no cost; a UTF-8 byte below 128 is
    always its own character, so this masks exactly the ASCII digits. Only the rare text with decimal digits
    of another script (Arabic-Indic, full-width) goes through the regular expression.
    """
    table = _LOWER
    if zero_digits:
        table = _LOWER_ZERO
        texts = [mask_digits(text) if not text.isascii() and _OTHER_DIGIT.search(text) else text for text in texts]
    encoded = [text.encode("utf-8") for text in texts]
    lengths = np.fromiter((len(chunk) for chunk in encoded), dtype=np.int64, count=len(encoded))
    data = table[np.frombuffer(b"".join(encoded), dtype=np.uint8)]
    return TextBytes(data, np.repeat(np.arange(len(texts), dtype=np.int64), lengths))


def _as_bytes(texts: Sequence[str] | TextBytes) -> TextBytes:
    return texts if isinstance(texts, TextBytes) else batch_bytes(texts)


def char_ngram_hashes(texts: Sequence[str], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every lowercased byte n-gram that lies inside one text, with its row."""
    [(rows, hashes)] = char_ngram_range_hashes(texts, (n, n))
    return rows, hashes


def char_ngram_range_hashes(
    texts: Sequence[str] | TextBytes, ngram_range: tuple[int, int]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`char_ngram_hashes` for every n in ``ngram_range`` (inclusive), reading the bytes once: the
    hash of an n-gram extends the hash of the (n-1)-gram that starts at the same byte."""
    data, row_of = _as_bytes(texts)
    values = data.astype(np.uint64) + np.uint64(1)
    found = []
    hashes = np.zeros(len(data), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for n in range(1, ngram_range[1] + 1):
            count = max(len(data) - n + 1, 0)
            hashes = hashes[:count] * np.uint64(_BASE) + values[n - 1 : n - 1 + count]
            if n >= ngram_range[0]:
                inside = row_of[:count] == row_of[n - 1 : n - 1 + count]
                found.append((row_of[:count][inside], hashes[inside]))
    return found


def word_hashes(texts: Sequence[str] | TextBytes) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every word (maximal run of letters and digits, lowercased), with its row.

    A word's hash is sum(b_t * BASE**(end-1-t)); with prefix sums of b_t * BASE**-t (BASE is odd, so
    invertible modulo 2**64) every word is hashed at once without a Python loop over tokens.
    """
    data, row_of = _as_bytes(texts)
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


def word_ngram_hashes(
    texts: Sequence[str] | TextBytes, ngram_range: tuple[int, int]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """For every n in ``ngram_range`` (inclusive), the rows and hashes of the word n-grams inside one text."""
    word_rows, hashes = word_hashes(texts)
    found = []
    with np.errstate(over="ignore"):
        gram, grams_rows = hashes, word_rows
        for n in range(1, ngram_range[1] + 1):
            if n > 1:
                # extend every (n-1)-gram by the next word when that word is in the same row
                same_row = word_rows[n - 1 :] == word_rows[: len(word_rows) - n + 1]
                gram = (gram[:-1] * np.uint64(_PAIR) + hashes[n - 1 :]) * same_row
                grams_rows = np.where(same_row, word_rows[: len(gram)], -1)
            if n >= ngram_range[0]:
                keep = grams_rows >= 0
                found.append((grams_rows[keep], gram[keep]))
    return found


class NgramView(View):
    """Hashed word n-grams or byte n-grams of one field (``description`` or ``actions``).

    ``kind="words"`` with ``ngram_range=(1, 2)`` gives unigrams and bigrams of words;
    ``kind="chars"`` with ``ngram_range=(3, 4)`` gives byte 3- and 4-grams (spelling, punctuation and
    formatting, which words alone do not see).

    ``mask_content``: read the text with the compounds of the row's actions and its digits masked
    (:func:`~chemactor.selection.text.mask_content`), so the view compares the *form* of a procedure with
    the reference and a correct row about new compounds or amounts does not look far for its content.
    """

    def __init__(
        self,
        field: str,
        kind: str = "words",
        ngram_range: tuple[int, int] = (1, 2),
        size: int = 1 << 18,
        mask_content: bool = True,
    ):
        if field not in ("description", "actions"):
            raise ValueError(f"field must be 'description' or 'actions', got {field!r}")
        if kind not in ("words", "chars"):
            raise ValueError(f"kind must be 'words' or 'chars', got {kind!r}")
        low, high = ngram_range
        if not 1 <= low <= high:
            raise ValueError(f"ngram_range must satisfy 1 <= low <= high, got {ngram_range}")
        self.field, self.kind, self.ngram_range, self.size = field, kind, (low, high), size
        self.mask_content = mask_content
        self.name = f"{field}_{kind}"
        self.fields = (field,)

    def config(self) -> dict:
        return {
            "field": self.field,
            "kind": self.kind,
            "ngram_range": list(self.ngram_range),
            "size": self.size,
            "mask_content": self.mask_content,
        }

    def bags(self, batch: Batch) -> Bags:
        description = self.field == "description"
        if self.mask_content:
            texts = batch.masked_description_bytes if description else batch.masked_action_bytes
        else:
            texts = batch_bytes(batch.descriptions if description else batch.actions)
        rows, hashes = [], []
        if self.kind == "chars":
            for row, found in char_ngram_range_hashes(texts, self.ngram_range):
                rows.append(row)
                hashes.append(found)
        else:
            for row, found in word_ngram_hashes(texts, self.ngram_range):
                rows.append(row)
                hashes.append(found)
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
    """Lowercase without whitespace (and the U+200C the readable format inserts before ``(``).

    ``str.split()`` splits at exactly the characters that the regular expression ``\\s`` matches (both ask
    ``str.isspace``), so this is ``re.sub(r"[\\s\u200c]+", "", text).lower()`` in a third of the time.
    """
    return "".join(text.replace(ZWNJ, "").split()).lower()


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
        rows = zip(batch.descriptions, batch.action_texts, batch.parses, batch.action_numbers, strict=True)
        for row, (description, actions, parses, action_numbers) in enumerate(rows):
            if not description.strip():
                continue
            if parses:
                text = _normalize(description)
                values[row, 0] = _fraction_found([name for a in actions for name in a.normalized_names], text)
                values[row, 1] = _fraction_found([q for a in actions for q in a.normalized_quantities], text)
            else:
                values[row, :2] = 0.0
            description_numbers = _NUMBER.findall(description)
            if description_numbers:
                found = sum(number in action_numbers for number in description_numbers)
                values[row, 2] = found / len(description_numbers)  # np.mean of the booleans, to the bit
        return values


class FormView(_ScalarView):
    """Marks of form that real pairs lack: a lowercase start, doubled or surrounding whitespace, no end
    mark (a carelessly copied row, which the lowercased lexical views cannot tell from its original), and
    degenerate loops (an action repeating the one before it, a phrase of the description repeated)."""

    name = "form"
    features = (
        "lowercase_start",
        "extra_whitespace",
        "no_end_mark",
        "actions_no_end_mark",
        "repeated_actions",
        "repeated_phrase",
    )
    edges = (*(np.array([0.5]),) * 4, np.array([0.5, 1.5, 2.5, 4.5]), np.array([0.5, 1.5, 2.5, 4.5]))

    def _values(self, batch: Batch) -> np.ndarray:
        style = converter(batch.style)
        values = np.full((len(batch), len(self.features)), np.nan)
        rows = zip(batch.descriptions, batch.actions, batch.description_words, strict=True)
        for row, (description, actions, tokens) in enumerate(rows):
            if description:
                values[row, 0] = description[0].islower()
                values[row, 1] = "  " in description or description != description.strip()
                values[row, 2] = not description.rstrip().endswith((".", "!", "?", ")"))
                # the 4-grams of words that repeat an earlier one
                grams = set(zip(tokens, tokens[1:], tokens[2:], tokens[3:], strict=False))
                values[row, 5] = max(len(tokens) - 3, 0) - len(grams)
            if actions:
                if style.end_mark:
                    values[row, 3] = not actions.rstrip().endswith(style.end_mark)
                parts = style.split(actions)
                values[row, 4] = sum(a == b for a, b in itertools.pairwise(parts))
        return values


# Verb families of the action types: words a procedure uses for each step. They seed what
# AgreementView learns from the reference pairs, so a step the reference shows rarely is still recognized.
HAND_CUES: dict[str, tuple[str, ...]] = {
    "ADD": ("add", "added", "addition", "treated", "charged", "introduced", "poured"),
    "STIR": ("stir", "stirred", "stirring", "agitated"),
    "REFLUX": ("reflux", "refluxed", "refluxing"),
    "WASH": ("wash", "washed", "washing", "rinsed"),
    "EXTRACT": ("extract", "extracted", "extraction", "extracts"),
    "COLLECTLAYER:organic": ("organic layer", "organic layers", "organic phase", "organic phases", "extracts"),
    "COLLECTLAYER:aqueous": ("aqueous layer", "aqueous layers", "aqueous phase", "aqueous phases"),
    "FILTER:filtrate": ("filtrate", "filtered", "filtration"),
    "FILTER:precipitate": ("precipitate", "precipitated", "solid", "solids", "collected", "crystals", "cake"),
    "FILTER": ("filtered", "filtration", "filter"),
    "PH": ("ph", "acidified", "basified", "neutralized", "neutralised", "adjusted"),
    "QUENCH": ("quench", "quenched", "quenching"),
    "YIELD": (
        "afford",
        "afforded",
        "affording",
        "give",
        "gave",
        "giving",
        "yield",
        "yielded",
        "obtained",
        "provide",
        "provided",
        "furnished",
    ),
    "CONCENTRATE": ("concentrated", "concentration", "evaporated", "evaporation", "vacuo"),
    "DRYSOLUTION": ("dried", "drying", "dry"),
    "DRYSOLID": ("dried", "drying", "dry"),
    "PURIFY": ("purified", "purification", "chromatography", "hplc", "eluting", "eluted"),
    "MAKESOLUTION": ("solution", "dissolved", "suspension", "suspended"),
    "SETTEMPERATURE": ("cooled", "heated", "warmed", "brought"),
    "WAIT": ("after", "overnight", "left", "allowed", "stand", "standing", "kept"),
    "PARTITION": ("partitioned", "between"),
    "PHASESEPARATION": ("separated", "separation", "layers"),
    "RECRYSTALLIZE": ("recrystallized", "recrystallised", "recrystallization", "recrystallisation"),
    "TRITURATE": ("triturated", "trituration"),
    "DEGAS": ("degassed", "purged", "bubbled", "sparged"),
    "MICROWAVE": ("microwave", "irradiated"),
    "SONICATE": ("sonicated", "sonication", "ultrasound"),
}
# the verbs among them that name one kind of step whenever a procedure uses them
STRONG_CUES = frozenset(
    [
        "added",
        "reflux",
        "refluxed",
        "washed",
        "extracted",
        "quenched",
        "filtered",
        "concentrated",
        "evaporated",
        "purified",
        "chromatography",
        "recrystallized",
        "recrystallised",
        "triturated",
        "dried",
        "stirred",
        "cooled",
        "heated",
        "degassed",
        "sonicated",
        "microwave",
        "partitioned",
        "acidified",
        "basified",
    ]
)
# actions that stand for the absence of a procedure step: nothing in the text has to support them
_UNCHECKED = frozenset({"NOACTION", "OTHERLANGUAGE", "INVALIDACTION", "FOLLOWOTHERPROCEDURE"})
# a number not preceded by a word character or a period, with a unit: (?<![\w.])(\d+(?:[.,]\d+)?)\s?(?:units)(?!\w),
# written to start with a digit (the look-behind checks the character before it), which lets the regular
# expression engine skip to the digits instead of trying every position
_AMOUNT = re.compile(r"(\d(?<![\w.]\d)\d*(?:[.,]\d+)?)\s?(?:mg|g|kg|µg|μg|ml|mL|L|µL|μL|uL|mmol|mol|µmol|μmol)(?!\w)")
_SUPPORT_EDGES = np.array([0.1, 0.2, 0.3, 0.45, 0.6, 0.8], dtype=float)
_SMALL_COUNT_EDGES = np.array([1, 2, 3, 4, 6], dtype=float)


class AgreementView(_ScalarView):
    """Does the text support every action, and does every step the text names have its action?

    Learned from the reference pairs: every action is a *unit* made of its event (the action type, with
    the layer or phase kept for COLLECTLAYER and FILTER) and its *context*, the stemmed words of the clause
    of the description that mentions its compound (the whole description when it names none). From the
    units the view counts which words go with which events and estimates, for each word ``w`` and event
    ``e``, ``P(e | w) = (n(e, w) + beta P(e)) / (n(w) + beta)``; a word of the verb family of ``e``
    (:data:`HAND_CUES`) counts at least ``cue_support``. An action's *support* is the largest ``P(e | w)``
    over the words of its context: "ADD sodium hydride" in "...was added sodium hydride" is supported, the
    same compound under "WASH" or "EXTRACT with brine" in "...washed with brine" is not, and a REFLUX in a
    text about stirring at room temperature is not.

    Two features per row: the number of actions with support below ``threshold`` and the least support of
    any action. :class:`CoverageView` looks the other way, from the text to the actions.
    The selector fits the view out of fold, so the reference distribution is that of *unseen* real pairs.
    """

    name = "agreement"
    features = ("unsupported_actions", "least_support")
    edges = (_SMALL_COUNT_EDGES, _SUPPORT_EDGES)
    learned = True

    def __init__(self, beta: float = 2.0, threshold: float = 0.3, cue_support: float = 0.9, strong: float = 0.8):
        self.beta, self.threshold, self.cue_support, self.strong = beta, threshold, cue_support, strong
        self._cues = {event: frozenset(map(_cue, cue_words)) for event, cue_words in HAND_CUES.items()}
        self._cue_types: dict[str, set[str]] = {}
        for event, cue_words in HAND_CUES.items():
            for word in STRONG_CUES.intersection(cue_words):
                self._cue_types.setdefault(_cue(word), set()).add(event.partition(":")[0])
        self.load_state({"units": 0, "events": {}, "words": {}, "pairs": {}})

    def config(self) -> dict:
        return {"beta": self.beta, "threshold": self.threshold, "cue_support": self.cue_support, "strong": self.strong}

    # --- learning ------------------------------------------------------------------------------

    def fit(self, batches: Sequence[Batch], rows: Sequence[np.ndarray]) -> None:
        events: dict[str, int] = {}
        word_counts: dict[str, int] = {}
        pairs: dict[str, dict[str, int]] = {}
        units = 0
        for batch, keep in zip(batches, rows, strict=True):
            for row in np.flatnonzero(keep):
                description = batch.descriptions[row]
                if not description.strip():
                    continue
                for event, context in batch.step_contexts[row]:
                    if context is None:
                        context = batch.description_contexts[row]
                    units += 1
                    events[event] = events.get(event, 0) + 1
                    counts = pairs.setdefault(event, {})
                    for word in context:
                        word_counts[word] = word_counts.get(word, 0) + 1
                        counts[word] = counts.get(word, 0) + 1
        self.load_state({"units": units, "events": events, "words": word_counts, "pairs": pairs})

    def state(self) -> dict:
        return {"units": self.units, "events": self.events, "words": self.words, "pairs": self.pairs}

    def __getstate__(self) -> dict:
        # its settings and what it learned: the lookup tables derive from them and would double what is
        # pickled to datasets.map's workers and hashed into the map's fingerprint
        return {"config": self.config(), "state": self.state()}

    def __setstate__(self, saved: dict) -> None:
        self.__init__(**saved["config"])
        self.load_state(saved["state"])

    def load_state(self, state: dict) -> None:
        self.units, self.events = int(state["units"]), dict(state["events"])
        self._tables: dict[str, tuple[float, dict[str, float], frozenset[str]]] = {}
        self.words, self.pairs = dict(state["words"]), {event: dict(c) for event, c in state["pairs"].items()}
        # the words that come with one event type in at least ``strong`` of their (several) units
        strong_types: dict[str, set[str]] = {word: set(types) for word, types in self._cue_types.items()}
        for event, counts in self.pairs.items():
            for word, count in counts.items():
                if self.words[word] >= 3 and count / self.words[word] >= self.strong:
                    strong_types.setdefault(word, set()).add(event.partition(":")[0])
        self._strong_types = {word: frozenset(types) for word, types in strong_types.items()}
        # the tokens that some event's estimates name: only they can support an action. Word pairs are found
        # by their first stem (a stem has no "_"), so the pairs of a description are looked up, not built.
        for event in {*self.pairs, *self._cues}:
            self._table(event)
        self._known = frozenset().union(*(words for _, _, words in self._tables.values()))
        self._pair_heads: dict[str, dict[str, str]] = {}
        for token in self._known:
            first, underscore, second = token.partition("_")
            if underscore:
                self._pair_heads.setdefault(first, {})[second] = token

    # --- scoring -------------------------------------------------------------------------------

    def _prior(self, event: str) -> float:
        return (self.events.get(event, 0) + 1) / (self.units + len(ACTION_NAMES) + 1)

    def _table(self, event: str) -> tuple[float, dict[str, float], frozenset[str]]:
        """The prior of ``event`` and ``P(event | word)`` of the words where it exceeds the prior (a word seen
        without the event, or never seen, estimates at most the prior), built once per event."""
        table = self._tables.get(event)
        if table is None:
            prior, counts = self._prior(event), self.pairs.get(event, {})
            estimates = {
                word: (count + self.beta * prior) / (self.words[word] + self.beta) for word, count in counts.items()
            }
            for word in self._cues.get(event, ()):
                estimates[word] = max(estimates.get(word, 0.0), self.cue_support)
            estimates = {word: value for word, value in estimates.items() if value > prior}
            table = self._tables[event] = (prior, estimates, frozenset(estimates))
        return table

    def _known_tokens(self, stems: list[str]) -> frozenset[str]:
        """The context tokens of a whole description (:func:`_tokens`) that some event's estimates name, which
        are all that :meth:`support` reads of them, without building the word pairs that none names."""
        heads = self._pair_heads
        pairs = [heads[a][b] for a, b in itertools.pairwise(stems) if a in heads and b in heads[a]]
        return self._known.intersection(stems).union(pairs)

    def support(self, event: str, context: frozenset[str]) -> float:
        """The largest ``P(event | word)`` over the context words (1 for actions that stand for no step)."""
        if event in _UNCHECKED:
            return 1.0
        prior, estimates, words = self._tables.get(event) or self._table(event)
        found = context & words
        return max(map(estimates.__getitem__, found)) if found else prior

    def _values(self, batch: Batch) -> np.ndarray:
        values = np.full((len(batch), 2), np.nan)
        for row, (description, steps) in enumerate(zip(batch.descriptions, batch.steps, strict=True)):
            if description.strip() and steps:
                whole = None
                supports = []
                for event, context in batch.step_contexts[row]:
                    if context is None:
                        whole = self._known_tokens(batch.description_stems[row]) if whole is None else whole
                        context = whole
                    supports.append(self.support(event, context))
                values[row, 0] = sum(value < self.threshold for value in supports)
                values[row, 1] = min(supports)
        return values


class CoverageView(AgreementView):
    """Does every step the text names have its action? What a truncated or abridged sequence left out.

    Two features per row: the number of step types the text names with a strong cue (a verb of
    :data:`STRONG_CUES`, or a word that comes with one event type in at least ``strong`` of its three or
    more units in the reference) that no action has, and the number of amounts of the text (a number with
    a unit of mass, volume or amount) that no action carries. Learned like :class:`AgreementView`.
    """

    name = "coverage"
    features = ("uncovered_text_steps", "uncovered_amounts")
    edges = (_SMALL_COUNT_EDGES, _SMALL_COUNT_EDGES)

    def _values(self, batch: Batch) -> np.ndarray:
        values = np.full((len(batch), 2), np.nan)
        for row, (description, steps) in enumerate(zip(batch.descriptions, batch.steps, strict=True)):
            if not description.strip() or not steps:
                continue
            present = {event.partition(":")[0] for event, _ in steps}
            strong = self._strong_types
            named = set(map(strong.__getitem__, strong.keys() & batch.description_stems[row]))
            values[row, 0] = sum(not types & present for types in named)
            amounts = set(_AMOUNT.findall(description))
            values[row, 1] = len(amounts - batch.action_numbers[row])
        return values


def _cue(phrase: str) -> str:
    """A cue word's context token: its stem, or the stems of a two-word phrase joined by ``_``."""
    return "_".join(stem(word) for word in phrase.split())


def _tokens(stems: list[str]) -> frozenset[str]:
    """The context tokens of a run of stemmed content words: the stems and their adjacent pairs ("aqueous_layer")."""
    return frozenset([*stems, *map("_".join, itertools.pairwise(stems))])


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
        AgreementView(),
        CoverageView(),
        FormView(),
    ]


VIEW_CLASSES: dict[str, type[View]] = {
    view.__name__: view
    for view in (NgramView, ActionTypeView, LengthView, ConsistencyView, AgreementView, CoverageView, FormView)
}
