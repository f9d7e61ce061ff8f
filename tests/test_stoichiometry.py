"""Amount checks: masses, moles, equivalents and yields against RDKit's molar masses."""

from __future__ import annotations

import gzip
import itertools
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chemactor.actions import parse_actions, validate_actions
from chemactor.chem import COMPONENT_ROLES
from chemactor.data import get_meta
from chemactor.examples import load_examples
from chemactor.generation.crosscheck import crosscheck
from chemactor.stoichiometry import (
    Mention,
    Structures,
    check_amounts,
    mentions_from_actions,
    mentions_from_text,
    molar_mass,
    parse_quantity,
)

# 4-bromophenol + benzyl bromide -> 1-(benzyloxy)-4-bromobenzene (MW 173.01, 171.04, 263.13)
REACTION = "Oc1ccc(Br)cc1.BrCc1ccccc1>>Brc1ccc(OCc2ccccc2)cc1"
COMPONENTS = {
    "reactants": [
        {"name": "4-bromophenol", "smiles": "Oc1ccc(Br)cc1"},
        {"name": "benzyl bromide", "smiles": "BrCc1ccccc1"},
    ],
    "products": [{"name": "1-(benzyloxy)-4-bromobenzene", "smiles": "Brc1ccc(OCc2ccccc2)cc1"}],
}
SOUND = (
    "ADD 4-bromophenol (1.73 g, 10.0 mmol); ADD benzyl bromide (1.88 g, 11.0 mmol, 1.1 equiv); STIR for 4 h; "
    "YIELD 1-(benzyloxy)-4-bromobenzene (2.42 g, 92%)."
)


def _checks(actions: str, reaction: str | None = REACTION, components: dict | None = None) -> list[tuple[str, bool]]:
    structures = Structures.build(reaction, components)
    return [
        (check.check, check.agrees)
        for check in check_amounts(mentions_from_actions(parse_actions(actions)), structures)
    ]


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("400 mg", "mass", 0.4),
        ("1.85 g.", "mass", 1.85),
        ("254 µl", "volume", 254e-6),
        ("254 μL", "volume", 254e-6),
        ("16.600 ml", "volume", 0.0166),
        ("0.89 mmol", "moles", 0.89e-3),
        ("0.5 moles", "moles", 0.5),
        ("2 M", "molarity", 2.0),
        ("1.2 equiv.", "equivalents", 1.2),
        ("57.5 %", "percent", 57.5),
        ("60% in mineral oil", "purity", 0.6),
        ("d = 1.05 g/mL", "density", 1.05),
    ],
)
def test_quantities_are_read_in_base_units(text: str, kind: str, value: float) -> None:
    quantity = parse_quantity(text)
    assert quantity is not None and quantity.kind == kind
    assert quantity.value == pytest.approx(value)


@pytest.mark.parametrize("text", ["3 x 25 mL", "10 m", "2 N", "room temperature", "", "mg", "1.5"])
def test_what_is_not_one_amount_is_none(text: str) -> None:
    assert parse_quantity(text) is None


FACTORS = {"g": 1, "mg": 1e-3, "kg": 1e3, "mmol": 1e-3, "mol": 1, "mL": 1e-3, "ml": 1e-3, "L": 1, "µL": 1e-6}
FACTORS |= {"M": 1, "eq": 1, "equiv": 1, "%": 1}


@settings(deadline=None, max_examples=300)
@given(
    number=st.decimals(min_value="0.001", max_value="99999", places=3).map(str),
    unit=st.sampled_from(sorted(FACTORS)),
    space=st.sampled_from(["", " "]),
)
def test_any_number_with_a_unit_reads_back(number: str, unit: str, space: str) -> None:
    quantity = parse_quantity(f"{number}{space}{unit}")
    assert quantity is not None
    assert quantity.value == pytest.approx(float(number) * FACTORS[unit])
    # the rounding the digits allow is half a unit of their last place
    assert quantity.rounding == pytest.approx(0.5 * 10 ** -len(number.partition(".")[2]) * FACTORS[unit])


@settings(deadline=None, max_examples=300)
@given(st.text(max_size=40))
def test_arbitrary_text_never_raises(text: str) -> None:
    parse_quantity(text)
    mentions_from_text(text)


