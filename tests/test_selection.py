"""DivergenceSelector on real reference data: views, ranking of bad kinds, datasets.map behaviour, errors."""

from __future__ import annotations

import json
import math

import datasets
import numpy as np
import pytest

from chemactor.selection import (
    DEFAULT_WEIGHTS,
    FLAG_COLUMNS,
    ActionTypeView,
    ConsistencyView,
    DivergenceSelector,
    LengthView,
    NgramView,
    SelectionInputError,
    mix,
    parse_ratio,
)

OFF_TOPIC = (
    "The committee met on Tuesday to review the annual budget and, after a long discussion about travel costs, "
    "agreed to postpone the decision until the next quarterly meeting, when updated figures would be available."
)


def pairs(description: list[str], actions: list[str]) -> datasets.Dataset:
    return datasets.Dataset.from_dict({"description": description, "actions": actions})


@pytest.fixture(scope="module")
def held_out(seeds):
    return datasets.concatenate_datasets([seeds["validation"], seeds["test"]])


@pytest.fixture(scope="module")
def selector(reference):
    return DivergenceSelector().fit(reference)


def score_one_view(view, reference, pool):
    selector = DivergenceSelector(views=[view]).fit(reference)
    return np.asarray(selector.score(pool)[f"divergence_{view.name}"])


def test_lexical_views_prefer_in_domain_text(reference, held_out):
    real = held_out[0]
    pool = pairs([real["description"], OFF_TOPIC], [real["actions"], "Bake the cake; serve it warm."])
    for field in ("description", "actions"):
        for kind, ngram_range in (("words", (1, 2)), ("chars", (3, 4))):
            scores = score_one_view(NgramView(field, kind, ngram_range), reference, pool)
            assert scores[0] < scores[1], (field, kind)


def test_action_type_view_penalizes_unknown_and_empty_actions(reference, held_out):
    real = held_out[0]
    pool = pairs([real["description"]] * 3, [real["actions"], "MIXIFY the things; SHAKEWELL.", ""])
    scores = score_one_view(ActionTypeView(), reference, pool)
    assert scores[0] < scores[1] and scores[0] < scores[2]


def test_length_view_penalizes_long_paragraphs_and_padded_actions(reference):
    sentence = "The mixture was stirred for 2 h at room temperature."
    pool = pairs(
        [sentence, " ".join([sentence] * 12), sentence],
        ["STIR for 2 h at room temperature.", "STIR for 2 h at room temperature.", "; ".join(["STIR"] * 30) + "."],
    )
    scores = score_one_view(LengthView(), reference, pool)
    assert scores[0] < scores[1] and scores[0] < scores[2]


def test_consistency_view_penalizes_actions_that_do_not_match_the_text(reference):
    description = "Sodium hydride (0.51 g, 12.7 mmol) was added to a solution of the phenol in DMF (25 mL)."
    pool = pairs(
        [description] * 3,
        [
            "ADD Sodium hydride (0.51 g, 12.7 mmol); ADD DMF (25 mL).",
            "ADD potassium carbonate (3.0 g, 21 mmol); ADD acetone (40 mL).",
            "ADD Sodium hydride (0.51 g",  # does not parse
        ],
    )
    scores = score_one_view(ConsistencyView(), reference, pool)
    assert scores[0] < scores[1] and scores[0] < scores[2]


