"""Do the numbers of a procedure add up? Masses, volumes, moles, equivalents and yields against RDKit.

LLMs invent amounts, and copied procedures carry typos. Where a compound's structure is known (a reaction
component with SMILES, a ``$n$`` placeholder, a target, a name that is itself SMILES) and the procedure
gives two amounts of it, the two must agree through the molar mass:

- ``molar_mass``: a mass (or a volume with a stated density) and moles imply a molar mass; RDKit's must
  fall within what the numbers as written allow (their rounding) plus :data:`MOLAR_MASS_TOLERANCE`;
- ``concentration``: a volume with a molarity implies moles, which must agree with stated moles;
- ``equivalents``: ``n equiv`` must agree with the moles of the compound divided by the reference's
  (the compound given as 1 equiv, else the limiting reactant);
- ``yield``: a yield in % must agree with the product's moles (stated, or mass over molar mass) over the
  limiting reactant's moles.

No density is ever assumed: a neat liquid given only by volume is not checked. Each check that could be
made gives a :class:`AmountCheck` (agreeing or not), so callers can count what was checked as well as
what failed. Amounts come from actions (:func:`mentions_from_actions`) or from procedure text written
``name (400 mg, 0.89 mmol)`` (:func:`mentions_from_text`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from rapidfuzz import fuzz
from rdkit import Chem
from rdkit.Chem import Descriptors

from chemactor.actions.model import Action, Chemical, Yield, iter_chemicals
from chemactor.chem import InvalidSmilesError, canonicalize_smiles, reaction_roles, smiles_in_text

__all__ = [
    "CHECKS",
    "AmountCheck",
    "Mention",
    "Quantity",
    "Structures",
    "amount_problems",
    "check_amounts",
    "mentions_from_actions",
    "mentions_from_text",
    "molar_mass",
    "parse_quantity",
]

CHECKS: tuple[str, ...] = ("molar_mass", "concentration", "equivalents", "yield")
# Beyond the rounding of the numbers as written: salts, hydrates and loose rounding by authors.
MOLAR_MASS_TOLERANCE = 0.03
CONCENTRATION_TOLERANCE = 0.05
EQUIVALENTS_TOLERANCE = 0.05
YIELD_TOLERANCE_POINTS = 2.0  # percentage points
NAME_SIMILARITY = 92.0  # rapidfuzz ratio above which two spellings name the same compound
MIN_NAME_LENGTH = 3  # shorter "names" in real data are labels ("5", "II"), not compounds
_ROMAN = re.compile(r"[ivxl]+")

# unit -> (kind, factor to the base unit: g, mol, L, mol/L, g/mL, equiv, %)
_UNITS: dict[str, tuple[str, float]] = {
    "kg": ("mass", 1e3),
    "g": ("mass", 1.0),
    "mg": ("mass", 1e-3),
    "µg": ("mass", 1e-6),
    "ug": ("mass", 1e-6),
    "mol": ("moles", 1.0),
    "mole": ("moles", 1.0),
    "moles": ("moles", 1.0),
    "mmol": ("moles", 1e-3),
    "mmole": ("moles", 1e-3),
    "mmoles": ("moles", 1e-3),
    "millimoles": ("moles", 1e-3),
    "µmol": ("moles", 1e-6),
    "umol": ("moles", 1e-6),
    "l": ("volume", 1.0),
    "ml": ("volume", 1e-3),
    "cc": ("volume", 1e-3),
    "µl": ("volume", 1e-6),
    "ul": ("volume", 1e-6),
    "M": ("molarity", 1.0),
    "mM": ("molarity", 1e-3),
    "mol/l": ("molarity", 1.0),
    "mmol/ml": ("molarity", 1.0),
    "g/ml": ("density", 1.0),
    "g/cm3": ("density", 1.0),
    "g/cm³": ("density", 1.0),
    "eq": ("equivalents", 1.0),
    "equiv": ("equivalents", 1.0),
    "equivalent": ("equivalents", 1.0),
    "equivalents": ("equivalents", 1.0),
    "%": ("percent", 1.0),
}
_QUANTITY = re.compile(
    r"(?:d\s*=?\s*)?(?P<number>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>[A-Za-zµμ/%³0-9]+?)\.?",
)


@dataclass(frozen=True)
class Quantity:
    """One amount as written: its kind, value in the base unit and the half-width its rounding allows."""

    # mass (g), moles (mol), volume (L), molarity (mol/L), density (g/mL), equivalents, percent (a yield),
    # purity (a fraction: "60% in mineral oil")
    kind: str
    value: float
    rounding: float
    text: str

    @property
    def low(self) -> float:
        return max(self.value - self.rounding, 0.0)

    @property
    def high(self) -> float:
        return self.value + self.rounding


_PURITY = re.compile(
    r"(?P<number>\d+(?:\.\d*)?)\s*(?:%|wt\s*%|% w/w)\s+(?:in\b.*|dispersion.*|suspension.*|purity|pure|assay)",
    re.IGNORECASE,
)


def parse_quantity(text: str) -> Quantity | None:
    """``"400 mg"`` -> ``Quantity("mass", 0.4, 0.0005, "400 mg")``; ``None`` when the text is not one amount.

    Units are read case-insensitively except ``M`` (molar) against ``m`` (milli), which only differ by case;
    a trailing dot (``1.85 g.``, ``1.2 equiv.``) and ``d = 1.05 g/mL`` for a density are accepted.
    """
    stripped = text.strip().replace("μ", "µ")
    purity = _PURITY.fullmatch(stripped)
    if purity is not None:  # "60% in mineral oil": the share of the stated mass that is the compound
        number = purity["number"]
        return Quantity("purity", float(number) / 100, 0.5 * 10.0 ** -_decimals(number) / 100, stripped)
    match = _QUANTITY.fullmatch(stripped)
    if match is None:
        return None
    unit = match["unit"]
    kind_factor = _UNITS.get(unit) or _UNITS.get(unit.lower())
    if kind_factor is None or (unit.lower() == "m" and unit != "M"):
        return None
    kind, factor = kind_factor
    number = match["number"]
    return Quantity(kind, float(number) * factor, 0.5 * 10.0 ** -_decimals(number) * factor, stripped)


def _decimals(number: str) -> int:
    return len(number.split(".")[1]) if "." in number else 0


@dataclass(frozen=True)
class Mention:
    """A compound with the amounts a procedure gives for it; ``product`` when it is what the procedure yields."""

    name: str
    quantities: tuple[Quantity, ...]
    product: bool = False

    def first(self, kind: str) -> Quantity | None:
        return next((quantity for quantity in self.quantities if quantity.kind == kind), None)


def mentions_from_actions(actions: Iterable[Action]) -> list[Mention]:
    """The compounds of an action sequence that carry at least one amount; YIELD's material is the product."""
    mentions = []
    for action in actions:
        for chemical in iter_chemicals([action]):
            mention = _mention(chemical, product=isinstance(action, Yield))
            if mention is not None:
                mentions.append(mention)
    return mentions


