"""D2A scores: how close predicted action sequences are to the reference ones.

The first six values of :func:`action_metrics` reproduce the definitions of Paragraph2Actions
(``paragraph2actions.analysis`` 1.5.0) exactly, so numbers stay comparable with the published ones. On top
of those, the per-action-type precision/recall/F1 and the accuracy of the action-type sequence show *which*
operations a model gets wrong, which a string distance hides.

:func:`paper_action_metrics` computes the D2A numbers the way the ChemActor paper's evaluation code does
(its ReactXT-style ``evaluate/utils.py`` and ``eval_ChemTrans_d2a.py``), in percent, for comparison with
the figures published there; the metric card ``metrics/action_extraction/README.md`` lists how they differ.

Speed: all distinct strings are split into actions by one ``str.split``, each distinct action is parsed and
tokenized once (model outputs repeat ``CONCENTRATE`` and ``FILTER`` endlessly) and a string's BLEU tokens are
assembled from its actions' tokens, so one split serves validity, action types and BLEU; the Levenshtein
distances come from rapidfuzz (C++), and n-gram matches and action-type counts are counted with numpy/scipy.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np
from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import cpdist
from rouge_score import rouge_scorer
from sacrebleu.metrics.bleu import BLEU

from chemactor.actions import (
    ACTION_CLASSES,
    STYLES,
    ActionParseError,
    ActionStringConverter,
    InvalidAction,
)
from chemactor.cpu import cyclic_gc_paused
from chemactor.scoring.ngrams import (
    PairStatistics,
    Sequences,
    mean_sentence_bleu,
    nltk_bleu,
    pair_statistics,
    sequence_pair_statistics,
)

DEFAULT_THRESHOLDS: tuple[float, ...] = (0.9, 0.75, 0.5)
BLEU_ORDER = 4
UNKNOWN = "UNKNOWN"
PLACEHOLDER = re.compile(r"\$(\d+)\$")

# The ChemActor paper's code parses predictions with paragraph2actions' readable converter given the
# separator " ; ": the placeholder format's separator, with the readable format's optional end mark.
PAPER_CONVERTER = ActionStringConverter(separator=" ; ", end_mark=".")
PAPER_THRESHOLDS: tuple[float, ...] = (1.0, 0.9, 0.75, 0.5)
PAPER_ROUGE_TYPES: tuple[str, ...] = ("rouge1", "rouge2", "rougeL")


def check_pairs(predictions: Sequence[str], references: Sequence[str]) -> None:
    """Raise ``ValueError`` unless there is at least one pair and both sides have the same length."""
    if len(predictions) != len(references):
        raise ValueError(f"got {len(predictions)} predictions but {len(references)} references")
    if not predictions:
        raise ValueError("got no predictions to score")


def levenshtein_similarities(predictions: Sequence[str], references: Sequence[str]) -> list[float]:
    """``1 - distance / max(len)`` per pair (1.0 for two empty strings), as textdistance computes it; rapidfuzz
    loops over the pairs in C++."""
    return _similarities(predictions, references).tolist()


def _similarities(predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
    return cpdist(references, predictions, scorer=Levenshtein.normalized_similarity, dtype=np.float64)


def _bleu_score(statistics: PairStatistics) -> float:
    """Corpus BLEU-4 in [0, 1] from the per-pair statistics (summed over the corpus first)."""
    correct, total = statistics.matches.sum(axis=0).tolist(), statistics.totals.sum(axis=0).tolist()
    sys_len, ref_len = int(statistics.predicted_lengths.sum()), int(statistics.expected_lengths.sum())
    # sacrebleu works in percent; a perfect score can come back as 100.00000000000004
    return min(1.0, BLEU.compute_bleu(correct, total, sys_len, ref_len).score / 100)


def corpus_bleus(predictions: Sequence[str], references: Sequence[str]) -> tuple[float, float]:
    """Corpus BLEU-4 on whitespace tokens as (modified, original), both in [0, 1].

    The modified score pads every sentence shorter than 4 tokens with empty tokens first, so that a correct
    one-word prediction (``CONCENTRATE.``) is not scored zero. NLTK's ``corpus_bleu`` (which
    Paragraph2Actions calls) counts a sentence too short to hold an n-gram as one unmatched n-gram of that
    order; the totals follow NLTK. sacrebleu turns the statistics into a score.
    """
    distinct = list(dict.fromkeys(chain(predictions, references)))
    index = {text: i for i, text in enumerate(distinct)}
    return _corpus_bleus(
        Sequences.from_texts(distinct),
        np.fromiter(map(index.__getitem__, predictions), np.int64, len(predictions)),
        np.fromiter(map(index.__getitem__, references), np.int64, len(references)),
    )


def _corpus_bleus(tokens: Sequences, predicted_at: np.ndarray, expected_at: np.ndarray) -> tuple[float, float]:
    """:func:`corpus_bleus` of the token sequences ``predicted_at[i]`` against ``expected_at[i]``: only pairs
    with a side shorter than 4 tokens differ between the two scores, so only those are counted again, padded."""
    original = sequence_pair_statistics(tokens, predicted_at, expected_at, BLEU_ORDER)
    short = np.flatnonzero((original.predicted_lengths < BLEU_ORDER) | (original.expected_lengths < BLEU_ORDER))
    involved, at = np.unique(np.concatenate([predicted_at[short], expected_at[short]]), return_inverse=True)
    padded_tokens = tokens.joined(involved, np.ones(len(involved), np.int64)).padded(BLEU_ORDER)
    padded = sequence_pair_statistics(padded_tokens, at[: len(short)], at[len(short) :], BLEU_ORDER)
    return _bleu_score(original.replace(short, padded)), _bleu_score(original)


@dataclass(frozen=True)
class ParsedStrings:
    """Validity, action types and whitespace tokens of every distinct string of a batch, each distinct action
    parsed and tokenized once.

    ``types`` holds, per distinct string, the type of each of its actions (ids into ``names``, sorted names,
    ``"UNKNOWN"`` where the keyword is not an action) as :func:`action_types` gives them; ``valid[i]``:
    string ``i`` parses into actions none of which is ``INVALIDACTION``; ``tokens``: the ``str.split()``
    tokens of each string, for BLEU.
    """

    index: dict[str, int]
    types: Sequences
    names: list[str]
    valid: np.ndarray
    tokens: Sequences

    @classmethod
    def parse(cls, texts: Iterable[str], converter: ActionStringConverter) -> ParsedStrings:
        distinct = list(dict.fromkeys(texts))
        split = converter.split_many(distinct)
        actions = {part: i for i, part in enumerate(dict.fromkeys(split.parts))}
        parsed = [_parse_action(part, converter) for part in actions]
        names = sorted({name for name, _ in parsed})
        name_ids = {name: i for i, name in enumerate(names)}
        type_of = np.array([name_ids[name] for name, _ in parsed] or [0], np.int64)
        invalid = np.array([not ok for _, ok in parsed] or [False])
        flat = np.fromiter(map(actions.__getitem__, split.parts), np.int64, len(split.parts))
        lengths = np.array(split.counts, np.int64)
        owner = np.repeat(np.arange(len(distinct)), lengths)
        valid = np.bincount(owner[invalid[flat]], minlength=len(distinct)) == 0
        types = Sequences(type_of[flat], np.cumsum(lengths) - lengths, lengths)
        tokens = _whitespace_tokens(distinct, list(actions), flat, lengths, np.array(split.ended), converter)
        return cls({text: i for i, text in enumerate(distinct)}, types, names, valid, tokens)

    def positions(self, texts: Sequence[str]) -> np.ndarray:
        """The row of each of ``texts`` (all of them among the parsed strings)."""
        return np.fromiter(map(self.index.__getitem__, texts), np.int64, len(texts))


def _whitespace_tokens(
    texts: list[str],
    actions: list[str],
    flat: np.ndarray,
    counts: np.ndarray,
    ended: np.ndarray,
    converter: ActionStringConverter,
) -> Sequences:
    """The ``str.split()`` tokens of ``texts``, whose actions ``converter.split_many`` gave (``actions[flat]``,
    ``counts[i]`` of them for text ``i``, which ended with the end mark where ``ended[i]``), from the tokens
    of each distinct action once.

    A stripped text is its actions joined by the separator, plus the end mark if it had one. When the
    separator ends with whitespace, no token spans the place just after a separator, so the text's tokens are
    those of its chunks "action + separator", ..., "last action + end mark (if any)" one after another.
    Chunk ``3a`` is action ``a`` with the separator, ``3a + 1`` with the end mark, ``3a + 2`` bare. A text
    with no action (empty, only whitespace or only an end mark) is its own chunk.
    """
    separator, end = converter.separator, converter.end_mark
    if not separator[-1:].isspace():
        return Sequences.from_texts(texts)
    chunk = flat * 3
    some = counts > 0
    chunk[(np.cumsum(counts) - 1)[some]] += np.where(ended[some], 1, 2)
    used = np.flatnonzero(np.bincount(chunk, minlength=3 * len(actions)))
    suffixes = (separator, end, "")
    chunk_texts = [actions[i // 3] + suffixes[i % 3] for i in used.tolist()]
    empty = np.flatnonzero(~some)
    chunk_texts += [texts[i] for i in empty.tolist()]
    row = np.zeros(3 * len(actions), np.int64)
    row[used] = np.arange(len(used))
    # a text without actions contributes its own chunk, inserted where its (empty) run of chunks starts
    parts = np.insert(row[chunk], (np.cumsum(counts) - counts)[empty], len(used) + np.arange(len(empty)))
    return Sequences.from_texts(chunk_texts).joined(parts, np.maximum(counts, 1))


def _parse_action(text: str, converter: ActionStringConverter) -> tuple[str, bool]:
    keyword = text.partition(" ")[0]
    name = keyword if keyword in ACTION_CLASSES else UNKNOWN
    try:
        return name, not isinstance(converter.parse_action(text), InvalidAction)
    except ActionParseError:
        return name, False


def _style_converter(style: str) -> ActionStringConverter:
    try:
        return STYLES[style]
    except KeyError:
        raise ValueError(f"unknown action style {style!r}; known: {', '.join(STYLES)}") from None


def _placeholder_valid(prediction: str, reference: str) -> bool:
    """Placeholder style: no ``$n$`` of the prediction beyond the reference's largest."""
    largest = max((int(n) for n in PLACEHOLDER.findall(reference)), default=0)
    return all(int(n) <= largest for n in PLACEHOLDER.findall(prediction))


