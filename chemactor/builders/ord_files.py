"""The Open Reaction Database's own files: ``Dataset`` messages (``*.pb``, ``*.pb.gz``) as records.

The ord-data repository publishes each dataset as one serialized ``ord.Dataset`` protocol buffer. Parsing
it whole would hold the file's bytes and a full message tree (several times larger) at once, so this
reader walks the top-level fields of the wire format itself and parses one ``Reaction`` at a time with
``ord-schema``'s generated class: memory stays at one reaction, whatever the number of reactions, and a
``.pb.gz`` file is decompressed as it is read. (The dataset's id and name follow the reactions on the
wire, so a first pass skips over the reactions to read them.)

Each reaction becomes one record: ``reaction_smiles`` from its inputs (reactants, then reagents, solvents
and catalysts, by the role each compound is given) and its outcomes' products, ``description`` from
``notes.procedure_details``, and ``meta`` with the ORD ids, the provenance (DOI, patent, URL) and
``components`` by role (name, SMILES, and the amount as written when the reaction gives one), the form
every seed source uses. A reaction without text keeps an empty description; one without products or
without inputs keeps an empty reaction SMILES; one with neither is dropped and counted. A SMILES that
RDKit cannot read is a bad row: it raises naming the file, the reaction's position and id (or, when
skipping bad rows, is counted as ``invalid SMILES``).

``ord-schema`` is an optional dependency (``pip install 'chemactor[ord]'``), imported only here and only
when an ORD file is read.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from chemactor.builders.drops import RowDrops
from chemactor.builders.seeds import ord_split
from chemactor.chem import COMPONENT_ROLES, InvalidSmilesError, canonicalize_smiles
from chemactor.data import RecordError, make_record
from chemactor.errors import require_extra

ORD_SUFFIXES: tuple[str, ...] = (".pb", ".pb.gz")
ORD_PATTERNS: tuple[str, ...] = ("*.pb", "*.pb.gz")
NO_CONTENT = "no reaction SMILES and no procedure text"

# ord.Dataset's field numbers (ord-schema's dataset.proto)
_NAME, _DESCRIPTION, _REACTIONS, _DATASET_ID = 1, 2, 3, 5
_LENGTH_DELIMITED = 2
# ord.ReactionRole names -> the component roles of the record schema; workup compounds, standards and
# by-products are not part of the reaction as written
_INPUT_ROLES = {"REACTANT": "reactants", "REAGENT": "reagents", "SOLVENT": "solvents", "CATALYST": "catalysts"}
_INPUT_ROLES["UNSPECIFIED"] = "reagents"
_PRODUCT_ROLES = ("PRODUCT", "UNSPECIFIED")
_UNIT_SYMBOLS = {
    "KILOGRAM": "kg",
    "GRAM": "g",
    "MILLIGRAM": "mg",
    "MICROGRAM": "µg",
    "MOLE": "mol",
    "MILLIMOLE": "mmol",
    "MICROMOLE": "µmol",
    "NANOMOLE": "nmol",
    "LITER": "L",
    "MILLILITER": "mL",
    "MICROLITER": "µL",
    "NANOLITER": "nL",
}


def is_ord_file(path: str | Path) -> bool:
    """Whether ``path`` names an ORD ``Dataset`` file by its suffix."""
    return str(path).endswith(ORD_SUFFIXES)


def ord_rows(path: str | Path, drops: RowDrops) -> Iterator[tuple[str, dict[str, str]]]:
    """``(where, record)`` for each usable reaction of the ORD dataset file ``path``, streamed.

    ``where`` is ``file:reaction N (id)``; bad reactions go to ``drops`` (raised or counted, as it says).
    """
    require_extra("ord_schema", "ord", "reading Open Reaction Database files")
    from ord_schema.proto import reaction_pb2

    path = Path(path)
    header = _dataset_header(path)
    dataset_id = header.get(_DATASET_ID, "")
    with _open(path) as handle:
        for index, payload in enumerate(_fields(handle, path, want=_REACTIONS), start=1):
            try:
                reaction = reaction_pb2.Reaction.FromString(payload)
            except Exception as exc:  # protobuf's DecodeError is not exported under one stable name
                drops.reject(f"{path}:reaction {index}", f"not an ORD Reaction message ({exc})", "unreadable reaction")
                continue
            record_id = reaction.reaction_id or f"{dataset_id or path.name.split('.')[0]}-{index:06d}"
            where = f"{path}:reaction {index} ({record_id})"
            try:
                record = _record(reaction, record_id, dataset_id, header.get(_NAME, ""))
            except InvalidSmilesError as exc:
                drops.reject(where, exc)
                continue
            if record is None:
                drops[NO_CONTENT] += 1
                continue
            yield where, record


def _record(reaction: Any, record_id: str, dataset_id: str, dataset_name: str) -> dict[str, str] | None:
    from ord_schema.proto import reaction_pb2

    role_names = reaction_pb2.ReactionRole.ReactionRoleType.Name
    components: dict[str, list[dict[str, str]]] = {role: [] for role in COMPONENT_ROLES}
    for _, reaction_input in sorted(reaction.inputs.items()):
        for compound in reaction_input.components:
            role = _INPUT_ROLES.get(role_names(compound.reaction_role))
            if role is not None:
                components[role].append(_component(compound))
    for outcome in reaction.outcomes:
        for product in outcome.products:
            if role_names(product.reaction_role) in _PRODUCT_ROLES:
                components["products"].append(_component(product))
    precursors = [c["smiles"] for c in components["reactants"] if c["smiles"]]
    agents = [c["smiles"] for role in COMPONENT_ROLES[1:-1] for c in components[role] if c["smiles"]]
    products = [c["smiles"] for c in components["products"] if c["smiles"]]
    reaction_smiles = f"{'.'.join(precursors)}>{'.'.join(agents)}>{'.'.join(products)}"
    if not products or not (precursors or agents):
        reaction_smiles = ""
    description = reaction.notes.procedure_details.strip()
    if not reaction_smiles and not description:
        return None
    provenance = reaction.provenance
    meta = {
        "ord_reaction_id": reaction.reaction_id,
        "ord_dataset_id": dataset_id,
        "ord_dataset_name": dataset_name,
        "doi": provenance.doi,
        "patent": provenance.patent,
        "publication_url": provenance.publication_url,
        "components": components,
    }
    return make_record(
        id=record_id,
        source="ord",
        reaction_smiles=reaction_smiles,
        description=description,
        split=ord_split(description or record_id),
        meta=meta,
    )


def _component(compound: Any) -> dict[str, str]:
    """``{"name", "smiles"[, "amount"]}`` of an ORD compound; an unreadable SMILES raises InvalidSmilesError."""
    from ord_schema import message_helpers
    from ord_schema.proto import reaction_pb2

    name = message_helpers.get_compound_name(compound) or ""
    written = message_helpers.get_compound_smiles(compound)
    if written:
        smiles = canonicalize_smiles(written.split(" |")[0])  # a CXSMILES extension is not part of the structure
    else:  # InChI, molblock, ...: what ord-schema can turn into a structure
        smiles = message_helpers.smiles_from_compound(compound) or ""
        smiles = canonicalize_smiles(smiles.split(" |")[0]) if smiles else ""
    component = {"name": name, "smiles": smiles}
    amount = _amount(compound.amount) if isinstance(compound, reaction_pb2.Compound) else ""
    if amount:
        component["amount"] = amount
    return component


def _amount(amount: Any) -> str:
    """An ORD ``Amount`` as written text (``"400 mg"``), or ``""`` when it gives no mass, moles or volume."""
    kind = amount.WhichOneof("kind")
    if kind not in ("mass", "moles", "volume"):
        return ""
    value = getattr(amount, kind)
    unit = value.DESCRIPTOR.fields_by_name["units"].enum_type.values_by_number[value.units].name
    symbol = _UNIT_SYMBOLS.get(unit)
    return f"{value.value:g} {symbol}" if symbol and value.value else ""


def _open(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")


def _dataset_header(path: Path) -> dict[int, str]:
    """The dataset's name, description and id: the string fields, read past the reactions."""
    header: dict[int, str] = {}
    with _open(path) as handle:
        for number, payload in _fields(handle, path, want=None):
            header[number] = payload.decode("utf-8", errors="replace")
    return header


