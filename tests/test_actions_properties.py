"""Property tests of the action grammar: typed round trips and total, typed failure on arbitrary text."""

from __future__ import annotations

import dataclasses
import pickle

from hypothesis import given, settings
from hypothesis import strategies as st

from chemactor.actions import (
    ACTION_CLASSES,
    ACTION_NAMES,
    Action,
    ActionParseError,
    Chemical,
    action_types,
    format_actions,
    parse_actions,
)
from chemactor.actions import STYLES as CONVERTERS
from chemactor.actions.model import Slot

STYLES = ("readable", "placeholder")
# Words the grammar reads as keywords: a value containing one may legitimately be read differently.
KEYWORDS = {"at", "under", "over", "for", "with", "keep", "to", "dropwise", "and", "from", "x"}

word = st.text(alphabet="abcdefgXYZ0123456789-+°%µ.,[]=/'", min_size=1, max_size=6).filter(lambda w: w not in KEYWORDS)
placeholder = st.integers(-3, 9).map(str).flatmap(lambda n: st.sampled_from([f"${n}$", f"#{n}#", f"@{n}@"]))
phrase = st.lists(word | placeholder, min_size=1, max_size=4).map(" ".join)
# Names exercise both escapes: a parenthesis after a space, and the separators of both styles.
name = st.one_of(
    phrase,
    st.tuples(phrase, phrase).map(lambda p: f"{p[0]} ({p[1]})"),
    st.tuples(phrase, st.sampled_from(["; ", " ; "]), phrase).map("".join),
)
quantity = st.lists(word.filter(lambda w: "," not in w), min_size=1, max_size=3).map(" ".join)
chemical = st.builds(Chemical, name, st.lists(quantity, max_size=3))


def _value(spec: dataclasses.Field) -> st.SearchStrategy:
    slot = spec.metadata["slot"]
    if slot is Slot.CHEMICAL:
        return chemical
    if slot is Slot.CHEMICALS:
        return st.lists(chemical, min_size=1, max_size=3)
    if slot is Slot.FLAG:
        return st.booleans()
    if slot is Slot.REPETITIONS:
        return st.integers(1, 12)
    required = spec.default is dataclasses.MISSING
    return name if required else st.none() | name


def _action(action_type: type[Action]) -> st.SearchStrategy[Action]:
    fields = {spec.name: _value(spec) for spec in dataclasses.fields(action_type)}
    return st.builds(action_type, **fields)


actions = st.lists(st.sampled_from(list(ACTION_CLASSES.values())).flatmap(_action), max_size=6)

# Arbitrary text biased towards the grammar's own pieces, so that deep parsing paths are reached: actions
# assembled from keywords and fragments, and well-formed sequences with a few characters cut or inserted.
fragments = st.sampled_from(
    [" ", "; ", " ; ", ".", "(", ")", " (", "\u200c", ", ", " and ", " x", " 2 x", " 1 x", "SLN", "unknown"]
    + [f" {keyword} " for keyword in [*KEYWORDS, "to pH", "with Dean-Stark apparatus"]]
)
assembled = st.lists(
    st.tuples(st.sampled_from(ACTION_NAMES), st.lists(fragments | word | st.text(max_size=2), max_size=6)).map(
        lambda a: a[0] + "".join(a[1])
    ),
    max_size=4,
).flatmap(lambda parts: st.sampled_from(["; ", " ; "]).map(lambda sep: sep.join(parts)))


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = format_actions(draw(actions), draw(st.sampled_from(STYLES)))
    for _ in range(draw(st.integers(1, 3))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 3)))
        text = text[:start] + draw(fragments | st.text(max_size=2)) + text[end:]
    return text


arbitrary_text = st.text() | assembled | mutated()


@settings(max_examples=300, deadline=None)
@given(actions, st.sampled_from(STYLES))
def test_typed_round_trip(sequence: list[Action], style: str) -> None:
    text = format_actions(sequence, style)
    assert parse_actions(text, style) == sequence
    assert format_actions(parse_actions(text, style), style) == text


@settings(max_examples=400, deadline=None)
@given(arbitrary_text, st.sampled_from(STYLES))
def test_arbitrary_text_parses_or_raises_action_parse_error(text: str, style: str) -> None:
    try:
        parsed = parse_actions(text, style)
    except ActionParseError as error:
        assert 0 <= error.index < max(1, len(action_types(text, style)))
        assert error.reason in str(error)
        assert pickle.loads(pickle.dumps(error)).args == error.args
        return
    canonical = format_actions(parsed, style)
    # Whatever was read is written in canonical form, and the canonical form reads back the same.
    assert parse_actions(canonical, style) == parsed
    assert format_actions(parse_actions(canonical, style), style) == canonical
    assert action_types(text, style) == [action.name for action in parsed]


def _split_one(text: str, separator: str, end_mark: str) -> list[str]:
    """What splitting one sequence means: strip, drop the end mark, split at the separator (nothing if empty)."""
    text = text.strip()
    if end_mark and text.endswith(end_mark):
        text = text[: -len(end_mark)]
    return text.split(separator) if text else []


# Texts built from the separators' own characters, so that separators run into each other and into the
# end of a text ("A ;" before a joining " ; "), plus whitespace that ``str.strip`` removes.
separator_soup = st.text(alphabet="ab ;.\n\t\u00a0\u2003", max_size=14)


@settings(max_examples=500, deadline=None)
@given(st.lists(separator_soup | arbitrary_text, max_size=8), st.sampled_from(STYLES))
def test_splitting_many_texts_at_once_equals_splitting_each(texts: list[str], style: str) -> None:
    converter = CONVERTERS[style]
    split = converter.split_many(texts)
    each = [_split_one(text, converter.separator, converter.end_mark) for text in texts]
    assert split.parts == [part for parts in each for part in parts]
    assert split.counts == [len(parts) for parts in each]
    assert [converter.split(text) for text in texts] == each
    assert split.ended == [bool(converter.end_mark) and text.strip().endswith(converter.end_mark) for text in texts]
