"""The one record schema every stage reads and writes, and the task views derived from it.

Seeds, generated samples, selected samples and evaluation inputs are all rows of this schema, so any
stage can be run alone, resumed from disk, or swapped out. Provenance that differs between sources
(generator model, prompt version, cross-check verdicts, divergence scores, component roles) lives in
``meta``, a JSON object serialized as a string: parquet and Arrow keep it losslessly while its keys
stay free to grow without a schema migration.

Task views (``r2d``, ``d2a``, ``r2a``, and ``a2d``, the way back from actions to text that circle
review walks) turn a record into a prompt/completion pair. Training, inference and evaluation all call
:func:`task_view`, so a model is always asked in the form it was trained on. The prompts are the versioned
templates ``view_<task>-<version>`` of :mod:`chemactor.prompts`; their text only changes under a new version.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import tempfile
import time
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import datasets

from chemactor.errors import ConfigError, InputError, OutputError, closest
from chemactor.prompts import PromptTemplate, load_prompt, prompt_name

RECORD_FIELDS: tuple[str, ...] = ("id", "source", "reaction_smiles", "description", "actions", "split", "meta")

RECORD_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "source": datasets.Value("string"),
        "reaction_smiles": datasets.Value("string"),
        "description": datasets.Value("string"),
        "actions": datasets.Value("string"),
        "split": datasets.Value("string"),
        "meta": datasets.Value("string"),
    }
)

FIELD_DESCRIPTIONS: dict[str, str] = {
    "id": "Stable identifier, unique within a source.",
    "source": "Where the row comes from: paragraph2actions, smiles2actions, ord, generated, augmented, ...",
    "reaction_smiles": "Reaction SMILES reactants>agents>products (RDKit canonical); empty when unknown.",
    "description": "Experimental procedure text; empty when the source has none.",
    "actions": "Action sequence (readable Paragraph2Actions grammar unless meta.actions_style says otherwise).",
    "split": "train, validation or test.",
    "meta": "JSON object with provenance: component roles, generator, prompt version, verdicts, scores.",
}

SPLITS: tuple[str, ...] = ("train", "validation", "test")


class RecordError(InputError):
    """A row does not fit the record schema; the message names the row and the field."""


def make_record(
    *,
    id: str,
    source: str,
    reaction_smiles: str = "",
    description: str = "",
    actions: str = "",
    split: str = "train",
    meta: Mapping[str, Any] | str | None = None,
) -> dict[str, str]:
    """Build one schema-conformant row; ``meta`` may be a mapping (serialized here) or a JSON string."""
    record = {
        "id": id,
        "source": source,
        "reaction_smiles": reaction_smiles or "",
        "description": description or "",
        "actions": actions or "",
        "split": split,
        "meta": meta if isinstance(meta, str) else dumps_meta(meta or {}),
    }
    validate_record(record)
    return record


def validate_record(record: Mapping[str, Any], where: str = "") -> None:
    """Raise :class:`RecordError` naming ``where`` (file:line, row id) if the row breaks the schema."""
    prefix = f"{where}: " if where else ""
    missing = [name for name in RECORD_FIELDS if name not in record]
    if missing:
        raise RecordError(f"{prefix}missing field(s) {', '.join(missing)}")
    for name in RECORD_FIELDS:
        if not isinstance(record[name], str):
            raise RecordError(f"{prefix}field {name!r} must be a string, got {type(record[name]).__name__}")
    if not record["id"]:
        raise RecordError(f"{prefix}field 'id' is empty")
    if record["split"] not in SPLITS:
        raise RecordError(f"{prefix}field 'split' is {record['split']!r}, expected one of {', '.join(SPLITS)}")
    try:
        meta = json.loads(record["meta"]) if record["meta"] else {}
    except json.JSONDecodeError as exc:
        raise RecordError(f"{prefix}field 'meta' is not JSON: {exc.msg} in {record['meta'][:80]!r}") from exc
    except (ValueError, RecursionError) as exc:  # an integer of 5000 digits, objects nested 100k deep
        raise RecordError(f"{prefix}field 'meta' is not usable JSON: {type(exc).__name__}") from exc
    if not isinstance(meta, dict):
        raise RecordError(f"{prefix}field 'meta' must be a JSON object, got {type(meta).__name__}")


def dumps_meta(meta: Mapping[str, Any]) -> str:
    """Serialize ``meta`` deterministically (sorted keys) so identical provenance hashes identically."""
    return json.dumps(dict(meta), sort_keys=True, ensure_ascii=False)


def get_meta(record: Mapping[str, Any]) -> dict[str, Any]:
    """The parsed ``meta`` object of a row (``{}`` when empty)."""
    raw = record.get("meta") or ""
    return json.loads(raw) if raw else {}


def update_meta(record: Mapping[str, Any], **values: Any) -> dict[str, Any]:
    """A copy of ``record`` whose ``meta`` carries ``values`` on top of what it had."""
    meta = get_meta(record)
    meta.update(values)
    return {**record, "meta": dumps_meta(meta)}


def actions_style(record: Mapping[str, Any]) -> str:
    """``readable`` or ``placeholder``; placeholder-style rows (Smiles2Actions) say so in ``meta``."""
    return get_meta(record).get("actions_style", "readable")


def to_dataset(records: Iterable[Mapping[str, Any]]) -> datasets.Dataset:
    """A :class:`datasets.Dataset` with exactly the record features, in the given order."""
    rows = list(records)
    for index, row in enumerate(rows):
        validate_record(row, where=f"row {index} (id {row.get('id', '?')!r})")
    columns = {name: [row[name] for row in rows] for name in RECORD_FIELDS}
    return datasets.Dataset.from_dict(columns, features=RECORD_FEATURES)


# --- task views -------------------------------------------------------------------------------------

PROMPT_VERSION = "v1"

# task -> (the record field its prompt shows, the record field that is its completion); the prompt is the
# template ``view_<task>-<version>`` of :mod:`chemactor.prompts`, filled with the first field
TASK_FIELDS: dict[str, tuple[str, str]] = {
    "r2d": ("reaction_smiles", "description"),
    "d2a": ("description", "actions"),
    "r2a": ("reaction_smiles", "actions"),
    "a2d": ("actions", "description"),
}
TASKS: tuple[str, ...] = tuple(TASK_FIELDS)


def task_prompt(task: str, version: str = PROMPT_VERSION) -> PromptTemplate:
    """The template of ``task``'s view at ``version``; an unknown task or version raises :class:`ConfigError`."""
    if task not in TASK_FIELDS:
        raise ConfigError(f"unknown task {task!r}{closest(task, TASKS)}; known: {', '.join(TASKS)}")
    return load_prompt(prompt_name(f"view_{task}", version))


