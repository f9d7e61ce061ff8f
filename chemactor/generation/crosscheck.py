"""Cross-check a generated (reaction, description, actions) triple: does it hang together?

An LLM writes the description and then the actions, and either step can drift: an action sequence that
does not parse, a compound the text never mentions, a quantity that changed on the way, a product that is
never isolated, amounts that do not add up (a mass and moles that imply the wrong molar mass, a yield
the product's mass cannot give). Each check gives a verdict and a reason, all of which go into the row's ``meta``; rows
that fail are kept, because deciding what to keep is the selection stage's job, and a reason is data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from rapidfuzz import fuzz

from chemactor.actions import (
    SOLUTION,
    Action,
    ActionParseError,
    Yield,
    iter_chemicals,
    parse_actions,
    validate_actions,
)
from chemactor.chem import InvalidSmilesError, reaction_products, smiles_in_text
from chemactor.generation.augment import numeric_values
from chemactor.stoichiometry import Structures, check_amounts, mentions_from_actions, mentions_from_text

PLACEHOLDER = re.compile(r"^\$-?\d+\$$")
NOT_COMPOUNDS = frozenset({SOLUTION})  # the solution made by the last MAKESOLUTION, not a compound name
FUZZY_THRESHOLD = 90.0  # partial-ratio similarity that counts a compound name as mentioned


def _normalize(text: str) -> str:
    return " ".join(text.replace("\u200c", "").lower().split())


def mentioned(name: str, text: str, threshold: float = FUZZY_THRESHOLD) -> bool:
    """Whether ``text`` mentions ``name``: verbatim (case- and spacing-insensitive) or nearly so.

    "Nearly" forgives what paraphrase does to long IUPAC names (a dropped hyphen or bracket) without
    letting a short name match inside an unrelated word.
    """
    name, text = _normalize(name), _normalize(text)
    if name in text:
        return True
    return len(name) >= 8 and fuzz.partial_ratio(name, text) >= threshold


def back_translation_similarity(description: str, back_translation: str) -> float:
    """How much of the description a text written back from the actions recovers (0 to 1, word sets).

    Word-set similarity ignores order and repeated words, which differ freely between two phrasings of
    the same procedure, and stays sensitive to compounds and numbers that went missing.
    """
    return round(fuzz.token_set_ratio(_normalize(description), _normalize(back_translation)) / 100, 3)


def crosscheck(
    actions: str,
    description: str,
    reaction_smiles: str = "",
    roles: Mapping[str, Sequence[Mapping[str, str]]] | None = None,
    target: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Check ``actions`` (readable grammar) against ``description`` and the reaction, when known.

    Returns ``{"passed": bool, "checks": {name: bool}, "reasons": [str, ...]}``; a check that does not
    apply (no reaction given, say) is absent from ``checks``. With a ``target`` (``{"smiles": canonical,
    "name": ...}``: the procedure was written for a molecule, not a reaction) the checks that only a
    target run has are added (see :func:`target_checks`) and ``reaction_smiles`` is ignored.
    """
    checks: dict[str, bool] = {}
    reasons: list[str] = []
    try:
        parsed = parse_actions(actions)
    except ActionParseError as exc:
        return {"passed": False, "checks": {"parse": False}, "reasons": [f"parse: {exc}"]}
    checks["parse"] = True

    if target is not None:
        reaction_smiles = ""
    problems = validate_actions(parsed, reaction_smiles or None)
    checks["valid"] = not problems
    reasons += [f"validate: {problem}" for problem in problems]

    chemicals = [c for c in iter_chemicals(parsed) if c.name not in NOT_COMPOUNDS and not PLACEHOLDER.match(c.name)]
    missing = sorted({c.name for c in chemicals if not mentioned(c.name, description)})
    checks["compounds_in_description"] = not missing
    reasons += [f"compound not in description: {name}" for name in missing]

    described_values = numeric_values(description)
    changed = sorted(
        {
            f"{c.name} ({quantity})"
            for c in chemicals
            for quantity in c.quantity
            if not numeric_values(quantity) <= described_values
        }
    )
    checks["quantities_agree"] = not changed
    reasons += [f"quantity not in description: {item}" for item in changed]

    if reaction_smiles:
        try:
            has_product = bool(reaction_products(reaction_smiles))
        except InvalidSmilesError as exc:
            has_product = False
            reasons.append(f"reaction: {exc}")
        if has_product:
            checks["product_yielded"] = any(action.name == "YIELD" for action in parsed)
            if not checks["product_yielded"]:
                reasons.append("product: no YIELD action")

    resolved: dict[str, Any] = {}
    if target is not None:
        resolved = target_checks(parsed, description, target, checks, reasons)
        roles = resolved["components"]
    try:
        structures = Structures.build(reaction_smiles or None, roles)
    except InvalidSmilesError:  # already reported above, with the product check
        structures = Structures.build(None, roles)
    # a target procedure names its compounds by SMILES in the text, so the text's amounts are the ones that
    # can be tied to structures (the actions' amounts are tied to the text by quantities_agree)
    mentions = mentions_from_text(description) if target is not None else mentions_from_actions(parsed)
    amounts = check_amounts(mentions, structures)
    if amounts:
        checks["amounts_agree"] = all(check.agrees for check in amounts)
        reasons += [f"amounts: {check}" for check in amounts if not check.agrees]

    reactant_names = [c.get("name") for c in (roles or {}).get("reactants", []) if c.get("name")]
    if reactant_names:
        absent = [name for name in reactant_names if not mentioned(name, description)]
        checks["reactants_in_description"] = not absent
        reasons += [f"reactant not in description: {name}" for name in absent]

    verdict = {"passed": not reasons, "checks": checks, "reasons": reasons}
    if resolved:
        verdict["reaction_smiles"] = resolved["reaction_smiles"]
    return verdict