def test_every_bad_kind_ranks_below_the_good_rows(selector, held_out):
    good = [(row["description"], row["actions"]) for row in held_out]
    multi = next((d, a) for d, a in good if a.count("; ") >= 2)
    with_add = next((d, a) for d, a in good if a.startswith("ADD ") and "; " in a)
    steps = [part.partition(" ") for part in with_add[1].rstrip(".").split("; ")]
    bad = {
        "mismatched": (good[0][0], multi[1] if multi[0] != good[0][0] else good[1][1]),
        "wrong_types": (with_add[0], with_add[1].replace("ADD ", "CENTRIFUGE ")),
        "truncated": (multi[0], multi[1].split("; ")[0] + "."),
        "off_domain": (OFF_TOPIC, with_add[1]),
        "prose": (with_add[0], " Then ".join(f"{k.capitalize()} {rest}." for k, _, rest in steps)),
        "foreign_schema": (with_add[0], json.dumps([{"action": k, "content": rest} for k, _, rest in steps])),
        "repetition": (with_add[0], "; ".join([with_add[1].rstrip(".")] * 12) + "."),
    }
    pool = pairs([d for d, _ in good + list(bad.values())], [a for _, a in good + list(bad.values())])
    divergence = np.asarray(selector.score(pool)["divergence"])
    good_scores, bad_scores = divergence[: len(good)], divergence[len(good) :]
    for kind, score in zip(bad, bad_scores, strict=True):
        assert score > np.median(good_scores), kind
    assert bad_scores.mean() > np.quantile(good_scores, 0.8)


def test_duplicates_are_marked_and_never_selected(selector, held_out):
    first, second = held_out[0], held_out[1]
    pool = pairs(
        [first["description"], second["description"], first["description"], first["description"].upper() + " "],
        [first["actions"], second["actions"], first["actions"], first["actions"]],
    )
    scored = selector.score(pool)
    duplicate, divergence = scored["duplicate"], scored["divergence"]
    # of the three copies of the first pair the best-scored survives (the earlier on a tie), the others are marked
    survivor = min((0, 2, 3), key=lambda row: (divergence[row], row))
    assert survivor != 2 and [row for row in range(4) if not duplicate[row]] == sorted([survivor, 1])
    assert len(selector.select(scored, k=4)) == 2
    assert DivergenceSelector(deduplicate=False).fit(pairs(["a b"], ["ADD a."])).score(pool)["duplicate"] == [False] * 4


def test_select_by_fraction_k_and_threshold(selector, held_out):
    scored = selector.score(held_out)
    divergence = np.asarray(scored["divergence"])
    by_k = selector.select(scored, k=5)
    assert len(by_k) == 5 and max(by_k["divergence"]) <= np.sort(divergence)[4]
    assert by_k["id"] == [row for row in scored["id"] if row in set(by_k["id"])]  # original order kept
    assert len(selector.select(scored, fraction=0.5)) == 10
    threshold = float(np.median(divergence))
    assert all(value <= threshold for value in selector.select(scored, threshold=threshold)["divergence"])
    with pytest.raises(ValueError, match="exactly one"):
        selector.select(scored, k=3, fraction=0.1)
    with pytest.raises(ValueError, match="fraction must be"):
        selector.select(scored, fraction=1.5)


def test_score_is_a_batched_map_that_gives_the_same_scores_in_parallel(selector, held_out, tmp_path):
    held_out.save_to_disk(tmp_path / "pool")
    pool = datasets.load_from_disk(tmp_path / "pool")
    serial = selector.score(pool)
    parallel = selector.score(pool, num_proc=2, batch_size=4)
    assert serial.cache_files, "an on-disk pool is scored into Arrow cache files, not into memory"
    assert selector.score(pool).cache_files == serial.cache_files  # a finished run is reused from the cache
    for column in [*selector.score_columns, "divergence"]:
        np.testing.assert_allclose(serial[column], parallel[column])
    assert serial["duplicate"] == parallel["duplicate"]
    assert set(serial.column_names) == set(pool.column_names) | {*selector.score_columns, "divergence", *FLAG_COLUMNS}


