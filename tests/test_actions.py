"""The action grammar: byte-exact compatibility with the reference data, parsing details, errors."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

import chemactor.actions
from chemactor.actions import (
    ACTION_NAMES,
    PH,
    ActionParseError,
    Add,
    Chemical,
    CollectLayer,
    Concentrate,
    DrySolution,
    Extract,
    Filter,
    InvalidAction,
    MakeSolution,
    Reflux,
    SetTemperature,
    Stir,
    Wait,
    Wash,
    Yield,
    action_types,
    format_actions,
    iter_chemicals,
    parse_actions,
)

ZWNJ = "\u200c"


def _targets(shared_data: Path, folder: str) -> list[str]:
    lines = []
    for path in sorted((shared_data / folder).glob("tgt-*.txt")):
        lines.extend(path.read_text(encoding="utf-8").splitlines())
    return lines


@pytest.mark.parametrize(("folder", "style"), [("paragraph2actions", "readable"), ("smiles2actions", "placeholder")])
def test_round_trip_on_every_reference_string(shared_data: Path, folder: str, style: str) -> None:
    targets = _targets(shared_data, folder)
    assert len(targets) >= 100
    mismatches = [s for s in targets if format_actions(parse_actions(s, style), style) != s]
    assert mismatches == []


def test_reference_quirks_are_present_and_understood(shared_data: Path) -> None:
    targets = _targets(shared_data, "paragraph2actions")
    assert targets.count("INVALIDACTION.") == 3
    assert parse_actions("INVALIDACTION.") == [InvalidAction()]
    with_zwnj = [s for s in targets if ZWNJ in s]
    assert with_zwnj, "the reference data should exercise the U+200C quirk"
    names = [chemical.name for s in with_zwnj for chemical in iter_chemicals(parse_actions(s))]
    assert "LiAlH4 (1 M in THF)" in names


def test_readable_example_parses_into_typed_actions() -> None:
    text = (
        "MAKESOLUTION with A (1 g) and THF (5 mL); ADD SLN dropwise at 0 °C under N2 over 10 min; "
        "STIR for 2 h at rt; PH with 1 N HCl to pH 3 to 4; EXTRACT with EtOAc (20 mL, 2 portions) 3 x; "
        "DRYSOLUTION over Na2SO4; FILTER keep filtrate; CONCENTRATE; REFLUX for 1 h with Dean-Stark apparatus; "
        "SETTEMPERATURE (−78)° C; WAIT for unknown; COLLECTLAYER organic; YIELD title compound (2.2 g, 69%)."
    )
    assert parse_actions(text) == [
        MakeSolution([Chemical("A", ["1 g"]), Chemical("THF", ["5 mL"])]),
        Add(Chemical("SLN"), dropwise=True, temperature="0 °C", atmosphere="N2", duration="10 min"),
        Stir(duration="2 h", temperature="rt"),
        PH(Chemical("1 N HCl"), ph="3 to 4"),
        Extract(Chemical("EtOAc", ["20 mL", "2 portions"]), repetitions=3),
        DrySolution("Na2SO4"),
        Filter("filtrate"),
        Concentrate(),
        Reflux(duration="1 h", dean_stark=True),
        SetTemperature("(−78)° C"),
        Wait("unknown"),
        CollectLayer("organic"),
        Yield(Chemical("title compound", ["2.2 g", "69%"])),
    ]
    assert format_actions(parse_actions(text)) == text


def test_placeholder_style_uses_its_separator_and_no_end_mark() -> None:
    text = "ADD $1$ ; MAKESOLUTION with $2$ and $3$ ; ADD SLN dropwise at #6# over @1@ ; YIELD $-1$"
    actions = parse_actions(text, style="placeholder")
    assert actions[2] == Add(Chemical("SLN"), dropwise=True, temperature="#6#", duration="@1@")
    assert format_actions(actions, style="placeholder") == text
    assert format_actions(actions) == text.replace(" ; ", "; ") + "."


def test_names_with_parenthesis_and_separators_are_escaped() -> None:
    actions = [Add(Chemical("LiAlH4 (1 M in THF)", ["24.4 mL"])), Wash(Chemical("a; b"))]
    text = format_actions(actions)
    assert text == f"ADD LiAlH4 {ZWNJ}(1 M in THF) (24.4 mL); WASH with a;{ZWNJ} b."
    assert parse_actions(text) == actions
    # Text written without the marker (by a person or a model) still reads the last parenthesis as quantities.
    assert parse_actions("ADD LiAlH4 (1 M in THF) (24.4 mL).") == actions[:1]


def test_tolerates_whitespace_and_a_missing_end_mark() -> None:
    assert parse_actions("  CONCENTRATE; PURIFY\n") == parse_actions("CONCENTRATE; PURIFY.")
    assert parse_actions("") == parse_actions(".") == []
    assert format_actions([]) == "."
    assert format_actions([], style="placeholder") == ""


def test_repetitions_are_read_only_when_written_canonically() -> None:
    assert parse_actions("WASH with water 2 x.") == [Wash(Chemical("water"), repetitions=2)]
    # " 1 x" would not be written back, so it stays part of the name and the text still round-trips.
    assert parse_actions("WASH with water 1 x.") == [Wash(Chemical("water 1 x"))]


@pytest.mark.parametrize(
    ("text", "index", "reason"),
    [
        ("ADD water; SHAKE well.", 1, "unknown action 'SHAKE'"),
        ("ADD water; ; STIR.", 1, "empty action"),
        ("CONCENTRATE; WAIT.", 1, "WAIT needs 'for <duration>'"),
        ("WASH water.", 0, "WASH needs 'with <material>'"),
        ("ADD.", 0, "ADD needs <material>"),
        ("STIR; CONCENTRATE everything.", 1, "unexpected text ' everything' after CONCENTRATE"),
        ("STIR overnight.", 0, "unexpected text ' overnight' after STIR"),
        ("add water.", 0, "unknown action 'add'"),
        ("STIR for ; CONCENTRATE.", 0, "empty duration after 'for'"),
        ("SETTEMPERATURE ; STIR.", 0, "empty temperature"),
    ],
)
def test_parse_errors_name_the_action_and_the_reason(text: str, index: int, reason: str) -> None:
    with pytest.raises(ActionParseError) as caught:
        parse_actions(text)
    error = caught.value
    assert isinstance(error, ValueError)
    assert (error.index, error.reason) == (index, reason)
    assert error.text == text.rstrip(".").split("; ")[index]
    assert error.text in str(error) and reason in str(error)


def test_unknown_style_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown action style 'json'"):
        parse_actions("STIR.", style="json")


def test_action_types_is_lenient() -> None:
    assert action_types("ADD water; SHAKE; STIR for 1 h; .") == ["ADD", "UNKNOWN", "STIR", "UNKNOWN"]
    assert action_types("ADD $1$ ; YIELD $-1$", style="placeholder") == ["ADD", "YIELD"]
    assert action_types("") == []


def test_action_names_cover_the_full_action_set() -> None:
    assert len(ACTION_NAMES) == len(set(ACTION_NAMES)) == 28
    assert {"ADD", "PH", "YIELD", "NOACTION", "INVALIDACTION"} <= set(ACTION_NAMES)


def test_iter_chemicals_includes_text_compounds_and_solution_parts() -> None:
    actions = parse_actions("MAKESOLUTION with A and B (2 g); ADD SLN; DRYSOLUTION over MgSO4; STIR at rt.")
    assert list(iter_chemicals(actions)) == [Chemical("A"), Chemical("B", ["2 g"]), Chemical("SLN"), Chemical("MgSO4")]


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (Add("water"), "ADD field material='water' is not of type Chemical"),
        (Wait(None), "WAIT field duration=None is not of type str"),
        (Stir(duration=5), "STIR field duration=5 is not of type str | None"),
        (MakeSolution([Chemical("A"), "B"]), "MAKESOLUTION field materials="),
    ],
)
def test_formatting_a_wrongly_typed_value_names_the_field(action: object, message: str) -> None:
    with pytest.raises(TypeError, match=re.escape(message)):
        format_actions([action])


def test_package_docstring_example_runs() -> None:
    result = doctest.testmod(chemactor.actions)
    assert result.attempted > 0 and result.failed == 0
