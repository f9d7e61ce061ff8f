"""Circle review: whether a model understands synthesis procedures, by round trip or by LLM peer review."""

import datasets
import evaluate

from chemactor.scoring import circle_scores, peer_review

_CITATION = """\
@software{chemactor,
    title = {ChemActor: reactions, experimental descriptions and machine-executable synthesis actions},
    year = {2026},
}
"""

_DESCRIPTION = """\
Circle review measures whether a model understands a synthesis procedure rather than matching its surface
text. Two modes, chosen by configuration name:

- `round_trip` (default): a chain alternates the model's own conversions, D0 -> A1 -> D1 -> A2 -> ... for
  k rounds (`chemactor.scoring.run_circle` runs the chains for any D2A and actions-to-description
  callables, batched). Scored per round: Levenshtein similarity of each A_i to the reference actions and to
  A_1, and ROUGE-L of each D_i to D0; summarized by the circle score (mean similarity to the reference over
  the rounds) and the decay (round 1 minus round k).
- `peer_review`: several reviewer LLMs behind TGI or OpenAI-compatible endpoints score each (prediction,
  reference) pair from 0 to 1 with a rationale, then debate: each sees the others' scores and rationales
  and may revise. Reported: per-reviewer and consensus scores per round, agreement between reviewers, and
  the number of answers that could not be read (counted, never dropped).
"""

_KWARGS_DESCRIPTION = """
Args (round_trip):
    predictions (`list` of `list` of `str`): per sample, the action strings A1..Ak of its chain.
    references (`list` of `str`): per sample, the reference action string.
    descriptions (`list` of `list` of `str`, optional): per sample, the descriptions D0..Dk of its chain.
Returns (round_trip):
    rounds, circle_score, decay, action_similarity_to_reference (per round), action_similarity_to_first
    (per round), description_similarity (per round, when descriptions are given).
Args (peer_review):
    predictions (`list` of `str`), references (`list` of `str`): the pairs to review.
    reviewers (`list`): endpoint URLs, or dicts {"url", "model", "name", ...} (extra keys configure the
        endpoint backend, e.g. max_retries).
    debate_rounds (`int`): rounds of revision after the independent review. Defaults to 1.
    task (`str`): "d2a" (default), "r2a" or "r2d": what the model was asked to do.
    prompt_version (`str`): version of the reviewer prompt templates. Defaults to "v1".
Returns (peer_review):
    consensus, agreement, unparsable, rounds (per round: reviewer_scores, consensus, sample_consensus,
    agreement, unparsable, unparsable_by_reviewer), reviews (every answer), reviewers, prompt_version.
Examples:

    >>> circle_review = evaluate.load("metrics/circle_review")  # round_trip
    >>> results = circle_review.compute(
    ...     predictions=[["ADD water; STIR for 2 h; FILTER.", "ADD water; STIR for 2 h.", "ADD water."]],
    ...     references=["ADD water; STIR for 2 h; FILTER."],
    ... )
    >>> print(results["circle_score"], results["decay"])
    0.6875 0.6875
"""

# evaluate names the configuration "default" when none is given: that is round_trip
CONFIGS = ("default", "round_trip", "peer_review")


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class CircleReview(evaluate.Metric):
    def _info(self):
        if self.config_name not in CONFIGS:
            raise KeyError(
                f"unknown configuration {self.config_name!r}; choose one of round_trip (default) or peer_review"
            )
        if self.config_name == "peer_review":
            predictions = datasets.Value("string", id="sequence")
        else:
            predictions = datasets.Sequence(datasets.Value("string", id="sequence"))
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": predictions, "references": datasets.Value("string", id="sequence")}
            ),
        )

    def _compute(self, predictions, references, descriptions=None, reviewers=None, **options):
        if self.config_name == "peer_review":
            if not reviewers:
                raise ValueError("peer_review needs reviewers: endpoint URLs or {'url', 'model', ...} dicts")
            # imported here: only this mode talks to endpoints, and round_trip must load without that stack
            from chemactor.generation.backends import endpoint_backends

            return peer_review(predictions, references, endpoint_backends(reviewers, api="chat"), **options)
        return circle_scores(predictions, references, descriptions)
