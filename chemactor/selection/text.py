"""Text normalization shared by the views, deduplication, seed-copy detection and decontamination.

Two ideas run through selection: a procedure's *form* (its wording, word order, punctuation) tells real
annotations from generator artefacts, while its *content* (compound names, numbers) is what generation is
supposed to change. :func:`mask_content` keeps the form and hides the content; :func:`content_signature`
is the content alone. Near-copies differ only in trivial form (case, spacing, a final period, tense, a
"Then," prefix): :func:`canonical_words` removes exactly those differences.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

__all__ = [
    "MASK",
    "STOPWORDS",
    "canonical_text",
    "canonical_words",
    "clauses",
    "content_signature",
    "content_stems",
    "mask_content",
    "mask_digits",
    "mask_names",
    "numbers_key",
    "stem",
    "words",
]

MASK = "§"  # one "word" standing for any compound name: a non-ASCII letter, so the hashers keep it in words
_WORD = re.compile(r"[^\W_]+")
_DIGIT = re.compile(r"\d")
_SUFFIXES = ("ations", "ation", "itions", "ition", "ings", "ing", "ied", "ed", "es", "s", "e")
# function words and connectives that a trivial rewording adds, drops or inflects ("was added" / "is added",
# "Then, the mixture" / "The mixture"); they carry no content of the procedure
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "then",
        "and",
        "was",
        "were",
        "is",
        "are",
        "be",
        "been",
        "being",
        "it",
        "this",
        "that",
        "which",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "with",
        "using",
        "for",
        "from",
        "into",
        "subsequently",
        "next",
        "finally",
    ]
)


def words(text: str) -> list[str]:
    """The lowercased words (maximal runs of letters and digits) of ``text``."""
    return _WORD.findall(text.lower())


@functools.lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """A crude stem that merges inflections of a procedure verb: added/adding/add, stirred/stir, washes/wash."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    if len(word) > 4 and word[-1] == word[-2] and word[-1] not in "aeiousl":
        word = word[:-1]  # stirr(ed) -> stir, but keep "reflux", "add", "cell"
    return word


def canonical_words(text: str) -> list[str]:
    """The stemmed words of ``text`` without function words: equal for texts that differ only in trivial form."""
    return content_stems(words(text))


_STEMS: dict[str, str] = {}  # every word seen: its stem, or "" for a stop word (a stem is never empty)


def content_stems(lowered_words: list[str]) -> list[str]:
    """The stems of the words (as :func:`words` finds them) that are not :data:`STOPWORDS` (memoized: texts share
    a small vocabulary)."""
    stems = _STEMS
    found = list(map(stems.get, lowered_words))
    if None in found:  # words not seen yet
        if len(stems) > 1 << 18:  # bound the memo on endless vocabularies (every row naming new compounds)
            stems.clear()
        for word in lowered_words:
            if word not in stems:
                stems[word] = "" if word in STOPWORDS else stem(word)
        found = list(map(stems.get, lowered_words))
    return list(filter(None, found))


def canonical_text(text: str) -> str:
    return " ".join(canonical_words(text))


def _names_by_length(names: Iterable[str]) -> list[str]:
    return sorted({name for name in names if len(name) >= 3}, key=len, reverse=True)


def mask_names(text: str, names: Iterable[str]) -> str:
    """``text`` with every occurrence of the given compound names replaced by :data:`MASK`.

    Longer names go first, so "ethyl acetate" is masked whole before "acetate" could be.
    """
    for name in _names_by_length(names):
        if name in text:
            text = text.replace(name, MASK)
    return text


def mask_digits(text: str) -> str:
    """``text`` with every decimal digit (any script's) written 0."""
    return _DIGIT.sub("0", text)


def mask_content(text: str, names: Iterable[str]) -> str:
    """``text`` with every occurrence of the given compound names replaced by :data:`MASK` and every digit by 0."""
    return mask_digits(mask_names(text, names))


def content_signature(text: str, names: Iterable[str], numbers: str | None = None) -> str:
    """The numbers of ``text`` and the given compound names it mentions, in order of appearance.

    ``numbers``: :func:`numbers_key` of the words of ``text``, where the caller has it already.
    """
    lowered = text.lower()
    found = sorted(
        (lowered.find(name.lower()), name.lower()) for name in _names_by_length(names) if name.lower() in lowered
    )
    return "|".join(name for _, name in found) + "#" + (numbers_key(words(text)) if numbers is None else numbers)


def numbers_key(text_words: list[str]) -> str:
    """The numbers among the words of a text, in order: the cheap part of :func:`content_signature`."""
    return "|".join(filter(str.isdigit, text_words))


_BRACKETED = re.compile(r"\([^()\[\]]*\)|\[[^()\[\]]*\]")
# A break is a comma, semicolon or colon, a period before a space, or a space, and the connective that may follow:
# (?:[,;:]|\.(?=\s))\s*(?:(?:and|then|followed by)\s+)?|\s(?:and|then|followed by)\s
# written to start with a character class (the first character tells the alternatives apart), which lets the
# regular expression engine skip to the candidates instead of trying every position.
_CLAUSE_BREAK = re.compile(
    r"[,;:.\s](?:(?<=[,;:])\s*(?:(?:and|then|followed by)\s+)?"
    r"|(?<=\.)(?=\s)\s*(?:(?:and|then|followed by)\s+)?"
    r"|(?<=\s)(?:and|then|followed by)\s)"
)


def clauses(text: str) -> list[tuple[int, int]]:
    """Character spans of the clauses of ``text``: split at commas, semicolons, sentence ends and "and",
    but never inside parentheses (where quantities list their own commas)."""
    searched = text
    while "(" in searched or "[" in searched:  # blank out bracketed groups, innermost first
        blanked = _BRACKETED.sub(lambda group: "#" * len(group.group()), searched)
        if blanked == searched:  # an unclosed bracket: nothing more to blank
            break
        searched = blanked
    spans, start = [], 0
    for match in _CLAUSE_BREAK.finditer(searched):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return [(begin, end) for begin, end in spans if end > begin]
