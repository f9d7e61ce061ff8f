"""R2D scores: how close generated experimental procedures are to the reference ones.

BLEU and ROUGE reward shared wording, but a procedure that reads well with "5 mmol" where the reference
says "0.5 mmol" is wrong in the way that matters to a chemist. The quantity scores compare the numbers
with units (amounts, volumes, concentrations, temperatures, durations) of the two texts directly.

:func:`paper_procedure_metrics` computes the R2D numbers the way the ChemActor paper's evaluation code does,
in percent, for comparison with the figures published there (see ``metrics/procedure_generation/README.md``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

from rouge_score import rouge_scorer
from sacrebleu.metrics.bleu import BLEU

from chemactor.scoring.action_metrics import check_pairs
from chemactor.scoring.ngrams import mean_sentence_bleu

ROUGE_TYPES: tuple[str, ...] = ("rouge1", "rouge2", "rougeL")

# Spelling variants of one unit map to one canonical name, so "2 hrs" matches "2 h".
UNITS: dict[str, str] = {
    **dict.fromkeys(("mg", "milligram", "milligrams"), "mg"),
    **dict.fromkeys(("g", "gram", "grams"), "g"),
    **dict.fromkeys(("kg", "kilogram", "kilograms"), "kg"),
    **dict.fromkeys(("µg", "μg", "ug", "microgram", "micrograms"), "µg"),
    **dict.fromkeys(("mmol", "millimole", "millimoles", "mmole", "mmoles"), "mmol"),
    **dict.fromkeys(("mol", "mole", "moles"), "mol"),
    **dict.fromkeys(("µmol", "μmol", "umol", "micromole", "micromoles"), "µmol"),
    **dict.fromkeys(("ml", "milliliter", "milliliters", "millilitre", "millilitres"), "mL"),
    **dict.fromkeys(("l", "liter", "liters", "litre", "litres"), "L"),
    **dict.fromkeys(("µl", "μl", "ul", "microliter", "microliters", "microlitre", "microlitres"), "µL"),
    **dict.fromkeys(("m", "molar"), "M"),
    **dict.fromkeys(("mm",), "mM"),
    **dict.fromkeys(("n", "normal"), "N"),
    **dict.fromkeys(("%", "percent"), "%"),
    **dict.fromkeys(("eq", "eq.", "equiv", "equiv.", "equivalent", "equivalents"), "equiv"),
    **dict.fromkeys(("°c", "ºc", "° c", "degc", "deg c", "degrees c", "degree c", "°"), "°C"),
    **dict.fromkeys(("k", "kelvin"), "K"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "h"),
    **dict.fromkeys(("min", "mins", "minute", "minutes"), "min"),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), "s"),
    **dict.fromkeys(("d", "day", "days"), "d"),
    **dict.fromkeys(("bar",), "bar"),
    **dict.fromkeys(("psi",), "psi"),
    **dict.fromkeys(("atm",), "atm"),
    **dict.fromkeys(("rpm",), "rpm"),
}
_UNIT_PATTERN = "|".join(re.escape(unit) for unit in sorted(UNITS, key=len, reverse=True))
QUANTITY = re.compile(
    rf"(?<![\w.])(-?\d+(?:\.\d+)?)\s?({_UNIT_PATTERN})(?![\w°])",
    re.IGNORECASE,
)


def extract_quantities(text: str) -> Counter[tuple[float, str]]:
    """The quantities of ``text`` as a multiset of (value, canonical unit).

    ``"10 mL at 0 °C"`` gives ``{(10.0, "mL"): 1, (0.0, "°C"): 1}``. Units match case-insensitively because
    procedures write ``mL`` and ``ml`` alike; molar (``M``) and millimolar (``mM``) differ in letters too.
    """
    quantities: Counter[tuple[float, str]] = Counter()
    for value, unit in QUANTITY.findall(text):
        quantities[(float(value), UNITS[unit.lower()])] += 1
    return quantities


def quantity_scores(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Micro-averaged recall (reference quantities found in the prediction) and precision (predicted
    quantities found in the reference), each quantity matched at most as often as it occurs; a score with
    nothing to find is 1.0."""
    matched = predicted = expected = 0
    for prediction, reference in zip(predictions, references, strict=True):
        predicted_quantities, expected_quantities = extract_quantities(prediction), extract_quantities(reference)
        matched += sum((predicted_quantities & expected_quantities).values())
        predicted += sum(predicted_quantities.values())
        expected += sum(expected_quantities.values())
    return {
        "quantity_recall": matched / expected if expected else 1.0,
        "quantity_precision": matched / predicted if predicted else 1.0,
        "reference_quantities": expected,
    }


