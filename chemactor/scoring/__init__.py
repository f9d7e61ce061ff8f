"""Scoring: the logic behind the metric modules in ``metrics/`` and the evaluation report.

- :func:`action_metrics` (D2A): Paragraph2Actions' accuracy, partial accuracy, Levenshtein similarity,
  BLEU and validity, plus per-action-type precision/recall/F1.
- :func:`procedure_metrics` (R2D): BLEU, ROUGE and the recall of the reference's quantities.
- :func:`paper_action_metrics` / :func:`paper_procedure_metrics`: D2A and R2D numbers computed the way the
  ChemActor paper's evaluation code computes them, for comparison with its published figures.
- :func:`run_circle` / :func:`circle_scores`: round-trip circle review of a model's own conversions.
- :func:`peer_review`: circle review by reviewer LLMs behind endpoints, with debate rounds.
"""

from chemactor.scoring.action_metrics import action_metrics, action_type_metrics, paper_action_metrics
from chemactor.scoring.circle import CircleChain, circle_scores, run_circle
from chemactor.scoring.procedure_metrics import extract_quantities, paper_procedure_metrics, procedure_metrics
from chemactor.scoring.review import parse_review, peer_review

# Metric sets a report can add beside the project's own: "paper" is the ChemActor paper's definitions.
EXTRA_METRICS: tuple[str, ...] = ("paper",)

__all__ = [
    "EXTRA_METRICS",
    "CircleChain",
    "action_metrics",
    "action_type_metrics",
    "circle_scores",
    "extract_quantities",
    "paper_action_metrics",
    "paper_procedure_metrics",
    "parse_review",
    "peer_review",
    "procedure_metrics",
    "run_circle",
]
