"""Vectorised n-gram statistics of many prediction/reference pairs, and BLEU from them as NLTK defines it.

BLEU needs, per pair and n-gram order, the *clipped* matches: each predicted n-gram counts while the
reference holds an unused copy of it, i.e. ``sum over n-grams g of min(count_pred(g), count_ref(g))``.
Counting that with a ``Counter`` per pair costs ~15 µs a pair in Python. Here all distinct strings are
tokenized by one ``str.split`` and turned into integer token ids, an n-gram's id is its token ids read as
digits, and each side of the pairs becomes a sparse (pair x n-gram) count matrix whose element-wise
minimum scipy takes in C++. Repeated strings and repeated pairs are computed once.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np
from scipy import sparse

_MARK = "\x00"


def _token_ids(tokens: list[str]) -> tuple[np.ndarray, dict[str, int]]:
    """Each token's id (its rank among the distinct tokens in order of appearance), and the ids by token."""
    index = {token: i for i, token in enumerate(dict.fromkeys(tokens))}
    return np.fromiter(map(index.__getitem__, tokens), np.int64, len(tokens)), index


@dataclass(frozen=True)
class Sequences:
    """Distinct token sequences as one flat array of token ids, with each sequence's start and length."""

    tokens: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray

    @classmethod
    def from_token_lists(cls, token_lists: Sequence[Sequence[str]], pad_to: int = 0) -> Sequences:
        """The sequences of ``token_lists``, each shorter than ``pad_to`` padded with empty tokens."""
        ids, index = _token_ids(list(chain.from_iterable(token_lists)))
        sequences = cls._from_ids(ids, np.fromiter(map(len, token_lists), np.int64, len(token_lists)))
        return sequences.padded(pad_to, index.get("")) if pad_to else sequences

    @classmethod
    def from_texts(cls, texts: Sequence[str]) -> Sequences:
        """The whitespace tokens of ``texts``: one ``str.split`` of all of them joined by a marker token,
        which costs half as much as a split per text (texts that hold the marker are split one by one)."""
        joined = f" {_MARK} ".join(texts) + f" {_MARK}"
        if joined.count(_MARK) != len(texts):
            return cls.from_token_lists([text.split() for text in texts])
        ids, index = _token_ids(joined.split())
        marks = np.flatnonzero(ids == index[_MARK])
        return cls._from_ids(np.delete(ids, marks), np.diff(marks, prepend=-1) - 1)

    @classmethod
    def _from_ids(cls, ids: np.ndarray, lengths: np.ndarray) -> Sequences:
        starts = np.zeros(len(lengths), np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        return cls(ids, starts, lengths)

    def joined(self, parts: np.ndarray, counts: np.ndarray) -> Sequences:
        """Sequence ``i`` of the result is sequences ``parts[k]`` one after another, for the ``counts[i]``
        values of ``k`` that follow those of sequence ``i - 1``."""
        at, _ = self.positions(parts)
        owner = np.repeat(np.arange(len(counts)), counts)
        lengths = np.bincount(owner, weights=self.lengths[parts], minlength=len(counts)).astype(np.int64)
        return Sequences._from_ids(self.tokens[at], lengths)

    def padded(self, to: int, token: int | None = None) -> Sequences:
        """Each sequence shorter than ``to`` tokens filled up with ``token`` (by default one that no sequence
        holds), as Paragraph2Actions pads short sentences with empty tokens before counting BLEU."""
        if token is None:
            token = int(self.tokens.max(initial=-1)) + 1
        lengths = np.maximum(self.lengths, to)
        padded = Sequences._from_ids(np.full(int(lengths.sum()), token, np.int64), lengths)
        at, owner = self.positions(np.arange(len(self.lengths)))
        padded.tokens[at - self.starts[owner] + padded.starts[owner]] = self.tokens[at]
        return padded

    def ngram_ids(self, max_order: int) -> tuple[np.ndarray, int]:
        """A ``(max_order, tokens)`` array whose row ``n - 1`` holds the id of the n-gram starting at each flat
        position, and one more than the largest id. Equal n-grams get equal ids across all sequences: the
        token ids read as digits in base ``vocabulary size``, renumbered densely (one sort) only when the next
        order would not fit in 63 bits. Near the end of a sequence a position's n-gram runs into the next
        sequence (or the array's end): callers read only the positions where a whole n-gram starts."""
        count = len(self.tokens)
        ids = np.zeros((max_order, count), np.int64)
        ids[0] = self.tokens
        base = width = int(self.tokens.max(initial=0)) + 1
        for order in range(1, max_order):
            if width * base >= 1 << 63:
                unique, ids[order - 1] = np.unique(ids[order - 1], return_inverse=True)
                width = len(unique)
            stop = max(count - order, 0)
            ids[order, :stop] = ids[order - 1, :stop] * base + self.tokens[order:]
            width *= base
        return ids, width

    def positions(self, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The flat positions of the tokens of sequences ``which`` (in that order) and, for each, the index
        into ``which`` it belongs to."""
        lengths = self.lengths[which]
        return _ranges(self.starts[which], lengths), np.repeat(np.arange(len(which)), lengths)


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``starts[0], starts[0] + 1, ..., starts[0] + lengths[0] - 1, starts[1], ...`` in one array."""
    total = int(lengths.sum())
    return np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(total)


def clipped_matches(sequences: Sequences, predicted: np.ndarray, expected: np.ndarray, max_order: int) -> np.ndarray:
    """``(len(predicted), max_order)`` clipped n-gram matches of sequence ``predicted[i]`` against sequence
    ``expected[i]``, order 1 in column 0.

    Each side becomes one sparse count matrix whose row ``(order - 1) * pairs + i`` holds the n-grams of that
    order of pair ``i``'s sequence, built row by row (no conversion from coordinates); scipy sorts and sums
    each row's few entries and takes the element-wise minimum of the two sides in C++.
    """
    matches = np.zeros((len(predicted), max_order), np.int64)
    # a prediction equal to its reference matches all its n-grams: only the others are counted
    same = predicted == expected
    matches[same] = np.maximum(0, sequences.lengths[predicted[same], None] - np.arange(max_order))
    differ = np.flatnonzero(~same)
    grams, width = sequences.ngram_ids(max_order)
    flat, shape = grams.ravel(), (max_order * len(differ), width)
    orders = np.arange(max_order)[:, None]
    sides = []
    for which in (predicted[differ], expected[differ]):
        # the n-grams of order o start at the first len - o + 1 positions; order o's ids lie at o * tokens
        counts = np.maximum(sequences.lengths[which][None, :] - orders, 0).ravel()
        starts = (sequences.starts[which][None, :] + orders * len(sequences.tokens)).ravel()
        indptr = np.zeros(len(counts) + 1, np.int64)
        np.cumsum(counts, out=indptr[1:])
        side = sparse.csr_array((np.ones(int(indptr[-1]), np.int32), flat[_ranges(starts, counts)], indptr), shape)
        side.sum_duplicates()
        sides.append(side)
    matches[differ] = sides[0].minimum(sides[1]).sum(axis=1).reshape(max_order, len(differ)).T
    return matches


@dataclass(frozen=True)
class PairStatistics:
    """Per pair: clipped matches of each order, n-gram totals of the prediction as NLTK counts them (at
    least 1, even for a sentence too short to hold one), and the two lengths in tokens."""

    matches: np.ndarray
    totals: np.ndarray
    predicted_lengths: np.ndarray
    expected_lengths: np.ndarray

    def replace(self, rows: np.ndarray, other: PairStatistics) -> PairStatistics:
        """A copy whose ``rows`` hold ``other``'s statistics (pairs counted again another way)."""
        columns = [np.array(column) for column in dataclasses.astuple(self)]
        for column, replacement in zip(columns, dataclasses.astuple(other), strict=True):
            column[rows] = replacement
        return PairStatistics(*columns)


def pair_statistics(
    predictions: Sequence[str],
    references: Sequence[str],
    max_order: int,
    tokenize: Callable[[str], list[str]] = str.split,
    pad_to: int = 0,
) -> PairStatistics:
    """The n-gram statistics of every pair, each distinct string tokenized once and each distinct pair
    counted once. ``pad_to`` appends empty tokens to a shorter sentence (Paragraph2Actions' modified BLEU)."""
    distinct = list(dict.fromkeys(chain(predictions, references)))
    index = {text: i for i, text in enumerate(distinct)}
    if tokenize is str.split and not pad_to:
        sequences = Sequences.from_texts(distinct)
    else:
        sequences = Sequences.from_token_lists([tokenize(text) for text in distinct], pad_to)
    predicted = np.fromiter(map(index.__getitem__, predictions), np.int64, len(predictions))
    expected = np.fromiter(map(index.__getitem__, references), np.int64, len(references))
    return sequence_pair_statistics(sequences, predicted, expected, max_order)


def sequence_pair_statistics(
    sequences: Sequences, predicted: np.ndarray, expected: np.ndarray, max_order: int
) -> PairStatistics:
    """The n-gram statistics of the pairs (sequence ``predicted[i]``, sequence ``expected[i]``), each distinct
    pair counted once."""
    unique_pairs, inverse = np.unique(predicted * len(sequences.lengths) + expected, return_inverse=True)
    predicted, expected = np.divmod(unique_pairs, len(sequences.lengths))
    matches = clipped_matches(sequences, predicted, expected, max_order)[inverse]
    predicted_lengths = sequences.lengths[predicted][inverse]
    orders = np.arange(max_order)
    totals = np.maximum(1, predicted_lengths[:, None] - orders[None, :])
    return PairStatistics(matches, totals, predicted_lengths, sequences.lengths[expected][inverse])


def nltk_bleu(
    matches: Sequence[int], totals: Sequence[int], predicted_length: int, expected_length: int, weights: Sequence[float]
) -> float:
    """BLEU in [0, 1] from summed statistics, exactly as NLTK's ``corpus_bleu`` (and ``sentence_bleu``, for
    one pair) computes it without smoothing: 0 when no unigram matches; an order with no match contributes
    ``log(sys.float_info.min)`` (so the score is ~1e-77, not 0, when its weight is not 0); brevity penalty
    ``exp(1 - r / c)`` for ``c <= r`` (0 for an empty prediction). NLTK warns on every zero order; this
    does not."""
    if matches[0] == 0:
        return 0.0
    if predicted_length > expected_length:
        penalty = 1.0
    elif predicted_length == 0:
        return 0.0
    else:
        penalty = math.exp(1 - expected_length / predicted_length)
    logs = (
        weight * math.log(matched / total if matched else sys.float_info.min)
        for weight, matched, total in zip(weights, matches, totals, strict=False)
    )
    return penalty * math.exp(math.fsum(logs))


def _split_at_spaces(text: str) -> list[str]:
    return text.split(" ")


def mean_sentence_bleu(predictions: Sequence[str], references: Sequence[str], order: int) -> float:
    """Mean over pairs of NLTK's ``sentence_bleu`` with all the weight on one n-gram order (``weights=(0, 1,
    0, 0)`` for order 2), on tokens split at single spaces: the brevity penalty times that order's clipped
    precision, 0 when not even a unigram matches."""
    statistics = pair_statistics(predictions, references, max(order, 4), tokenize=_split_at_spaces)
    weights = [0.0] * max(order, 4)
    weights[order - 1] = 1.0
    rows = zip(
        statistics.matches.tolist(),
        statistics.totals.tolist(),
        statistics.predicted_lengths.tolist(),
        statistics.expected_lengths.tolist(),
        strict=True,
    )
    return math.fsum(nltk_bleu(*row, weights) for row in rows) / len(predictions)
