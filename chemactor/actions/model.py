"""Typed synthesis actions: the Paragraph2Actions action set as small dataclasses.

Each class carries its grammar keyword in ``name`` and declares its fields in the order they are written,
each field tagged with how it is spelled (see :class:`Slot`). The converter reads those tags instead of
keeping a second table per action, so adding an action or a parameter is a change in one place.

The classes hold plain data and accept any values: whether a value makes sense (a known layer, a
MAKESOLUTION with two components, a ``$n$`` within the reaction's precursors) is the business of
:func:`chemactor.actions.validate_actions`, so that text a model wrote can always be loaded and then judged.
"""

# The slot helpers below return dataclasses.field(...) specifications, which ruff cannot tell apart from
# mutable defaults.
# ruff: noqa: RUF009

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar


@dataclass
class Chemical:
    """A compound with its quantities, written ``name (quantity, quantity, ...)``.

    ``name`` may be a placeholder such as ``$2$`` (Smiles2Actions) or ``SLN`` (the solution made by the last
    MAKESOLUTION).
    """

    name: str
    quantity: list[str] = field(default_factory=list)


class Slot(Enum):
    """How a field is written after the action keyword."""

    CHEMICAL = "chemical"  # one compound: ``ADD water (5 mL)``, ``WASH with brine``
    CHEMICALS = "chemicals"  # compounds joined by `` and ``: ``MAKESOLUTION with A and B``
    TEXT = "text"  # free text after a keyword: ``at 0 °C``, ``for 2 h``, ``to pH 7``
    FLAG = "flag"  # a phrase present or not: ``dropwise``, ``with Dean-Stark apparatus``
    REPETITIONS = "repetitions"  # `` 3 x`` when more than once


def _metadata(slot: Slot, keyword: str | None, **metadata: Any) -> dict[str, Any]:
    return {"slot": slot, "keyword": keyword, "compound": False, "choices": None, "count": None} | metadata


def chemical(keyword: str | None = None) -> Any:
    """A required compound, written right after the action keyword (``keyword`` first if given)."""
    return field(metadata=_metadata(Slot.CHEMICAL, keyword))


def chemicals(keyword: str = "with", *, count: tuple[int, int | None] = (1, None)) -> Any:
    """Several compounds joined by `` and ``; ``count`` is the (min, max) that makes sense."""
    return field(metadata=_metadata(Slot.CHEMICALS, keyword, count=count))


def text(
    keyword: str | None, *, required: bool = False, compound: bool = False, choices: tuple[str, ...] | None = None
) -> Any:
    """A free-text value after ``keyword``; ``keyword=None`` means the value follows the action keyword.

    ``compound`` marks text that names a compound; ``choices`` the only values that make sense.
    """
    metadata = _metadata(Slot.TEXT, keyword, compound=compound, choices=choices)
    return field(metadata=metadata) if required else field(default=None, metadata=metadata)


def flag(phrase: str) -> Any:
    """A boolean written as ``phrase`` when true."""
    return field(default=False, metadata=_metadata(Slot.FLAG, phrase))


def repetitions() -> Any:
    """How many times the action is done, written `` N x`` when ``N != 1``."""
    return field(default=1, metadata=_metadata(Slot.REPETITIONS, None))


@dataclass
class Action:
    """Base of every action; ``name`` is the uppercase keyword that starts its text."""

    name: ClassVar[str]


# --- the action set ----------------------------------------------------------------------------------
# Field order is writing order; required fields come first in every action, as the grammar has them.


@dataclass
class Add(Action):
    name: ClassVar[str] = "ADD"
    material: Chemical = chemical()
    dropwise: bool = flag("dropwise")
    temperature: str | None = text("at")
    atmosphere: str | None = text("under")
    duration: str | None = text("over")


@dataclass
class CollectLayer(Action):
    """Keep one layer after a phase separation: ``aqueous`` or ``organic``."""

    name: ClassVar[str] = "COLLECTLAYER"
    layer: str = text(None, required=True, choices=("aqueous", "organic"))


@dataclass
class Concentrate(Action):
    name: ClassVar[str] = "CONCENTRATE"


@dataclass
class Degas(Action):
    name: ClassVar[str] = "DEGAS"
    gas: str | None = text("with", compound=True)
    duration: str | None = text("for")


@dataclass
class DrySolid(Action):
    """Dry a solid; ``atmosphere`` is ``vacuum``, ``air`` or a gas."""

    name: ClassVar[str] = "DRYSOLID"
    duration: str | None = text("for")
    temperature: str | None = text("at")
    atmosphere: str | None = text("under")


@dataclass
class DrySolution(Action):
    """Dry an organic solution over a desiccant (kept as text, as in the original grammar)."""

    name: ClassVar[str] = "DRYSOLUTION"
    material: str | None = text("over", compound=True)


@dataclass
class Extract(Action):
    name: ClassVar[str] = "EXTRACT"
    solvent: Chemical = chemical("with")
    repetitions: int = repetitions()


@dataclass
class Filter(Action):
    """Filter, optionally saying which phase is kept: ``filtrate`` or ``precipitate``."""

    name: ClassVar[str] = "FILTER"
    phase_to_keep: str | None = text("keep", choices=("filtrate", "precipitate"))


@dataclass
class FollowOtherProcedure(Action):
    """The text refers to another procedure instead of describing one."""

    name: ClassVar[str] = "FOLLOWOTHERPROCEDURE"


