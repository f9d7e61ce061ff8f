"""Scoring is fast because of rewritten steps; each equals the plain formulation it replaces, which is the
oracle here, so a pool scores to the bit as it did with the plain code."""

from __future__ import annotations

import re

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from chemactor.actions import ACTION_NAMES, SOLUTION, ActionParseError, iter_chemicals, parse_actions
from chemactor.actions.converter import converter
from chemactor.selection.divergence import _distinct_occurrences
from chemactor.selection.features import _AMOUNT, AgreementView, Bags, Batch, _normalize, _tokens, batch_bytes
from chemactor.selection.selector import _letters_and_digits
from chemactor.selection.text import STOPWORDS, clauses, content_stems, mask_digits, stem

# the plain formulations
PLAIN_NORMALIZE = re.compile(r"[\s\u200c]+")
PLAIN_AMOUNT = re.compile(r"(?<![\w.])(\d+(?:[.,]\d+)?)\s?(?:mg|g|kg|µg|μg|ml|mL|L|µL|μL|uL|mmol|mol|µmol|μmol)(?!\w)")
PLAIN_CLAUSE_BREAK = re.compile(r"(?:[,;:]|\.(?=\s))\s*(?:(?:and|then|followed by)\s+)?|\s(?:and|then|followed by)\s")
PLAIN_BRACKETED = re.compile(r"\([^()\[\]]*\)|\[[^()\[\]]*\]")

# text built from what the patterns look at: digits of several scripts, units, separators, connectives,
# brackets, white space of several kinds, the readable format's U+200C, letters that lowercase to two
PIECES = (
    *("1", "25", "0.5", "3,4", "١٢", "０", "²", "mg", "mL", "g", "µmol", "μL", "L", "x", "A", "ethyl", "İ", "Σ"),
    *("and", "then", "followed by", ",", ";", ":", ".", "(", ")", "[", "]", "_", "-"),
    *(" ", "  ", "\t", "\n", "\u00a0", "\u2009", "\u200c"),
)
texts = st.lists(st.sampled_from(PIECES), max_size=30).map("".join)


def plain_clauses(text: str) -> list[tuple[int, int]]:
    searched = text
    while "(" in searched or "[" in searched:
        blanked = PLAIN_BRACKETED.sub(lambda group: "#" * len(group.group()), searched)
        if blanked == searched:
            break
        searched = blanked
    spans, start = [], 0
    for match in PLAIN_CLAUSE_BREAK.finditer(searched):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return [(begin, end) for begin, end in spans if end > begin]


def test_normalize_removes_exactly_what_the_regular_expression_removes():
    # every character that either formulation could treat as white space, and a sample of the rest
    every = "".join(chr(code) for code in range(0x110000) if not 0xD800 <= code <= 0xDFFF)
    assert _normalize(every) == PLAIN_NORMALIZE.sub("", every).lower()


@settings(max_examples=300)
@given(texts)
def test_text_patterns_match_their_plain_forms(text):
    assert _normalize(text) == PLAIN_NORMALIZE.sub("", text).lower()
    assert set(_AMOUNT.findall(text)) == {match.group(1) for match in PLAIN_AMOUNT.finditer(text)}
    assert clauses(text) == plain_clauses(text)
    assert _letters_and_digits(text) == re.sub(r"[\W_]+", "", text.lower()).encode("utf-8")


@settings(max_examples=200)
@given(st.lists(texts, max_size=5))
def test_digits_masked_in_the_bytes_equal_digits_masked_in_the_text(rows):
    masked = batch_bytes(rows, zero_digits=True)
    plain = batch_bytes([mask_digits(text) for text in rows])
    assert np.array_equal(masked.data, plain.data) and np.array_equal(masked.rows, plain.rows)