def is_valid(prediction: str, reference: str, style: str = "readable") -> bool:
    """Whether ``prediction`` parses into real actions, and in placeholder style refers to no ``$n$`` beyond
    the reference's largest.

    ``INVALIDACTION`` parses (annotated data holds it) but says that nothing could be extracted, so, as in
    Paragraph2Actions, a prediction holding it is not a valid action string.
    """
    parsed = ParsedStrings.parse([prediction], _style_converter(style))
    return bool(parsed.valid[0]) and (style != "placeholder" or _placeholder_valid(prediction, reference))


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def _f1(precision: float, recall: float) -> float:
    return _ratio(2 * precision * recall, precision + recall)


def _type_counts(parsed: ParsedStrings, which: np.ndarray) -> np.ndarray:
    """``(len(which), len(names))`` counts of each action type in each string ``which`` points to."""
    at, owner = parsed.types.positions(which)
    size = len(parsed.names)
    counts = np.bincount(owner * size + parsed.types.tokens[at], minlength=len(which) * size)
    return counts.reshape(len(which), size)


def _same_type_sequences(parsed: ParsedStrings, predicted_at: np.ndarray, expected_at: np.ndarray) -> int:
    """How many pairs have the same sequence of action types: equal lengths and no position that differs."""
    lengths = parsed.types.lengths
    candidates = np.flatnonzero(lengths[predicted_at] == lengths[expected_at])
    predicted, owner = parsed.types.positions(predicted_at[candidates])
    expected, _ = parsed.types.positions(expected_at[candidates])
    differing = np.bincount(
        owner[parsed.types.tokens[predicted] != parsed.types.tokens[expected]], minlength=len(candidates)
    )
    return int(np.count_nonzero(differing == 0))