def _fields(handle: IO[bytes], path: Path, want: int | None) -> Iterator[Any]:
    """Walk the top-level fields of a serialized ``ord.Dataset``.

    With ``want`` set, yield the payload of each field with that number (the reactions); otherwise yield
    ``(number, payload)`` of the string fields and skip the reactions without keeping them.
    """
    while True:
        tag = _varint(handle, path, at_start=True)
        if tag is None:
            return
        number, wire_type = tag >> 3, tag & 7
        if wire_type != _LENGTH_DELIMITED:
            raise _corrupt(path, f"field {number} has wire type {wire_type}; an ord.Dataset has none such")
        length = _varint(handle, path)
        if want is not None:
            if number == want:
                yield _read(handle, length, path)
            else:
                _skip(handle, length, path)
        elif number in (_NAME, _DESCRIPTION, _DATASET_ID):
            yield number, _read(handle, length, path)
        else:
            _skip(handle, length, path)


def _varint(handle: IO[bytes], path: Path, at_start: bool = False) -> int | None:
    result = shift = 0
    while True:
        byte = handle.read(1)
        if not byte:
            if at_start and shift == 0:
                return None
            raise _corrupt(path, "the file ends inside a field header")
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return result
        shift += 7
        if shift > 63:
            raise _corrupt(path, "a field header is longer than a protocol buffer allows")


def _read(handle: IO[bytes], length: int, path: Path) -> bytes:
    payload = handle.read(length)
    if len(payload) != length:
        raise _corrupt(path, f"the file ends inside a field ({len(payload)} of {length} bytes)")
    return payload


def _skip(handle: IO[bytes], length: int, path: Path) -> None:
    if handle.seekable() and not isinstance(handle, gzip.GzipFile):
        handle.seek(length, 1)
        return
    while length:  # a gzip stream skips by decompressing; in chunks, so a large reaction is not held
        chunk = handle.read(min(length, 1 << 20))
        if not chunk:
            raise _corrupt(path, "the file ends inside a field")
        length -= len(chunk)


def _corrupt(path: Path, problem: str) -> RecordError:
    return RecordError(f"{path}: not a readable ORD Dataset file: {problem}")
