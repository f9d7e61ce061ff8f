"""The ChemActor paper's metric definitions, checked against the reference libraries that its evaluation code
calls (nltk, rouge-score, the `rouge` package, difflib) on the same 1,000 pairs per task, to 1e-9; and the
default D2A suite, checked against the same libraries after it was vectorised.

Each reference value below is computed the way the paper's scripts compute it, library call by library
call, independently of :mod:`chemactor.scoring`.
"""

from __future__ import annotations

import difflib
import random
import warnings
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st
from metric_pairs import procedure_pairs, recombined_action_pairs
from nltk.translate.bleu_score import corpus_bleu, sentence_bleu
from p2a_cases import perturbed_pairs, reference_actions
from rapidfuzz.distance import Levenshtein
from rouge_score import rouge_scorer

from chemactor.actions import ActionParseError, InvalidAction, action_types, parse_actions
from chemactor.scoring import action_metrics, paper_action_metrics, paper_procedure_metrics
from chemactor.scoring.action_metrics import paper_validity, reactant_count
from chemactor.scoring.ngrams import pair_statistics

PAIRS = 1000
EDGE_ACTIONS = [
    ("", "ADD $1$ ; YIELD $-1$"),
    ("  ADD $1$ ; YIELD $-1$ \n", "ADD $1$ ; YIELD $-1$"),
    ("ADD $1$ ; YIELD $-1$.", "ADD $1$ ; YIELD $-1$"),
    ("INVALIDACTION", "INVALIDACTION"),
    ("YIELD $-1$", "YIELD $-1$"),
    ("CONCENTRATE", "YIELD $-1$"),
    ("ADD $3$ ; YIELD $-1$", "ADD $1$ ; ADD $2$ ; YIELD $-1$"),
    ("ADD $+2$ ; ADD $0$", "ADD $2$"),
    ("CONCENTRATE", "CONCENTRATE"),
    ("the mixture was stirred", "STIR for @2@ at #5#"),
]


@pytest.fixture(scope="module")
def action_pairs(shared_data):
    predictions, references = recombined_action_pairs(shared_data, PAIRS - len(EDGE_ACTIONS), 5, "placeholder")
    return predictions + [p for p, _ in EDGE_ACTIONS], references + [r for _, r in EDGE_ACTIONS]


@pytest.fixture(scope="module")
def text_pairs(shared_data):
    return procedure_pairs(shared_data, PAIRS, seed=7)


def _script_reactant_count(text: str) -> int:
    """The paper script's ``extract_reactant_cnt``, transcribed."""
    highest = None
    for token in text.split():
        if token.startswith("$") and token.endswith("$"):
            try:
                value = int(token.strip("$"))
            except ValueError:
                continue
            if highest is None or value > highest:
                highest = value
    return highest or 0


def _script_validity(prediction: str, reference: str) -> bool:
    text = prediction.removesuffix(".")
    try:
        parse_actions(text, style="placeholder")
    except ActionParseError:
        return False
    return _script_reactant_count(reference) >= _script_reactant_count(prediction)


def _padded(text: str, n: int) -> list[str]:
    tokens = text.split()
    return tokens + [""] * max(0, n - len(tokens))


def _sentence_bleu_mean(predictions, references, weights) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nltk warns for every sentence with a zero n-gram count
        scores = [
            sentence_bleu([r.split(" ")], p.split(" "), weights=weights)
            for p, r in zip(predictions, references, strict=True)
        ]
    return sum(scores) / len(scores)


