"""The resumable generation runner: reaction -> description -> actions -> cross-check, row by row.

For every input record (and every sample of it) the runner asks the backend for a description (R2D),
then for its action sequence (D2A), cross-checks the two against each other and the reaction, and
appends the finished row to disk the moment it is done. An input that is a target molecule (a ``.smi``
line, or a record whose ``reaction_smiles`` is one molecule or ``>>molecule``) is described with the
target prompt instead (a complete procedure that makes it); its cross-check adds the target checks and
its row carries the reaction SMILES the procedure resolved (``named precursors>>target``). ``steps`` picks
the whole chain or one step (``r2d`` only; ``d2a`` over existing descriptions such as ORD procedures) or
rule-based ``augment``.

Generation is slow and endpoints fail, so nothing done is ever lost. The output directory holds::

    OUTPUT/manifest.json              settings, prompt hashes and backend that made the rows; run history
    OUTPUT/shards/part-NNNNN.jsonl    one file per run; one chemactor.data record per line
    OUTPUT/failures/part-NNNNN.ndjson {"id", "input_id", "error": {kind, message, ...}, "time"} per failed item
    OUTPUT/index/part-NNNNN.keys      an 8-byte key of each row id of the matching shard (what a resume reads)

(Failures are newline-delimited JSON but not records, hence not ``.jsonl``, which record readers collect.)
Each line is written with one ``os.write`` of the complete line (to a file opened for appending) and
fsynced at most every ``fsync_interval`` seconds, so a killed run loses only the requests in flight and
at worst leaves a final line without its newline, which the next run truncates before appending.
Rerunning the same command resumes: rows already written are skipped, failed items are skipped too
unless ``retry_failed`` is set. Row ids are ``<input id>/<sample>``, stable across runs. A folder where no
row was written yet takes new settings (its old failure logs are set aside); one with rows refuses them.

A row that fails on its own never stops the run: an unparsable reaction (``invalid_smiles``, asked nothing),
a missing field (``input``), a prompt template that fails on its values (``template``), a cross-check that
crashes on its answers (``crosscheck``), a blank answer (``empty``) or a request that failed for good (the
backend's kinds, ``garbage`` for a 200 without an answer) is recorded with its kind and the others go on.
An endpoint that cannot be reached at all raises :class:`~chemactor.errors.EndpointError` from the backend
and stops the run; its connection failures are not recorded, so the next run asks again.

Inputs stream: the runner takes the next input only when one of its ``max_in_flight`` items finishes, and
the finished ids and the input ids met so far are held as 64-bit keys in sorted arrays (:class:`IdSet`, 8
bytes an id), so a million inputs add 8 MB, not the ~60 MB of a Python set, and a resume does not parse a
million rows. ``shard=(i, n)`` (``--shard i/n``) keeps the inputs whose
id falls in shard ``i`` of ``n``; n processes or machines given one input list write ``shard-i-of-n/``
folders side by side, which read back (``read_records`` / ``load_generated`` on the parent) as one dataset.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import jinja2
import numpy as np
from tqdm.auto import tqdm

from chemactor.actions import ACTION_NAMES, ActionConstraint
from chemactor.builders import read_records
from chemactor.chem import InvalidSmilesError, canonicalize_reaction, reaction_target
from chemactor.config import parse_config
from chemactor.data import (
    EXAMPLES_SOURCE,
    SEED_SOURCES,
    SPLITS,
    AppendLog,
    RecordError,
    actions_style,
    get_meta,
    iter_jsonl,
    make_record,
    repair_jsonl,
)
from chemactor.errors import ConfigError, EndpointError, ResumeError, closest
from chemactor.generation.backends import (
    UNREACHABLE_KINDS,
    AugmentBackend,
    Backend,
    EndpointBackend,
    GenerationError,
    TransformersBackend,
)
from chemactor.generation.crosscheck import back_translation_similarity, crosscheck, target_reaction
from chemactor.prompts import PromptTemplate, load_prompt, prompt_name

STEPS: tuple[str, ...] = ("chain", "r2d", "d2a", "augment")
# a target (one molecule, ``>>target``) is described with the target prompt wherever a reaction gets r2d's
TASKS_OF_STEP: dict[str, tuple[str, ...]] = {
    "chain": ("r2d", "target", "d2a"),
    "r2d": ("r2d", "target"),
    "d2a": ("d2a",),
    "augment": (),
}
# what an input row must carry for each step
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "chain": ("reaction_smiles",),
    "r2d": ("reaction_smiles",),
    "d2a": ("description",),
    "augment": ("description", "actions"),
}
MANIFEST_FORMAT = "chemactor-generation/1"
PROMPT_VERSION = "v1"  # of the generation prompts (chemactor.prompts: r2d, target, d2a, a2d)
ANSWER_END = "\n###"  # the next few-shot header: where a model that keeps going has finished its answer


@dataclass
class RunSettings:
    """What makes the rows what they are; a resumed run must use the same (see :class:`ResumeError`)."""

    steps: str = "chain"
    samples: int = 1
    shots: int = 3
    prompt_version: str = PROMPT_VERSION
    prompts_dir: str | None = None
    sampling: dict[str, Any] = field(default_factory=dict)
    back_translate: bool = False  # also write the actions back into text (A2D) and score the similarity
    constrained: bool = True  # D2A answers decoded under the action grammar (chemactor.actions.ActionConstraint)
    max_in_flight: int = 256
    fsync_interval: float = 1.0

    def __post_init__(self) -> None:
        if self.steps not in STEPS:
            raise ConfigError(
                f"steps: must be one of {', '.join(STEPS)}, got {self.steps!r}{closest(self.steps, STEPS)}"
            )
        if self.samples < 1:
            raise ConfigError(f"samples: must be at least 1, got {self.samples}")


@dataclass
class RunSummary:
    """What a run did, printed at the end and recorded in the manifest."""

    output_dir: str
    done: int = 0
    skipped: int = 0
    failed: Counter[str] = field(default_factory=Counter)  # kind -> count
    crosscheck_failed: int = 0
    retries: int = 0
    tokens: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def __str__(self) -> str:
        failed = ", ".join(f"{kind} {count}" for kind, count in sorted(self.failed.items())) or "none"
        tokens = ", ".join(f"{name} {count}" for name, count in sorted(self.tokens.items())) or "not reported"
        return (
            f"{self.output_dir}: {self.done} rows written in {self.seconds:.1f} s, {self.skipped} already done; "
            f"failed: {failed}; cross-check failed on {self.crosscheck_failed} rows (kept); "
            f"retries {self.retries}; tokens: {tokens}"
        )


class ItemError(Exception):
    """A row that failed for a reason of its own, recorded like a failed request and the run goes on.

    ``kind``: ``input`` (a field the step needs is missing), ``invalid_smiles`` (the reaction or target does
    not parse), ``template`` (a prompt template failed on this row),
    ``crosscheck`` (the cross-check failed on this row's answers).
    """

    def __init__(self, message: str, kind: str = "input") -> None:
        super().__init__(message)
        self.kind = kind

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": str(self)}


# --- on-disk store ----------------------------------------------------------------------------------


def id_key(row_id: str) -> int:
    """A 64-bit key of an id: what the finished-id index holds (8 bytes per row, whatever the id's length)."""
    return int.from_bytes(hashlib.blake2b(row_id.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


def shard_of(input_id: str, shards: int) -> int:
    """The shard (0 to ``shards - 1``) an input belongs to: a function of its id alone, the same on every machine."""
    return int.from_bytes(hashlib.blake2b(input_id.encode("utf-8"), digest_size=8).digest(), "little") % shards


class IdSet:
    """Ids held as 64-bit keys (:func:`id_key`) in a few sorted arrays, plus those added since the last of them
    was made: 8 bytes an id, so a million ids cost 8 MB where a Python set of their keys costs ~60 MB. It holds
    the ids of the rows on disk (:meth:`load`) and the input ids a run has met (two inputs with one id are an
    error).

    Added keys gather in a small set; every ``BUFFER`` of them become a sorted array, and the newest array is
    merged into the one before while that one is no larger (a binary counter): there are about
    ``log2(n / BUFFER)`` arrays, each key is copied that many times, and no array is reallocated as it grows
    key by key (which fragments the heap: a million adds into one growing array cost ~75 MB).

    Each shard file ``shards/part-N.jsonl`` has an index ``index/part-N.keys``: the 8-byte key of each of its
    rows, appended right after the row. A shard with more lines than its index has keys (a kill between the two
    writes, or a folder written before indexes existed) has its index rebuilt from the rows, so the index never
    misses a row.
    """

    BUFFER = 1 << 12

    def __init__(self, keys: np.ndarray | None = None) -> None:
        self._arrays: list[np.ndarray] = [np.unique(keys)] if keys is not None and len(keys) else []
        self._recent: set[int] = set()

    @classmethod
    def load(cls, directory: Path) -> IdSet:
        parts = []
        for shard in sorted(directory.glob("shards/part-*.jsonl")):
            index = directory / "index" / f"{shard.stem}.keys"
            keys = np.fromfile(index, dtype="<i8") if index.exists() else np.empty(0, dtype="<i8")
            if len(keys) != _count_lines(shard):
                ids = read_records(shard)["id"]
                keys = np.fromiter((id_key(row_id) for row_id in ids), dtype="<i8", count=len(ids))
                index.parent.mkdir(parents=True, exist_ok=True)
                keys.tofile(index)
            parts.append(keys)
        return cls(np.concatenate(parts) if parts else None)

    def __len__(self) -> int:
        return sum(map(len, self._arrays)) + len(self._recent)

    def __contains__(self, row_id: object) -> bool:
        return self._has(id_key(str(row_id)))

    def add(self, row_id: str) -> None:
        key = id_key(row_id)
        if self._has(key):
            return
        self._recent.add(key)
        if len(self._recent) >= self.BUFFER:
            keys = np.fromiter(self._recent, dtype=np.int64, count=len(self._recent))
            keys.sort()
            self._recent.clear()
            while self._arrays and len(self._arrays[-1]) <= len(keys):
                keys = np.concatenate([self._arrays.pop(), keys])
                keys.sort(kind="stable")  # two sorted runs: merged in one pass
            self._arrays.append(keys)

    def _has(self, key: int) -> bool:
        if key in self._recent:
            return True
        for keys in self._arrays:
            position = int(np.searchsorted(keys, key))
            if position < len(keys) and int(keys[position]) == key:
                return True
        return False


def _count_lines(path: Path) -> int:
    count = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            count += chunk.count(b"\n")
    return count


class OutputStore:
    """The output directory: finished ids, failures, the manifest, and this run's append-only files."""

    def __init__(self, directory: str | Path, fsync_interval: float = 1.0) -> None:
        self.directory = Path(directory)
        self.manifest_path = self.directory / "manifest.json"
        self.directory.mkdir(parents=True, exist_ok=True)
        logs = [*self.directory.glob("shards/part-*.jsonl"), *self.directory.glob("failures/part-*.ndjson")]
        for path in logs:
            repair_jsonl(path)
        part = 1 + max((int(path.name[5:10]) for path in logs), default=-1)
        self.rows = AppendLog(self.directory / "shards" / f"part-{part:05d}.jsonl", fsync_interval)
        self.failures = AppendLog(self.directory / "failures" / f"part-{part:05d}.ndjson", fsync_interval)
        self._index_path = self.directory / "index" / f"part-{part:05d}.keys"
        self._index: int | None = None

    def finished_ids(self) -> IdSet:
        return IdSet.load(self.directory)

    def append_row(self, row: Mapping[str, Any]) -> None:
        """The row, then its id in the index (a kill in between is repaired by :meth:`IdSet.load`)."""
        self.rows.append(row)
        if self._index is None:
            self._index_path.parent.mkdir(parents=True, exist_ok=True)
            self._index = os.open(self._index_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.write(self._index, id_key(row["id"]).to_bytes(8, "little", signed=True))

    def failed_ids(self) -> set[str]:
        return {row["id"] for path in self.directory.glob("failures/*.ndjson") for _, row in iter_jsonl(path)}

    def set_aside_failures(self) -> None:
        """Move failure logs written with other settings to ``failures-superseded-<time>/`` (kept, not read)."""
        old = self.directory / "failures"
        if any(old.glob("*.ndjson")):
            self.failures.close()
            old.rename(self.directory / f"failures-superseded-{_now().replace(':', '')}")

    def read_manifest(self) -> dict[str, Any]:
        return json.loads(self.manifest_path.read_text(encoding="utf-8")) if self.manifest_path.exists() else {}

    def write_manifest(self, manifest: Mapping[str, Any]) -> None:
        """Replace the manifest atomically: a kill mid-write leaves the old one, never half a file."""
        tmp = self.manifest_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, self.manifest_path)

    def close(self) -> None:
        self.rows.close()
        self.failures.close()
        if self._index is not None:
            os.close(self._index)
            self._index = None


def read_inputs(
    source: str, data_dir: str | Path | None = None, split: str | None = None, limit: int | None = None
) -> list[dict[str, str]]:
    """Input rows: a seed source (``ord``, ``paragraph2actions``, ``smiles2actions``; ``examples`` for the
    set shipped with the package) or records (a ``.jsonl``/``.parquet`` file or a folder), optionally one
    split (:func:`chemactor.builders.read_records`).
    """
    return read_records(source, data_dir=data_dir, split=split, limit=limit).to_list()


# --- the runner -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Item:
    id: str
    record: Mapping[str, Any]
    sample: int


def clean_completion(text: str, task: str) -> str:
    """The answer proper: cut where the model starts another few-shot block; D2A answers are one line."""
    answer = text.split(ANSWER_END, 1)[0].strip()
    if task == "d2a":
        answer = next((line.strip() for line in answer.splitlines() if line.strip()), "")
    return answer


def component_roles(record: Mapping[str, Any]) -> dict[str, list[dict[str, str]]] | None:
    """Reactants, reagents, solvents, catalysts and products (``{"name", "smiles"}`` each) from ``meta``.

    Every source that knows them (ORD seeds, the example set, generated rows) keeps them in
    ``meta["components"]``.
    """
    return get_meta(record).get("components")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class GenerationRunner:
    """Runs one step (or the chain) over input records into an output directory; see the module doc.

    ``examples`` are the few-shot pool: rows with a reaction and a description show R2D, rows with a
    description and readable actions show D2A; each item draws its ``shots`` examples reproducibly.
    """

    def __init__(
        self,
        backend: Backend,
        settings: RunSettings | None = None,
        examples: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        self.backend = backend
        self.settings = settings or RunSettings()
        augmenting = self.settings.steps == "augment"
        if augmenting != backend.writes_variants:
            raise ConfigError(f"steps: {self.settings.steps!r} does not go with a {type(backend).__name__}")
        tasks = TASKS_OF_STEP[self.settings.steps]
        if self.settings.back_translate and "d2a" in tasks:
            tasks = (*tasks, "a2d")
        # what the templates fill in the same way for every row (part of each prompt's provenance)
        self.fixed_values: dict[str, Any] = {"action_names": list(ACTION_NAMES)}
        self.prompts: dict[str, PromptTemplate] = {
            task: load_prompt(prompt_name(task, self.settings.prompt_version), self.settings.prompts_dir)
            for task in tasks
        }
        # What each row records about its prompt (the same for every row of a run): the template's task,
        # version and hash, plus a hash of the values every prompt fills in the same way
        # (:meth:`~chemactor.prompts.PromptTemplate.provenance`): adding an action to the grammar changes the
        # D2A prompt's action list without touching its template, and must not pass a resume's identity check.
        self.provenance = {task: prompt.provenance(self.fixed_values) for task, prompt in self.prompts.items()}
        self.examples = {
            "r2d": [
                {**row, "roles": component_roles(row) or {}}
                for row in examples
                if row.get("reaction_smiles") and row.get("description")
            ],
            "d2a": [
                row
                for row in examples
                if row.get("description") and row.get("actions") and actions_style(row) == "readable"
            ],
        }
        self.examples["a2d"] = self.examples["d2a"]
        # a reaction's (last) product and its procedure show what a target prompt asks for
        self.examples["target"] = [
            {**row, "target": product.get("smiles") or row["reaction_smiles"].split(">")[-1].split(".")[-1]}
            | {"target_name": product.get("name") or ""}
            for row in self.examples["r2d"]
            for product in [(row["roles"].get("products") or [{}])[-1]]
        ]
        missing = [task for task in self.prompts if self.settings.shots and not self.examples[task]]
        if missing:
            raise ConfigError(f"examples: no few-shot examples for {', '.join(missing)}; pass examples or set shots=0")

    def identity(self) -> dict[str, Any]:
        """The settings that must match for a resume (endpoints may change, the model may not)."""
        settings = asdict(self.settings)
        for transient in ("max_in_flight", "fsync_interval"):
            settings.pop(transient)
        generator = {key: value for key, value in self.backend.describe().items() if key != "endpoints"}
        return {"settings": settings, "generator": generator, "prompts": self.provenance}

    def run(
        self,
        inputs: Iterable[Mapping[str, Any]],
        output_dir: str | Path,
        *,
        retry_failed: bool = False,
        progress: bool = True,
        shard: tuple[int, int] | None = None,
    ) -> RunSummary:
        """Generate every missing row of ``inputs`` into ``output_dir``; safe to kill and rerun.

        ``inputs`` are read lazily, one window of ``max_in_flight`` items at a time, so memory does not grow
        with their number. ``shard=(i, n)`` keeps the inputs of shard ``i`` of ``n`` (:func:`shard_of`).
        """
        store = OutputStore(output_dir, self.settings.fsync_interval)
        manifest = store.read_manifest()
        identity = self.identity()
        finished = store.finished_ids()
        changed = sorted(key for key in identity if manifest and manifest.get(key) != identity[key])
        if changed and finished:
            store.close()
            raise ResumeError(
                f"{store.manifest_path} was written with other {', '.join(changed)} ({len(finished)} rows); "
                "use a new output directory or the original settings"
            )
        if changed:  # nothing was written with the old settings: their failures say nothing about the new ones
            store.set_aside_failures()
        failed = set() if retry_failed else store.failed_ids()
        summary = RunSummary(output_dir=str(output_dir))

        def todo() -> Iterator[_Item]:
            for item in self._items(inputs, shard):
                if item.id in finished or item.id in failed:
                    summary.skipped += 1
                else:
                    yield item

        runs = [*manifest.get("runs", []), {"started": _now(), "status": "running", "shard": store.rows.path.name}]
        store.write_manifest({"format": MANIFEST_FORMAT, **identity, "runs": runs})
        started = time.monotonic()
        status = "interrupted"
        try:
            total = len(inputs) * self.settings.samples if isinstance(inputs, Sized) and shard is None else None
            asyncio.run(self._run_all(todo(), total, store, summary, progress))
            status = "complete" if not summary.failed else "complete with failures"
        except EndpointError:
            status = "stopped: endpoint unreachable"
            raise
        finally:
            store.close()
            summary.seconds = time.monotonic() - started
            summary.retries = self.backend.stats["retries"]
            summary.tokens = {
                name: self.backend.stats[name]
                for name in ("prompt_tokens", "completion_tokens")
                if self.backend.stats[name]
            }
            runs[-1].update(
                finished=_now(),
                status=status,
                written=summary.done,
                failed=dict(summary.failed),
                crosscheck_failed=summary.crosscheck_failed,
                tokens=summary.tokens,
                retries=summary.retries,
            )
            store.write_manifest(
                {"format": MANIFEST_FORMAT, **identity, "runs": runs, "rows": len(finished) + summary.done}
            )
        return summary

    def _items(self, inputs: Iterable[Mapping[str, Any]], shard: tuple[int, int] | None) -> Iterator[_Item]:
        seen = IdSet()
        for record in inputs:
            if shard is not None and shard_of(record["id"], shard[1]) != shard[0]:
                continue
            if record["id"] in seen:
                raise RecordError(f"input id {record['id']!r} occurs twice; ids must be unique across the inputs")
            seen.add(record["id"])
            for k in range(self.settings.samples):
                yield _Item(f"{record['id']}/{k}", record, k)

    async def _run_all(
        self, items: Iterator[_Item], total: int | None, store: OutputStore, summary: RunSummary, progress: bool
    ) -> None:
        """Keep at most ``max_in_flight`` items running, taking the next input only when one finishes."""
        bar = tqdm(total=total, desc=f"generate ({self.settings.steps})", unit="row", disable=not progress)

        async def one(item: _Item) -> None:
            try:
                row = await self._generate(item)
            except (GenerationError, ItemError) as exc:
                error = exc.to_dict()
                summary.failed[error["kind"]] += 1
                # An endpoint that never answered says nothing about the row: not recorded, so the next
                # run asks again without --retry-failed (the backend stops the run if it stays down).
                never_answered = not self.backend.stats["requests"]
                if not (error["kind"] in UNREACHABLE_KINDS and never_answered):
                    store.failures.append(
                        {"id": item.id, "input_id": item.record["id"], "error": error, "time": _now()}
                    )
            else:
                store.append_row(row)
                summary.done += 1
                verdict = get_meta(row).get("crosscheck")
                summary.crosscheck_failed += bool(verdict) and not verdict["passed"]
            bar.update()
            bar.set_postfix(failed=sum(summary.failed.values()), retries=self.backend.stats["retries"], refresh=False)

        running: set[asyncio.Task[None]] = set()
        try:
            for item in items:
                if len(running) >= self.settings.max_in_flight:
                    finished, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    for task in finished:
                        task.result()  # an error that stops the run (an unreachable endpoint) stops it here
                running.add(asyncio.create_task(one(item)))
            for task in asyncio.as_completed(running):
                await task
        finally:
            for task in running:
                task.cancel()
            bar.close()
            await self.backend.aclose()

    async def _generate(self, item: _Item) -> dict[str, str]:
        record, steps = item.record, self.settings.steps
        absent = [name for name in REQUIRED_FIELDS[steps] if not record.get(name)]
        if absent:
            raise ItemError(f"input {record['id']!r} has no {', '.join(absent)} for steps {steps!r}")
        roles = component_roles(record)
        meta: dict[str, Any] = {
            "input": {"id": record["id"], "source": record["source"]},
            "sample": item.sample,
            "steps": steps,
            "generator": self.backend.describe(),
            "created": _now(),
        }
        if roles:
            meta["components"] = roles
        if self.backend.writes_variants:
            description, actions, substitutions = self.backend.variant(record, item.sample)
            meta["substitutions"] = substitutions
            meta["crosscheck"] = crosscheck(actions, description)
            return make_record(
                id=item.id,
                source="augmented",
                description=description,
                actions=actions,
                split=record["split"],
                meta=meta,
            )

        target: dict[str, str] | None = None
        if "r2d" in self.prompts or record.get("reaction_smiles"):
            try:
                smiles = reaction_target(record["reaction_smiles"])
                if smiles is None:
                    canonicalize_reaction(record["reaction_smiles"])
                else:
                    target = {"smiles": smiles, "name": get_meta(record).get("target", {}).get("name") or ""}
                    meta["target"] = target
            except InvalidSmilesError as exc:
                if "r2d" in self.prompts:  # nothing to describe; d2a rows only use the reaction to cross-check
                    where = get_meta(record).get("target", {}).get("where")
                    raise ItemError(
                        f"input {record['id']!r}{f' ({where})' if where else ''}: {exc}", kind="invalid_smiles"
                    ) from None
                record = {**record, "reaction_smiles": ""}
        params = dict(self.settings.sampling)
        if params.get("seed") is not None:
            params["seed"] = int(params["seed"]) + item.sample  # distinct samples of one input
        meta.update(sampling=params, prompts={}, usage={}, endpoints={})
        description, actions = record.get("description") or "", ""
        if target is not None and "target" in self.prompts:
            shots = self._shots(item, "target")
            prompt = self._render("target", examples=shots, target=target["smiles"], target_name=target["name"])
            description = await self._ask(prompt, "target", params, meta)
        elif "r2d" in self.prompts:
            prompt = self._render(
                "r2d", examples=self._shots(item, "r2d"), reaction_smiles=record["reaction_smiles"], roles=roles or {}
            )
            description = await self._ask(prompt, "r2d", params, meta)
        if "d2a" in self.prompts:
            prompt = self._render(
                "d2a", examples=self._shots(item, "d2a"), description=description, **self.fixed_values
            )
            constraint = ActionConstraint() if self.settings.constrained else None
            actions = await self._ask(prompt, "d2a", params, meta, constraint=constraint)
            try:
                reaction = record.get("reaction_smiles") or ""
                meta["crosscheck"] = crosscheck(actions, description, reaction, roles, target=target)
            except Exception as exc:  # whatever one row's answer trips, the other rows go on
                raise ItemError(f"cross-check failed: {type(exc).__name__}: {exc}", kind="crosscheck") from exc
        if "a2d" in self.prompts:
            prompt = self._render("a2d", examples=self._shots(item, "a2d"), actions=actions)
            back = await self._ask(prompt, "a2d", params, meta, allow_empty=True)
            similarity = back_translation_similarity(description, back)
            meta["crosscheck"]["back_translation"] = {"text": back, "similarity": similarity}
        reaction_smiles = record.get("reaction_smiles") or ""
        if target is not None:  # what the procedure resolved: its named precursors >> the target
            reaction_smiles = (
                meta.get("crosscheck", {}).get("reaction_smiles") or target_reaction(description, target["smiles"])[0]
            )
        return make_record(
            id=item.id,
            source="generated",
            reaction_smiles=reaction_smiles,
            description=description,
            actions=actions,
            split=record["split"],
            meta=meta,
        )

    def _render(self, task: str, **values: Any) -> str:
        """The ``task`` prompt for one row; a template that fails on this row's values fails this row only."""
        try:
            return self.prompts[task].render(**values)
        except jinja2.TemplateError as exc:
            raise ItemError(f"{task} prompt template: {type(exc).__name__}: {exc}", kind="template") from exc

    async def _ask(
        self,
        prompt: str,
        task: str,
        params: Mapping[str, Any],
        meta: dict[str, Any],
        allow_empty: bool = False,
        constraint: ActionConstraint | None = None,
    ) -> str:
        extra = {"constraint": constraint} if constraint is not None else {}
        generation = await self.backend.agenerate(prompt, **params, **extra)
        meta["prompts"][task] = self.provenance[task]
        meta["usage"][task] = generation.usage
        meta["endpoints"][task] = generation.endpoint
        answer = clean_completion(generation.text, task)
        if not answer and not allow_empty:
            # nothing to build on; recorded as a failure so that --retry-failed asks again
            raise GenerationError(f"empty {task} answer", kind="empty", retryable=True, endpoint=generation.endpoint)
        return answer

    def _shots(self, item: _Item, task: str) -> list[Mapping[str, Any]]:
        pool = [row for row in self.examples[task] if row["id"] != item.record["id"]]
        return random.Random(f"{item.id}:{task}").sample(pool, min(self.settings.shots, len(pool)))


# --- configuration (recipes and the command line) ---------------------------------------------------

BACKENDS: tuple[str, ...] = ("endpoint", "transformers", "augment")
INPUT_SOURCES: tuple[str, ...] = (*SEED_SOURCES, EXAMPLES_SOURCE)


@dataclass
class SamplingConfig:
    """Sampling parameters sent with every request (``None``: the server's or model's default)."""

    max_new_tokens: int | None = field(default=None, metadata={"min": 1})
    temperature: float | None = field(default=None, metadata={"min": 0})
    top_p: float | None = None
    top_k: int | None = None
    repetition_penalty: float | None = None
    stop: list[str] | None = None
    seed: int | None = None  # sample k of an input uses seed + k

    def as_params(self) -> dict[str, Any]:
        return {name: value for name, value in asdict(self).items() if value is not None}


@dataclass
class GenerationConfig:
    """A generation recipe (``recipes/generate.yaml``); each field is also a ``chemactor generate`` flag.

    Parsed by :func:`chemactor.config.parse_config`, so a misspelled key or a value of the wrong type is
    rejected, naming the key, before any input is read.
    """

    input: str | None = (
        None  # a seed source name, records (.jsonl / .parquet), an ORD file (.pb[.gz]) or targets (.smi)
    )
    data_dir: str | None = None
    split: Literal[SPLITS] | None = None  # type: ignore[valid-type]
    limit: int | None = field(default=None, metadata={"min": 0})
    output_dir: str | None = None
    backend: Literal[BACKENDS] | None = None  # type: ignore[valid-type]  # default: endpoint when endpoints are given
    steps: Literal[STEPS] | None = None  # type: ignore[valid-type]  # default: augment for the augment backend, else chain
    endpoints: list[str] = field(default_factory=list)
    api: Literal["chat", "generate"] = "chat"
    model: str | None = None  # the served model's name (endpoint) or a local model directory (transformers)
    max_concurrency: int | None = field(default=None, metadata={"min": 1})
    timeout: float = field(default=120.0, metadata={"min": 0})
    max_retries: int = field(default=5, metadata={"min": 0})
    stream: bool = False
    batch_size: int = field(default=8, metadata={"min": 1})
    samples: int = field(default=1, metadata={"min": 1})
    shots: int = field(default=3, metadata={"min": 0})
    examples: str = EXAMPLES_SOURCE  # the few-shot pool: a source name or a records file
    prompt_version: str = PROMPT_VERSION
    prompts_dir: str | None = None
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    back_translate: bool = False
    constrained: bool = True  # D2A answers under the action grammar, sent as structured_output says
    structured_output: str | None = None  # endpoint only; see chemactor.generation.backends.STRUCTURED_OUTPUTS
    seed: int = 0
    max_in_flight: int = field(default=256, metadata={"min": 1})
    # "i/n": this process does shard i (0 to n-1) of the inputs, split by id, into OUTPUT/shard-i-of-n/
    shard: str | None = None

    def __post_init__(self) -> None:
        for name in ("input", "examples"):
            value = getattr(self, name)
            if value is not None and value not in INPUT_SOURCES and not _exists(value):
                raise ConfigError(
                    f"{name}: {value!r} is neither a source ({', '.join(INPUT_SOURCES)}) nor an existing file or "
                    f"folder of records{closest(value, INPUT_SOURCES)}"
                )

    def shard_numbers(self) -> tuple[int, int] | None:
        """``(i, n)`` of ``shard`` (checked: ``0 <= i < n``), or ``None`` when the run is not sharded."""
        if self.shard is None:
            return None
        index, _, count = self.shard.partition("/")
        if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
            raise ConfigError(f"shard: expected i/n with 0 <= i < n (e.g. 0/3), got {self.shard!r}")
        return int(index), int(count)

    def resolved_output_dir(self) -> Path:
        """The output folder, or its ``shard-i-of-n`` subfolder: shards of one input list never share files."""
        assert self.output_dir is not None
        shard = self.shard_numbers()
        return Path(self.output_dir) / f"shard-{shard[0]}-of-{shard[1]}" if shard else Path(self.output_dir)

    def resolved_backend(self) -> str:
        return self.backend or ("endpoint" if self.endpoints else "augment")

    def resolved_steps(self) -> str:
        return self.steps or ("augment" if self.resolved_backend() == "augment" else "chain")

    def check_complete(self) -> None:
        """What a run needs beyond well-typed values; raised before any input is read."""
        for required in ("input", "output_dir"):
            if not getattr(self, required):
                raise ConfigError(f"{required} is required")
        self.shard_numbers()
        self.check_backend()

    def check_backend(self, path: str = "") -> None:
        """The backend has what it needs and goes with the steps (``path`` prefixes the key names)."""
        prefix = f"{path}." if path else ""
        backend = self.resolved_backend()
        if backend == "endpoint" and not self.endpoints:
            raise ConfigError(f"{prefix}endpoints: the endpoint backend needs at least one URL")
        if backend == "transformers" and not self.model:
            raise ConfigError(f"{prefix}model: the transformers backend needs a local model directory")
        if (backend == "augment") != (self.resolved_steps() == "augment"):
            raise ConfigError(f"{prefix}steps: {self.resolved_steps()!r} does not go with the {backend} backend")


def _exists(path: str) -> bool:
    """Whether ``path`` exists; a name the system cannot even look up (too long, say) does not."""
    try:
        return Path(path).exists()
    except (OSError, ValueError):
        return False


def run_from_config(
    config: GenerationConfig | Mapping[str, Any], *, retry_failed: bool = False, progress: bool = True
) -> RunSummary:
    """Build the backend and runner a recipe describes (:class:`GenerationConfig`) and run it.

    A mapping is validated first (:func:`chemactor.config.parse_config`), so nothing runs on a bad recipe.
    """
    options = config if isinstance(config, GenerationConfig) else parse_config(GenerationConfig, config)
    options.check_complete()
    assert options.input is not None and options.output_dir is not None
    backend_name, steps = options.resolved_backend(), options.resolved_steps()
    # a Dataset, not a list: rows are read from its memory-mapped Arrow table as the runner takes them
    inputs = read_records(options.input, data_dir=options.data_dir, split=options.split, limit=options.limit)
    backend: Backend
    if backend_name == "endpoint":
        backend = EndpointBackend(
            options.endpoints,
            model=options.model,
            max_concurrency=options.max_concurrency,
            timeout=options.timeout,
            max_retries=options.max_retries,
            api=options.api,
            stream=options.stream,
            structured_output=options.structured_output,
        )
    elif backend_name == "transformers":
        assert options.model is not None
        backend = TransformersBackend(options.model, batch_size=options.batch_size)
    else:
        backend = AugmentBackend(inputs, seed=options.seed)
    settings = RunSettings(
        steps=steps,
        samples=options.samples,
        shots=options.shots,
        prompt_version=options.prompt_version,
        prompts_dir=options.prompts_dir,
        sampling=options.sampling.as_params(),
        back_translate=options.back_translate,
        constrained=options.constrained,
        max_in_flight=options.max_in_flight,
    )
    needs_examples = steps != "augment" and settings.shots > 0
    examples = read_inputs(options.examples, options.data_dir) if needs_examples else []
    runner = GenerationRunner(backend, settings, examples)
    return runner.run(
        inputs,
        options.resolved_output_dir(),
        retry_failed=retry_failed,
        progress=progress,
        shard=options.shard_numbers(),
    )
