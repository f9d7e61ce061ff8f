"""The decoding constraint derived from the action classes: what it admits parses and validates, in every form."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chemactor.actions import ActionParseError, format_actions, parse_actions, validate_actions
from chemactor.actions import model as action_model
from chemactor.actions.model import Action, text
from chemactor.actions.schema import ActionConstraint, actions_to_json, answer_text, json_to_actions

SMALL = ActionConstraint(max_actions=3, max_name=12, max_quantity=6, max_quantities=2, max_text=8, max_components=3)


def _instance(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values that satisfy one of the schemas ActionConstraint writes (a generator for exactly its keywords)."""
    if "anyOf" in schema:
        return st.one_of([_instance(option) for option in schema["anyOf"]])
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema["type"]
    if kind == "string":
        return st.from_regex(schema["pattern"], fullmatch=True).filter(lambda s: len(s) <= schema["maxLength"])
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(schema["minimum"], schema["maximum"])
    if kind == "array":
        return st.lists(_instance(schema["items"]), min_size=schema.get("minItems", 0), max_size=schema["maxItems"])
    required = set(schema["required"])
    fields = {key: _instance(value) for key, value in schema["properties"].items()}
    optional = [key for key in fields if key not in required]
    return st.tuples(
        st.fixed_dictionaries({key: fields[key] for key in schema["required"]}),
        st.fixed_dictionaries({}, optional={key: fields[key] for key in optional}),
    ).map(lambda parts: parts[0] | parts[1])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(_instance(SMALL.json_schema()))
def test_every_json_answer_the_schema_admits_parses_and_validates(value):
    actions = json_to_actions(value)
    assert validate_actions(actions) == []
    readable = format_actions(actions)
    assert validate_actions(parse_actions(readable)) == []
    assert len(json.dumps(value, ensure_ascii=False, separators=(",", ":"))) <= SMALL.max_chars("json")
    assert answer_text(json.dumps(value, ensure_ascii=False, indent=2)) == readable


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_text_answer_the_regex_admits_parses_and_validates(data):
    style = data.draw(st.sampled_from(["readable", "placeholder"]))
    answer = data.draw(st.from_regex(SMALL.regex(style), fullmatch=True))
    assert validate_actions(parse_actions(answer, style)) == []
    assert len(answer) <= SMALL.max_chars(style) and len(answer.encode()) <= SMALL.max_bytes(style)


def test_reference_sequences_within_the_bounds_are_admitted(shared_data):
    constraint = ActionConstraint(max_actions=10, max_name=128, max_text=48, max_quantity=32, max_quantities=4)
    pattern = re.compile(constraint.regex())
    targets = (shared_data / "paragraph2actions" / "tgt-test.txt").read_text(encoding="utf-8").splitlines()
    valid = [target for target in targets if not validate_actions(parse_actions(target))]
    admitted = [target for target in valid if pattern.fullmatch(target)]
    assert len(admitted) >= 0.8 * len(valid)
    for target in admitted:  # the JSON form carries the same sequences
        assert format_actions(json_to_actions(actions_to_json(parse_actions(target)))) == target


def test_what_the_constraint_rules_out():
    pattern = re.compile(SMALL.regex())
    for answer in [
        "INVALIDACTION.",  # never validates
        "MAKESOLUTION with A and B.",  # a solution nobody uses
        "ADD SLNX; NOACTION.",  # a verdict among operations
        "ADD  water.",  # a value starting with a space
        "STIR for 2\th.",  # a control character
        "ADD water",  # no end mark: cut off
        "ADD a very long name indeed.",  # longer than max_name
        "Sure! Here are the actions: ADD water.",
    ]:
        assert not pattern.fullmatch(answer), answer
    assert pattern.fullmatch("MAKESOLUTION with A (1 g) and B; ADD SLN dropwise.")
    assert pattern.fullmatch("NOACTION.")


def test_answers_are_read_leniently():
    # a code fence, a raw control character inside a string, a solution made where it is used
    raw = (
        '```json\n{"actions": [{"action": "STIR", "duration": "2\th"}, {"action": "ADD",\n "material": '
        '{"solution_of": [{"name": "A"}, {"name": "B", "quantity": ["5 mL"]}]}}]}\n```'
    )
    assert answer_text(raw) == "STIR for 2\th; MAKESOLUTION with A and B (5 mL); ADD SLN."
    assert answer_text("  ADD water.  ") == "  ADD water.  "  # text answers go to the text parser as they are
    with pytest.raises(ActionParseError, match="unknown action 'SHAKE'"):
        answer_text('{"actions": [{"action": "SHAKE"}]}')
    with pytest.raises(ActionParseError, match="no complete JSON"):
        answer_text('{"actions": [{"action": "STIR", "durat')


def test_bounds_are_reported_and_fitted():
    assert SMALL.max_bytes("readable") >= SMALL.max_chars("readable") > 0
    fitted = ActionConstraint().fit(600)
    assert fitted.max_bytes() < 600 and fitted.max_actions >= 1
    assert ActionConstraint(max_actions=2).fit(10**6) == ActionConstraint(max_actions=2)
    with pytest.raises(ValueError, match="cannot hold one"):
        ActionConstraint().fit(20)


def test_a_new_action_class_changes_every_form_of_the_constraint(monkeypatch):
    @dataclass
    class Centrifuge(Action):
        name: ClassVar[str] = "CENTRIFUGE"
        duration: str = text("for", required=True)
        speed: str | None = text("at")

    monkeypatch.setitem(action_model.ACTION_CLASSES, Centrifuge.name, Centrifuge)
    constraint = ActionConstraint()
    schema = json.dumps(constraint.json_schema())
    assert '"const": "CENTRIFUGE"' in schema and '"speed"' in schema
    assert re.fullmatch(constraint.regex(), "CENTRIFUGE for 5 min at 3000 rpm; CONCENTRATE.")
    assert "centrifuge ::= " in constraint.gbnf()
    assert json_to_actions({"actions": [{"action": "CENTRIFUGE", "duration": "5 min"}]}) == [Centrifuge("5 min")]