def test_sound_amounts_agree_and_each_changed_number_is_caught() -> None:
    assert _checks(SOUND, components=COMPONENTS) == [
        ("molar_mass", True),
        ("molar_mass", True),
        ("equivalents", True),
        ("yield", True),
    ]
    # the same without names: placeholders need the reaction, names the components
    assert _checks(SOUND.replace("4-bromophenol", "$1$").replace("benzyl bromide", "$2$")) == [
        ("molar_mass", True),
        ("molar_mass", True),
        ("equivalents", True),
        ("yield", True),
    ]
    wrong_mass = SOUND.replace("1.73 g", "2.73 g")
    assert ("molar_mass", False) in _checks(wrong_mass, components=COMPONENTS)
    wrong_equivalents = SOUND.replace("1.1 equiv", "2.0 equiv")
    assert ("equivalents", False) in _checks(wrong_equivalents, components=COMPONENTS)
    wrong_yield = SOUND.replace("92%", "62%")
    assert _checks(wrong_yield, components=COMPONENTS)[-1] == ("yield", False)


def test_solutions_purity_and_density_are_used_only_when_stated() -> None:
    structures = Structures.build(components={"reagents": [{"name": "n-butyllithium", "smiles": "[Li]CCCC"}]})
    good = mentions_from_actions(parse_actions("ADD n-butyllithium (4.0 mL, 2.5 M, 10.0 mmol)."))
    bad = mentions_from_actions(parse_actions("ADD n-butyllithium (4.0 mL, 2.5 M, 20.0 mmol)."))
    assert [(c.check, c.agrees) for c in check_amounts(good, structures)] == [("concentration", True)]
    assert [(c.check, c.agrees) for c in check_amounts(bad, structures)] == [("concentration", False)]
    sodium_hydride = Structures.build(components={"reagents": [{"name": "sodium hydride", "smiles": "[H-].[Na+]"}]})
    dispersion = Mention("sodium hydride", tuple(map(parse_quantity, ["60% in mineral oil", "0.48 g", "12.0 mmol"])))
    neat = Mention("sodium hydride", tuple(map(parse_quantity, ["0.48 g", "12.0 mmol"])))
    assert [c.agrees for c in check_amounts([dispersion], sodium_hydride)] == [True]
    assert [c.agrees for c in check_amounts([neat], sodium_hydride)] == [False]
    # a neat liquid by volume: no density is assumed, so nothing is checked; with one stated it is
    ethanol = Structures.build(components={"reactants": [{"name": "ethanol", "smiles": "CCO"}]})
    assert check_amounts([Mention("ethanol", tuple(map(parse_quantity, ["5.8 mL", "100 mmol"])))], ethanol) == []
    with_density = Mention("ethanol", tuple(map(parse_quantity, ["5.8 mL", "d = 0.789 g/mL", "100 mmol"])))
    assert [c.agrees for c in check_amounts([with_density], ethanol)] == [True]


def test_names_resolve_to_the_right_compound() -> None:
    structures = Structures.build(
        components={
            "reactants": [
                {"name": "ether", "smiles": "CCOCC"},
                {"name": "4-nitrophenol", "smiles": "Oc1ccc(cc1)[N+](=O)[O-]"},
            ],
            "solvents": [{"name": "DMF", "smiles": "CN(C)C=O"}],
        }
    )
    assert structures.resolve(Mention("To a solution of 4-nitrophenol", ())) == ("O=[N+]([O-])c1ccc(O)cc1", "reactants")
    assert structures.resolve(Mention("dry DMF", ())) == ("CN(C)C=O", "solvents")
    assert structures.resolve(Mention("4-nitrophenyl ether", ())) is None  # a longer name ending in a short one
    assert structures.resolve(Mention("O=C(O)c1ccccc1", ())) == ("O=C(O)c1ccccc1", "")  # a SMILES names itself