def procedure_metrics(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Corpus BLEU-4 (sacrebleu, 13a tokens, in [0, 1]), mean ROUGE-1/2/L F1 (rouge-score, stemmed) and
    the quantity scores of :func:`quantity_scores`."""
    check_pairs(predictions, references)
    bleu = min(1.0, BLEU().corpus_score(list(predictions), [list(references)]).score / 100)  # percent rounding
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    rouge = {name: 0.0 for name in ROUGE_TYPES}
    for prediction, reference in zip(predictions, references, strict=True):
        for name, score in scorer.score(reference, prediction).items():
            rouge[name] += score.fmeasure
    return {
        "bleu": bleu,
        **{name: total / len(predictions) for name, total in rouge.items()},
        **quantity_scores(predictions, references),
    }


# --- the ChemActor paper's definitions ------------------------------------------------------------------


def _rouge_words(text: str) -> list[str] | None:
    """The words the `rouge` package scores: ``text`` cut into sentences at every ".", each sentence's
    whitespace collapsed, then split at single spaces (a blank sentence gives one empty word); ``None`` when
    no sentence is left (the package raises "Hypothesis is empty." there)."""
    sentences = [" ".join(part.split()) for part in text.split(".") if part]
    return [word for sentence in sentences for word in sentence.split(" ")] if sentences else None


def rouge_n_f(prediction: str, reference: str, n: int) -> float:
    """ROUGE-N F of the `rouge` package (1.0.1, ``Rouge().get_scores(prediction, reference)``): *distinct*
    n-grams over the whole text (across sentence ends), ``F = 2 P R / (P + R + 1e-8)``; 0.0 where the
    package raises because one side has no sentence."""
    predicted, expected = _rouge_words(prediction), _rouge_words(reference)
    if predicted is None or expected is None:
        return 0.0
    predicted_grams = {tuple(predicted[i : i + n]) for i in range(len(predicted) - n + 1)}
    expected_grams = {tuple(expected[i : i + n]) for i in range(len(expected) - n + 1)}
    overlap = len(predicted_grams & expected_grams)
    precision = overlap / len(predicted_grams) if predicted_grams else 0.0
    recall = overlap / len(expected_grams) if expected_grams else 0.0
    return 2.0 * ((precision * recall) / (precision + recall + 1e-8))


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct-n as the paper's code counts it: distinct lower-cased n-grams (words split at single spaces)
    over all ``texts``, divided by ``sum(words - n + 1)`` -- a text shorter than n words *subtracts* from
    that sum; 0.0 where the sum is 0 (the paper's code divides by zero)."""
    seen: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        words = text.lower().split(" ")
        seen.update(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
        total += len(words) - n + 1
    return len(seen) / total if total else 0.0


def paper_procedure_metrics(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """R2D/A2D scores as the ChemActor paper's code (``eval_ChemTrans_a2d.py``) computes them, in percent,
    on texts stripped of surrounding newlines: ``bleu2`` and ``bleu4``, the mean over pairs of NLTK's sentence
    BLEU of the 2-gram (4-gram) precision alone on tokens split at single spaces; ``rouge_2`` and
    ``rouge_4``, the mean `rouge`-package F (:func:`rouge_n_f`); ``distinct_2`` and ``distinct_4`` of the
    predictions (:func:`distinct_n`)."""
    check_pairs(predictions, references)
    predicted, expected = [text.strip("\n") for text in predictions], [text.strip("\n") for text in references]
    scores = {}
    for n in (2, 4):
        scores[f"bleu{n}"] = 100 * mean_sentence_bleu(predicted, expected, order=n)
    for n in (2, 4):
        scores[f"rouge_{n}"] = (
            100 * math.fsum(map(rouge_n_f, predicted, expected, [n] * len(predicted))) / len(predicted)
        )
    for n in (2, 4):
        scores[f"distinct_{n}"] = 100 * distinct_n(predicted, n)
    return scores
