"""Molecules and reactions with RDKit: canonical SMILES, reaction sides and roles, precursor order.

A reaction is written ``reactants>agents>products``; compounds on a side are separated by ``.``.
A compound made of several fragments (a salt, a complex) is written with ``~`` between its fragments
(``O=C([O-])[O-]~[Na+]~[Na+]``), the convention of the IBM Smiles2Actions data; without ``~`` every
``.``-separated fragment counts as its own compound, as plain reaction SMILES cannot say otherwise.

Compounds keep their order everywhere in this module: the placeholder ``$n$`` of a Smiles2Actions
action sequence names the n-th precursor (reactants, then agents) of the reaction as written, so a
canonicalization that sorted compounds would silently re-point every placeholder.

Importing this module silences RDKit's C++ log (``rdApp.*``), so bad SMILES in a 14k-row build do not
flood stderr; the reason for a failure travels in :class:`InvalidSmilesError` instead.
"""

from __future__ import annotations

import re
from functools import lru_cache

from rdkit import Chem, rdBase

from chemactor.errors import InputError

__all__ = [
    "AGENT_ROLES",
    "COMPONENT_ROLES",
    "FRAGMENT_BOND",
    "InvalidSmilesError",
    "canonicalize_reaction",
    "canonicalize_smiles",
    "detokenize_reaction",
    "reaction_precursors",
    "reaction_products",
    "reaction_roles",
    "reaction_target",
    "smiles_in_text",
]

FRAGMENT_BOND = "~"
ROLES: tuple[str, ...] = ("reactants", "agents", "products")
# The roles that sources give a reaction's components (``meta["components"]``, ORD's vocabulary);
# all but reactants and products are written on the agents side.
COMPONENT_ROLES: tuple[str, ...] = ("reactants", "reagents", "solvents", "catalysts", "products")
AGENT_ROLES: tuple[str, ...] = COMPONENT_ROLES[1:-1]

rdBase.DisableLog("rdApp.*")


class InvalidSmilesError(InputError):
    """RDKit cannot read a molecule or a reaction; ``.smiles`` is the offending text."""

    def __init__(self, smiles: str, reason: str, reaction: str | None = None) -> None:
        self.smiles = smiles
        self.reason = reason
        self.reaction = reaction
        where = f" in reaction {reaction!r}" if reaction is not None and reaction != smiles else ""
        super().__init__(f"invalid SMILES {smiles!r}{where}: {reason}")


@lru_cache(maxsize=65536)
def _canonical(smiles: str) -> str:
    # Parse without sanitizing first: a syntax error and a chemistry error (valence, aromaticity)
    # then give different, readable reasons instead of RDKit's bare ``None``.
    mol = Chem.MolFromSmiles(smiles, sanitize=False)
    if mol is None:
        raise InvalidSmilesError(smiles, "not parsable as SMILES")
    try:
        Chem.SanitizeMol(mol)
    except Exception as exc:  # RDKit raises several unrelated exception types here
        raise InvalidSmilesError(smiles, str(exc) or type(exc).__name__) from None
    return Chem.MolToSmiles(mol)


def canonicalize_smiles(smiles: str) -> str:
    """The RDKit canonical SMILES of a molecule (fragments joined by ``.`` or ``~`` make one compound).

    Raises :class:`InvalidSmilesError` for empty or unreadable input. Results are cached: real reaction
    sets repeat the same solvents and reagents thousands of times.
    """
    text = smiles.strip().replace(FRAGMENT_BOND, ".")
    if not text:
        raise InvalidSmilesError(smiles, "empty SMILES")
    try:
        return _canonical(text)
    except InvalidSmilesError as exc:  # name the text as the caller wrote it, '~' and spaces included
        raise InvalidSmilesError(smiles, exc.reason) from None


def detokenize_reaction(tokenized: str) -> str:
    """Join a space-tokenized reaction SMILES (``C C O . [Na+] >> C C``) back into one string.

    The ``~`` fragment bonds are kept, so :func:`reaction_precursors` still sees which fragments form
    one compound; :func:`canonicalize_reaction` turns them into plain ``.``.
    """
    reaction = "".join(tokenized.split())
    _split_sides(reaction)
    return reaction


def canonicalize_reaction(reaction: str) -> str:
    """``reactants>agents>products`` with every compound canonical, in the given order.

    Accepts ``~`` fragment bonds (and writes them as ``.``, the only form other tools read). An empty
    side stays empty (``A.B>>C``). Raises :class:`InvalidSmilesError` naming the bad compound.
    """
    return ">".join(".".join(side) for side in _canonical_sides(reaction))


def reaction_roles(reaction: str) -> dict[str, list[str]]:
    """The canonical compounds of each side: ``{"reactants": [...], "agents": [...], "products": [...]}``."""
    return dict(zip(ROLES, _canonical_sides(reaction), strict=True))