def _mention(chemical: Chemical, product: bool) -> Mention | None:
    quantities = tuple(q for q in map(parse_quantity, chemical.quantity) if q is not None)
    return Mention(chemical.name, quantities, product) if quantities else None


_GROUP = re.compile(r"\(([^()]*)\)")
_NAME_START = re.compile(r"(?:^|[.;:]\s)")
_NAME_WINDOW = 200


def mentions_from_text(text: str) -> list[Mention]:
    """Compounds written ``name (amount, amount, ...)`` in procedure text, the form of patents and papers.

    The name is the text between the previous amount group (or sentence start) and the parenthesis; it is
    resolved later by matching known names at its end, so leading words ("To a solution of") do no harm.
    A group whose parts are not all amounts (``(60% in mineral oil, 0.48 g)``) keeps the parts that are.
    """
    mentions = []
    previous_end = 0
    for match in _GROUP.finditer(text):
        quantities = tuple(q for q in map(parse_quantity, re.split(r"[,;]\s*", match[1])) if q is not None)
        if not quantities:
            continue
        window = text[max(previous_end, match.start() - _NAME_WINDOW) : match.start()]
        starts = [m.end() for m in _NAME_START.finditer(window)]
        name = window[starts[-1] if starts else 0 :].strip(" ,")
        previous_end = match.end()
        if name:
            mentions.append(Mention(name, quantities))
    return mentions


@lru_cache(maxsize=65536)
def molar_mass(smiles: str) -> float:
    """RDKit's average molar mass (g/mol) of a compound, all fragments included (a salt, a hydrate)."""
    mol = Chem.MolFromSmiles(canonicalize_smiles(smiles))
    return Descriptors.MolWt(mol)


