"""Circle review, peer-review mode: several reviewer LLMs score each prediction, then debate.

A text metric cannot tell a harmless rewording from a wrong quantity; an LLM reviewer can, but one
reviewer's judgement is noisy and biased. Several reviewers (different models or endpoints) each score a
(prediction, reference) pair from 0 to 1 with a short rationale; then, for ``debate_rounds`` rounds, each
sees the others' scores and rationales and may revise. Reported per round: each reviewer's mean score, the
consensus, how closely the reviewers agree, and how many answers could not be read (counted, never
silently dropped). Answers are read as JSON with a regular-expression fallback; nothing is ever evaluated.

A reviewer is any object with the :class:`Reviewer` method (answers for many prompts, in order, a failure
returned in place). Scoring sits below generation, so the caller builds the reviewers: the ``circle_review``
metric module, for example, turns endpoint specs into :class:`~chemactor.generation.backends.EndpointBackend`
reviewers (TGI or any OpenAI-compatible server, chat API, with retries and bounded concurrency) through
``endpoint_backends``.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from chemactor.prompts import load_prompt, prompt_name
from chemactor.scoring.action_metrics import check_pairs

PROMPT_VERSION = "v1"  # of the reviewer prompts (chemactor.prompts: peer_review, peer_review_debate)

TASKS: dict[str, str] = {
    "d2a": "convert an experimental procedure into a sequence of machine-executable synthesis actions.",
    "r2a": "predict the sequence of synthesis actions for a reaction; $n$ names the n-th precursor.",
    "r2d": "write the experimental procedure for a reaction given as reaction SMILES.",
}

# Reviewers answer under this JSON schema where their server takes one; parse_review stays lenient regardless.
REVIEW_SCHEMA: dict[str, Any] = {
    "title": "Review",
    "type": "object",
    "properties": {
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "rationale": {"type": "string", "maxLength": 600, "pattern": '^[^\\x00-\\x1f"\\\\]{0,600}$'},
    },
    "required": ["score", "rationale"],
    "additionalProperties": False,
}

_SCORE = re.compile(r"score\W{0,4}(-?\d+(?:\.\d+)?)", re.IGNORECASE)


class Answer(Protocol):
    """A reviewer's answer to one prompt."""

    text: str


class Reviewer(Protocol):
    """What peer review needs from a reviewer LLM (``EndpointBackend`` has it).

    ``generate_many`` answers every prompt, in input order; a prompt that could not be answered comes back
    as an exception in its place (its ``kind``, when it has one, is reported), so one failed request costs
    one review, not the run.
    """

    def generate_many(self, items: Sequence[str], **params: Any) -> Sequence[Answer | Exception]: ...


@dataclass(frozen=True)
class Review:
    """One reviewer's answer on one pair: ``score`` in [0, 1], or ``None`` with the ``problem`` that
    kept it from being read (unparsable text, out-of-range score, failed request)."""

    score: float | None
    rationale: str = ""
    problem: str | None = None


def _score_of(value: Any) -> float | None:
    try:
        score = float(value)
    except (TypeError, ValueError):
        return None
    return score if math.isfinite(score) else None