def has_task(record: Mapping[str, Any], task: str, version: str = PROMPT_VERSION) -> bool:
    """Whether the row carries both sides of ``task`` (an ORD row has no actions, for instance)."""
    task_prompt(task, version)  # an unknown task or version is an error, not a "no"
    return all(record.get(name) for name in TASK_FIELDS[task])


def task_view(record: Mapping[str, Any], task: str, version: str = PROMPT_VERSION) -> dict[str, str]:
    """The prompt/completion pair of ``record`` for ``task`` (one of :data:`TASKS`).

    The completion ends with a newline so a model learns where to stop; :func:`prompt_for` gives the
    prompt alone for inference on unlabeled input.
    """
    prompt = task_prompt(task, version)
    source, target = TASK_FIELDS[task]
    if not record.get(source):
        raise RecordError(f"row {record.get('id', '?')!r} has no {source!r} for task {task!r}")
    completion = record.get(target) or ""
    return {"prompt": prompt.render(**{source: record[source]}), "completion": completion.strip() + "\n"}


def prompt_for(task: str, value: str, version: str = PROMPT_VERSION) -> str:
    """The prompt that asks for ``task`` on a raw input (a description or a reaction SMILES)."""
    return task_prompt(task, version).render(**{TASK_FIELDS[task][0]: value})


def text_hash(text: str) -> str:
    """A stable short hash of whitespace- and case-normalized text (for leak-free splits and dedup)."""
    normalized = " ".join(text.lower().split())
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()[:16]


# --- reading and writing records ----------------------------------------------------------------------