@dataclass
class Structures:
    """What is known about a reaction's compounds: names, placeholders and SMILES, each with a role.

    Built from a reaction SMILES (``$n$`` is the n-th precursor, ``$-n$`` the n-th product), the components
    of ``meta["components"]`` (``{role: [{"name", "smiles"}, ...]}``) and target molecules (products).
    """

    named: dict[str, tuple[str, str]] = field(default_factory=dict)  # normalized name -> (smiles, role)
    placeholders: dict[str, tuple[str, str]] = field(default_factory=dict)
    all: list[tuple[str, str]] = field(default_factory=list)  # (smiles, role) of every known compound

    @classmethod
    def build(
        cls,
        reaction: str | None = None,
        components: Mapping[str, Sequence[Mapping[str, str]]] | None = None,
        targets: Sequence[str] = (),
    ) -> Structures:
        structures = cls()
        if reaction:
            roles = reaction_roles(reaction)
            precursors = [(s, "reactants") for s in roles["reactants"]] + [(s, "reagents") for s in roles["agents"]]
            for number, (smiles, role) in enumerate(precursors, start=1):
                structures.placeholders[f"${number}$"] = (smiles, role)
            for number, smiles in enumerate(roles["products"], start=1):
                structures.placeholders[f"$-{number}$"] = (smiles, "products")
            structures.all += [*precursors, *((s, "products") for s in roles["products"])]
        for role, items in (components or {}).items():
            for item in items:
                smiles = _canonical_or_none(item.get("smiles") or "")
                if smiles is None:
                    continue
                structures.all.append((smiles, role))
                name = _normalize(item.get("name") or "")
                if len(name) >= MIN_NAME_LENGTH and not _ROMAN.fullmatch(name):
                    structures.named[name] = (smiles, role)
        for target in targets:
            smiles = _canonical_or_none(target)
            if smiles is not None:
                structures.all.append((smiles, "products"))
        return structures

    def resolve(self, mention: Mention) -> tuple[str, str] | None:
        """``(smiles, role)`` of the compound ``mention`` names, or ``None`` when it names none known.

        A placeholder or a SMILES names its structure; otherwise the longest known name that the mention
        ends with (or spells nearly the same) wins. When nothing matches by name, a compound whose molar
        mass fits the mention's mass and moles is taken (then the molar-mass check agrees by construction,
        and the structure still feeds the equivalents and yield checks).
        """
        name = mention.name.strip()
        if name in self.placeholders:
            return self.placeholders[name]
        normalized = _normalize(name)
        best: tuple[int, tuple[str, str]] | None = None
        for known, found in self.named.items():
            if _names_match(known, normalized) and (best is None or len(known) > best[0]):
                best = (len(known), found)
        if best is not None:
            return best[1]
        smiles = _smiles_in(name)
        if smiles is not None:
            role = next((role for known, role in self.all if known == smiles), "products" if mention.product else "")
            return smiles, role
        products = {smiles for smiles, role in self.all if role == "products"}
        if (mention.product or mention.first("percent") is not None) and len(products) == 1:
            # "to give the title compound (1.2 g, 85%)": a yield names the one product, whatever it is called
            return products.pop(), "products"
        return self._by_molar_mass(mention)

    def _by_molar_mass(self, mention: Mention) -> tuple[str, str] | None:
        implied = _implied_molar_mass(mention)
        if implied is None:
            return None
        fits = {smiles: role for smiles, role in self.all if _within(molar_mass(smiles), implied, MOLAR_MASS_TOLERANCE)}
        if len(fits) <= 1:
            return next(iter(fits.items()), None)
        # "1 g, 4.63 mmol" allows 108 to 324 g/mol: among several fits, one close to the nominal value wins
        close = [smiles for smiles in fits if _within(molar_mass(smiles), (implied[1],) * 3, MOLAR_MASS_TOLERANCE)]
        return (close[0], fits[close[0]]) if len(close) == 1 else None


@dataclass(frozen=True)
class AmountCheck:
    """One check of a compound's amounts: what the structure or the reference implies against what is stated."""

    check: str  # one of CHECKS
    compound: str
    expected: float
    stated: float
    agrees: bool
    detail: str

    def __str__(self) -> str:
        verdict = "agrees" if self.agrees else "disagrees"
        return f"{self.check} of {self.compound!r} {verdict}: {self.detail}"

    def as_dict(self) -> dict[str, object]:
        return {
            "check": self.check,
            "compound": self.compound,
            "expected": round(self.expected, 4),
            "stated": round(self.stated, 4),
            "agrees": self.agrees,
        }


