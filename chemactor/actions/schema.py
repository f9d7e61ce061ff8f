"""The action grammar as a decoding constraint: a JSON schema, a regular expression and a GBNF grammar.

A model that is free to write anything writes prose, markdown, invented actions or a sequence cut off in
the middle. Structured-generation engines (llama.cpp's grammars, text-generation-inference's ``grammar``,
OpenAI-compatible ``response_format``, llguidance for local models) can only emit what a constraint
allows, so this module derives, from the action classes alone, constraints whose every accepted answer
parses and passes :func:`~chemactor.actions.validate_actions`:

- :meth:`ActionConstraint.json_schema`: ``{"actions": [{"action": "ADD", "material": {...}, ...}, ...]}``,
  one object type per action class with its slots typed (compounds, enums, flags, counts), for servers
  that take a JSON schema; :func:`json_to_actions` and :func:`answer_text` turn such an answer back into
  actions or their readable/placeholder text;
- :meth:`ActionConstraint.regex` and :meth:`ActionConstraint.gbnf`: the readable (or placeholder) text
  format itself, for local models trained on it, TGI's ``regex`` grammar and llama.cpp's GBNF ``grammar``.

What the constraint guarantees, and how:

- only known action types, each slot in its place; the verdicts (``NOACTION``, ...) stand alone;
  ``INVALIDACTION`` is left out because :func:`validate_actions` never accepts it;
- a solution is made where it is used: a compound slot may hold ``{"solution_of": [...]}`` (in text, a
  ``MAKESOLUTION`` immediately followed by an action on ``SLN``), so no ``SLN`` is used before one is
  made and no solution is left unused;
- strings are non-empty, start and end with a non-space, hold no control characters (a strict JSON
  parser rejects them), no separator and no character JSON would have to escape;
- every length is bounded (actions, quantities, components, string characters), so
  :meth:`ActionConstraint.max_chars` bounds the answer and a token budget that covers it is never hit.

Everything is derived from the slots of :data:`~chemactor.actions.ACTION_CLASSES`: a new action class
or field changes every form of the constraint with no other edit.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chemactor.actions.converter import ActionParseError, _lead, converter, format_actions
from chemactor.actions.model import (
    ACTION_CLASSES,
    SPECIAL_ACTION_NAMES,
    Action,
    Chemical,
    InvalidAction,
    MakeSolution,
    Slot,
    is_required,
    slots,
)
from chemactor.actions.validation import SOLUTION

# InvalidAction never validates (see validate_actions), so a constraint that admits it cannot promise valid output.
EXCLUDED: tuple[type[Action], ...] = (InvalidAction,)
SOLUTION_KEY = "solution_of"
# Characters a value may not hold: control characters (C0, DEL, C1), the separator, what JSON escapes.
_FORBIDDEN = r'\x00-\x1f\x7f-\x9f"\\;'
# What str.strip() removes besides those: a value may not start or end with it.
_SPACE = r"\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_MAX_UTF8 = 4  # bytes per character in the worst case


# --- a small regular-language IR, rendered as a regex or as GBNF -----------------------------------------


@dataclass(frozen=True)
class _Lit:
    text: str


@dataclass(frozen=True)
class _Chars:
    """One character not in ``forbidden`` (a regex class body of ranges and escaped characters)."""

    forbidden: str


@dataclass(frozen=True)
class _Seq:
    parts: tuple[Any, ...]


@dataclass(frozen=True)
class _Alt:
    options: tuple[Any, ...]


@dataclass(frozen=True)
class _Rep:
    node: Any
    low: int
    high: int


@dataclass(frozen=True)
class _Rule:
    """A named piece: a rule of its own in GBNF, inlined in the regex."""

    name: str
    node: Any


def _seq(*parts: Any) -> _Seq:
    return _Seq(tuple(parts))


def _opt(node: Any) -> _Rep:
    return _Rep(node, 0, 1)


_REGEX_META = set("\\.^$|?*+()[]{}/")


def _regex(node: Any) -> str:
    if isinstance(node, _Lit):
        return "".join("\\" + char if char in _REGEX_META else char for char in node.text)
    if isinstance(node, _Chars):
        return f"[^{node.forbidden}]"
    if isinstance(node, _Seq):
        return "".join(_regex(part) for part in node.parts)
    if isinstance(node, _Alt):
        return "(?:" + "|".join(_regex(option) for option in node.options) + ")"
    if isinstance(node, _Rep):
        inner = _regex(node.node)
        if not (isinstance(node.node, _Chars | _Alt) or (isinstance(node.node, _Lit) and len(node.node.text) == 1)):
            inner = f"(?:{inner})"
        return inner + ("?" if (node.low, node.high) == (0, 1) else f"{{{node.low},{node.high}}}")
    return _regex(node.node)


def _gbnf(node: Any, rules: dict[str, str]) -> str:
    if isinstance(node, _Lit):
        return json.dumps(node.text, ensure_ascii=False)  # GBNF string literals take JSON's escapes
    if isinstance(node, _Chars):
        return f"[^{node.forbidden}]"
    if isinstance(node, _Seq):
        return " ".join(_gbnf(part, rules) for part in node.parts)
    if isinstance(node, _Alt):
        return "(" + " | ".join(_gbnf(option, rules) for option in node.options) + ")"
    if isinstance(node, _Rep):
        inner = _gbnf(node.node, rules)
        suffix = "?" if (node.low, node.high) == (0, 1) else f"{{{node.low},{node.high}}}"
        return f"({inner}){suffix}"
    if node.name not in rules:
        rules[node.name] = ""  # reserve the name first: rules are listed in the order they are met
        rules[node.name] = _gbnf(node.node, rules)
    return node.name


def _longest(node: Any, per_char: int = 1, measure: Callable[[str], int] = len) -> int:
    """The size of the longest string ``node`` matches: characters by default; with ``per_char`` and
    ``measure`` set to the UTF-8 worst case, bytes (a free character counts ``per_char``)."""
    if isinstance(node, _Lit):
        return measure(node.text)
    if isinstance(node, _Chars):
        return per_char
    if isinstance(node, _Seq):
        return sum(_longest(part, per_char, measure) for part in node.parts)
    if isinstance(node, _Alt):
        return max(_longest(option, per_char, measure) for option in node.options)
    if isinstance(node, _Rep):
        return node.high * _longest(node.node, per_char, measure)
    return _longest(node.node, per_char, measure)


def _utf8_length(text: str) -> int:
    return len(text.encode("utf-8"))


def _bounded(first: _Chars, middle: _Chars, length: int) -> Any:
    """A value of 1 to ``length`` characters that starts and ends with ``first``'s characters."""
    return _seq(first, _opt(_seq(_Rep(middle, 0, length - 2), first))) if length > 1 else first