@pytest.mark.parametrize("weights", [None, {"lengths": 3.0, "consistency": 0.0, "description_words": 2.0}])
def test_combined_score_follows_its_formula_from_the_per_view_columns(reference, held_out, weights):
    """divergence = sum_v w_v log(1 + exp(z_v)) / sum_v w_v over the per-view columns, row by row."""
    selector = DivergenceSelector(weights=weights).fit(reference)
    pool = datasets.concatenate_datasets(
        [
            held_out.select(range(min(40, len(held_out)))),
            pairs([OFF_TOPIC, "Stir.", ""], ["STIR.", "ADD water; FILTER.", ""]),
        ]
    )
    scored = selector.score(pool)
    expected_weights = {**DEFAULT_WEIGHTS, **(weights or {})}
    for row in scored:
        terms = [(expected_weights[view.name], row[f"divergence_{view.name}"]) for view in selector.views]
        softplus = [weight * (max(z, 0.0) + math.log1p(math.exp(-abs(z)))) for weight, z in terms]
        assert row["divergence"] == pytest.approx(sum(softplus) / sum(weight for weight, _ in terms), rel=1e-9)
    assert len({round(value, 9) for value in scored["divergence"]}) > len(scored) // 2  # not a constant


def test_js_divergence_ranks_like_kl_on_clear_cases(reference, held_out):
    js = DivergenceSelector(divergence="js").fit(reference)
    real = held_out[0]
    scores = js.score(pairs([real["description"], OFF_TOPIC], [real["actions"], "Bake the cake."]))["divergence"]
    assert scores[0] < scores[1]


def test_bad_input_gets_clear_errors(selector, reference):
    with pytest.raises(SelectionInputError, match="reference is empty"):
        DivergenceSelector().fit(reference.select([]))
    with pytest.raises(SelectionInputError, match=r"missing column.*actions"):
        DivergenceSelector().fit(reference.remove_columns("actions"))
    with pytest.raises(SelectionInputError, match=r"pool is missing column.*description"):
        selector.score(datasets.Dataset.from_dict({"text": ["x"], "actions": ["ADD x."]}))
    with pytest.raises(SelectionInputError, match=r"no row with the fields of view.*action_types"):
        DivergenceSelector().fit(pairs(["Some text."], [""]))
    with pytest.raises(RuntimeError, match="not fitted"):
        DivergenceSelector().score(reference)
    with pytest.raises(ValueError, match="unknown view"):
        DivergenceSelector(weights={"nonsense": 1.0})
    empty = selector.score(reference.select([]))
    assert len(empty) == 0 and {"divergence", "duplicate"} <= set(empty.column_names)
    assert len(selector.select(empty, fraction=0.5)) == 0
    unparsable = selector.score(pairs(["Water was added.", "Water was added."], ["ADD water.", "ADD water (5 mL"]))
    assert np.all(np.isfinite(unparsable["divergence"]))
    assert unparsable["divergence"][1] > unparsable["divergence"][0]


def test_set_divergences_drop_after_selection(selector, held_out):
    pool = datasets.concatenate_datasets(
        [held_out.select_columns(["description", "actions"]), pairs([OFF_TOPIC] * 5, ["Bake the cake."] * 5)]
    )
    scored = selector.score(pool)
    before = selector.set_divergences(selector.counts(pool))
    after = selector.set_divergences(selector.counts(selector.select(scored, k=len(held_out))))
    for view in ("description_words", "action_types", "lengths"):
        assert after[view]["kl"] < before[view]["kl"] and after[view]["js"] < before[view]["js"], view


def test_mix_honours_the_ratio(seeds, held_out):
    generated = datasets.concatenate_datasets([seeds["train"]] * 2)
    mixed = mix(held_out, generated, ratio="1:3", seed=0)
    sources = [row.split("-")[1] for row in mixed["id"]]
    assert sources.count("train") == 3 * (len(sources) - sources.count("train")) == 60
    short = mix(held_out, seeds["train"].select(range(9)), ratio="1:3", seed=0)
    assert len(short) == 12  # 3 seeds : 9 generated
    assert mix(held_out, generated, "1:0")["id"] == mix(held_out, generated, "1:0", seed=0)["id"]
    assert parse_ratio("2:5") == (2, 5)
    for bad in ("1-3", "a:b", "0:0", "1:2:3"):
        with pytest.raises(ValueError, match="ratio"):
            parse_ratio(bad)
