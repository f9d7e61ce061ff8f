"""Every file reader, fed random bytes, truncated JSON, wrong types and non-UTF-8, raises only ChemActorError.

A reader that raises anything else (``UnicodeDecodeError``, ``AttributeError``, ``ArrowInvalid``, a
``RecursionError``) shows a user a traceback instead of the file and line to fix.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import datasets
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from chemactor.builders import build_seeds, read_records
from chemactor.data import RECORD_FIELDS, AppendLog, iter_jsonl, read_text_lines
from chemactor.errors import ChemActorError
from chemactor.examples import example_records
from chemactor.hub import exported_files
from chemactor.inference import convert_file

pytestmark = pytest.mark.filterwarnings("ignore:.*torn last line")

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12)
JSON_VALUES = st.recursive(
    JSON_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
)
GOOD_ROW = {
    "id": "r1",
    "source": "generated",
    "reaction_smiles": "",
    "description": "Water was added.",
    "actions": "ADD water.",
    "split": "train",
    "meta": "{}",
}


@st.composite
def record_lines(draw) -> bytes:
    """JSONL content: good rows, rows with a field of the wrong type or missing, broken and non-UTF-8 lines."""
    lines = []
    for index in range(draw(st.integers(0, 5))):
        row = {**GOOD_ROW, "id": draw(st.sampled_from([f"r{index}", "r0"]))}
        kind = draw(st.sampled_from(["good", "wrong_type", "missing", "extra", "truncated", "bytes", "not_object"]))
        if kind == "wrong_type":
            row[draw(st.sampled_from(RECORD_FIELDS))] = draw(JSON_VALUES)
        elif kind == "missing":
            del row[draw(st.sampled_from(RECORD_FIELDS))]
        elif kind == "extra":
            row[draw(st.text(min_size=1, max_size=5))] = draw(JSON_VALUES)
        line = json.dumps(row).encode()
        if kind == "truncated":
            line = line[: draw(st.integers(0, len(line) - 1))]
        elif kind == "bytes":
            line = draw(st.binary(max_size=40))
        elif kind == "not_object":
            line = json.dumps(draw(JSON_VALUES)).encode()
        lines.append(line)
    ending = draw(st.sampled_from([b"\n", b""]))
    return b"\n".join(lines) + ending


def only_chemactor_errors(read: Callable[[Path], object], name: str, content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        try:
            read(path)
        except ChemActorError as exc:
            assert str(exc) and "\n" not in str(exc).strip(), "one line"


FUZZ = settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
SLOW_FUZZ = settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
CONTENT = st.binary(max_size=300) | record_lines()


@FUZZ
@given(CONTENT)
def test_iter_jsonl(content: bytes) -> None:
    only_chemactor_errors(lambda path: list(iter_jsonl(path)), "rows.jsonl", content)


@FUZZ
@given(CONTENT)
def test_iter_jsonl_gzip(content: bytes) -> None:
    only_chemactor_errors(lambda path: list(iter_jsonl(path)), "rows.jsonl.gz", content)
    only_chemactor_errors(lambda path: list(iter_jsonl(path)), "rows.jsonl.gz", gzip.compress(content))


@FUZZ
@given(st.binary(max_size=300))
def test_read_text_lines(content: bytes) -> None:
    only_chemactor_errors(read_text_lines, "inputs.txt", content)


@SLOW_FUZZ
@given(CONTENT, st.booleans())
def test_read_records_jsonl(content: bytes, skip_bad_rows: bool) -> None:
    only_chemactor_errors(lambda path: read_records(path, skip_bad_rows=skip_bad_rows), "rows.jsonl", content)


@SLOW_FUZZ
@given(CONTENT)
def test_read_records_gzip_and_parquet_of_random_bytes(content: bytes) -> None:
    only_chemactor_errors(read_records, "rows.jsonl.gz", gzip.compress(content))
    only_chemactor_errors(read_records, "rows.parquet", content)


COLUMN_TYPES = [
    st.text(max_size=8),
    st.integers(-5, 5),
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True),
    st.lists(st.integers(-5, 5), max_size=2),
    st.binary(max_size=4),
    st.dictionaries(st.sampled_from(["a", "b"]), st.integers(-5, 5), min_size=1),
]


@st.composite
def typed_tables(draw) -> list[dict]:
    """Parquet-writable rows: each column of one type, the record fields' types drawn (mostly wrong)."""
    names = [name for name in RECORD_FIELDS if draw(st.booleans()) or name == "id"] + ["extra"]
    types = {name: draw(st.sampled_from(COLUMN_TYPES)) for name in names}
    good = {name: st.just(GOOD_ROW[name]) for name in RECORD_FIELDS}
    if draw(st.booleans()):  # sometimes a schema-conformant table with one wrong column
        types = {**good, "extra": types["extra"], draw(st.sampled_from(RECORD_FIELDS)): types["id"]}
    return [{name: draw(strategy) for name, strategy in types.items()} for _ in range(draw(st.integers(1, 4)))]