@settings(max_examples=100)
@given(st.lists(st.tuples(st.integers(0, 7), st.integers(0, 40)), max_size=60), st.integers(8, 50))
def test_distinct_occurrences_are_what_numpy_unique_counts(occurrences, size):
    rows = np.array([row for row, _ in occurrences], dtype=np.int64)
    buckets = np.array([bucket % size for _, bucket in occurrences], dtype=np.int64)
    found_rows, found_buckets, counts = _distinct_occurrences(Bags(rows, buckets, 8), size)
    keys, expected_counts = np.unique(rows * size + buckets, return_counts=True)
    assert found_rows.tolist() == (keys // size).tolist() and found_buckets.tolist() == (keys % size).tolist()
    assert counts.tolist() == expected_counts.tolist()


def plain_action_reading(actions: list[str], style: str = "readable") -> dict[str, list]:
    """What the views read from action strings, from the whole parsed sequence as before reading per action."""
    parsed: list[list | None] = []
    for text in actions:
        try:
            parsed.append(parse_actions(text, style=style) if text.strip() else None)
        except ActionParseError:
            parsed.append(None)
    chemicals = [
        [list(iter_chemicals([action])) for action in sequence] if sequence is not None else None for sequence in parsed
    ]
    split = converter(style).split
    steps, kinds = [], []
    for text, per_action in zip(actions, chemicals, strict=True):
        parts = split(text) if text.strip() else []
        kinds.append(
            [part.partition(" ")[0] if part.partition(" ")[0] in ACTION_NAMES else "UNKNOWN" for part in parts]
        )
        row = []
        for index, part in enumerate(parts):
            keyword, _, rest = part.strip().partition(" ")
            event = keyword if keyword in ACTION_NAMES else "UNKNOWN"
            if event in ("COLLECTLAYER", "FILTER") and rest:
                event = f"{event}:{rest.split()[-1].lower().rstrip('.')}"
            anchors: tuple[str, ...] = ()
            if per_action is not None:
                anchors = tuple(c.name.lower() for c in per_action[index] if len(c.name) >= 3 and "$" not in c.name)
            row.append((event, anchors))
        steps.append(row)
    names = [
        [c.name for found in per_action for c in found if c.name and c.name != SOLUTION and "$" not in c.name]
        if per_action
        else []
        for per_action in chemicals
    ]
    return {"parses": [sequence is not None for sequence in parsed], "steps": steps, "types": kinds, "names": names}


def test_actions_read_one_by_one_equal_the_parsed_sequence(seeds, reference):
    real = list(reference["actions"]) + list(seeds["validation"]["actions"])
    edited = [
        "",
        "  ",
        ".",
        "ADD water",
        "ADD; STIR.",
        "MIXIFY the flask; ADD water.",
        "FILTER keep filtrate; COLLECTLAYER aqueous; FILTER keep precipitate.",
        "ADD SLN; ADD $1$ (2 mL); MAKESOLUTION with A (1 g) and B (2 mL).",
        *(text.replace("; ", "; ADD ", 1) for text in real[:20]),
        *(text.lower() for text in real[:10]),
    ]
    actions = real + edited + real[:5]  # actions seen twice come from the memo
    batch = Batch([""] * len(actions), actions)
    plain = plain_action_reading(actions)
    assert batch.parses == plain["parses"] and batch.steps == plain["steps"]
    assert batch.action_types == plain["types"] and batch.compound_names == plain["names"]


@settings(max_examples=200)
@given(st.lists(st.sampled_from(["the", "was", "added", "stirred", "organic", "layers", "layer", "aqueous", "1"])))
def test_memoized_stems_are_the_stems_of_the_content_words(text_words):
    assert content_stems(text_words) == [stem(word) for word in text_words if word not in STOPWORDS]
    assert content_stems(text_words) == [stem(word) for word in text_words if word not in STOPWORDS]  # memoized


def test_the_known_tokens_of_a_description_are_its_tokens_that_estimates_name(reference, seeds):
    view = AgreementView()
    batch = Batch(reference["description"], reference["actions"])
    view.fit([batch], [np.ones(len(batch), dtype=bool)])
    for stems in Batch(seeds["validation"]["description"], seeds["validation"]["actions"]).description_stems:
        assert view._known_tokens(stems) == _tokens(stems) & view._known