def _action_type_scores(parsed: ParsedStrings, predicted_at: np.ndarray, expected_at: np.ndarray) -> dict:
    predicted, expected = _type_counts(parsed, predicted_at), _type_counts(parsed, expected_at)
    matches = np.minimum(predicted, expected).sum(axis=0).tolist()
    predicted_totals, expected_totals = predicted.sum(axis=0).tolist(), expected.sum(axis=0).tolist()
    per_type = {}
    for i, name in enumerate(parsed.names):
        if not (predicted_totals[i] or expected_totals[i]):
            continue
        precision, recall = _ratio(matches[i], predicted_totals[i]), _ratio(matches[i], expected_totals[i])
        per_type[name] = {
            "precision": precision,
            "recall": recall,
            "f1": _f1(precision, recall),
            "support": expected_totals[i],
        }
    precision = _ratio(sum(matches), sum(predicted_totals))
    recall = _ratio(sum(matches), sum(expected_totals))
    return {
        "action_type_sequence_accuracy": _same_type_sequences(parsed, predicted_at, expected_at) / len(predicted_at),
        "action_type_precision": precision,
        "action_type_recall": recall,
        "action_type_f1": _f1(precision, recall),
        "per_action_type": per_type,
    }


def action_type_metrics(predictions: Sequence[str], references: Sequence[str], style: str = "readable") -> dict:
    """Accuracy of the action-type sequence, and precision/recall/F1 of action types (micro and per type).

    Types are matched as multisets within each pair: predicting ``ADD`` twice where the reference adds three
    times gives two true positives and one false negative for ``ADD``.
    """
    parsed = ParsedStrings.parse(chain(predictions, references), _style_converter(style))
    return _action_type_scores(parsed, parsed.positions(predictions), parsed.positions(references))


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
    with cyclic_gc_paused():  # a batch's parses and tokens are no cycles (see chemactor.cpu)
        count = len(predictions)
        similarities = _similarities(predictions, references)
        parsed = ParsedStrings.parse(chain(predictions, references), _style_converter(style))
        predicted_at, expected_at = parsed.positions(predictions), parsed.positions(references)
        modified_bleu, original_bleu = _corpus_bleus(parsed.tokens, predicted_at, expected_at)
        valid = parsed.valid[predicted_at]
        if style == "placeholder":
            valid &= np.fromiter(map(_placeholder_valid, predictions, references), bool, count)
        scores = {"full_sentence_accuracy": int(np.count_nonzero(predicted_at == expected_at)) / count}
        for threshold in thresholds:
            scores[f"partial_accuracy_{threshold:g}"] = int(np.count_nonzero(similarities >= threshold)) / count
        scores.update(
            levenshtein_similarity=math.fsum(similarities) / count,
            modified_bleu=modified_bleu,
            original_bleu=original_bleu,
            validity=int(np.count_nonzero(valid)) / count,
        )
        scores.update(_action_type_scores(parsed, predicted_at, expected_at))
        return scores