# --- the constraint -------------------------------------------------------------------------------------


def _constrained_classes() -> list[type[Action]]:
    return [cls for cls in ACTION_CLASSES.values() if cls not in EXCLUDED]


def _verdicts() -> list[type[Action]]:
    return [cls for cls in _constrained_classes() if cls.name in SPECIAL_ACTION_NAMES]


def _operations() -> list[type[Action]]:
    return [cls for cls in _constrained_classes() if cls.name not in SPECIAL_ACTION_NAMES and cls is not MakeSolution]


def _first_chemical(action_type: type[Action]) -> dataclasses.Field | None:
    return next((spec for spec in slots(action_type) if spec.metadata["slot"] is Slot.CHEMICAL), None)


@dataclass(frozen=True)
class ActionConstraint:
    """Bounds of a constrained action sequence, and the constraint in each form a decoder takes.

    ``max_actions`` counts the operations of a sequence (a solution made for an action counts with it);
    ``max_name``, ``max_quantity`` and ``max_text`` are the characters of a compound name, of one quantity
    and of any other value; ``max_quantities`` the quantities of a compound; ``max_components`` the
    compounds of a solution or a list slot without its own maximum; ``max_repetitions`` the ``N x``.
    """

    max_actions: int = 8
    max_name: int = 64
    max_quantity: int = 16
    max_quantities: int = 3
    max_text: int = 24
    max_components: int = 3
    max_repetitions: int = 9

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            low = 2 if spec.name == "max_repetitions" else 1
            if getattr(self, spec.name) < low:
                raise ValueError(f"{spec.name} must be at least {low}, got {getattr(self, spec.name)}")

    # --- JSON ---------------------------------------------------------------------------------------

    def _string(self, length: int) -> dict[str, Any]:
        # The pattern carries the length bound (engines that follow a pattern ignore maxLength).
        solid = f"[^{_SPACE}{_FORBIDDEN}]"
        pattern = f"^{solid}([^{_FORBIDDEN}]{{0,{length - 2}}}{solid})?$" if length > 1 else f"^{solid}$"
        return {"type": "string", "minLength": 1, "maxLength": length, "pattern": pattern}

    def _json_chemical(self) -> dict[str, Any]:
        quantity = {"type": "array", "items": self._string(self.max_quantity), "maxItems": self.max_quantities}
        return _object({"name": self._string(self.max_name), "quantity": quantity}, required=["name"])

    def _json_chemicals(self, count: tuple[int, int | None]) -> dict[str, Any]:
        low, high = count
        return {
            "type": "array",
            "items": self._json_chemical(),
            "minItems": low,
            "maxItems": high if high is not None else max(low, self.max_components),
        }

    def _json_slot(self, spec: dataclasses.Field, solution: bool) -> dict[str, Any]:
        slot, choices = spec.metadata["slot"], spec.metadata["choices"]
        if slot is Slot.CHEMICAL:
            if not solution:
                return self._json_chemical()
            made = self._json_chemicals(_solution_count())
            return {"anyOf": [self._json_chemical(), _object({SOLUTION_KEY: made}, required=[SOLUTION_KEY])]}
        if slot is Slot.CHEMICALS:
            return self._json_chemicals(spec.metadata["count"])
        if slot is Slot.FLAG:
            return {"type": "boolean"}
        if slot is Slot.REPETITIONS:
            # an enum, not minimum/maximum: llama.cpp's schema converter ignores integer bounds
            return {"type": "integer", "enum": list(range(1, self.max_repetitions + 1))}
        if choices:
            return {"type": "string", "enum": list(choices)}
        return self._string(self.max_name if spec.metadata["compound"] else self.max_text)

    def _json_action(self, action_type: type[Action]) -> dict[str, Any]:
        solution = _first_chemical(action_type)
        properties = {"action": {"type": "string", "const": action_type.name}}
        properties |= {spec.name: self._json_slot(spec, spec is solution) for spec in slots(action_type)}
        required = ["action", *(spec.name for spec in slots(action_type) if is_required(spec))]
        return _object(properties, required=required)

    def json_schema(self) -> dict[str, Any]:
        """The JSON schema of an answer: ``{"actions": [...]}``, operations or one verdict alone."""
        operations = {"anyOf": [self._json_action(cls) for cls in _operations()]}
        sequence = {"type": "array", "items": operations, "minItems": 1, "maxItems": self.max_actions}
        verdict = {
            "type": "array",
            "items": {"anyOf": [self._json_action(cls) for cls in _verdicts()]},
            "minItems": 1,
            "maxItems": 1,
        }
        schema = _object({"actions": {"anyOf": [sequence, verdict]}}, required=["actions"])
        return {"title": "ActionSequence", **schema}

    # --- text formats -------------------------------------------------------------------------------

    def _text_node(self, style: str) -> _Rule:
        separator, end_mark = converter(style).separator, converter(style).end_mark
        free, solid = _Chars(_FORBIDDEN), _Chars(_SPACE + _FORBIDDEN)
        text = _Rule("text", _bounded(solid, free, self.max_text))
        compound = _Rule("compound", _bounded(solid, free, self.max_name))
        # A name never holds " (" (the quantities' parenthesis is the only one after a space), nor two
        # spaces in a row; each repeated piece is a character or a space and the character after it.
        after_space = _Chars(_SPACE + "(" + _FORBIDDEN)
        name = _Rule("name", _seq(after_space, _Rep(_Alt((solid, _seq(_Lit(" "), after_space))), 0, self.max_name - 1)))
        quantity = _Rule(
            "quantity",
            _bounded(_Chars(_SPACE + ",()" + _FORBIDDEN), _Chars(",()" + _FORBIDDEN), self.max_quantity),
        )
        quantities = _seq(_Lit(" ("), quantity, _Rep(_seq(_Lit(", "), quantity), 0, self.max_quantities - 1), _Lit(")"))
        chemical = _Rule("chemical", _seq(name, _opt(quantities)))
        values = {"text": text, "compound": compound, "chemical": chemical}
        solution = _seq(_Lit(SOLUTION), _opt(quantities))

        def action(action_type: type[Action], on_solution: bool = False) -> _Rule:
            target = _first_chemical(action_type) if on_solution else None
            parts: list[Any] = [_Lit(action_type.name)]
            for spec in slots(action_type):
                node = self._text_slot(spec, values, solution if spec is target else None)
                parts.append(node if is_required(spec) else _opt(node))
            return _Rule(action_type.name.lower() + ("-on-solution" if on_solution else ""), _seq(*parts))

        made = _Rule(
            "solution",
            _seq(
                _Lit(MakeSolution.name),
                self._text_slot(_solution_field(), values, None),
                _Lit(separator),
                _Alt(tuple(action(cls, on_solution=True) for cls in _operations() if _first_chemical(cls))),
            ),
        )
        step = _Rule("step", _Alt((*(action(cls) for cls in _operations()), made)))
        sequence = _seq(step, _Rep(_seq(_Lit(separator), step), 0, self.max_actions - 1))
        verdict = _Alt(tuple(action(cls) for cls in _verdicts()))
        # A completion in training ends with a newline: the model may write it before the end of sequence.
        return _Rule("root", _seq(_Alt((sequence, verdict)), _Lit(end_mark), _opt(_Lit("\n"))))

    def _text_slot(self, spec: dataclasses.Field, values: Mapping[str, Any], solution: Any) -> Any:
        slot, keyword, choices = spec.metadata["slot"], spec.metadata["keyword"], spec.metadata["choices"]
        if slot is Slot.FLAG:
            return _Lit(f" {keyword}")
        if slot is Slot.REPETITIONS:
            return _seq(_Lit(" "), _Alt(tuple(_Lit(str(n)) for n in range(2, self.max_repetitions + 1))), _Lit(" x"))
        lead = _Lit(_lead(keyword))
        if slot is Slot.CHEMICAL:
            return _seq(lead, solution or values["chemical"])
        if slot is Slot.CHEMICALS:
            low, high = spec.metadata["count"]
            high = high if high is not None else max(low, self.max_components)
            return _seq(lead, values["chemical"], _Rep(_seq(_Lit(" and "), values["chemical"]), low - 1, high - 1))
        if choices:
            return _seq(lead, _Alt(tuple(_Lit(choice) for choice in choices)))
        return _seq(lead, values["compound" if spec.metadata["compound"] else "text"])

    def regex(self, style: str = "readable") -> str:
        """A regular expression (Python, Rust and outlines syntax) matching exactly the constrained answers."""
        return _regex(self._text_node(style))

    def gbnf(self, style: str = "readable") -> str:
        """The same language as a GBNF grammar (llama.cpp's ``grammar``), one rule per action and value kind."""
        rules: dict[str, str] = {}
        _gbnf(self._text_node(style), rules)
        return "".join(f"{name} ::= {body}\n" for name, body in rules.items())

    def max_chars(self, form: str = "readable") -> int:
        """Characters of the longest answer in ``form``: ``json`` (with a space after every JSON token) or
        an action style (``readable``, ``placeholder``)."""
        return _longest_json(self.json_schema()) if form == "json" else _longest(self._text_node(form))

    def fit(self, budget: int, form: str = "readable") -> ActionConstraint:
        """This constraint with fewer actions, then shorter values, until its longest answer in ``form``
        (in bytes: at least one per token of any byte-level vocabulary) leaves ``budget`` a token for the
        end of sequence. Raises ``ValueError`` when one action with the shortest values does not fit."""
        constraint = self
        while constraint.max_bytes(form) >= budget:
            if constraint.max_actions > 1:
                constraint = dataclasses.replace(constraint, max_actions=constraint.max_actions - 1)
            elif max(constraint.max_name, constraint.max_text, constraint.max_quantity) > 1:
                constraint = dataclasses.replace(
                    constraint,
                    max_name=max(1, constraint.max_name // 2),
                    max_text=max(1, constraint.max_text // 2),
                    max_quantity=max(1, constraint.max_quantity // 2),
                )
            else:
                raise ValueError(
                    f"a budget of {budget} tokens cannot hold one constrained action "
                    f"({constraint.max_bytes(form)} bytes at most); raise the token budget"
                )
        return constraint

    def max_bytes(self, form: str = "readable") -> int:
        """UTF-8 bytes of the longest answer, the bound on tokens for any byte-level vocabulary."""
        if form == "json":
            return _longest_json(self.json_schema(), _MAX_UTF8)
        return _longest(self._text_node(form), _MAX_UTF8, _utf8_length)


def _object(properties: dict[str, Any], required: Sequence[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


def _solution_field() -> dataclasses.Field:
    return next(spec for spec in slots(MakeSolution) if spec.metadata["slot"] is Slot.CHEMICALS)


def _solution_count() -> tuple[int, int | None]:
    return _solution_field().metadata["count"]


def _longest_json(schema: Mapping[str, Any], char_bytes: int = 1) -> int:
    """Length of the longest JSON value ``schema`` admits (the schemas built here only), counting
    ``char_bytes`` for each character of a string value (keys and structure are ASCII) and one space after
    every JSON token, as much as llama.cpp's JSON grammars allow."""
    if "anyOf" in schema:
        return max(_longest_json(option, char_bytes) for option in schema["anyOf"])
    if "const" in schema or "enum" in schema:
        values = schema.get("enum", [schema.get("const")])
        return 1 + max(len(json.dumps(value, ensure_ascii=False).encode("utf-8")) for value in values)
    kind = schema["type"]
    if kind == "object":
        items = [
            len(json.dumps(key)) + 3 + _longest_json(value, char_bytes) for key, value in schema["properties"].items()
        ]
        return 4 + sum(items) + 2 * max(len(items) - 1, 0)
    if kind == "array":
        count = schema["maxItems"]
        return 4 + count * _longest_json(schema["items"], char_bytes) + 2 * max(count - 1, 0)
    if kind == "string":
        return 3 + char_bytes * schema["maxLength"]
    if kind == "integer":
        return 1 + len(str(schema["maximum"]))
    return 1 + len("false")


# --- answers back to actions ----------------------------------------------------------------------------


def _json_values(text: str) -> Iterator[Any]:
    """JSON values in ``text``, leniently: control characters inside strings are accepted, and the value
    may sit inside prose or a code fence."""
    decoder = json.JSONDecoder(strict=False)
    for match in re.finditer(r"[{\[]", text):
        try:
            yield decoder.raw_decode(text, match.start())[0]
        except json.JSONDecodeError:
            continue


def _chemical(value: Any, where: str) -> Chemical:
    if isinstance(value, str):
        return Chemical(value)
    if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
        raise ValueError(f"{where}: expected a compound {{'name', 'quantity'}}, got {value!r}")
    quantity = value.get("quantity") or []
    if not isinstance(quantity, list) or not all(isinstance(item, str) for item in quantity):
        raise ValueError(f"{where}: quantity must be a list of strings, got {quantity!r}")
    return Chemical(value["name"], list(quantity))


def _json_action(item: Any, index: int) -> list[Action]:
    """One JSON action as actions: a compound given as a solution becomes a MAKESOLUTION before it."""
    if not isinstance(item, Mapping):
        raise ActionParseError(index, json.dumps(item), "an action must be a JSON object")
    name = item.get("action")
    action_type = ACTION_CLASSES.get(name) if isinstance(name, str) else None
    if action_type is None:
        raise ActionParseError(index, json.dumps(item), f"unknown action {name!r}")
    made: list[Action] = []
    values: dict[str, Any] = {}
    try:
        for spec in slots(action_type):
            value = item.get(spec.name)
            if value is None:
                if is_required(spec):
                    raise ValueError(f"missing {spec.name}")
                continue
            slot = spec.metadata["slot"]
            if slot is Slot.CHEMICAL and isinstance(value, Mapping) and SOLUTION_KEY in value:
                made.append(MakeSolution([_chemical(part, spec.name) for part in value[SOLUTION_KEY]]))
                values[spec.name] = Chemical(SOLUTION)
            elif slot is Slot.CHEMICAL:
                values[spec.name] = _chemical(value, spec.name)
            elif slot is Slot.CHEMICALS:
                if not isinstance(value, list):
                    raise ValueError(f"{spec.name} must be a list of compounds")
                values[spec.name] = [_chemical(part, spec.name) for part in value]
            elif slot is Slot.FLAG:
                values[spec.name] = bool(value)
            elif slot is Slot.REPETITIONS:
                values[spec.name] = int(value)
            else:
                values[spec.name] = str(value)
    except (ValueError, TypeError) as error:
        raise ActionParseError(index, json.dumps(item, ensure_ascii=False), str(error)) from None
    return [*made, action_type(**values)]


def json_to_actions(value: Any) -> list[Action]:
    """Actions from a JSON answer (``{"actions": [...]}`` or the bare list); raises :class:`ActionParseError`.

    Lenient where a schema cannot be relied on: unknown keys are ignored, a compound may be a bare name.
    """
    items = value.get("actions") if isinstance(value, Mapping) else value
    if not isinstance(items, list):
        raise ActionParseError(0, json.dumps(value, ensure_ascii=False)[:200], "expected {'actions': [...]}")
    return [action for index, item in enumerate(items) for action in _json_action(item, index)]


def actions_to_json(actions: Sequence[Action]) -> dict[str, Any]:
    """The JSON form of ``actions``; a MAKESOLUTION followed by an action on ``SLN`` folds into it."""
    items: list[dict[str, Any]] = []
    pending: MakeSolution | None = None
    for action in actions:
        item: dict[str, Any] = {"action": action.name}
        for spec in slots(type(action)):
            value = getattr(action, spec.name)
            slot = spec.metadata["slot"]
            if slot is Slot.CHEMICAL and pending is not None and value.name == SOLUTION and not value.quantity:
                item[spec.name] = {SOLUTION_KEY: [_chemical_json(part) for part in pending.materials]}
                pending = None
            elif slot is Slot.CHEMICAL:
                item[spec.name] = _chemical_json(value)
            elif slot is Slot.CHEMICALS:
                item[spec.name] = [_chemical_json(part) for part in value]
            elif value is not None and value != spec.default:
                item[spec.name] = value
        if isinstance(action, MakeSolution):
            pending = action
        else:
            items.append(item)
    if pending is not None:  # a solution never used: kept as an action of its own
        items.append({"action": MakeSolution.name, "materials": [_chemical_json(p) for p in pending.materials]})
    return {"actions": items}


def _chemical_json(chemical: Chemical) -> dict[str, Any]:
    value: dict[str, Any] = {"name": chemical.name}
    if chemical.quantity:
        value["quantity"] = list(chemical.quantity)
    return value


def answer_text(text: str, style: str = "readable") -> str:
    """The action string of a model's answer: a JSON answer (as a JSON-schema constraint makes a model
    write) is converted to ``style``; any other answer is returned as it is, for the text parser to judge.

    A JSON answer whose content is not an action sequence raises :class:`ActionParseError`.
    """
    stripped = text.strip()
    if not stripped.startswith(("{", "[", "```")):
        return text
    value = next(_json_values(stripped), None)
    if value is not None:
        return format_actions(json_to_actions(value), style)
    raise ActionParseError(0, stripped[:200], "the answer starts like JSON but holds no complete JSON value")