def iter_jsonl(
    path: str | Path, on_error: Callable[[str, str], None] | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line of a JSONL file (``.gz`` read transparently).

    A line that is not UTF-8 or not a JSON object raises :class:`RecordError` naming the file and line, so
    a broken shard never turns into a silently shorter dataset; with ``on_error``, that callable gets
    ``(where, problem)`` instead and the line is skipped. The one exception is an unparsable *last* line
    without a newline: writers append whole lines, so that is a write cut off by a killed process (the
    writers trim it when they resume); it is skipped with a warning, since it was never a row. A file that
    cannot be read at all (a folder, a corrupt ``.gz``) raises :class:`RecordError` naming the file.
    """
    path = Path(path)
    line_no = 0
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as handle:
            for line_no, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                row, problem = _parse_line(raw)
                if problem is None and isinstance(row, dict):
                    yield line_no, row
                    continue
                if problem is not None and not raw.endswith(b"\n"):
                    warnings.warn(f"{path}:{line_no}: skipping a torn last line (an interrupted write)", stacklevel=2)
                    return
                problem = problem or f"expected a JSON object, got {type(row).__name__}"
                if on_error is None:
                    raise RecordError(f"{path}:{line_no}: {problem}")
                on_error(f"{path}:{line_no}", problem)
    except (OSError, EOFError, zlib.error) as exc:  # IsADirectoryError, BadGzipFile, a truncated .gz ...
        where = f"{path}:{line_no + 1}" if line_no else str(path)
        raise RecordError(f"{where}: cannot read: {exc}") from exc


def _parse_line(raw: bytes) -> tuple[Any, str | None]:
    """The JSON value of one line, or ``(None, problem)`` saying why it has none."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 (byte {raw[exc.start]:#04x} at column {exc.start + 1})"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"not JSON ({exc.msg} at column {exc.colno})"
    except (ValueError, RecursionError) as exc:  # an integer of 5000 digits, arrays nested 100k deep
        return None, f"not JSON ({type(exc).__name__}: {str(exc)[:80]})"


def read_text_lines(path: str | Path) -> list[str]:
    """The lines of a UTF-8 text file (one input per line), split on ``\\n`` only (a ``\\r`` before it dropped).

    ``str.splitlines`` would also break at U+2028 and other separators that may occur inside a procedure.
    A missing file, a folder or bytes that are not UTF-8 raise :class:`InputError` naming the file (and line).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_no = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"{path}:{line_no}: not UTF-8 text (byte {data[exc.start]:#04x})") from None
    return [line.removesuffix("\r") for line in text.removesuffix("\n").split("\n")] if text else []


def write_records(records: Iterable[Mapping[str, Any]], path: str | Path) -> Path:
    """Write validated records as JSONL, atomically: a crash leaves the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8") as handle:
            for index, record in enumerate(records):
                validate_record(record, where=f"record {index} for {path}")
                row = {name: record[name] for name in RECORD_FIELDS}
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(path)
    return path


def repair_jsonl(path: str | Path) -> int:
    """Cut a torn last line (a write interrupted by a kill or a full disk); returns the bytes cut.

    Writers append whole lines, so a last line without its newline was never finished: cutting it makes
    the next append start on a line boundary instead of gluing a row onto half of another.
    """
    path = Path(path)
    if not path.is_file():
        return 0
    with path.open("r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        if not size:
            return 0
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return 0
        keep = size
        while keep > 0:  # back to the last newline, a block at a time (a last line may be long)
            start = max(0, keep - 65536)
            handle.seek(start)
            block = handle.read(keep - start)
            newline = block.rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            keep = start
        handle.truncate(keep)
        return size - keep


class AppendLog:
    """An append-only JSONL file that survives kills and full disks; resume by the ids already in it.

    Each row is one ``os.write`` of the complete line to a file opened for appending, fsynced at most every
    ``fsync_interval`` seconds. Opening an existing file cuts a torn last line (:func:`repair_jsonl`). A write
    that fails (a full disk, a file-size limit) is rolled back to the previous line boundary and raised as
    :class:`~chemactor.errors.OutputError`: every line in the file stays a whole row, and a rerun continues.

        with AppendLog("out.jsonl") as log:
            done = set(log.ids())
            for row in rows:
                if row["id"] not in done:
                    log.append(row)
    """

    def __init__(self, path: str | Path, fsync_interval: float = 1.0) -> None:
        self.path = Path(path)
        self.fsync_interval = fsync_interval
        self._fd: int | None = None
        self._synced = time.monotonic()
        self.repaired = repair_jsonl(self.path)

    def rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(line number, object)`` for the rows already in the file (none when it does not exist yet)."""
        return iter_jsonl(self.path) if self.path.exists() else iter(())

    def ids(self, key: str = "id") -> Iterator[Any]:
        """The ``key`` of every row already written: what a resumed run skips."""
        return (row.get(key) for _, row in self.rows())

    def append(self, row: Mapping[str, Any]) -> None:
        """Write ``row`` as one whole line, or nothing at all (see the class docstring)."""
        data = (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        start = os.fstat(self._fd).st_size
        try:
            while data:
                data = data[os.write(self._fd, data) :]
            if time.monotonic() - self._synced >= self.fsync_interval:
                os.fsync(self._fd)
                self._synced = time.monotonic()
        except OSError as exc:
            with contextlib.suppress(OSError):  # if even this fails, the next open cuts the torn line
                os.ftruncate(self._fd, start)
            raise OutputError(
                f"{self.path}: cannot write ({exc.strerror or exc}); the rows before this one are kept, "
                "rerun the same command to continue"
            ) from exc

    def close(self) -> None:
        """Flush to disk and close; the file stays open only while rows are being appended."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.fsync(fd)
            except OSError as exc:
                raise OutputError(f"{self.path}: cannot write ({exc.strerror or exc})") from exc
            finally:
                os.close(fd)

    def __enter__(self) -> AppendLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def ensure_writable(folder: str | Path) -> Path:
    """Create ``folder`` if needed and prove it can be written, before any work whose results go there.

    Permission bits do not tell (root ignores them; a read-only mount or a full disk does not show in
    them), so a small file is actually created and removed. Raises :class:`~chemactor.errors.OutputError`.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".chemactor-write-check-") as probe:
            probe.write(b"ok")
            probe.flush()
    except OSError as exc:
        raise OutputError(f"{folder}: output folder is not writable ({exc.strerror or exc})") from exc
    return folder


# --- names of record sources ---------------------------------------------------------------------------
# The builders (:mod:`chemactor.builders`) read them; the names live here so that any layer can check one.

SEED_SOURCES: tuple[str, ...] = ("paragraph2actions", "smiles2actions", "ord")
EXAMPLES_SOURCE = "examples"