def target_reaction(description: str, target: str, actions: Sequence[Action] = ()) -> tuple[str, list[str]]:
    """The reaction SMILES a target procedure states, and the SMILES it writes that RDKit cannot read.

    The precursors are the SMILES the text and the actions name (in that order, the target itself left
    out), so the row carries what could be resolved: ``A.B>>target``, or ``>>target`` at least.
    """
    written = smiles_in_text(description)
    for chemical in iter_chemicals(actions):
        written += smiles_in_text(chemical.name)
    precursors = list(dict.fromkeys(c for _, c in written if c is not None and c != target))
    unreadable = list(dict.fromkeys(word for word, canonical in written if canonical is None))
    return f"{'.'.join(precursors)}>>{target}", unreadable


def target_checks(
    actions: Sequence[Action], description: str, target: Mapping[str, str], checks: dict[str, bool], reasons: list[str]
) -> dict[str, Any]:
    """What only a target run can check: the procedure yields the target, and the SMILES it names parse.

    The target counts as yielded when a YIELD action or the text names it (by name, or by a SMILES that
    is the same molecule). Adds to ``checks`` and ``reasons``; returns the reaction SMILES built from what
    resolved and the components (named precursors, the target as product) for the amount checks.
    """
    smiles, name = target["smiles"], target.get("name") or ""
    reaction, unreadable = target_reaction(description, smiles, actions)
    checks["named_smiles_parse"] = not unreadable
    reasons += [f"target: SMILES does not parse: {word}" for word in unreadable]
    yields = [action.material.name for action in actions if isinstance(action, Yield)]

    def names_target(text: str) -> bool:
        return (bool(name) and mentioned(name, text)) or any(c == smiles for _, c in smiles_in_text(text))

    checks["target_yielded"] = any(names_target(text) for text in yields) or names_target(description)
    if not checks["target_yielded"]:
        reasons.append(f"target: neither a YIELD action nor the text names the target {name or smiles}")
    precursors = reaction.split(">>")[0]
    components = {
        "reagents": [{"name": "", "smiles": precursor} for precursor in precursors.split(".") if precursor],
        "products": [{"name": name, "smiles": smiles}],
    }
    return {"reaction_smiles": reaction, "components": components}