@dataclass
class InvalidAction(Action):
    """The text could not be expressed as actions; ``error`` optionally says why."""

    name: ClassVar[str] = "INVALIDACTION"
    error: str | None = text(None)


@dataclass
class MakeSolution(Action):
    """Make a solution of several compounds; a later action uses it as ``SLN``."""

    name: ClassVar[str] = "MAKESOLUTION"
    materials: list[Chemical] = chemicals(count=(2, None))


@dataclass
class Microwave(Action):
    name: ClassVar[str] = "MICROWAVE"
    duration: str | None = text("for")
    temperature: str | None = text("at")


@dataclass
class NoAction(Action):
    """The text describes no action."""

    name: ClassVar[str] = "NOACTION"


@dataclass
class OtherLanguage(Action):
    """The text is not in English."""

    name: ClassVar[str] = "OTHERLANGUAGE"


@dataclass
class Partition(Action):
    """Partition between two immiscible phases."""

    name: ClassVar[str] = "PARTITION"
    materials: list[Chemical] = chemicals(count=(2, 2))


@dataclass
class PH(Action):
    name: ClassVar[str] = "PH"
    material: Chemical = chemical("with")
    ph: str | None = text("to pH")
    dropwise: bool = flag("dropwise")
    temperature: str | None = text("at")


@dataclass
class PhaseSeparation(Action):
    name: ClassVar[str] = "PHASESEPARATION"


@dataclass
class Purify(Action):
    name: ClassVar[str] = "PURIFY"


@dataclass
class Quench(Action):
    name: ClassVar[str] = "QUENCH"
    material: Chemical = chemical("with")
    dropwise: bool = flag("dropwise")
    temperature: str | None = text("at")


@dataclass
class Recrystallize(Action):
    name: ClassVar[str] = "RECRYSTALLIZE"
    solvent: Chemical = chemical("from")


@dataclass
class Reflux(Action):
    name: ClassVar[str] = "REFLUX"
    duration: str | None = text("for")
    atmosphere: str | None = text("under")
    dean_stark: bool = flag("with Dean-Stark apparatus")


@dataclass
class SetTemperature(Action):
    """Heat or cool to a temperature; with a duration the grammar uses STIR instead."""

    name: ClassVar[str] = "SETTEMPERATURE"
    temperature: str = text(None, required=True)


@dataclass
class Sonicate(Action):
    name: ClassVar[str] = "SONICATE"
    duration: str | None = text("for")
    temperature: str | None = text("at")


@dataclass
class Stir(Action):
    name: ClassVar[str] = "STIR"
    duration: str | None = text("for")
    temperature: str | None = text("at")
    atmosphere: str | None = text("under")


@dataclass
class Triturate(Action):
    name: ClassVar[str] = "TRITURATE"
    solvent: Chemical = chemical("with")


@dataclass
class Wait(Action):
    """Let time pass (often "continue what was going on"); ``unknown`` when the text gives no duration."""

    name: ClassVar[str] = "WAIT"
    duration: str = text("for", required=True)
    temperature: str | None = text("at")


@dataclass
class Wash(Action):
    name: ClassVar[str] = "WASH"
    material: Chemical = chemical("with")
    repetitions: int = repetitions()


@dataclass
class Yield(Action):
    """The isolated product, usually the last action of a procedure."""

    name: ClassVar[str] = "YIELD"
    material: Chemical = chemical()


ACTION_CLASSES: dict[str, type[Action]] = {
    cls.name: cls
    for cls in (
        Add,
        CollectLayer,
        Concentrate,
        Degas,
        DrySolid,
        DrySolution,
        Extract,
        Filter,
        MakeSolution,
        Microwave,
        Partition,
        PH,
        PhaseSeparation,
        Purify,
        Quench,
        Recrystallize,
        Reflux,
        SetTemperature,
        Sonicate,
        Stir,
        Triturate,
        Wait,
        Wash,
        Yield,
        NoAction,
        OtherLanguage,
        FollowOtherProcedure,
        InvalidAction,
    )
}
ACTION_NAMES: tuple[str, ...] = tuple(ACTION_CLASSES)

# Sentence-level verdicts rather than laboratory operations: they stand alone in a sequence.
SPECIAL_ACTION_NAMES: tuple[str, ...] = ("NOACTION", "OTHERLANGUAGE", "FOLLOWOTHERPROCEDURE", "INVALIDACTION")


@functools.cache
def slots(action_type: type[Action]) -> tuple[dataclasses.Field, ...]:
    """The fields of an action class in writing order (cached: parsing and iterating compounds ask per action)."""
    return dataclasses.fields(action_type)


def is_required(spec: dataclasses.Field) -> bool:
    """Whether the grammar requires the field (it has no default)."""
    return spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING


def iter_chemicals(actions: Iterable[Action]) -> Iterator[Chemical]:
    """Every compound the actions mention, in order, ``SLN`` and placeholders included.

    Compounds kept as plain text by the grammar (a desiccant, a degassing gas) come as a :class:`Chemical`
    without quantity, so callers see one kind of object.
    """
    for action in actions:
        for spec in slots(type(action)):
            value = getattr(action, spec.name)
            slot = spec.metadata["slot"]
            if slot is Slot.CHEMICAL:
                yield value
            elif slot is Slot.CHEMICALS:
                yield from value
            elif spec.metadata["compound"] and value is not None:
                yield Chemical(value)