# --- the ChemActor paper's definitions ------------------------------------------------------------------


def reactant_count(text: str) -> int:
    """The highest ``$n$`` placeholder of ``text`` as the paper's code reads it: over whitespace tokens that
    start and end with ``$`` and hold an integer in between (``int`` semantics: ``$+2$`` is 2), and 0 when
    there is none *or the highest is 0*; so a text whose only placeholder is the product ``$-1$`` gives -1."""
    highest = None
    for token in text.split():
        if len(token) > 1 and token[0] == "$" == token[-1]:
            try:
                number = int(token.strip("$"))
            except ValueError:
                continue
            highest = number if highest is None else max(highest, number)
    return highest or 0


def paper_validity(prediction: str, reference: str) -> bool:
    """The paper's D2A validity: ``prediction`` parses with " ; " between actions (an end mark "." optional;
    ``INVALIDACTION`` counts as parsed) and :func:`reactant_count` of it does not exceed the reference's."""
    try:
        PAPER_CONVERTER.parse(prediction)
    except ActionParseError:
        return False
    return reactant_count(reference) >= reactant_count(prediction)


def paper_action_metrics(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """D2A scores as the ChemActor paper's code computes them, in percent.

    From its ReactXT-style evaluation (both sides stripped of surrounding whitespace first): ``bleu2`` and
    ``bleu4``, corpus BLEU with cumulative weights over whitespace tokens, each sentence shorter than 2 (4)
    tokens padded with empty tokens; ``rouge_1``, ``rouge_2``, ``rouge_l``, the mean rouge-score F-measure
    (no stemming); ``validity`` (:func:`paper_validity`); ``acc_100``, ``acc_90``, ``acc_75``, ``acc_50``,
    the share of pairs with normalized Levenshtein similarity of at least 1.0, 0.9, 0.75, 0.5.

    From its ChemTrans script, on the strings as given: ``chemtrans_exact_match``;
    ``chemtrans_similar`` (``difflib.SequenceMatcher`` ratio above 0.8); ``chemtrans_em``, the script's "EM",
    which adds the two (an exact match counts twice, so it can exceed 100); ``chemtrans_bleu2`` and
    ``chemtrans_bleu4``, the mean over pairs of sentence BLEU of the 2-gram (4-gram) precision alone, on
    tokens split at single spaces.
    """
    check_pairs(predictions, references)
    count = len(predictions)
    stripped, expected = [text.strip() for text in predictions], [text.strip() for text in references]
    scores = {}
    for order in (2, 4):
        statistics = pair_statistics(stripped, expected, order, pad_to=order)
        scores[f"bleu{order}"] = 100 * nltk_bleu(
            statistics.matches.sum(axis=0).tolist(),
            statistics.totals.sum(axis=0).tolist(),
            int(statistics.predicted_lengths.sum()),
            int(statistics.expected_lengths.sum()),
            [1 / order] * order,
        )
    scorer = rouge_scorer.RougeScorer(list(PAPER_ROUGE_TYPES))
    totals = dict.fromkeys(PAPER_ROUGE_TYPES, 0.0)
    for prediction, reference in zip(stripped, expected, strict=True):
        # the paper's code passes the prediction as the target; F-measure is the same either way round
        for name, score in scorer.score(prediction, reference).items():
            totals[name] += score.fmeasure
    scores.update(rouge_1=totals["rouge1"], rouge_2=totals["rouge2"], rouge_l=totals["rougeL"])
    for name in ("rouge_1", "rouge_2", "rouge_l"):
        scores[name] *= 100 / count
    scores["validity"] = 100 * sum(map(paper_validity, stripped, expected)) / count
    similarities = _similarities(stripped, expected)
    for threshold in PAPER_THRESHOLDS:
        scores[f"acc_{round(threshold * 100)}"] = 100 * int(np.count_nonzero(similarities >= threshold)) / count

    exact = sum(p == r for p, r in zip(predictions, references, strict=True))
    similar = sum(
        difflib.SequenceMatcher(None, p, r).ratio() * 100 > 80 for p, r in zip(predictions, references, strict=True)
    )
    scores.update(
        chemtrans_exact_match=100 * exact / count,
        chemtrans_similar=100 * similar / count,
        chemtrans_em=100 * (exact + similar) / count,
        chemtrans_bleu2=100 * mean_sentence_bleu(predictions, references, order=2),
        chemtrans_bleu4=100 * mean_sentence_bleu(predictions, references, order=4),
    )
    return scores
