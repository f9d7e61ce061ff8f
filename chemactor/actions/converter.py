"""Actions to text and back, in the Paragraph2Actions "readable" format and its Smiles2Actions variant.

An action is written as its keyword followed by its fields in declaration order, each spelled as its
:class:`~chemactor.actions.model.Slot` says: ``ADD SLN dropwise at 0 °C over 10 min``. Actions are joined by
a separator and the sequence ends with an end mark. Parsing reads an action's fields from the end back
towards the keyword, each free-text value starting at the first occurrence of its keyword. Whatever text
a field consumes is exactly the text that formatting writes for the value it produced, which is why
``format(parse(s)) == s`` holds for every string written by paragraph2actions' own converter.

Two spellings keep the format unambiguous, and are reproduced byte for byte: a compound name containing
``" ("`` gets a zero-width non-joiner (U+200C) before the ``(`` so that only the quantities' parenthesis
follows a plain space, and an action containing the separator gets one after its first character.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from chemactor.actions.model import ACTION_CLASSES, Action, Chemical, Slot, is_required, slots
from chemactor.errors import InputError

ZWNJ = "\u200c"
_NAME_PAREN, _NAME_PAREN_ESCAPED = " (", f" {ZWNJ}("
# ``N x`` is only read when formatting would write it back the same way (never for 1, no leading zero).
_REPETITIONS = re.compile(r" ([2-9]|[1-9][0-9]+) x$")


class ActionParseError(InputError):
    """An action string does not follow the grammar.

    ``index`` is the 0-based position of the failing action in the sequence, ``text`` its text and
    ``reason`` what is wrong with it.
    """

    def __init__(self, index: int, text: str, reason: str) -> None:
        self.index = index
        self.text = text
        self.reason = reason
        super().__init__(f"action {index} {text!r}: {reason}")

    def __reduce__(self) -> tuple[type, tuple[int, str, str]]:
        # Rebuild from the fields, not the message, so the error survives worker processes (datasets.map).
        return type(self), (self.index, self.text, self.reason)


def chemical_to_text(chemical: Chemical) -> str:
    name = chemical.name.replace(_NAME_PAREN, _NAME_PAREN_ESCAPED)
    return f"{name} ({', '.join(chemical.quantity)})" if chemical.quantity else name


def text_to_chemical(text: str) -> Chemical:
    """``name (q1, q2)`` -> Chemical; the quantities are in the last parenthesis that follows a plain space."""
    quantity: list[str] = []
    start = text.rfind(_NAME_PAREN)
    if start >= 0 and text.endswith(")"):
        text, quantity = text[:start], text[start + 2 : -1].split(", ")
    return Chemical(text.replace(_NAME_PAREN_ESCAPED, _NAME_PAREN), quantity)


class SplitTexts(NamedTuple):
    """The action texts of many sequences one after another, how many each sequence has, and whether each
    ended with the end mark."""

    parts: list[str]
    counts: list[int]
    ended: list[bool]


@dataclass(frozen=True)
class ActionStringConverter:
    """Writes and reads action sequences with one separator and end mark."""

    separator: str
    end_mark: str

    @property
    def _separator_escaped(self) -> str:
        return self.separator[:1] + ZWNJ + self.separator[1:]

    def format(self, actions: Iterable[Action]) -> str:
        return self.separator.join(self.format_action(action) for action in actions) + self.end_mark

    def parse(self, text: str) -> list[Action]:
        return [self.parse_action(part, index) for index, part in enumerate(self.split(text))]

    def format_action(self, action: Action) -> str:
        """Write one action; a field value of the wrong type raises a ``TypeError`` naming it."""
        parts = [action.name]
        for spec in slots(type(action)):
            value = getattr(action, spec.name)
            if not _has_slot_type(spec.metadata["slot"], value, required=is_required(spec)):
                raise TypeError(f"{action.name} field {spec.name}={value!r} is not of type {spec.type}")
            parts.append(_format_value(spec, value))
        return "".join(parts).replace(self.separator, self._separator_escaped)

    def split(self, text: str) -> list[str]:
        """The action texts of a sequence; surrounding whitespace and a missing end mark are tolerated."""
        return self.split_many([text]).parts

    def split_many(self, texts: Sequence[str]) -> SplitTexts:
        """The action texts of many sequences at once (``split`` of one), without a list per text.

        Each text is stripped and loses its end mark; what remains, if anything, is split at the separator.
        The remains are joined by the separator and split once: metrics split tens of thousands of strings,
        and one list instead of one per text spares the time and the garbage collector's work. That yields
        each text's parts unless an occurrence of the separator could start inside one text and end in the
        separator joining it to the next, which needs a separator that overlaps itself (``" ; "`` starts
        with its last character) and a text ending with such a start (``"... ;"``); such texts are split one
        by one.
        """
        end, separator = self.end_mark, self.separator
        bodies = [text.strip() for text in texts]
        ended = [bool(end) and body.endswith(end) for body in bodies]
        if end:
            bodies = [body[: -len(end)] if cut else body for body, cut in zip(bodies, ended, strict=True)]
        counts = [body.count(separator) + 1 if body else 0 for body in bodies]
        overlaps = tuple(separator[:size] for size in range(1, len(separator)) if separator[size:] == separator[:-size])
        if overlaps and any(body.endswith(overlaps) for body in bodies):
            parts = [part for body in bodies if body for part in body.split(separator)]
        else:
            parts = separator.join(filter(None, bodies)).split(separator) if any(counts) else []
        return SplitTexts(parts, counts, ended)

    def parse_action(self, text: str, index: int = 0) -> Action:
        """Parse one action; ``index`` is its position in the sequence, reported in errors."""
        keyword = text.partition(" ")[0]
        action_type = ACTION_CLASSES.get(keyword)
        if action_type is None:
            raise ActionParseError(index, text, f"unknown action {keyword!r}" if text else "empty action")
        rest = text[len(keyword) :].replace(self._separator_escaped, self.separator)
        values: dict[str, Any] = {}
        for spec in reversed(slots(action_type)):
            try:
                rest, value = _parse_value(spec, rest)
            except ValueError as error:
                raise ActionParseError(index, text, str(error)) from None
            if value is not None:
                values[spec.name] = value
            elif is_required(spec):
                raise ActionParseError(index, text, f"{keyword} needs {_describe(spec)}")
        if rest:
            raise ActionParseError(index, text, f"unexpected text {rest!r} after {keyword}")
        return action_type(**values)


def _describe(spec: dataclasses.Field) -> str:
    keyword = spec.metadata["keyword"]
    return f"'{keyword} <{spec.name}>'" if keyword else f"<{spec.name}>"


def _lead(keyword: str | None) -> str:
    return f" {keyword} " if keyword else " "


def _has_slot_type(slot: Slot, value: Any, *, required: bool) -> bool:
    if slot is Slot.CHEMICAL:
        return isinstance(value, Chemical)
    if slot is Slot.CHEMICALS:
        return isinstance(value, list) and all(isinstance(item, Chemical) for item in value)
    if slot is Slot.FLAG:
        return isinstance(value, bool)
    if slot is Slot.REPETITIONS:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, str) or (value is None and not required)


def _format_value(spec: dataclasses.Field, value: Any) -> str:
    slot, keyword = spec.metadata["slot"], spec.metadata["keyword"]
    if slot is Slot.CHEMICAL:
        return _lead(keyword) + chemical_to_text(value)
    if slot is Slot.CHEMICALS:
        return _lead(keyword) + " and ".join(chemical_to_text(item) for item in value)
    if slot is Slot.FLAG:
        return f" {keyword}" if value else ""
    if slot is Slot.REPETITIONS:
        return f" {value} x" if value != 1 else ""
    return "" if value is None else _lead(keyword) + value


def _parse_value(spec: dataclasses.Field, rest: str) -> tuple[str, Any]:
    """Take one field's text off the end of ``rest``; return what remains and the value (``None``: absent).

    Raises ``ValueError`` for a keyword followed by nothing.
    """
    slot, keyword = spec.metadata["slot"], spec.metadata["keyword"]
    if slot is Slot.FLAG:
        phrase = f" {keyword}"
        return (rest[: -len(phrase)], True) if rest.endswith(phrase) else (rest, None)
    if slot is Slot.REPETITIONS:
        match = _REPETITIONS.search(rest)
        return (rest[: match.start()], int(match.group(1))) if match else (rest, None)
    lead = _lead(keyword)
    # A field written right after the action keyword takes all that is left; a later one starts at the
    # first occurrence of its keyword, as paragraph2actions' own converter reads it.
    start = rest.find(lead) if keyword and slot is Slot.TEXT else 0
    if start < 0 or not rest.startswith(lead, start):
        return rest, None
    value = rest[start + len(lead) :]
    if not value:
        raise ValueError(f"empty {spec.name}" + (f" after {keyword!r}" if keyword else ""))
    if slot is Slot.CHEMICAL:
        return rest[:start], text_to_chemical(value)
    if slot is Slot.CHEMICALS:
        return rest[:start], [text_to_chemical(item) for item in value.split(" and ")]
    return rest[:start], value


STYLES: dict[str, ActionStringConverter] = {
    "readable": ActionStringConverter(separator="; ", end_mark="."),
    "placeholder": ActionStringConverter(separator=" ; ", end_mark=""),
}


def converter(style: str) -> ActionStringConverter:
    """The converter of a style; an unknown style raises a ``ValueError`` listing the known ones."""
    try:
        return STYLES[style]
    except KeyError:
        raise ValueError(f"unknown action style {style!r}; known: {', '.join(STYLES)}") from None


def parse_actions(text: str, style: str = "readable") -> list[Action]:
    """Parse an action sequence; raises :class:`ActionParseError` naming the failing action."""
    return converter(style).parse(text)


def format_actions(actions: Iterable[Action], style: str = "readable") -> str:
    """Write an action sequence; ``format_actions(parse_actions(s, style), style) == s`` for canonical ``s``."""
    return converter(style).format(actions)


def action_types(text: str, style: str = "readable") -> list[str]:
    """The keyword of each action in ``text``, ``"UNKNOWN"`` where it is not one; never raises.

    For metrics on model output that may not parse: the sequence of action types is still informative.
    """
    keywords = (part.partition(" ")[0] for part in converter(style).split(text))
    return [keyword if keyword in ACTION_CLASSES else "UNKNOWN" for keyword in keywords]
