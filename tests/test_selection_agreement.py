"""Selection beyond closeness: text-action agreement, form vs content, near-copies, cross-check verdicts,
decontamination, and a fitted selector saved on one machine and loaded on another."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import datasets
import numpy as np
import pytest

from chemactor.data import dumps_meta
from chemactor.selection import AgreementView, DivergenceSelector, NgramView
from chemactor.selection.features import Batch
from chemactor.selection.run import held_out_pairs, run_selection
from chemactor.selection.text import canonical_text, clauses, mask_content


def pairs(description: list[str], actions: list[str], **columns: list) -> datasets.Dataset:
    return datasets.Dataset.from_dict({"description": description, "actions": actions, **columns})


@pytest.fixture(scope="module")
def selector(reference):
    return DivergenceSelector().fit(reference)


WORKUP = (
    "The reaction was quenched with saturated aqueous ammonium chloride (20 mL) and extracted with ethyl acetate "
    "(3 x 30 mL), and the combined organic layers were washed with brine and dried over sodium sulfate."
)
WORKUP_ACTIONS = (
    "QUENCH with saturated aqueous ammonium chloride (20 mL); EXTRACT with ethyl acetate (30 mL) 3 x; "
    "COLLECTLAYER organic; WASH with brine; DRYSOLUTION over sodium sulfate."
)
# each retyping contradicts the text while keeping compounds, quantities and the number of actions
CONTRADICTED = {
    "quench becomes PH": WORKUP_ACTIONS.replace("QUENCH with", "PH with"),
    "wash and extract swapped": WORKUP_ACTIONS.replace("EXTRACT with", "X")
    .replace("WASH with", "EXTRACT with")
    .replace("X", "WASH with"),
    "organic becomes aqueous": WORKUP_ACTIONS.replace("COLLECTLAYER organic", "COLLECTLAYER aqueous"),
    "drying becomes a wash": WORKUP_ACTIONS.replace("DRYSOLUTION over", "WASH with"),
}
STIRRED = "Benzyl bromide (1.5 mL) was added dropwise and the mixture was stirred at room temperature for 3 h."
STIRRED_ACTIONS = "ADD benzyl bromide (1.5 mL) dropwise; STIR for 3 h at room temperature."
STIRRED_CONTRADICTED = {
    "stir becomes REFLUX": "ADD benzyl bromide (1.5 mL) dropwise; REFLUX for 3 h.",
    "addition becomes WASH": "WASH with benzyl bromide (1.5 mL); STIR for 3 h at room temperature.",
}


def test_text_clauses_never_split_inside_parentheses():
    text = "A (1.0 g, 2 mmol) was added, and the mixture was stirred; then it was filtered."
    assert [text[b:e] for b, e in clauses(text)] == [
        "A (1.0 g, 2 mmol) was added",
        "the mixture was stirred",
        "it was filtered.",
    ]


def test_canonical_text_forgets_trivial_form_but_not_content():
    original = "The mixture was stirred at 25 °C for 2 h and concentrated."
    for variant in (
        original.lower(),
        original.replace(" ", "  "),
        original.rstrip("."),
        original.replace("was", "is"),
        "Then, the mixture was stirred at 25 °C for 2 h and concentrated.",
    ):
        assert canonical_text(variant) == canonical_text(original), variant
    assert canonical_text(original.replace("25", "40")) != canonical_text(original)
    assert mask_content("THF (10 mL) and dry THF", ["THF"]) == "§ (00 mL) and dry §"


def test_agreement_rejects_actions_that_contradict_the_text(selector):
    rows = [(WORKUP, WORKUP_ACTIONS), *((WORKUP, a) for a in CONTRADICTED.values())]
    rows += [(STIRRED, STIRRED_ACTIONS), *((STIRRED, a) for a in STIRRED_CONTRADICTED.values())]
    scored = selector.score(pairs([d for d, _ in rows], [a for _, a in rows]))
    agreement = np.asarray(scored["divergence_agreement"])
    divergence = np.asarray(scored["divergence"])
    names = ["workup", *CONTRADICTED, "stirred", *STIRRED_CONTRADICTED]
    workup, stirred = 0, 1 + len(CONTRADICTED)
    for index, name in enumerate(names):
        original = workup if index < stirred else stirred
        if index != original:
            assert agreement[index] > agreement[original] + 0.5, name
            assert divergence[index] > divergence[original], name


def test_agreement_is_learned_from_the_pairs_not_only_a_word_list():
    """A made-up verb that always comes with REFLUX in the reference supports REFLUX, and only REFLUX."""
    descriptions = [f"The solution of compound {i} in toluene was zorbled for {i + 2} h." for i in range(12)]
    descriptions += [f"The residue was crumped with ether (1{i} mL)." for i in range(12)]
    actions = [f"REFLUX for {i + 2} h." for i in range(12)] + [f"TRITURATE with ether (1{i} mL)." for i in range(12)]
    view = AgreementView()
    batch = Batch(descriptions, actions)
    view.fit([batch], [np.ones(len(batch), dtype=bool)])
    zorbled = frozenset(canonical_text("zorbled toluene").split())
    assert view.support("REFLUX", zorbled) > 0.6
    assert view.support("TRITURATE", zorbled) < 0.3
    probe = Batch(
        ["The mixture was zorbled for 5 h.", "The mixture was zorbled for 5 h."], ["REFLUX for 5 h.", "TRITURATE."]
    )
    unsupported = view._values(probe)[:, 0]
    assert unsupported.tolist() == [0, 1]


def test_new_content_is_not_divergence_but_new_form_is(selector, reference, seeds):
    """Swapping a compound for an unseen one keeps a correct row close; rewording its form does not."""
    row = next(
        r for r in seeds["validation"] if "ethyl acetate" in r["description"] and "ethyl acetate" in r["actions"]
    )
    description, actions = row["description"], row["actions"]
    new_name = "2-methyltetrahydrofuran"
    novel = (description.replace("ethyl acetate", new_name), actions.replace("ethyl acetate", new_name))
    scored = selector.score(pairs([description, novel[0], description.lower()], [actions, novel[1], actions]))
    chars = np.asarray(scored["divergence_description_chars"])
    assert np.asarray(scored["divergence_form"])[2] > np.asarray(scored["divergence_form"])[0]
    unmasked = DivergenceSelector(views=[NgramView("description", "chars", (3, 4), mask_content=False)])
    plain = np.asarray(unmasked.fit(reference).score(pairs([description, novel[0]], [actions, novel[1]]))["divergence"])
    assert plain[1] - plain[0] > 0.05, "without masking the new name alone moves the row away"
    assert chars[1] == pytest.approx(chars[0])


def test_near_copies_of_reference_rows_are_duplicates_but_consistent_variants_are_not(selector, reference):
    row = next(r for r in reference if "ethyl acetate" in r["description"] and "ethyl acetate" in r["actions"])
    d, a = row["description"], row["actions"]
    copies = [d, d.lower(), d.replace(" ", "  ", 1), d.rstrip("."), "Then, " + d[0].lower() + d[1:]]
    variant = (d.replace("ethyl acetate", "dichloromethane"), a.replace("ethyl acetate", "dichloromethane"))
    scored = selector.score(pairs([*copies, variant[0]], [a] * len(copies) + [variant[1]]))
    assert scored["seed_copy"] == [True] * len(copies) + [False]
    assert scored["duplicate"][: len(copies)] == [True] * len(copies)
    assert len(selector.select(scored, k=len(scored))) == 1


def test_failed_crosschecks_count_in_the_score(selector, reference):
    rows = reference.select(range(4))
    verdicts = [
        {"crosscheck": {"passed": True, "checks": {"parse": True, "valid": True}, "reasons": []}},
        {
            "crosscheck": {
                "passed": False,
                "checks": {"parse": True, "compounds_in_description": False},
                "reasons": ["x"],
            }
        },
        {"crosscheck": {"passed": False, "checks": {"quantities_agree": False, "valid": False}, "reasons": ["x", "y"]}},
        {},
    ]
    with_meta = rows.select_columns(["description", "actions"]).add_column("meta", [dumps_meta(v) for v in verdicts])
    scored = selector.score(with_meta)
    plain = selector.score(rows.select_columns(["description", "actions"]))
    assert scored["crosscheck_failed"] == [0, 1, 2, 0]
    added = np.asarray(scored["divergence"]) - np.asarray(plain["divergence"])
    np.testing.assert_allclose(added, [0, 1, 2, 0], atol=1e-12)
    assert plain["crosscheck_failed"] == [0] * 4


def test_rows_that_overlap_held_out_splits_are_contaminated_and_dropped(reference, seeds, shared_data, tmp_path):
    held_out = held_out_pairs(["paragraph2actions"], shared_data)
    assert len(held_out) == len(seeds["validation"]) + len(seeds["test"])
    selector = DivergenceSelector().fit(reference, held_out=held_out)
    test_rows = [r for r in seeds["test"] if len(r["description"].split()) >= 14 and "; " in r["actions"]]
    long_row = test_rows[0]
    words = long_row["description"].split()
    rewritten = "In a second run, " + " ".join(words[:12]) + " and the rest was discarded."
    pool = pairs(
        [
            long_row["description"],
            long_row["description"].lower(),
            rewritten,
            WORKUP,
        ],
        [long_row["actions"], long_row["actions"], "ADD water.", WORKUP_ACTIONS],
    )
    scored = selector.score(pool)
    assert scored["contaminated"] == [True, True, True, False]
    assert len(selector.select(scored, k=4)) == 1
    summary = run_selection(reference, pool, tmp_path / "out", k=4, held_out=held_out)
    assert summary["contaminated"] == 3 and summary["selected"] == 1
    assert "3 overlapped held-out rows" in (tmp_path / "out" / "report.md").read_text(encoding="utf-8")

    # a fitted selector keeps more rows out when told: the validation split from its fit, the test split added
    split = DivergenceSelector().fit(reference, held_out=seeds["validation"])
    assert split.score(pool)["contaminated"] == [False, False, False, False]
    later = split.add_held_out(seeds["test"]).score(pool)
    assert later["contaminated"] == [True, True, True, False]
    assert later["divergence"] == split.score(pool)["divergence"] == scored["divergence"]  # scores do not change


def test_a_saved_selector_scores_identically_in_a_fresh_process(reference, seeds, shared_data, tmp_path):
    selector = DivergenceSelector().fit(reference, held_out=held_out_pairs(["paragraph2actions"], shared_data))
    selector.save_pretrained(tmp_path / "selector")
    pool = datasets.concatenate_datasets([seeds["validation"], seeds["test"], reference.select(range(5))])
    pool = pool.select_columns(["description", "actions"])
    pool.to_json(str(tmp_path / "pool.jsonl"))
    expected = selector.score(pool).to_pandas()
    script = textwrap.dedent(
        f"""
        import datasets
        from chemactor.selection import DivergenceSelector
        selector = DivergenceSelector.from_pretrained({str(tmp_path / "selector")!r})
        pool = datasets.Dataset.from_json({str(tmp_path / "pool.jsonl")!r})
        selector.score(pool).to_parquet({str(tmp_path / "scored.parquet")!r})
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    loaded = datasets.Dataset.from_parquet(str(tmp_path / "scored.parquet")).to_pandas()
    assert list(loaded.columns) == list(expected.columns)
    for column in expected.columns:
        assert loaded[column].tolist() == expected[column].tolist(), column
    assert expected["contaminated"].sum() == len(seeds["validation"]) + len(seeds["test"])
    assert expected["seed_copy"].sum() == 5


def test_loading_a_folder_that_is_not_a_saved_selector_fails_clearly(tmp_path):
    from chemactor.selection import SelectionInputError

    with pytest.raises(SelectionInputError, match="not a saved selector"):
        DivergenceSelector.from_pretrained(tmp_path)
    (tmp_path / "selector_config.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(SelectionInputError, match="format_version 99"):
        DivergenceSelector.from_pretrained(tmp_path)