def _json_objects(text: str) -> Iterator[dict[str, Any]]:
    """Every JSON object embedded in ``text``: models wrap answers in prose and code fences."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            yield value


def parse_review(text: str) -> Review:
    """Read a reviewer's answer: the first JSON object with a numeric ``score``, else ``score: <number>``
    in the prose. A score outside [0, 1] is reported as a problem, not clipped: a reviewer answering on
    another scale would otherwise be misread."""
    score, rationale = None, ""
    for candidate in _json_objects(text):
        score = _score_of(candidate.get("score"))
        if score is not None:
            rationale = str(candidate.get("rationale", "")).strip()
            break
    if score is None and (match := _SCORE.search(text)):
        score, rationale = float(match.group(1)), text.strip()
    if score is None:
        return Review(None, problem=f"no score in answer {text.strip()[:120]!r}")
    if not 0.0 <= score <= 1.0:
        return Review(None, rationale, problem=f"score {score:g} outside [0, 1]")
    return Review(score, rationale)


def _ask(reviewer: Reviewer, prompts: list[str], params: Mapping[str, Any]) -> list[Review]:
    answers = reviewer.generate_many(prompts, **params)
    return [
        Review(None, problem=f"request failed ({getattr(answer, 'kind', type(answer).__name__)}): {answer}")
        if isinstance(answer, Exception)
        else parse_review(answer.text)
        for answer in answers
    ]


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _round_summary(names: list[str], reviews: dict[str, list[Review]]) -> dict[str, Any]:
    """Means per reviewer, the consensus (mean over samples of the mean readable score), the agreement
    (1 - mean absolute difference between two reviewers' scores of one pair) and the unreadable count."""
    count = len(reviews[names[0]])
    per_sample = [
        [reviews[name][i].score for name in names if reviews[name][i].score is not None] for i in range(count)
    ]
    consensus = [_mean(scores) for scores in per_sample]
    gaps = [
        abs(a - b)
        for i in range(count)
        for x, y in itertools.combinations(names, 2)
        if (a := reviews[x][i].score) is not None and (b := reviews[y][i].score) is not None
    ]
    unparsable = {name: sum(review.score is None for review in reviews[name]) for name in names}
    return {
        "reviewer_scores": {name: _mean([r.score for r in reviews[name] if r.score is not None]) for name in names},
        "consensus": _mean([score for score in consensus if score is not None]),
        "sample_consensus": consensus,
        "agreement": 1.0 - _mean(gaps) if gaps else None,
        "unparsable": sum(unparsable.values()),
        "unparsable_by_reviewer": unparsable,
    }


def peer_review(
    predictions: Sequence[str],
    references: Sequence[str],
    reviewers: Mapping[str, Reviewer],
    debate_rounds: int = 1,
    task: str = "d2a",
    prompt_version: str = PROMPT_VERSION,
    max_tokens: int = 256,
    temperature: float = 0.0,
) -> dict[str, Any]:
    """Review every (prediction, reference) pair by every reviewer, then debate ``debate_rounds`` times.

    ``reviewers`` maps a reviewer's name (as reported) to the reviewer.
    Returns ``rounds`` (round 0 is the independent review, then one entry per debate round, each as in
    :func:`_round_summary`), the final ``consensus``, ``agreement`` and ``unparsable`` (summed over
    rounds), and ``reviews``: every answer, ``reviews[reviewer][round][sample]``, for inspection.
    """
    check_pairs(predictions, references)
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    if debate_rounds < 0:
        raise ValueError(f"debate_rounds must be >= 0, got {debate_rounds}")
    if not reviewers:
        raise ValueError("peer review needs at least one reviewer")
    # both prompts before any request: an unknown version is not found out after the first round was paid for
    first = load_prompt(prompt_name("peer_review", prompt_version))
    debate = load_prompt(prompt_name("peer_review_debate", prompt_version))
    names = list(reviewers)
    params = {"max_tokens": max_tokens, "temperature": temperature, "constraint": REVIEW_SCHEMA}
    pairs = list(zip(predictions, references, strict=True))

    prompts = [first.render(task=TASKS[task], prediction=p, reference=r) for p, r in pairs]
    history = [{name: _ask(reviewers[name], prompts, params) for name in names}]
    for _ in range(debate_rounds):
        previous = history[-1]
        current = {}
        for name in names:
            prompts = [
                debate.render(
                    task=TASKS[task],
                    prediction=prediction,
                    reference=reference,
                    own=previous[name][i] if previous[name][i].score is not None else None,
                    others=[previous[o][i] for o in names if o != name and previous[o][i].score is not None],
                )
                for i, (prediction, reference) in enumerate(pairs)
            ]
            current[name] = _ask(reviewers[name], prompts, params)
        history.append(current)

    rounds = [_round_summary(names, reviews) for reviews in history]
    return {
        "reviewers": names,
        "prompt_version": prompt_version,
        "consensus": rounds[-1]["consensus"],
        "agreement": rounds[-1]["agreement"],
        "unparsable": sum(r["unparsable"] for r in rounds),
        "rounds": rounds,
        "reviews": {name: [[asdict(review) for review in reviews[name]] for reviews in history] for name in names},
    }
