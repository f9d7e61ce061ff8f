"""R2D scores: how close generated experimental procedures are to the reference ones.

BLEU and ROUGE reward shared wording, but a procedure that reads well with "5 mmol" where the reference
says "0.5 mmol" is wrong in the way that matters to a chemist. The quantity scores compare the numbers
with units (amounts, volumes, concentrations, temperatures, durations) of the two texts directly.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from rouge_score import rouge_scorer
from sacrebleu.metrics.bleu import BLEU

from chemactor.scoring.action_metrics import check_pairs

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