def test_d2a_matches_the_reference_libraries(action_pairs):
    predictions, references = action_pairs
    scores = paper_action_metrics(predictions, references)
    stripped, expected = [p.strip() for p in predictions], [r.strip() for r in references]
    reference = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n, weights in ((2, (0.5, 0.5)), (4, (0.25,) * 4)):
            refs = [[_padded(r, n)] for r in expected]
            reference[f"bleu{n}"] = 100 * corpus_bleu(refs, [_padded(p, n) for p in stripped], weights=weights)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    rouge = [scorer.score(p, r) for p, r in zip(stripped, expected, strict=True)]
    for key, name in (("rouge_1", "rouge1"), ("rouge_2", "rouge2"), ("rouge_l", "rougeL")):
        reference[key] = 100 * sum(score[name].fmeasure for score in rouge) / len(rouge)
    reference["validity"] = 100 * sum(map(_script_validity, stripped, expected)) / len(stripped)
    similarity = [
        1 - Levenshtein.distance(r, p) / max(len(r), len(p), 1) for p, r in zip(stripped, expected, strict=True)
    ]
    for threshold, key in ((1.0, "acc_100"), (0.9, "acc_90"), (0.75, "acc_75"), (0.5, "acc_50")):
        reference[key] = 100 * sum(s >= threshold for s in similarity) / len(similarity)
    exact = sum(p == r for p, r in zip(predictions, references, strict=True))
    similar = sum(
        difflib.SequenceMatcher(None, p, r).ratio() * 100 > 80 for p, r in zip(predictions, references, strict=True)
    )
    reference["chemtrans_exact_match"] = 100 * exact / len(predictions)
    reference["chemtrans_similar"] = 100 * similar / len(predictions)
    reference["chemtrans_em"] = 100 * (exact + similar) / len(predictions)
    reference["chemtrans_bleu2"] = 100 * _sentence_bleu_mean(predictions, references, (0, 1, 0, 0))
    reference["chemtrans_bleu4"] = 100 * _sentence_bleu_mean(predictions, references, (0, 0, 0, 1))

    assert set(scores) == set(reference)
    for name, value in reference.items():
        assert scores[name] == pytest.approx(value, abs=1e-9), name
    # the pairs exercise every branch: some but not all valid, exact, similar, and short sentences
    assert 0 < reference["validity"] < 100 and 0 < exact < similar < len(predictions)
    assert scores["chemtrans_em"] == pytest.approx(scores["chemtrans_exact_match"] + scores["chemtrans_similar"])


def test_r2d_matches_the_reference_libraries(text_pairs):
    # the `rouge` package is a dev extra, for this comparison only
    rouge_package = pytest.importorskip("rouge", reason="the `rouge` package (a dev extra) is not installed")
    predictions, references = text_pairs
    scores = paper_procedure_metrics(predictions, references)
    predicted, expected = [p.strip("\n") for p in predictions], [r.strip("\n") for r in references]
    reference = {
        "bleu2": 100 * _sentence_bleu_mean(predicted, expected, (0, 1, 0, 0)),
        "bleu4": 100 * _sentence_bleu_mean(predicted, expected, (0, 0, 0, 1)),
    }
    rouge, empty = rouge_package.Rouge(metrics=["rouge-2", "rouge-4"]), 0
    totals = Counter()
    for p, r in zip(predicted, expected, strict=True):
        try:
            result = rouge.get_scores(p, r)[0]
        except ValueError:  # "Hypothesis is empty.": the pair scores 0
            empty += 1
            continue
        totals["rouge_2"] += result["rouge-2"]["f"]
        totals["rouge_4"] += result["rouge-4"]["f"]
    reference.update({name: 100 * total / len(predicted) for name, total in totals.items()})
    for n in (2, 4):
        seen, count = set(), 0
        for text in predicted:
            words = text.lower().split(" ")
            seen.update(" ".join(words[i : i + n]) + " " for i in range(len(words) - n + 1))
            count += len(words) - n + 1
        reference[f"distinct_{n}"] = 100 * len(seen) / count

    assert set(scores) == set(reference)
    for name, value in reference.items():
        assert scores[name] == pytest.approx(value, abs=1e-9), name
    assert empty > 0  # the edge cases reach the branch where the `rouge` package gives up


def test_placeholder_rule_follows_the_script():
    assert reactant_count("ADD $3$ ; ADD $12$ ; YIELD $-1$") == 12
    assert reactant_count("YIELD $-1$") == -1  # the script's `if not max_id` only catches 0 and None
    assert reactant_count("ADD $0$ ; ADD $x$ ; ADD $+2$") == 2
    assert paper_validity("ADD $2$ ; YIELD $-1$", "ADD $1$ ; ADD $2$ ; YIELD $-1$")
    assert not paper_validity("ADD $3$ ; YIELD $-1$", "ADD $1$ ; ADD $2$ ; YIELD $-1$")
    assert not paper_validity("CONCENTRATE", "YIELD $-1$")  # 0 > -1: the script's quirk, kept
    assert paper_validity("INVALIDACTION", "")  # parsing is the only check on the actions themselves
    assert paper_validity("FILTER ; CONCENTRATE.", "FILTER")
    assert not paper_validity("FILTER; CONCENTRATE", "FILTER")  # the readable separator is one action here


