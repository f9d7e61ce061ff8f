"""Action extraction (D2A): predicted synthesis action sequences against annotated ones."""

import datasets
import evaluate

from chemactor.scoring import action_metrics, paper_action_metrics
from chemactor.scoring.action_metrics import DEFAULT_THRESHOLDS

_CITATION = """\
@article{vaucher2020automated,
    title = {Automated extraction of chemical synthesis actions from experimental procedures},
    author = {Vaucher, Alain C. and Zipoli, Federico and Geluykens, Joppe and Nair, Vishnu H.
              and Schwaller, Philippe and Laino, Teodoro},
    journal = {Nature Communications},
    volume = {11},
    pages = {3601},
    year = {2020},
    doi = {10.1038/s41467-020-17266-6},
}
"""

_DESCRIPTION = """\
Scores action sequences extracted from experimental procedures (the Paragraph2Actions grammar, e.g.
"ADD THF (10 mL); STIR for 2 h at 25 °C; CONCENTRATE.") against reference sequences.

Full-sentence accuracy, partial accuracy at Levenshtein-similarity thresholds, mean normalized Levenshtein
similarity, modified BLEU (sequences shorter than 4 tokens padded) and original BLEU have exactly the
values of paragraph2actions 1.5.0 (`paragraph2actions.analysis`), in under 1% of its CPU time;
validity agrees as far as the two parsers of the grammar agree. Per-action-type precision/recall/F1 and the
accuracy of the action-type sequence show which operations a model misses. The logic lives in
`chemactor.scoring.action_metrics`.

The configuration "chemactor_paper" returns instead the numbers as the ChemActor paper's evaluation code
computes them (in percent; BLEU-2/4, ROUGE-1/2/L, validity and accuracies at similarity 1.0/0.9/0.75/0.5 of
its ReactXT-style script; exact match, difflib similarity, their combined "EM" and single-order BLEU-2/4 of
its ChemTrans script), for comparison with the figures published there. The metric card lists the formulas.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): predicted action strings.
    references (`list` of `str`): reference action strings, one per prediction.
    style (`str`): "readable" (default; actions joined by "; ", ending with ".") or "placeholder"
        (Smiles2Actions: " ; " separator, $n$ for the n-th precursor; a prediction naming a $n$ beyond the
        reference's largest is invalid).
    thresholds (`list` of `float`): similarity thresholds of the partial accuracies. Defaults to
        [0.9, 0.75, 0.5].
Returns:
    full_sentence_accuracy (`float`): share of exact matches.
    partial_accuracy_<t> (`float`): share of pairs with Levenshtein similarity >= t, per threshold t.
    levenshtein_similarity (`float`): mean of 1 - distance / max(length).
    modified_bleu (`float`): corpus BLEU-4 on whitespace tokens, short sequences padded to 4 tokens.
    original_bleu (`float`): the same without padding.
    validity (`float`): share of predictions that parse into actions.
    action_type_sequence_accuracy (`float`): share of pairs with the same sequence of action types.
    action_type_precision, action_type_recall, action_type_f1 (`float`): micro-averaged over action types.
    per_action_type (`dict`): precision, recall, f1 and support of each action type.
Examples:

    >>> action_extraction = evaluate.load("metrics/action_extraction")
    >>> results = action_extraction.compute(
    ...     predictions=["ADD THF (10 mL); STIR for 2 h at 25 °C; CONCENTRATE.", "FILTER; WASH with water."],
    ...     references=["ADD THF (10 mL); STIR for 3 h at 25 °C; CONCENTRATE.", "FILTER; WASH with ethanol."],
    ... )
    >>> print(round(results["levenshtein_similarity"], 4), results["partial_accuracy_0.9"], results["validity"])
    0.875 0.5 1.0

    With the configuration "chemactor_paper" (placeholder-style strings, as in the paper; no other argument):

    >>> paper = evaluate.load("metrics/action_extraction", "chemactor_paper")
    >>> results = paper.compute(
    ...     predictions=["ADD $1$ ; STIR for @2@ ; YIELD $-1$", "ADD $3$ ; YIELD $-1$"],
    ...     references=["ADD $1$ ; ADD $2$ ; STIR for @2@ ; YIELD $-1$", "ADD $1$ ; ADD $2$ ; YIELD $-1$"],
    ... )
    >>> print(results["validity"], round(results["bleu4"], 2), results["chemtrans_em"])
    50.0 46.99 50.0
"""

# evaluate names the configuration "default" when none is given
CONFIGS = ("default", "chemactor_paper")


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ActionExtraction(evaluate.Metric):
    def _info(self):
        if self.config_name not in CONFIGS:
            raise KeyError(f"unknown configuration {self.config_name!r}; choose default or chemactor_paper")
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("string", id="sequence"),
                    "references": datasets.Value("string", id="sequence"),
                }
            ),
            codebase_urls=[
                "https://github.com/rxn4chemistry/paragraph2actions",
                "https://github.com/Zhanghahah/ChemActor",
            ],
            reference_urls=["https://doi.org/10.1038/s41467-020-17266-6"],
        )

    def _compute(self, predictions, references, style="readable", thresholds=DEFAULT_THRESHOLDS):
        if self.config_name == "chemactor_paper":
            return paper_action_metrics(predictions, references)
        return action_metrics(predictions, references, style=style, thresholds=tuple(thresholds))