def check_amounts(mentions: Sequence[Mention], structures: Structures) -> list[AmountCheck]:
    """Every amount check that ``mentions`` allow given ``structures``, agreeing or not, in mention order."""
    checks: list[AmountCheck] = []
    resolved = _by_elimination([(mention, structures.resolve(mention)) for mention in mentions], structures)
    moles: list[tuple[float, float] | None] = []  # (moles, relative rounding) of each mention
    for mention, found in resolved:
        checks += _own_checks(mention, found)
        moles.append(_moles(mention, found))
    limiting = min(
        (n for (_, found), n in zip(resolved, moles, strict=True) if n and found and found[1] == "reactants"),
        default=None,
    )
    reference = next(
        (
            n
            for (mention, _), n in zip(resolved, moles, strict=True)
            if n and (q := mention.first("equivalents")) is not None and q.value == 1.0
        ),
        limiting,
    )
    for (mention, found), n in zip(resolved, moles, strict=True):
        equivalents = mention.first("equivalents")
        if equivalents is not None and n and reference:
            checks.append(_equivalents_check(mention, equivalents, n[0] / reference[0], n[1] + reference[1]))
        percent = mention.first("percent")
        is_product = mention.product or (found is not None and found[1] == "products")
        if percent is not None and is_product and n and limiting:
            checks.append(_yield_check(mention, percent, 100 * n[0] / limiting[0], n[1] + limiting[1]))
    return checks


def _by_elimination(
    resolved: list[tuple[Mention, tuple[str, str] | None]], structures: Structures
) -> list[tuple[Mention, tuple[str, str] | None]]:
    """Pair the one unresolved mention that has a mass and moles with the one known compound left unnamed.

    Sources often give structures without names (ORD's ELN exports): a mention is then found by its
    molar mass, which a wrong amount defeats. When every other compound with amounts was found and one
    reactant, reagent or catalyst is left, the odd mention is that compound, and its numbers get checked.
    """
    claimed = {found[0] for _, found in resolved if found is not None}
    left = {smiles: role for smiles, role in structures.all if role not in ("solvents", "products")}.keys() - claimed
    open_mentions = [
        index
        for index, (mention, found) in enumerate(resolved)
        if found is None and not mention.product and _implied_molar_mass(mention) is not None
    ]
    if len(open_mentions) != 1 or len(left) != 1:
        return resolved
    smiles = left.pop()
    role = next(role for known, role in structures.all if known == smiles)
    index = open_mentions[0]
    return [*resolved[:index], (resolved[index][0], (smiles, role)), *resolved[index + 1 :]]


def _own_checks(mention: Mention, found: tuple[str, str] | None) -> list[AmountCheck]:
    """The checks within one mention: its molar mass and its solution's concentration."""
    checks = []
    volume, molarity, moles = mention.first("volume"), mention.first("molarity"), mention.first("moles")
    if volume is not None and molarity is not None and moles is not None:
        low, high = volume.low * molarity.low, volume.high * molarity.high
        implied = volume.value * molarity.value
        agrees = _interval_agrees(moles.value, low, high, CONCENTRATION_TOLERANCE)
        detail = f"{volume.text} of {molarity.text} is {implied * 1e3:.4g} mmol, stated {moles.text}"
        checks.append(AmountCheck("concentration", mention.name, implied, moles.value, agrees, detail))
    interval = _implied_molar_mass(mention)
    if interval is not None and found is not None:
        expected = molar_mass(found[0])
        low, nominal, high = interval
        agrees = _interval_agrees(expected, low, high, MOLAR_MASS_TOLERANCE)
        detail = f"the amounts imply {nominal:.1f} g/mol, {found[0]} has {expected:.1f} g/mol"
        checks.append(AmountCheck("molar_mass", mention.name, expected, nominal, agrees, detail))
    return checks


def _equivalents_check(mention: Mention, equivalents: Quantity, implied: float, rounding: float) -> AmountCheck:
    """``rounding``: the relative rounding of the two amounts whose ratio ``implied`` is."""
    agrees = _interval_agrees(implied, equivalents.low, equivalents.high, EQUIVALENTS_TOLERANCE + rounding)
    detail = f"the moles make {implied:.3g} equiv of the reference, stated {equivalents.text}"
    return AmountCheck("equivalents", mention.name, implied, equivalents.value, agrees, detail)


def _yield_check(mention: Mention, percent: Quantity, implied: float, rounding: float) -> AmountCheck:
    allowed = YIELD_TOLERANCE_POINTS + percent.rounding + (0.02 + rounding) * percent.value
    agrees = abs(implied - percent.value) <= allowed
    detail = f"the product's moles over the limiting reactant's make {implied:.1f}%, stated {percent.text}"
    return AmountCheck("yield", mention.name, implied, percent.value, agrees, detail)