def _default_suite_reference(predictions: list[str], references: list[str]) -> dict:
    """What the D2A suite computed before it was vectorised: nltk's corpus BLEU (as paragraph2actions calls
    it), one parse and one Counter per pair."""
    count = len(predictions)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refs = [[r.split()] for r in references]
        original = corpus_bleu(refs, [p.split() for p in predictions])
        modified = corpus_bleu([[_padded(r, 4)] for r in references], [_padded(p, 4) for p in predictions])
    similarity = [
        1 - Levenshtein.distance(r, p) / max(len(r), len(p), 1) for p, r in zip(predictions, references, strict=True)
    ]

    def valid(text: str) -> bool:
        try:
            return not any(isinstance(action, InvalidAction) for action in parse_actions(text))
        except ActionParseError:
            return False

    matches, predicted, expected, same = Counter(), Counter(), Counter(), 0
    for p, r in zip(predictions, references, strict=True):
        p_types, r_types = action_types(p), action_types(r)
        same += p_types == r_types
        matches.update(Counter(p_types) & Counter(r_types))
        predicted.update(p_types)
        expected.update(r_types)
    return {
        "full_sentence_accuracy": sum(p == r for p, r in zip(predictions, references, strict=True)) / count,
        "partial_accuracy_0.9": sum(s >= 0.9 for s in similarity) / count,
        "levenshtein_similarity": sum(similarity) / count,
        "modified_bleu": modified,
        "original_bleu": original,
        "validity": sum(map(valid, predictions)) / count,
        "action_type_sequence_accuracy": same / count,
        "action_type_precision": sum(matches.values()) / sum(predicted.values()),
        "action_type_recall": sum(matches.values()) / sum(expected.values()),
        "add_support": expected["ADD"],
    }


@pytest.mark.parametrize("pair_set", ["perturbed", "recombined"])
def test_default_suite_values_unchanged(shared_data, pair_set):
    if pair_set == "perturbed":
        predictions, references = perturbed_pairs(reference_actions(shared_data), count=PAIRS, seed=3)
    else:
        predictions, references = recombined_action_pairs(shared_data, PAIRS, seed=1)
    # repeated strings and pairs go through the caches: append shuffled copies of a few pairs
    rng = random.Random(0)
    extra = rng.sample(range(PAIRS), 50)
    predictions, references = predictions + [predictions[i] for i in extra], references + [references[i] for i in extra]
    scores = action_metrics(predictions, references)
    expected = _default_suite_reference(predictions, references)
    assert scores["per_action_type"]["ADD"]["support"] == expected.pop("add_support")
    for name, value in expected.items():
        assert scores[name] == pytest.approx(value, abs=1e-9), name


def _counted(prediction: list[str], reference: list[str], order: int) -> int:
    grams = [Counter(zip(*(tokens[i:] for i in range(order)), strict=False)) for tokens in (prediction, reference)]
    return sum((grams[0] & grams[1]).values())


@given(
    st.lists(
        st.tuples(st.text(alphabet="ab ;.\n", max_size=12), st.text(alphabet="ab ;.\n", max_size=12)),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from([0, 2, 4]),
)
def test_vectorised_ngram_counts_equal_counters(pairs, pad_to):
    """Clipped matches, totals and lengths of every pair, for any text, padded or not, whatever repeats."""
    predictions, references = (list(side) for side in zip(*pairs, strict=True))
    for tokenize in (str.split, lambda text: text.split(" ")):
        statistics = pair_statistics(predictions, references, 4, tokenize=tokenize, pad_to=pad_to)
        for i, (prediction, reference) in enumerate(pairs):
            tokens = [t + [""] * (pad_to - len(t)) for t in (tokenize(prediction), tokenize(reference))]
            assert statistics.matches[i].tolist() == [_counted(*tokens, order) for order in range(1, 5)]
            assert statistics.totals[i].tolist() == [max(1, len(tokens[0]) - n) for n in range(4)]
            assert (statistics.predicted_lengths[i], statistics.expected_lengths[i]) == tuple(map(len, tokens))
