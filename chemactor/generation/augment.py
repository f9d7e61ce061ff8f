"""Rule-based augmentation: new (description, actions) pairs from seed pairs, no model needed.

Paragraph2Actions grew about a thousand annotated sentences into 14k pairs by swapping compound names,
quantities and conditions in both the sentence and its actions. The same idea here: a substitution is
made only where the text and the actions both carry the value (the same compound name, the same number
with a unit of the same kind), and it is applied to both, so the pair stays a correct annotation.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chemactor.actions import SOLUTION, ActionParseError, iter_chemicals, parse_actions

# unit spelling -> kind; a number is swapped only together with a unit of one kind, in both texts
UNIT_KINDS: dict[str, str] = {
    **dict.fromkeys(("mL", "ml", "L", "l", "µL", "μL", "uL"), "volume"),
    **dict.fromkeys(("g", "mg", "kg", "µg", "μg"), "mass"),
    **dict.fromkeys(("mmol", "mol", "µmol", "μmol"), "amount"),
    **dict.fromkeys(("M", "mM", "N"), "concentration"),
    **dict.fromkeys(("eq", "eq.", "equiv", "equiv.", "equivalents", "equivalent"), "equivalents"),
    **dict.fromkeys(("°C", "° C", "ºC"), "temperature"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "hours"),
    **dict.fromkeys(("min", "mins", "minute", "minutes"), "minutes"),
    **dict.fromkeys(("d", "day", "days"), "days"),
}
_UNITS = "|".join(re.escape(unit) for unit in sorted(UNIT_KINDS, key=len, reverse=True))
# a number (not part of a longer token) followed by a known unit (not part of a longer word)
VALUE = re.compile(rf"(?<![\w.,])(?P<number>[-−]?\d+(?:\.\d+)?)(?P<space>\s?)(?P<unit>{_UNITS})(?![\w])")

# Amounts scale together (a bigger or smaller batch keeps its stoichiometry); equivalents and
# concentrations describe the chemistry, not the batch, and stay; conditions are drawn from common values.
SCALED_KINDS = frozenset({"volume", "mass", "amount"})
SCALES = (0.2, 0.25, 0.5, 0.75, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0)
CONDITIONS: dict[str, tuple[float, ...]] = {
    "temperature": (-78, -20, -10, 0, 4, 20, 25, 40, 50, 60, 65, 70, 80, 90, 100, 110, 120, 140),
    "hours": (0.5, 1, 1.5, 2, 3, 4, 5, 6, 8, 12, 16, 18, 24, 48),
    "minutes": (5, 10, 15, 20, 30, 40, 45, 60, 90),
    "days": (1, 2, 3, 4, 5, 7),
}
MIN_NAME_LENGTH = 3
MAX_NAME_WORDS = 4
# a "compound" named by one of these words is a reference or a description, not a name worth swapping
GENERIC_WORDS = frozenset(
    [
        "solution",
        "product",
        "compound",
        "example",
        "mixture",
        "residue",
        "title",
        "crude",
        "solid",
        "oil",
        "layer",
        "phase",
        "filtrate",
    ]
)


def _scaled(number: str, scale: float) -> str:
    """``number`` times ``scale``, written with as many decimals as ``number`` (at least 1 when whole)."""
    value = float(number.replace("−", "-")) * scale
    decimals = len(number.split(".")[1]) if "." in number else 0
    return f"{value:.{decimals}f}" if decimals else str(max(1, round(value)))


def numeric_values(text: str) -> set[tuple[str, str]]:
    """The ``(number, unit kind)`` pairs in ``text``: ``"stirred for 2 hours"`` gives ``{("2", "hours")}``."""
    return {(match["number"], UNIT_KINDS[match["unit"]]) for match in VALUE.finditer(text)}


def _replace_values(text: str, mapping: Mapping[tuple[str, str], str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        new = mapping.get((match["number"], UNIT_KINDS[match["unit"]]))
        return match[0] if new is None else f"{new}{match['space']}{match['unit']}"

    return VALUE.sub(substitute, text)


def _replace_names(text: str, mapping: Mapping[str, str]) -> str:
    if not mapping:
        return text
    alternatives = "|".join(re.escape(name) for name in sorted(mapping, key=len, reverse=True))
    return re.sub(rf"(?<![\w-])(?:{alternatives})(?![\w-])", lambda match: mapping[match[0]], text)


def compound_roles(actions: str) -> list[tuple[str, str]]:
    """``(action name, compound name)`` for each compound of a readable action string (empty if unparsable).

    The action says what part a compound plays (what one WASHes or EXTRACTs with is a solvent), so a
    swap draws its replacement from compounds seen in the same kind of action.
    """
    try:
        parsed = parse_actions(actions)
    except ActionParseError:
        return []
    return [(action.name, chemical.name) for action in parsed for chemical in iter_chemicals([action])]


@dataclass
class Augmenter:
    """Consistent substitutions over compound names collected from seed actions, grouped by action."""

    names: dict[str, tuple[str, ...]]  # action name -> swappable compound names seen in it
    name_rate: float = 0.8
    value_rate: float = 0.8

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]], **options: float) -> Augmenter:
        """The vocabulary is every swappable compound name in the seeds' (readable) actions."""
        names: dict[str, set[str]] = {}
        for record in records:
            for action, name in compound_roles(record.get("actions") or ""):
                if _swappable(name):
                    names.setdefault(action, set()).add(name)
        return cls(names={action: tuple(sorted(group)) for action, group in sorted(names.items())}, **options)

    def sizes(self) -> dict[str, int]:
        return {action: len(group) for action, group in self.names.items()}

    def augment(self, description: str, actions: str, rng: random.Random) -> tuple[str, str, dict[str, str]]:
        """A variant of the pair and the substitutions made (``old -> new``; values keyed ``"number kind"``).

        Each compound found in both texts is swapped with probability ``name_rate`` for one seen in the
        same kind of action, amounts are scaled by one common factor, and each condition (temperature,
        duration) is redrawn with probability ``value_rate``. What only one side mentions stays as it is,
        so text and actions keep agreeing.
        """
        roles = compound_roles(actions)
        taken = {name for _, name in roles}
        name_map: dict[str, str] = {}
        for action, name in roles:
            if name in name_map or not _swappable(name) or name not in description or rng.random() >= self.name_rate:
                continue
            pool = [new for new in self.names.get(action, ()) if new not in taken and new not in description]
            if pool:
                name_map[name] = rng.choice(pool)
                taken.add(name_map[name])
        scale = rng.choice(SCALES)
        value_map: dict[tuple[str, str], str] = {}
        for number, kind in sorted(numeric_values(actions) & numeric_values(description)):
            if kind in SCALED_KINDS:
                value_map[number, kind] = _scaled(number, scale)
            elif kind in CONDITIONS and rng.random() < self.value_rate:
                current = float(number.replace("−", "-"))
                value_map[number, kind] = f"{rng.choice([v for v in CONDITIONS[kind] if v != current]):g}"
        new_description = _replace_values(_replace_names(description, name_map), value_map)
        new_actions = _replace_values(_replace_names(actions, name_map), value_map)
        substitutions = {**name_map, **{f"{number} {kind}": new for (number, kind), new in value_map.items()}}
        return new_description, new_actions, substitutions


def _swappable(name: str) -> bool:
    """A compound's name (not a reference to one such as "title product"), written alike in text and actions."""
    words = name.lower().split()
    return (
        len(name) >= MIN_NAME_LENGTH
        and len(words) <= MAX_NAME_WORDS
        and not GENERIC_WORDS.intersection(words)
        and "\u200c" not in name
        and not name.isdigit()
        and name != SOLUTION
        and not name.startswith("$")
    )
