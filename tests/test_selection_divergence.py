"""The numeric core of selection: byte hashing against a pure-Python oracle, divergences against scipy."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy

from chemactor.selection.divergence import sample_divergences, set_divergences, smoothed
from chemactor.selection.features import Bags, NgramView, char_ngram_hashes, word_hashes
from chemactor.selection.features import Batch as FeatureBatch

BASE = 1_000_003
WORD = re.compile(rb"[0-9A-Za-z\x80-\xff]+")


def polynomial_hash(chunk: bytes) -> int:
    value = 0
    for byte in chunk:
        value = (value * BASE + byte + 1) % (1 << 64)
    return value


texts = st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=40), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(texts)
def test_word_hashes_match_a_per_word_oracle(batch):
    rows, hashes = word_hashes(batch)
    expected = [
        (row, polynomial_hash(word))
        for row, text in enumerate(batch)
        for word in WORD.findall(text.encode("utf-8").lower())
    ]
    assert list(zip(rows.tolist(), hashes.tolist(), strict=True)) == expected


@settings(max_examples=60, deadline=None)
@given(texts, st.integers(min_value=1, max_value=5))
def test_char_ngram_hashes_match_an_oracle_and_never_cross_rows(batch, n):
    rows, hashes = char_ngram_hashes(batch, n)
    expected = []
    for row, text in enumerate(batch):
        data = text.encode("utf-8").lower()
        expected += [(row, polynomial_hash(data[i : i + n])) for i in range(len(data) - n + 1)]
    assert list(zip(rows.tolist(), hashes.tolist(), strict=True)) == expected


def test_hashes_ignore_case_and_batch_neighbours():
    alone = word_hashes(["Stirred THF"])[1]
    in_batch = word_hashes(["other words first", "stirred thf", "and after"])
    assert in_batch[1][in_batch[0] == 1].tolist() == alone.tolist()


def test_word_ngrams_stay_inside_their_row_and_empty_rows_get_the_reserved_bucket():
    view = NgramView("description", "words", (1, 3), size=1 << 10)
    bags = view.bags(FeatureBatch(["one two three", "", "four"], [""] * 3))
    # row 0: 3 unigrams + 2 bigrams + 1 trigram; row 1: only the reserved bucket; row 2: one unigram
    assert sorted(bags.rows.tolist()) == [0] * 6 + [1, 2]
    assert bags.buckets[bags.rows == 1].tolist() == [0] and 0 not in bags.buckets[bags.rows != 1]


def random_bags(rng: np.random.Generator, n_rows: int, size: int) -> Bags:
    lengths = rng.integers(1, 12, size=n_rows)
    rows = np.repeat(np.arange(n_rows), lengths)
    return Bags(rows=rows, buckets=rng.integers(0, size, size=len(rows)), n_rows=n_rows)


@pytest.mark.parametrize("seed", range(5))
def test_sample_divergences_equal_dense_scipy(seed):
    rng = np.random.default_rng(seed)
    size = 17
    p = smoothed(rng.integers(0, 5, size=size).astype(float), 0.1)
    bags = random_bags(rng, 8, size)
    kl = sample_divergences(bags, np.log(p), "kl")
    js = sample_divergences(bags, np.log(p), "js")
    for row in range(bags.n_rows):
        q = np.bincount(bags.buckets[bags.rows == row], minlength=size).astype(float)
        q /= q.sum()
        assert kl[row] == pytest.approx(entropy(q, p))
        assert js[row] == pytest.approx(jensenshannon(q, p) ** 2)


def test_sample_divergence_is_zero_only_for_the_reference_itself():
    p = np.array([0.5, 0.25, 0.25])
    bags = Bags(rows=np.array([0, 0, 0, 0, 1]), buckets=np.array([0, 0, 1, 2, 2]), n_rows=2)
    kl = sample_divergences(bags, np.log(p))
    assert kl[0] == pytest.approx(0.0) and kl[1] == pytest.approx(np.log(4))
    with pytest.raises(ValueError, match="divergence must be one of"):
        sample_divergences(bags, np.log(p), "hellinger")


def test_set_divergences_of_a_set_against_itself_and_another():
    counts = np.array([10.0, 5.0, 0.0, 1.0])
    same = set_divergences(counts, counts, 0.1)
    other = set_divergences(np.array([0.0, 1.0, 10.0, 5.0]), counts, 0.1)
    assert same == {"kl": pytest.approx(0.0), "js": pytest.approx(0.0)}
    assert other["kl"] > 0.5 and 0 < other["js"] <= np.log(2)