@SLOW_FUZZ
@given(typed_tables(), st.booleans())
def test_read_records_parquet_with_wrong_types(rows: list[dict], skip_bad_rows: bool) -> None:
    try:  # what Arrow itself cannot store (an integer beyond 64 bits) never reaches a reader
        table = datasets.Dataset.from_list(rows)
    except (OverflowError, pa.ArrowException):
        assume(False)

    def write_and_read(path: Path) -> None:
        table.to_parquet(str(path))
        read_records(path, skip_bad_rows=skip_bad_rows)

    only_chemactor_errors(write_and_read, "rows.parquet", b"")


@SLOW_FUZZ
@given(CONTENT)
def test_read_records_folder_and_saved_dataset(content: bytes) -> None:
    def in_folder(path: Path) -> None:
        shard = path.parent / "gen" / "shards" / "part-00000.jsonl"
        shard.parent.mkdir(parents=True)
        path.rename(shard)
        read_records(shard.parent.parent)

    only_chemactor_errors(in_folder, "rows.jsonl", content)

    def saved(path: Path) -> None:
        (path.parent / "saved").mkdir()
        (path.parent / "saved" / "state.json").write_bytes(content)
        read_records(path.parent / "saved")

    only_chemactor_errors(saved, "unused", b"")


@SLOW_FUZZ
@given(CONTENT, st.binary(max_size=200))
def test_seed_builders_and_examples(content: bytes, other: bytes) -> None:
    def ord_source(path: Path) -> None:
        (path.parent / "ord_r2d").mkdir()
        (path.parent / "ord_r2d" / "reactions.jsonl.gz").write_bytes(gzip.compress(content))
        build_seeds("ord", path.parent, skip_bad_rows=True)

    only_chemactor_errors(ord_source, "unused", b"")

    def paragraph2actions(path: Path) -> None:
        folder = path.parent / "paragraph2actions"
        folder.mkdir()
        for split in ("train", "valid", "test"):
            (folder / f"src-{split}.txt").write_bytes(other)
            (folder / f"tgt-{split}.txt").write_bytes(content)
        build_seeds("paragraph2actions", path.parent, skip_bad_rows=True)

    only_chemactor_errors(paragraph2actions, "unused", b"")

    def examples(path: Path) -> None:
        (path.parent / "procedures.jsonl").write_bytes(content)
        (path.parent / "reactions.jsonl").write_bytes(other)
        example_records(path.parent)

    only_chemactor_errors(examples, "unused", b"")


@FUZZ
@given(CONTENT)
def test_resumable_outputs_and_manifests(content: bytes) -> None:
    def resume(path: Path) -> None:
        source = path.with_name("in.txt")
        source.write_text("Water was added.\nIt was stirred.\n", encoding="utf-8")
        convert_file(lambda chunk: [{"description": text} for text in chunk], source, path, "description")

    only_chemactor_errors(resume, "out.jsonl", content)
    only_chemactor_errors(lambda path: list(AppendLog(path).ids()), "log.jsonl", content)
    only_chemactor_errors(lambda path: exported_files(path.parent), ".chemactor-export.json", content)
