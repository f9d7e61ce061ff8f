"""Target molecules as input: a ``.smi`` file (as RDKit reads it) or a list in Python, as records.

Generation can start from the molecule a chemist wants made: the LLM then writes a complete procedure
(choosing reactants, reagents, conditions and work-up) for it. A target is a record whose
``reaction_smiles`` is ``>>target`` (the product-only reaction), with ``meta["target"]`` holding the
SMILES as written, its name when given, and where it came from.

A ``.smi`` file has one molecule per line: the SMILES, then optionally whitespace and a name (the rest of
the line). Blank lines and ``#`` comments are skipped, and so is a first line whose first word is
``SMILES`` (a title line). A line whose SMILES RDKit cannot read does not stop the file: it is reported
with its line number when the file is read (before any request) and still becomes a record, marked with
the reason in ``meta["target"]["error"]``, so the runner records it as a failed item while the rest run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

from chemactor.chem import InvalidSmilesError, canonicalize_smiles
from chemactor.data import RecordError, get_meta, make_record

logger = logging.getLogger(__name__)

SMI_SUFFIXES: tuple[str, ...] = (".smi",)
SMI_PATTERNS: tuple[str, ...] = ("*.smi",)
TARGET_SOURCE = "target"


def is_smi_file(path: str | Path) -> bool:
    """Whether ``path`` names a ``.smi`` file of target molecules."""
    return str(path).endswith(SMI_SUFFIXES)


def target_record(record_id: str, smiles: str, name: str = "", where: str = "") -> dict[str, str]:
    """One target as a record; an unreadable SMILES is kept, with the reason in ``meta["target"]["error"]``."""
    target: dict[str, str] = {"smiles": smiles, "name": name}
    if where:
        target["where"] = where
    try:
        canonical = canonicalize_smiles(smiles)
    except InvalidSmilesError as exc:
        target["error"] = exc.reason
        canonical = smiles
    return make_record(id=record_id, source=TARGET_SOURCE, reaction_smiles=f">>{canonical}", meta={"target": target})


def target_records(targets: Iterable[str | tuple[str, str]]) -> list[dict[str, str]]:
    """Records for targets given in Python: SMILES strings or ``(smiles, name)`` pairs, ids ``target-N``."""
    records = []
    for number, target in enumerate(targets, start=1):
        smiles, name = (target, "") if isinstance(target, str) else target
        records.append(target_record(f"target-{number:06d}", smiles, name))
    _report_invalid(records)
    return records


def target_rows(path: str | Path) -> Iterator[tuple[str, dict[str, str]]]:
    """``(file:line, record)`` for each molecule of a ``.smi`` file; ids are ``<file stem>-<line>``."""
    path = Path(path)
    records = []
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordError(f"{path}: unreadable SMILES file: {exc}") from exc
    for line_no, line in enumerate(lines, start=1):
        words = line.split(maxsplit=1)
        if not words or words[0].startswith("#") or (line_no == 1 and words[0].lower() == "smiles"):
            continue
        where = f"{path}:{line_no}"
        name = words[1].strip() if len(words) > 1 else ""
        records.append((where, target_record(f"{path.stem}-{line_no}", words[0], name, where)))
    _report_invalid([record for _, record in records])
    yield from records


def _report_invalid(records: list[dict[str, str]]) -> None:
    for record in records:
        target = get_meta(record)["target"]
        if "error" in target:
            where = target.get("where") or record["id"]
            logger.warning("%s: invalid target SMILES %r: %s", where, target["smiles"], target["error"])