def reaction_precursors(reaction: str) -> list[str]:
    """The precursors (reactants, then agents) in order: ``$n$`` is item ``n - 1`` of this list.

    A compound written with ``~`` fragment bonds is one precursor (its canonical SMILES joins the
    fragments with ``.``).
    """
    reactants, agents, _ = _canonical_sides(reaction)
    return reactants + agents


def reaction_products(reaction: str) -> list[str]:
    """The canonical products of ``reaction`` (``$-1$`` in a Smiles2Actions sequence), in order."""
    return _canonical_sides(reaction)[2]


def reaction_target(text: str) -> str | None:
    """The canonical molecule when ``text`` is a target (one molecule, or ``>>molecule``); ``None`` for a reaction.

    A target asks for a procedure that makes the molecule, leaving the choice of starting materials open.
    An unreadable target raises :class:`InvalidSmilesError`.
    """
    text = text.strip()
    if ">" not in text or (text.startswith(">>") and ">" not in text[2:]):
        return canonicalize_smiles(text.removeprefix(">>"))
    return None


# What SMILES written in prose look like: only SMILES characters outside bracket atoms, at least one atom,
# balanced brackets, and something prose words lack: a bond, branch, bracket or stereo mark, or ring digits
# that come in pairs (a lone digit, as in "1N" or "C-6", is a label). Chemical formulas (SOCl2, K2CO3) share
# the alphabet but not the grammar, so a formula that fails to parse is not reported.
_SMILES_CHARS = re.compile(r"[BCNOPSFIcnops0-9()=#$@+\-/\\%.*:~]+")
_BRACKET_ATOM = re.compile(r"\[[^\[\]\s]*\]")
_ATOM = re.compile(r"[BCNOPSFIcnops]")
_SMILES_MARK = re.compile(r"[=#()\[\]@]")
_FORMULA = re.compile(r"(?:[A-Z][a-z]?\d*)+")
# "4-bromophenol [Oc1ccc(Br)cc1]": a SMILES in square brackets after a name, as the target prompt asks
_BRACKETED = re.compile(r"(?<![^\s(])\[((?:[^\[\]\s]|\[[^\[\]\s]*\])+)\](?=[\s,;.:)]|$)")


def looks_like_smiles(word: str, *, bracketed: bool = False) -> bool:
    """Whether ``word`` is written as SMILES rather than as a name, a label or a formula (``bracketed``: the
    text put it in square brackets after a name, which is already a sign, so no bond or ring is needed)."""
    bare = _BRACKET_ATOM.sub("", word).replace("Cl", "C").replace("Br", "B")
    if len(word) < 2 or (bare and not _SMILES_CHARS.fullmatch(bare)):
        return False
    has_atom = bool(_ATOM.search(bare) or _BRACKET_ATOM.search(word))
    if bracketed or not has_atom:
        return has_atom
    if len(word) < 3 or word.count("(") != word.count(")") or word.count("[") != word.count("]"):
        return False
    digits = [char for char in bare if char.isdigit()]
    paired = bool(digits) and all(digits.count(digit) % 2 == 0 for digit in set(digits))
    return paired or (not digits and bool(_SMILES_MARK.search(word)))


def smiles_in_text(text: str) -> list[tuple[str, str | None]]:
    """``(as written, canonical SMILES or None)`` for each SMILES the text writes, in order, repeats dropped.

    ``None`` marks a SMILES that RDKit cannot read; a word that merely looks like one but is a chemical
    formula (``SOCl2``) is left out.
    """
    found: dict[str, str | None] = {}
    for match in _BRACKETED.finditer(text):
        if looks_like_smiles(match[1], bracketed=True):
            found.setdefault(match[1], _canonical_or_none(match[1]))
    for word in _BRACKETED.sub(" ", text).split():
        word = word.rstrip(".,;:")
        while word.startswith("(") and word.endswith(")"):
            word = word[1:-1]
        if word not in found and looks_like_smiles(word):
            canonical = _canonical_or_none(word)
            if canonical is not None or not _FORMULA.fullmatch(word):
                found[word] = canonical
    return list(found.items())


def _canonical_or_none(smiles: str) -> str | None:
    try:
        return canonicalize_smiles(smiles)
    except InvalidSmilesError:
        return None


def _split_sides(reaction: str) -> list[str]:
    sides = reaction.strip().split(">")
    if len(sides) != 3:
        raise InvalidSmilesError(reaction, f"expected reactants>agents>products, found {len(sides)} part(s)")
    if (not sides[0] and not sides[1]) or not sides[2]:
        raise InvalidSmilesError(reaction, "a reaction needs at least one precursor and one product")
    return sides


def _canonical_sides(reaction: str) -> list[list[str]]:
    sides = []
    for side in _split_sides(reaction):
        compounds = []
        for compound in side.split(".") if side else []:
            if not compound:
                raise InvalidSmilesError(reaction, f"empty compound in {side!r}")
            try:
                compounds.append(canonicalize_smiles(compound))
            except InvalidSmilesError as exc:
                raise InvalidSmilesError(exc.smiles, exc.reason, reaction=reaction) from None
        sides.append(compounds)
    return sides
