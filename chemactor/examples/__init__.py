"""A small annotated example set that ships with the project, so the whole pipeline runs offline anywhere.

``procedures.jsonl`` holds single procedure sentences with their action sequences (readable
Paragraph2Actions grammar); ``reactions.jsonl`` holds a few reactions with their component roles, a
procedure paragraph and its action sequence. The text was written for this project (it is not taken from
the reference data or any paper), so it can be redistributed and used for smoke tests without leaking
evaluation data. Both files carry their own train/validation/test split; the same chemistry never
straddles two splits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets

from chemactor.chem import AGENT_ROLES, FRAGMENT_BOND, canonicalize_reaction
from chemactor.data import SPLITS, RecordError, iter_jsonl, make_record, to_dataset

EXAMPLES_DIR = Path(__file__).resolve().parent
SOURCE = "examples"


def example_records(directory: str | Path = EXAMPLES_DIR) -> list[dict[str, str]]:
    """All example rows in the record schema: the procedure sentences first, then the reactions."""
    procedures, reactions = Path(directory) / "procedures.jsonl", Path(directory) / "reactions.jsonl"
    records = []
    for line_no, row in iter_jsonl(procedures):
        records.append(_record(row, procedures, line_no, f"{SOURCE}-procedure-{line_no:03d}", reaction=""))
    for line_no, row in iter_jsonl(reactions):
        roles = row.get("components")
        if not isinstance(roles, dict):
            raise RecordError(f"{reactions}:{line_no}: field 'components' must be an object of component lists")
        reaction = reaction_from_roles(roles)
        records.append(_record(row, reactions, line_no, f"{SOURCE}-reaction-{line_no:02d}", reaction=reaction))
    return records


def load_examples(directory: str | Path = EXAMPLES_DIR) -> datasets.DatasetDict:
    """The example set as a ``DatasetDict`` with ``train``, ``validation`` and ``test`` splits."""
    records = example_records(directory)
    return datasets.DatasetDict(
        {split: to_dataset(record for record in records if record["split"] == split) for split in SPLITS}
    )


def reaction_from_roles(roles: dict[str, list[dict[str, str]]]) -> str:
    """Canonical ``reactants>agents>products`` from component lists (agents: reagents, solvents, catalysts).

    A salt or complex stays one compound (its fragments joined by ``~`` before canonicalization), so the
    precursor order that ``$n$`` placeholders rely on counts compounds, not fragments.
    """

    def side(names: tuple[str, ...]) -> str:
        return ".".join(component["smiles"].replace(".", FRAGMENT_BOND) for name in names for component in roles[name])

    return canonicalize_reaction(f"{side(('reactants',))}>{side(AGENT_ROLES)}>{side(('products',))}")


def _record(row: dict[str, Any], where: Path, line_no: int, record_id: str, reaction: str) -> dict[str, str]:
    meta = {"components": row["components"]} if reaction else {}
    try:
        return make_record(
            id=record_id,
            source=SOURCE,
            reaction_smiles=reaction,
            description=row["description"],
            actions=row["actions"],
            split=row["split"],
            meta=meta,
        )
    except KeyError as exc:
        raise RecordError(f"{where}:{line_no}: missing field {exc.args[0]!r}") from None
    except RecordError as exc:
        raise RecordError(f"{where}:{line_no}: {exc}") from None
