"""Circle review, round trip: the chain runner (batched, any converters) and the scores of the chains."""

from __future__ import annotations

from pathlib import Path

import pytest

from chemactor.scoring import circle_scores, run_circle

DESCRIPTIONS = [
    "Add water. Stir for 2 h. Filter. Wash with ethanol.",
    "Add THF. Add NaH. Stir for 1 h. Concentrate.",
    "Add DCM. Wash with brine. Dry over MgSO4.",
]
REFERENCES = [
    "ADD water; STIR for 2 h; FILTER; WASH with ethanol.",
    "ADD THF; ADD NaH; STIR for 1 h; CONCENTRATE.",
    "ADD DCM; WASH with brine; DRYSOLUTION over MgSO4.",
]


class Recorder:
    """A converter that records its batch sizes; ``convert`` maps one text."""

    def __init__(self, convert):
        self.convert, self.batches = convert, []

    def __call__(self, texts: list[str]) -> list[str]:
        self.batches.append(len(texts))
        return [self.convert(text) for text in texts]


def faithful_d2a(description: str) -> str:
    return REFERENCES[DESCRIPTIONS.index(description)] if description in DESCRIPTIONS else description


def faithful_r2d(actions: str) -> str:
    return DESCRIPTIONS[REFERENCES.index(actions)]


def forgetful_r2d(actions: str) -> str:
    """Writes the procedure back but forgets its last step: information decays round by round."""
    steps = actions.removesuffix(".").split("; ")
    return "; ".join(steps[:-1]) + "." if len(steps) > 1 else actions


def test_a_faithful_model_keeps_everything():
    d2a, r2d = Recorder(faithful_d2a), Recorder(faithful_r2d)
    chains = run_circle(DESCRIPTIONS, d2a, r2d, rounds=3, batch_size=2)
    assert [chain.actions for chain in chains] == [[reference] * 3 for reference in REFERENCES]
    assert [chain.descriptions for chain in chains] == [[description] * 4 for description in DESCRIPTIONS]
    assert d2a.batches == r2d.batches == [2, 1] * 3
    scores = circle_scores([c.actions for c in chains], REFERENCES, [c.descriptions for c in chains])
    assert scores["circle_score"] == 1.0
    assert scores["decay"] == 0.0
    assert scores["description_similarity"] == [1.0, 1.0, 1.0]


def test_information_loss_shows_as_decay():
    chains = run_circle(DESCRIPTIONS, Recorder(faithful_d2a), Recorder(forgetful_r2d), rounds=3)
    assert chains[0].actions == [
        REFERENCES[0],
        "ADD water; STIR for 2 h; FILTER.",
        "ADD water; STIR for 2 h.",
    ]
    scores = circle_scores([c.actions for c in chains], REFERENCES, [c.descriptions for c in chains])
    curve = scores["action_similarity_to_reference"]
    assert curve[0] == 1.0
    assert curve[0] > curve[1] > curve[2]
    assert scores["action_similarity_to_first"] == curve  # A1 is the reference here
    assert scores["decay"] == pytest.approx(curve[0] - curve[2])
    assert scores["circle_score"] == pytest.approx(sum(curve) / 3)
    assert scores["description_similarity"][0] < 1.0


def test_a_converter_that_loses_samples_is_named():
    with pytest.raises(ValueError, match=r"round 1 R2D: the converter returned 0 outputs for a batch of 3"):
        run_circle(DESCRIPTIONS, Recorder(faithful_d2a), lambda texts: [], rounds=1)


def test_chains_of_unequal_length_are_refused():
    with pytest.raises(ValueError, match="same number"):
        circle_scores([["A."], ["A.", "B."]], ["A.", "B."])
    with pytest.raises(ValueError, match=r"D0\.\.D1"):
        circle_scores([["A."]], ["A."], [["d0"]])


@pytest.mark.slow
def test_round_trip_with_a_tiny_model_through_the_metric_module():
    import evaluate

    from chemactor.evaluation import completer_predictors
    from chemactor.inference import ModelCompleter
    from chemactor.training import build_tiny_model, train_tokenizer

    tokenizer = train_tokenizer(DESCRIPTIONS + REFERENCES, vocab_size=300)
    model = build_tiny_model(tokenizer, num_hidden_layers=1)
    predictors = completer_predictors(ModelCompleter(model, tokenizer, max_new_tokens=12), name="tiny")
    chains = run_circle(DESCRIPTIONS, predictors.d2a, predictors.a2d, rounds=2, batch_size=2)
    assert all(len(chain.actions) == 2 and len(chain.descriptions) == 3 for chain in chains)

    metric = evaluate.load(str(Path(__file__).parents[1] / "metrics" / "circle_review"), "round_trip")
    scores = metric.compute(
        predictions=[chain.actions for chain in chains],
        references=REFERENCES,
        descriptions=[chain.descriptions for chain in chains],
    )
    assert scores["rounds"] == 2
    assert scores == circle_scores([c.actions for c in chains], REFERENCES, [c.descriptions for c in chains])
    # an untrained model does not reproduce the reference
    assert scores["circle_score"] < 0.5