def _implied_molar_mass(mention: Mention) -> tuple[float, float, float] | None:
    """(low, nominal, high) molar mass that the mention's mass (or volume x density) and moles allow."""
    moles = mention.first("moles")
    if moles is None or moles.value <= 0:
        return None
    mass = _mass(mention)
    if mass is None:
        return None
    low_mass, mass_value, high_mass = mass
    high = high_mass / moles.low if moles.low > 0 else math.inf
    return low_mass / moles.high, mass_value / moles.value, high


def _mass(mention: Mention) -> tuple[float, float, float] | None:
    """(low, nominal, high) grams of the compound itself: a stated mass (times its purity) or volume x density."""
    mass, purity = mention.first("mass"), mention.first("purity")
    if mass is not None:
        share = (purity.low, purity.value, purity.high) if purity is not None else (1.0, 1.0, 1.0)
        return mass.low * share[0], mass.value * share[1], mass.high * share[2]
    volume, density = mention.first("volume"), mention.first("density")
    if volume is None or density is None:
        return None
    # density is in g/mL and volume in L
    return 1e3 * volume.low * density.low, 1e3 * volume.value * density.value, 1e3 * volume.high * density.high


def _moles(mention: Mention, found: tuple[str, str] | None) -> tuple[float, float] | None:
    """The mention's moles and their relative rounding: stated, else volume x molarity, else mass over molar mass."""
    moles = mention.first("moles")
    if moles is not None:
        return (moles.value, moles.rounding / moles.value) if moles.value > 0 else None
    volume, molarity = mention.first("volume"), mention.first("molarity")
    if volume is not None and molarity is not None and volume.value > 0 and molarity.value > 0:
        return volume.value * molarity.value, volume.rounding / volume.value + molarity.rounding / molarity.value
    mass = _mass(mention)
    if mass is None or found is None or mass[1] <= 0:
        return None
    return mass[1] / molar_mass(found[0]), (mass[2] - mass[1]) / mass[1]


def _interval_agrees(expected: float, low: float, high: float, tolerance: float) -> bool:
    return low * (1 - tolerance) <= expected <= high * (1 + tolerance)


def _within(expected: float, interval: tuple[float, float, float], tolerance: float) -> bool:
    return _interval_agrees(expected, interval[0], interval[2], tolerance)


def _normalize(name: str) -> str:
    return " ".join(name.replace("\u200c", "").lower().split())


def _names_match(known: str, mention: str) -> bool:
    """Whether a mention (``"To a solution of 4-bromophenol"``, ``"dry DMF"``) names the known compound.

    The known name must end the mention at a word boundary, or the two must be spelled nearly alike.
    """
    if mention == known or fuzz.ratio(known, mention) >= NAME_SIMILARITY:
        return True
    if mention.endswith(known):
        before = mention[: -len(known)]
        # "a solution of ether" names ether, "4-nitrophenyl ether" does not: the word before must not be
        # part of a longer name (end in a letter or digit glued on, a hyphen, a bracket)
        return not before or (
            before.endswith(" ") and not _NAME_PART.search(before.split()[-1] if before.split() else "")
        )
    tail = mention[-len(known) - 2 :]
    return len(known) >= 8 and fuzz.ratio(known, tail[-len(known) :]) >= NAME_SIMILARITY


_NAME_PART = re.compile(r"[-\d\[\](),']|yl$|ic$")


def _smiles_in(name: str) -> str | None:
    """The canonical SMILES when the mention's last word is a SMILES (``"4-bromophenol [Oc1ccc(Br)cc1]"``).

    Only words written as SMILES (:func:`chemactor.chem.looks_like_smiles`) count, so ordinary words that
    RDKit happens to read (``CO``, ``NO``) are not taken for molecules.
    """
    words = name.split()
    found = [canonical for _, canonical in smiles_in_text(words[-1])] if words else []
    return found[-1] if found else None


def _canonical_or_none(smiles: str) -> str | None:
    try:
        return canonicalize_smiles(smiles) if smiles.strip() else None
    except InvalidSmilesError:
        return None


def amount_problems(
    actions: Sequence[Action],
    reaction: str | None = None,
    components: Mapping[str, Sequence[Mapping[str, str]]] | None = None,
    targets: Sequence[str] = (),
) -> list[str]:
    """The disagreeing amount checks of an action sequence, as readable problems (``[]`` when all agree)."""
    structures = Structures.build(reaction, components, targets)
    return [
        f"amounts: {check}" for check in check_amounts(mentions_from_actions(actions), structures) if not check.agrees
    ]
