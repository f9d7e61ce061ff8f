"""Checks that go beyond the grammar: would a chemist (or a robot) be able to carry the actions out?

Parsing only says that a text is well formed; :func:`validate_actions` says what is wrong with what it
says, as a list of readable problems, so that generated data can be filtered and model output judged
without losing the sequences that merely look odd.

``unknown`` is the grammar's own word for a value the source text does not give (``WAIT for unknown``,
``DRYSOLUTION over unknown``); the annotated data uses it, so it counts as given unless the caller asks
for fully specified sequences with ``allow_unknown=False``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from chemactor.actions.model import (
    SPECIAL_ACTION_NAMES,
    Action,
    Chemical,
    InvalidAction,
    MakeSolution,
    Slot,
    Yield,
    is_required,
    iter_chemicals,
    slots,
)

SOLUTION = "SLN"
UNKNOWN = "unknown"
_PLACEHOLDER = re.compile(r"\$(-?\d+)\$")


def validate_actions(
    actions: Sequence[Action],
    reaction: str | Sequence[str] | None = None,
    *,
    allow_unknown: bool = True,
    components: Mapping[str, Sequence[Mapping[str, str]]] | None = None,
    amounts: bool = False,
) -> list[str]:
    """The problems of an action sequence, each naming the action (0-based index and keyword); ``[]`` if none.

    ``reaction`` enables the checks that need the chemistry: a reaction SMILES (``reactants>agents>products``,
    ``~`` fragment bonds allowed) gives the precursors that ``$n$`` names and the products that ``$-n$``
    names, and a full reaction's procedure must YIELD something; a list of precursor SMILES gives the
    precursors only; ``""`` counts as no reaction. An unreadable reaction SMILES raises
    :class:`chemactor.chem.InvalidSmilesError`.

    With ``components`` (a record's ``meta["components"]``: ``{role: [{"name", "smiles"}, ...]}``) or
    ``amounts=True``, the amounts are checked too: masses, moles, equivalents and yields of the compounds
    whose structure is known (see :mod:`chemactor.stoichiometry`); each disagreement is a problem.
    """
    if isinstance(reaction, str) and not reaction.strip():
        reaction = None  # records keep an unknown reaction as ""
    precursors, products = _reaction_sizes(reaction)
    problems: list[str] = []
    for index, action in enumerate(actions):
        where = f"action {index} ({action.name})"
        problems.extend(f"{where}: {problem}" for problem in _action_problems(action, allow_unknown))
        problems.extend(f"{where}: {problem}" for problem in _placeholder_problems(action, precursors, products))
    problems.extend(_solution_problems(actions))
    problems.extend(_sequence_problems(actions, full_procedure=isinstance(reaction, str)))
    if amounts or components:
        from chemactor.stoichiometry import amount_problems  # RDKit only when amounts are checked

        problems.extend(amount_problems(actions, reaction if isinstance(reaction, str) else None, components))
    return problems


def _reaction_sizes(reaction: str | Sequence[str] | None) -> tuple[int | None, int | None]:
    if reaction is None:
        return None, None
    if not isinstance(reaction, str):
        return len(reaction), None
    from chemactor.chem import reaction_precursors, reaction_products  # RDKit only when a reaction is checked

    return len(reaction_precursors(reaction)), len(reaction_products(reaction))


def _action_problems(action: Action, allow_unknown: bool) -> list[str]:
    problems = []
    for spec in slots(type(action)):
        value = getattr(action, spec.name)
        slot, choices, count = spec.metadata["slot"], spec.metadata["choices"], spec.metadata["count"]
        if slot is Slot.CHEMICALS:
            low, high = count
            if len(value) < low or (high is not None and len(value) > high):
                expected = f"{low}" if low == high else f"at least {low}" if high is None else f"{low} to {high}"
                problems.append(f"{spec.name} has {len(value)} component(s), expected {expected}")
        elif slot is Slot.REPETITIONS and value < 1:
            problems.append(f"{spec.name} is {value}, expected 1 or more")
        elif choices and value is not None and value not in choices:
            problems.append(f"{spec.name} is {value!r}, expected one of {', '.join(choices)}")
        for text in _texts(slot, value):
            if not text.strip():
                problems.append(f"missing {spec.name}")
            elif not allow_unknown and text.strip().lower() == UNKNOWN:
                problems.append(f"{spec.name} is unknown")
        if value is None and is_required(spec):
            problems.append(f"missing {spec.name}")
    if isinstance(action, InvalidAction):
        problems.append("the text was not expressed as actions" + (f": {action.error}" if action.error else ""))
    return problems


def _texts(slot: Slot, value: Any) -> list[str]:
    """The user-given strings of a field value: names and free text, not flags or counts."""
    if slot is Slot.CHEMICAL and isinstance(value, Chemical):
        return [value.name]
    if slot is Slot.CHEMICALS:
        return [item.name for item in value]
    return [value] if slot is Slot.TEXT and isinstance(value, str) else []


def _placeholder_problems(action: Action, precursors: int | None, products: int | None) -> list[str]:
    problems = []
    strings = [
        text for spec in slots(type(action)) for text in _texts(spec.metadata["slot"], getattr(action, spec.name))
    ]
    for match in _PLACEHOLDER.finditer(" ".join(strings)):
        number = int(match.group(1))
        if number == 0:
            problems.append(f"{match.group()} names no compound: precursors count from $1$, products from $-1$")
        elif precursors is not None and number > precursors:
            problems.append(f"{match.group()} is beyond the {precursors} precursor(s) of the reaction")
        elif products is not None and -number > products:
            problems.append(f"{match.group()} is beyond the {products} product(s) of the reaction")
    return problems


def _solution_problems(actions: Sequence[Action]) -> list[str]:
    """Each SLN must come after a MAKESOLUTION, and each MAKESOLUTION's solution must be used."""
    problems = []
    made: int | None = None  # index of the last MAKESOLUTION
    used = True
    for index, action in enumerate(actions):
        if any(chemical.name == SOLUTION for chemical in iter_chemicals([action])):
            if made is None:
                problems.append(f"action {index} ({action.name}): {SOLUTION} used but no MAKESOLUTION before it")
            used = True
        if isinstance(action, MakeSolution):
            if not used:
                problems.append(f"action {made} (MAKESOLUTION): solution never used as {SOLUTION}")
            made, used = index, False
    if not used:
        problems.append(f"action {made} (MAKESOLUTION): solution never used as {SOLUTION}")
    return problems


def _sequence_problems(actions: Sequence[Action], full_procedure: bool) -> list[str]:
    problems = []
    specials = [action.name for action in actions if action.name in SPECIAL_ACTION_NAMES]
    if specials and len(actions) > 1:
        problems.append(f"{', '.join(specials)} must stand alone, found among {len(actions)} actions")
    if full_procedure and not specials and not any(isinstance(action, Yield) for action in actions):
        problems.append("no YIELD: the procedure of a reaction should end by isolating the product")
    return problems
