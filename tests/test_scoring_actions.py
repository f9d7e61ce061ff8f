"""D2A scores: equality with paragraph2actions 1.5.0, the extensions, and input errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from p2a_cases import EXPECTATIONS, perturbed_pairs, reference_actions

from chemactor.actions import STYLES
from chemactor.scoring import action_metrics
from chemactor.scoring.action_metrics import ParsedStrings, corpus_bleus, is_valid, levenshtein_similarities
from chemactor.scoring.ngrams import Sequences, clipped_matches

EXPECTED = json.loads(EXPECTATIONS.read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", EXPECTED["cases"], ids=lambda case: f"seed{case['seed']}")
def test_values_equal_paragraph2actions(shared_data, case):
    predictions, references = perturbed_pairs(reference_actions(shared_data), seed=case["seed"])
    scores = action_metrics(predictions, references, thresholds=EXPECTED["thresholds"])
    for name, value in case["values"].items():
        assert scores[name] == pytest.approx(value, abs=1e-9), name


def test_identical_sequences_score_one():
    references = ["ADD THF (10 mL); STIR for 2 h at 25 °C; CONCENTRATE.", "FILTER.", ""]
    scores = action_metrics(references, references)
    for name in ("full_sentence_accuracy", "partial_accuracy_0.9", "levenshtein_similarity", "modified_bleu"):
        assert scores[name] == pytest.approx(1.0)
    assert scores["action_type_f1"] == 1.0
    assert scores["action_type_sequence_accuracy"] == 1.0


def test_short_sequences_only_count_in_modified_bleu():
    modified, original = corpus_bleus(["CONCENTRATE.", "FILTER."], ["CONCENTRATE.", "FILTER."])
    assert modified == pytest.approx(1.0)
    assert original == 0.0  # no bigram can match in a one-token sentence


def test_levenshtein_similarity_is_normalized_by_longer_string():
    assert levenshtein_similarities(["abcd", "", "ab"], ["abce", "", ""]) == [0.75, 1.0, 0.0]


def test_thresholds_are_configurable_and_inclusive():
    scores = action_metrics(["abcd"], ["abce"], thresholds=(0.75, 0.8))
    assert scores["partial_accuracy_0.75"] == 1.0
    assert scores["partial_accuracy_0.8"] == 0.0
    assert "partial_accuracy_0.9" not in scores


def test_action_type_scores_count_multisets():
    scores = action_metrics(
        ["ADD water; ADD THF; FILTER; STIR for 1 h."],
        ["ADD water; ADD THF; ADD NaH; STIR for 1 h; CONCENTRATE."],
    )
    add = scores["per_action_type"]["ADD"]
    assert (add["precision"], add["recall"], add["support"]) == (1.0, 2 / 3, 3)
    assert scores["per_action_type"]["FILTER"]["precision"] == 0.0
    assert scores["per_action_type"]["CONCENTRATE"]["recall"] == 0.0
    assert scores["action_type_precision"] == 3 / 4
    assert scores["action_type_recall"] == 3 / 5
    assert scores["action_type_sequence_accuracy"] == 0.0


def test_validity():
    assert is_valid("ADD THF; STIR for 2 h.", "")
    assert not is_valid("the mixture was stirred", "")
    assert not is_valid("INVALIDACTION.", "INVALIDACTION.")  # parses, but extracts nothing
    reference = "ADD $1$ ; ADD $2$ ; STIR for @3@ at #5# ; YIELD $-1$"
    assert is_valid("ADD $2$ ; ADD $1$ ; YIELD $-1$", reference, style="placeholder")
    assert not is_valid("ADD $3$ ; YIELD $-1$", reference, style="placeholder")


def test_placeholder_style_scores():
    reference = "ADD $1$ ; ADD $2$ ; STIR for @3@ at #5# ; YIELD $-1$"
    scores = action_metrics(["ADD $1$ ; ADD $3$ ; YIELD $-1$"], [reference], style="placeholder")
    assert scores["validity"] == 0.0
    assert scores["action_type_recall"] == 3 / 4


@pytest.mark.parametrize(
    ("predictions", "references", "message"),
    [(["a"], ["a", "b"], "1 predictions but 2 references"), ([], [], "no predictions")],
)
def test_bad_input_is_named(predictions, references, message):
    with pytest.raises(ValueError, match=message):
        action_metrics(predictions, references)


@given(st.lists(st.tuples(st.text(max_size=40), st.text(max_size=40)), min_size=1, max_size=8))
def test_scores_are_bounded_for_any_text(pairs):
    predictions, references = map(list, zip(*pairs, strict=True))
    scores = action_metrics(predictions, references)
    for name, value in scores.items():
        if name != "per_action_type":
            assert 0.0 <= value <= 1.0, name


action_text = st.text(alphabet="ADSTIR ;.\n\t\u00a0$1(mL)", max_size=30)


@settings(max_examples=300, deadline=None)
@given(st.lists(action_text | st.text(max_size=20), min_size=1, max_size=8), st.sampled_from(sorted(STYLES)))
def test_tokens_assembled_from_actions_equal_whitespace_tokens(texts, style):
    """BLEU's tokens come from each distinct action's tokens: they must be exactly ``str.split()``'s, equal
    tokens with equal ids and different tokens with different ids."""
    parsed = ParsedStrings.parse(texts, STYLES[style])
    ids_of = {}
    for text, row in parsed.index.items():
        start, length = parsed.tokens.starts[row], parsed.tokens.lengths[row]
        ids = parsed.tokens.tokens[start : start + length].tolist()
        assert len(ids) == len(text.split())
        for token_id, token in zip(ids, text.split(), strict=True):
            assert ids_of.setdefault(token, token_id) == token_id
    assert len(set(ids_of.values())) == len(ids_of)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(0, 5), max_size=7), min_size=2, max_size=8), st.data())
def test_clipped_matches_do_not_depend_on_the_size_of_token_ids(sequences, data):
    """Token ids far apart make n-gram ids overflow 63 bits, so they are renumbered on the way: the counts
    must equal those of the same sequences with small ids."""
    lengths = np.array([len(sequence) for sequence in sequences], np.int64)
    flat = np.array([token for sequence in sequences for token in sequence], np.int64)
    small = Sequences(flat, np.cumsum(lengths) - lengths, lengths)
    large = Sequences(flat * (1 << 40) + 7, small.starts, lengths)
    pairs = data.draw(st.lists(st.tuples(*[st.integers(0, len(sequences) - 1)] * 2), min_size=1, max_size=10))
    predicted, expected = (np.array(side, np.int64) for side in zip(*pairs, strict=True))
    assert (clipped_matches(small, predicted, expected, 4) == clipped_matches(large, predicted, expected, 4)).all()
