"""D2A scores: how close predicted action sequences are to the reference ones.

The first six values reproduce the definitions of Paragraph2Actions (``paragraph2actions.analysis`` 1.5.0)
exactly, so numbers stay comparable with the published ones, but each Levenshtein distance is computed once
(rapidfuzz, in C++) and shared by the mean similarity and every partial accuracy. On top of those, the
per-action-type precision/recall/F1 and the accuracy of the action-type sequence show *which* operations a
model gets wrong, which a string distance hides.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import chain, pairwise

from rapidfuzz.distance import Levenshtein
from sacrebleu.metrics.bleu import BLEU

from chemactor.actions import ActionParseError, InvalidAction, action_types, parse_actions

DEFAULT_THRESHOLDS: tuple[float, ...] = (0.9, 0.75, 0.5)
BLEU_ORDER = 4
PLACEHOLDER = re.compile(r"\$(\d+)\$")


def check_pairs(predictions: Sequence[str], references: Sequence[str]) -> None:
    """Raise ``ValueError`` unless there is at least one pair and both sides have the same length."""
    if len(predictions) != len(references):
        raise ValueError(f"got {len(predictions)} predictions but {len(references)} references")
    if not predictions:
        raise ValueError("got no predictions to score")


def levenshtein_similarities(predictions: Sequence[str], references: Sequence[str]) -> list[float]:
    """``1 - distance / max(len)`` per pair (1.0 for two empty strings), as textdistance computes it."""
    similarity = Levenshtein.normalized_similarity
    return [similarity(reference, prediction) for prediction, reference in zip(predictions, references, strict=True)]


def _ngrams(tokens: list[str]) -> tuple[Iterable[str | tuple[str, ...]], ...]:
    """The n-grams of orders 1 to 4 (unigrams as strings, the others as tuples); the shortest shifted copy
    of ``tokens`` ends each ``zip``."""
    return (
        tokens,
        pairwise(tokens),
        zip(tokens, tokens[1:], tokens[2:], strict=False),
        zip(tokens, tokens[1:], tokens[2:], tokens[3:], strict=False),
    )


def _bleu_statistics(prediction: list[str], reference: list[str]) -> list[int]:
    """``[prediction length, reference length, matches of order 1..4, totals of order 1..4]`` of one pair.

    A predicted n-gram matches while the reference has unmatched copies of it left (clipped counts).
    NLTK's ``corpus_bleu`` (which Paragraph2Actions calls) counts a sentence too short to hold an n-gram as
    one unmatched n-gram of that order, where sacrebleu counts none; the totals follow NLTK.
    """
    remaining = Counter(chain.from_iterable(_ngrams(reference)))
    correct = []
    for ngrams in _ngrams(prediction):
        matched = 0
        for ngram in ngrams:
            if left := remaining.get(ngram, 0):
                remaining[ngram] = left - 1
                matched += 1
        correct.append(matched)
    total = [max(1, len(prediction) - n) for n in range(BLEU_ORDER)]
    return [len(prediction), len(reference), *correct, *total]


def _pad(tokens: list[str]) -> list[str]:
    return tokens + [""] * (BLEU_ORDER - len(tokens))


def _bleu_score(pairs: list[list[int]]) -> float:
    """Corpus BLEU in [0, 1] from the per-pair statistics (summed over the corpus first)."""
    statistics = [sum(column) for column in zip(*pairs, strict=True)]
    sys_len, ref_len = statistics[:2]
    correct, total = statistics[2 : 2 + BLEU_ORDER], statistics[2 + BLEU_ORDER :]
    # sacrebleu works in percent; a perfect score can come back as 100.00000000000004
    return min(1.0, BLEU.compute_bleu(correct, total, sys_len, ref_len).score / 100)


def corpus_bleus(predictions: Sequence[str], references: Sequence[str]) -> tuple[float, float]:
    """Corpus BLEU-4 on whitespace tokens as (modified, original), both in [0, 1].

    The modified score pads every sentence shorter than 4 tokens with empty tokens first, so that a correct
    one-word prediction (``CONCENTRATE.``) is not scored zero. Only short pairs differ between the two
    scores, so n-grams of the others are counted once for both. sacrebleu turns the statistics into a score.
    """
    modified, original = [], []
    for prediction, reference in zip(predictions, references, strict=True):
        tokens, expected = prediction.split(), reference.split()
        statistics = _bleu_statistics(tokens, expected)
        original.append(statistics)
        if len(tokens) < BLEU_ORDER or len(expected) < BLEU_ORDER:
            statistics = _bleu_statistics(_pad(tokens), _pad(expected))
        modified.append(statistics)
    return _bleu_score(modified), _bleu_score(original)


def is_valid(prediction: str, reference: str, style: str = "readable") -> bool:
    """Whether ``prediction`` parses into real actions, and in placeholder style refers to no ``$n$`` beyond
    the reference's largest.

    ``INVALIDACTION`` parses (annotated data holds it) but says that nothing could be extracted, so, as in
    Paragraph2Actions, a prediction holding it is not a valid action string.
    """
    try:
        actions = parse_actions(prediction, style=style)
    except ActionParseError:
        return False
    if any(isinstance(action, InvalidAction) for action in actions):
        return False
    if style != "placeholder":
        return True
    largest = max((int(n) for n in PLACEHOLDER.findall(reference)), default=0)
    return all(int(n) <= largest for n in PLACEHOLDER.findall(prediction))


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def _f1(precision: float, recall: float) -> float:
    return _ratio(2 * precision * recall, precision + recall)


def action_type_metrics(predictions: Sequence[str], references: Sequence[str], style: str = "readable") -> dict:
    """Accuracy of the action-type sequence, and precision/recall/F1 of action types (micro and per type).

    Types are matched as multisets within each pair: predicting ``ADD`` twice where the reference adds three
    times gives two true positives and one false negative for ``ADD``.
    """
    matches, predicted, expected = Counter(), Counter(), Counter()
    same_sequence = 0
    for prediction, reference in zip(predictions, references, strict=True):
        predicted_types, expected_types = action_types(prediction, style=style), action_types(reference, style=style)
        same_sequence += predicted_types == expected_types
        predicted_counts, expected_counts = Counter(predicted_types), Counter(expected_types)
        matches.update(predicted_counts & expected_counts)
        predicted.update(predicted_counts)
        expected.update(expected_counts)

    per_type = {}
    for name in sorted(predicted | expected):
        precision, recall = _ratio(matches[name], predicted[name]), _ratio(matches[name], expected[name])
        per_type[name] = {
            "precision": precision,
            "recall": recall,
            "f1": _f1(precision, recall),
            "support": expected[name],
        }
    precision = _ratio(sum(matches.values()), sum(predicted.values()))
    recall = _ratio(sum(matches.values()), sum(expected.values()))
    return {
        "action_type_sequence_accuracy": same_sequence / len(predictions),
        "action_type_precision": precision,
        "action_type_recall": recall,
        "action_type_f1": _f1(precision, recall),
        "per_action_type": per_type,
    }


def action_metrics(
    predictions: Sequence[str],
    references: Sequence[str],
    style: str = "readable",
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> dict:
    """All D2A scores of ``predictions`` against ``references`` (action strings in ``style``).

    Returns ``full_sentence_accuracy``, ``partial_accuracy_<t>`` per threshold ``t`` (share of pairs whose
    Levenshtein similarity is at least ``t``), ``levenshtein_similarity`` (mean), ``modified_bleu``,
    ``original_bleu``, ``validity`` (share of predictions that parse) and the action-type scores of
    :func:`action_type_metrics`.
    """
    check_pairs(predictions, references)
    count = len(predictions)
    similarities = levenshtein_similarities(predictions, references)
    modified_bleu, original_bleu = corpus_bleus(predictions, references)
    scores = {"full_sentence_accuracy": sum(p == r for p, r in zip(predictions, references, strict=True)) / count}
    for threshold in thresholds:
        scores[f"partial_accuracy_{threshold:g}"] = sum(s >= threshold for s in similarities) / count
    scores.update(
        levenshtein_similarity=sum(similarities) / count,
        modified_bleu=modified_bleu,
        original_bleu=original_bleu,
        validity=sum(is_valid(p, r, style) for p, r in zip(predictions, references, strict=True)) / count,
    )
    scores.update(action_type_metrics(predictions, references, style))
    return scores
