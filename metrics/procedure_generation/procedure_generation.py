"""Procedure generation (R2D): generated experimental procedures against reference ones."""

import datasets
import evaluate

from chemactor.scoring import paper_procedure_metrics, procedure_metrics

_CITATION = """\
@inproceedings{papineni2002bleu,
    title = {Bleu: a Method for Automatic Evaluation of Machine Translation},
    author = {Papineni, Kishore and Roukos, Salim and Ward, Todd and Zhu, Wei-Jing},
    booktitle = {Proceedings of the 40th Annual Meeting of the Association for Computational Linguistics},
    pages = {311--318},
    year = {2002},
}
@inproceedings{lin2004rouge,
    title = {{ROUGE}: A Package for Automatic Evaluation of Summaries},
    author = {Lin, Chin-Yew},
    booktitle = {Text Summarization Branches Out},
    pages = {74--81},
    year = {2004},
}
"""

_DESCRIPTION = """\
Scores experimental procedures written for a reaction (R2D) against reference procedures: corpus BLEU-4
(sacrebleu), ROUGE-1/2/L F1 (rouge-score, stemmed) and a chemistry-aware score that text overlap misses:
how many of the reference's quantities (numbers with units: mg, mmol, mL, M, equiv, °C, h, min, ...) the
prediction states, and how many of the prediction's quantities are in the reference. "5 mmol" against
"0.5 mmol" costs a text metric one token; here it is a wrong quantity. The logic lives in
`chemactor.scoring.procedure_metrics`.

The configuration "chemactor_paper" returns instead the numbers as the ChemActor paper's evaluation code
computes them (in percent: single-order sentence BLEU-2/4, ROUGE-2/4 F of the `rouge` package's
definition, Distinct-2/4 of the predictions), for comparison with the figures published there. The metric
card lists the formulas.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): generated procedures.
    references (`list` of `str`): reference procedures, one per prediction.
Returns:
    bleu (`float`): corpus BLEU-4 in [0, 1] (sacrebleu, 13a tokenization).
    rouge1, rouge2, rougeL (`float`): mean F1.
    quantity_recall (`float`): share of reference quantities stated in the predictions (micro-averaged).
    quantity_precision (`float`): share of predicted quantities found in the references.
    reference_quantities (`int`): number of quantities in the references.
Examples:

    >>> procedure_generation = evaluate.load("metrics/procedure_generation")
    >>> results = procedure_generation.compute(
    ...     predictions=["NaH (5 mmol) was added to THF (10 mL) at 0 °C and stirred for 2 h."],
    ...     references=["To THF (10 ml) at 0 °C was added NaH (0.5 mmol); the mixture was stirred for 2 hours."],
    ... )
    >>> print(results["quantity_recall"], results["quantity_precision"])
    0.75 0.75

    With the configuration "chemactor_paper":

    >>> paper = evaluate.load("metrics/procedure_generation", "chemactor_paper")
    >>> results = paper.compute(
    ...     predictions=["The mixture was stirred for 2 h at room temperature."],
    ...     references=["The mixture was stirred at room temperature for 2 h."],
    ... )
    >>> print({name: round(value, 2) for name, value in results.items()})
    {'bleu2': 55.56, 'bleu4': 14.29, 'rouge_2': 77.78, 'rouge_4': 14.29, 'distinct_2': 100.0, 'distinct_4': 100.0}
"""

# evaluate names the configuration "default" when none is given
CONFIGS = ("default", "chemactor_paper")


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ProcedureGeneration(evaluate.Metric):
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
                "https://github.com/mjpost/sacrebleu",
                "https://github.com/google-research/google-research/tree/master/rouge",
            ],
        )

    def _compute(self, predictions, references):
        if self.config_name == "chemactor_paper":
            return paper_procedure_metrics(predictions, references)
        return procedure_metrics(predictions, references)
