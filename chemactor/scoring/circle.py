"""Circle review, round-trip mode: does a model understand a procedure, or only echo its surface?

A chain alternates the model's own conversions, D0 -> A1 -> D1 -> A2 -> D2 -> ..., for ``k`` rounds.
A model that understands the procedure keeps its content as the chain goes round; one that pattern-matches
drifts. The scores follow the information: each A_i against the reference actions and against A_1, each
D_i against D0, per round; one circle score (mean action similarity to the reference over the rounds)
and the decay from round 1 to round k.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rouge_score import rouge_scorer
from tqdm.auto import tqdm

from chemactor.scoring.action_metrics import check_pairs, levenshtein_similarities

Converter = Callable[[list[str]], list[str]]
"""A batch conversion: descriptions -> action strings (D2A) or action strings -> descriptions (R2D)."""


@dataclass(frozen=True)
class CircleChain:
    """One sample's chain: ``descriptions`` is D0..Dk (D0 the input), ``actions`` is A1..Ak."""

    descriptions: list[str]
    actions: list[str]


def _convert(converter: Converter, texts: list[str], batch_size: int, desc: str) -> list[str]:
    outputs: list[str] = []
    with tqdm(total=len(texts), desc=desc, unit="sample") as progress:
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            converted = list(converter(batch))
            if len(converted) != len(batch):
                raise ValueError(
                    f"{desc}: the converter returned {len(converted)} outputs for a batch of {len(batch)} "
                    f"(samples {start}..{start + len(batch) - 1})"
                )
            outputs.extend(converted)
            progress.update(len(batch))
    return outputs


def run_circle(
    descriptions: Sequence[str], d2a: Converter, r2d: Converter, rounds: int = 3, batch_size: int = 16
) -> list[CircleChain]:
    """Run the chains of all ``descriptions`` for ``rounds`` rounds, converting ``batch_size`` texts a call.

    ``d2a`` turns descriptions into action strings and ``r2d`` writes descriptions back from action strings
    (for a ChemActor model: ``Predictors.d2a`` and ``Predictors.a2d`` of :mod:`chemactor.evaluation`).
    A round converts every sample before the next round starts, so a batched model (or an endpoint with
    concurrent requests) is kept busy with full batches.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    description_rounds = [list(descriptions)]
    action_rounds: list[list[str]] = []
    for round_number in range(1, rounds + 1):
        action_rounds.append(_convert(d2a, description_rounds[-1], batch_size, f"circle round {round_number} D2A"))
        description_rounds.append(_convert(r2d, action_rounds[-1], batch_size, f"circle round {round_number} R2D"))
    return [
        CircleChain(descriptions=[texts[i] for texts in description_rounds], actions=[a[i] for a in action_rounds])
        for i in range(len(descriptions))
    ]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def circle_scores(
    action_chains: Sequence[Sequence[str]],
    references: Sequence[str],
    description_chains: Sequence[Sequence[str]] | None = None,
) -> dict:
    """Scores of round-trip chains: ``action_chains[j]`` is A1..Ak of sample ``j``, ``references[j]`` its
    reference action string, ``description_chains[j]`` (optional) its D0..Dk.

    Actions are compared by normalized Levenshtein similarity (as in the D2A metric), descriptions by
    ROUGE-L F1 (word level, as in the R2D metric). Per-round values are means over samples.
    """
    check_pairs(action_chains, references)
    rounds = len(action_chains[0])
    if rounds == 0 or any(len(chain) != rounds for chain in action_chains):
        raise ValueError("every action chain must hold the same number (at least one) of rounds")
    first = [chain[0] for chain in action_chains]
    to_reference, to_first = [], []
    for i in range(rounds):
        actions = [chain[i] for chain in action_chains]
        to_reference.append(_mean(levenshtein_similarities(actions, references)))
        to_first.append(_mean(levenshtein_similarities(actions, first)))
    scores = {
        "rounds": rounds,
        "circle_score": _mean(to_reference),
        "decay": to_reference[0] - to_reference[-1],
        "action_similarity_to_reference": to_reference,
        "action_similarity_to_first": to_first,
    }
    if description_chains is not None:
        check_pairs(description_chains, references)
        if any(len(chain) != rounds + 1 for chain in description_chains):
            raise ValueError(f"every description chain must hold D0..D{rounds} ({rounds + 1} texts)")
        scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
        scores["description_similarity"] = [
            _mean([scorer.score(chain[0], chain[i])["rougeL"].fmeasure for chain in description_chains])
            for i in range(1, rounds + 1)
        ]
    return scores
