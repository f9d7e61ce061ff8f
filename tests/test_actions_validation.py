"""validate_actions: the problems a parsed sequence can still have."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chemactor.actions import Add, Chemical, Wait, parse_actions, validate_actions
from chemactor.chem import InvalidSmilesError, detokenize_reaction

# Three precursors (two reactants, one agent) and one product.
REACTION = "CCO.CC(=O)O>O=S(=O)(O)O>CCOC(C)=O"


def _problems(text: str, reaction: object = None, style: str = "readable", **kwargs: bool) -> list[str]:
    return validate_actions(parse_actions(text, style), reaction, **kwargs)


def test_a_sound_procedure_has_no_problem() -> None:
    text = "ADD $1$ ; MAKESOLUTION with $2$ and $3$ ; ADD SLN dropwise at #4# ; REFLUX for @2@ ; YIELD $-1$"
    assert _problems(text, REACTION, style="placeholder") == []
    assert _problems("STIR for 2 h at rt; WAIT for unknown; DRYSOLUTION over unknown.") == []


def test_placeholders_must_name_a_compound_of_the_reaction() -> None:
    text = "ADD $4$ ; ADD $0$ ; WASH with $-2$ ; DRYSOLUTION over $5$ ; YIELD $-1$"
    assert _problems(text, REACTION, style="placeholder") == [
        "action 0 (ADD): $4$ is beyond the 3 precursor(s) of the reaction",
        "action 1 (ADD): $0$ names no compound: precursors count from $1$, products from $-1$",
        "action 2 (WASH): $-2$ is beyond the 1 product(s) of the reaction",
        "action 3 (DRYSOLUTION): $5$ is beyond the 3 precursor(s) of the reaction",
    ]
    # A list of precursors bounds $n$ only; the products are unknown then.
    assert _problems(text, ["CCO", "CC(=O)O", "O", "[Na+]"], style="placeholder") == [
        "action 1 (ADD): $0$ names no compound: precursors count from $1$, products from $-1$",
        "action 3 (DRYSOLUTION): $5$ is beyond the 4 precursor(s) of the reaction",
    ]


def test_placeholders_in_the_reference_data_all_fit_their_reaction(shared_data: Path) -> None:
    rows = [json.loads(line) for line in (shared_data / "smiles2actions" / "pairs.jsonl").open(encoding="utf-8")]
    problems = [
        problem
        for row in rows
        for problem in _problems(
            row["actions_with_placeholders"], detokenize_reaction(row["reaction_smiles_tokenized"]), "placeholder"
        )
        if "$" in problem
    ]
    assert len(rows) == 120
    assert problems == []


def test_solutions_must_be_made_before_and_used_after() -> None:
    assert _problems("ADD SLN; MAKESOLUTION with A and B; STIR.") == [
        "action 0 (ADD): SLN used but no MAKESOLUTION before it",
        "action 1 (MAKESOLUTION): solution never used as SLN",
    ]
    assert _problems("MAKESOLUTION with A and B; MAKESOLUTION with C and SLN; ADD SLN.") == []
    assert _problems("MAKESOLUTION with A and B; MAKESOLUTION with C and D; ADD SLN.") == [
        "action 0 (MAKESOLUTION): solution never used as SLN"
    ]


def test_component_counts() -> None:
    assert _problems("MAKESOLUTION with A; ADD SLN.") == [
        "action 0 (MAKESOLUTION): materials has 1 component(s), expected at least 2"
    ]
    assert _problems("PARTITION with water and EtOAc and brine.") == [
        "action 0 (PARTITION): materials has 3 component(s), expected 2"
    ]


def test_enumerated_values() -> None:
    assert _problems("COLLECTLAYER top; FILTER keep solid; FILTER keep filtrate.") == [
        "action 0 (COLLECTLAYER): layer is 'top', expected one of aqueous, organic",
        "action 1 (FILTER): phase_to_keep is 'solid', expected one of filtrate, precipitate",
    ]


def test_missing_and_unknown_values() -> None:
    built = [Add(Chemical(" ")), Wait(duration=""), Add(Chemical("water"), temperature="")]
    assert validate_actions(built) == [
        "action 0 (ADD): missing material",
        "action 1 (WAIT): missing duration",
        "action 2 (ADD): missing temperature",
    ]
    text = "WAIT for unknown; DRYSOLUTION over unknown; ADD unknown."
    assert _problems(text) == []
    assert _problems(text, allow_unknown=False) == [
        "action 0 (WAIT): duration is unknown",
        "action 1 (DRYSOLUTION): material is unknown",
        "action 2 (ADD): material is unknown",
    ]


def test_sequence_level_problems() -> None:
    assert _problems("INVALIDACTION.") == ["action 0 (INVALIDACTION): the text was not expressed as actions"]
    assert _problems("NOACTION; STIR.") == ["NOACTION must stand alone, found among 2 actions"]
    # Only the procedure of a whole reaction must isolate something.
    assert _problems("ADD $1$ ; STIR", REACTION, style="placeholder") == [
        "no YIELD: the procedure of a reaction should end by isolating the product"
    ]
    assert _problems("ADD $1$ ; STIR", style="placeholder") == []
    assert _problems("ADD $1$ ; STIR", "", style="placeholder") == []
    assert _problems("FOLLOWOTHERPROCEDURE.", REACTION) == []


def test_an_unreadable_reaction_is_a_typed_error() -> None:
    with pytest.raises(InvalidSmilesError, match="C1CC"):
        _problems("YIELD $-1$.", "C1CC>>CCO")