def test_the_shipped_examples_agree_except_the_dispersion_the_actions_drop() -> None:
    problems = {}
    for row in itertools.chain.from_iterable(load_examples().values()):
        if row["reaction_smiles"]:
            components = get_meta(row)["components"]
            actions = parse_actions(row["actions"])
            problems[row["id"]] = validate_actions(actions, row["reaction_smiles"], components=components)
            text_checks = check_amounts(mentions_from_text(row["description"]), Structures.build(None, components))
            assert text_checks and all(c.agrees for c in text_checks if c.compound != "Sodium hydride"), row["id"]
    assert len(problems) == 10
    # the description says "60% in mineral oil"; the action sequence keeps only the 0.48 g
    assert problems.pop("examples-reaction-01") == [
        "amounts: molar_mass of 'Sodium hydride' disagrees: the amounts imply 40.0 g/mol, [H-].[Na+] has 24.0 g/mol"
    ]
    assert all(value == [] for value in problems.values())
    # validate_actions checks amounts only when asked to
    assert validate_actions(parse_actions(SOUND.replace("1.73 g", "2.73 g")), REACTION) == []


def test_the_crosscheck_records_amount_disagreements() -> None:
    description = (
        "4-bromophenol (1.73 g, 10.0 mmol) and benzyl bromide (1.88 g, 11.0 mmol, 1.1 equiv) were stirred for 4 h "
        "to give 1-(benzyloxy)-4-bromobenzene (2.42 g, 92%)."
    )
    verdict = crosscheck(SOUND, description, REACTION, COMPONENTS)
    assert verdict["checks"]["amounts_agree"] is True and verdict["passed"], verdict
    wrong = SOUND.replace("92%", "62%")
    verdict = crosscheck(wrong, description.replace("92%", "62%"), REACTION, COMPONENTS)
    assert verdict["checks"]["amounts_agree"] is False
    assert [reason for reason in verdict["reasons"] if reason.startswith("amounts:")] == [
        "amounts: yield of '1-(benzyloxy)-4-bromobenzene' disagrees: the product's moles over the limiting "
        "reactant's make 92.0%, stated 62%"
    ]


def _ord_rows(shared_data: Path, count: int) -> list[dict]:
    with gzip.open(shared_data / "ord_r2d" / "reactions.jsonl.gz", "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in itertools.islice(handle, count)]


def _structures(row: dict) -> Structures:
    components = {
        role: [{"name": c.get("name") or "", "smiles": c.get("smiles") or ""} for c in row[role]]
        for role in COMPONENT_ROLES
    }
    return Structures.build(components=components)


def test_real_ord_procedures_mostly_agree_and_a_changed_mass_is_caught(shared_data: Path) -> None:
    agreeing, checked, caught, changed = 0, 0, 0, 0
    rows = _ord_rows(shared_data, 2500)  # the shipped sample has 390, the full extract 14k
    for row in rows:
        text, structures = row["procedure_details"], _structures(row)
        checks = check_amounts(mentions_from_text(text), structures)
        if not checks:
            continue
        checked += 1
        if not all(check.agrees for check in checks):
            continue
        agreeing += 1
        # change one number: the mass of the first compound whose name (not only its amounts) identified it
        mention = next(
            (
                m
                for m in mentions_from_text(text)
                if m.first("mass") and m.first("moles") and structures.resolve(Mention(m.name, ())) is not None
            ),
            None,
        )
        if mention is None:
            continue
        mass = mention.first("mass").text
        number = re.search(r"\d*\.?\d+", mass)[0]
        decimals = len(number.split(".")[1]) if "." in number else 0
        position = text.index(mass, text.index(mention.name))
        tripled = text[:position] + f"{float(number) * 3:.{decimals}f}" + text[position + len(number) :]
        changed += 1
        caught += any(not check.agrees for check in check_amounts(mentions_from_text(tripled), structures))
    assert checked > len(rows) / 5, (checked, len(rows))
    assert agreeing / checked > 0.8, (agreeing, checked)
    assert changed >= 10 and caught == changed, (caught, changed)


def test_molar_mass_counts_every_fragment() -> None:
    assert molar_mass("O=C([O-])[O-].[Cs+].[Cs+]") == pytest.approx(325.82, abs=0.01)
    assert molar_mass("CCO") == pytest.approx(46.07, abs=0.01)
