"""The whole method as one resumable command: seeds -> generation -> selection -> training -> evaluation -> publish.

A pipeline recipe (YAML) has one section per stage plus ``output_dir`` and ``seed``. Each stage calls the
public API of its module and writes into its own folder of the output directory; the next stage reads only
that folder::

    OUTPUT/1-seeds/data/           DatasetDict (save_to_disk) of the seed records, train/validation/test
    OUTPUT/2-generation/           the generation runner's output (manifest, JSONL shards, failures)
    OUTPUT/3-selection/            scores.parquet (every generated row's divergences, ``selected`` flag),
                                   selected/data.jsonl (the kept records), report.md and plots
    OUTPUT/4-training/model/       the fine-tuned model, tokenizer and model card (checkpoints while training)
    OUTPUT/5-evaluation/           report.json, report.md, predictions.jsonl, plots/
    OUTPUT/6-publish/dataset/      the dataset export that was pushed (when publishing is configured)
    OUTPUT/report.md               the final report: what each stage did, the headline scores

Every stage folder holds ``stage.json``: the stage's hash (its config section, the pipeline seed, the package
version and the outputs it reads, each named by its hash and the time it was written), its status and
summary. A rerun skips a stage whose hash is unchanged and whose status is ``done``; it reruns a stage left
``running`` or ``incomplete`` in place (the generation runner and the trainer resume from what is on disk);
and it clears and reruns a stage whose hash changed or that is forced, and then everything downstream, whose
inputs changed. A generation stage that left nothing usable (no rows, or more failed items than rows) is
``incomplete``, not done: :class:`StageIncomplete` (exit 3) stops the run there and a rerun retries it.

The whole recipe is parsed into the sections' dataclasses when it is read (:class:`PipelineConfig`), so a
mistake anywhere is reported, with its key path, before the first stage runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import datasets
import yaml

from chemactor import __version__
from chemactor.config import parse_config
from chemactor.cpu import torch_threads
from chemactor.data import EXAMPLES_SOURCE, SPLITS
from chemactor.errors import TRAIN_MODULES, ConfigError, FailedItemsError, closest, require_extra
from chemactor.evaluation import EvaluationConfig
from chemactor.generation.runner import INPUT_SOURCES, GenerationConfig
from chemactor.selection.divergence import DIVERGENCES
from chemactor.selection.selector import DEFAULT_WEIGHTS

STAGES: tuple[str, ...] = ("seeds", "generation", "selection", "training", "evaluation", "publish")
UPSTREAM: dict[str, tuple[str, ...]] = {
    "seeds": (),
    "generation": ("seeds",),
    "selection": ("seeds", "generation"),
    "training": ("seeds", "selection"),
    "evaluation": ("seeds", "selection", "training"),
    "publish": ("seeds", "generation", "selection", "training", "evaluation"),
}
STAGE_FILE = "stage.json"
SEED_TRAIN_FILE = "train.jsonl"
GENERATION_SUPPLIED: tuple[str, ...] = ("input", "data_dir", "split", "limit", "output_dir", "examples")
# the pipeline's own defaults for the generation section, where they differ from a generation recipe's
GENERATION_DEFAULTS: dict[str, Any] = {"backend": "augment", "samples": 4}
TRAINING_SUPPLIED: tuple[str, ...] = ("seed_sources", "data_dir", "generated_dir", "output_dir")


class PipelineConfigError(ConfigError):
    """A recipe that cannot run as written; the message names the file and the key path."""


class StageIncomplete(FailedItemsError):
    """A stage ran but left nothing usable (empty, or mostly failed); it is not marked done, a rerun retries it."""

    def __init__(self, message: str, summary: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.summary = dict(summary)


@dataclass
class SeedsConfig:
    """The ``seeds`` section: which seed sources, from where, how many rows per split."""

    sources: list[str] = field(default_factory=lambda: [EXAMPLES_SOURCE])
    data_dir: str | None = None
    max_rows_per_split: int | None = field(default=None, metadata={"min": 1})

    def __post_init__(self) -> None:
        from chemactor.builders import is_dataset_spec

        for index, source in enumerate(self.sources):
            if source not in INPUT_SOURCES and not is_dataset_spec(source):
                raise ConfigError(
                    f"sources[{index}]: {source!r} is not one of {', '.join(INPUT_SOURCES)}"
                    f"{closest(source, INPUT_SOURCES)} nor a load_dataset spec (REPO_OR_FOLDER[:CONFIG])"
                )


@dataclass
class PipelineGenerationConfig(GenerationConfig):
    """The ``generation`` section: a generation recipe's options, or ``dataset``, a ``load_dataset`` spec of
    generated rows to use instead of generating (``org/chemactor-data:selected``: data published before)."""

    dataset: str | None = None


@dataclass
class SelectionConfig:
    """The ``selection`` section (``chemactor select``'s options): the rule and the selector's settings
    (``DivergenceSelector``'s defaults where unset), or ``selector``: a fitted selector's folder (the
    ``selector/`` of an earlier selection, ``DivergenceSelector.save_pretrained``) to score with instead of
    fitting on the seed train split. It brings its own settings, so none is set with it; the seeds'
    validation and test rows are kept out besides those it was fitted with. The stage knows the folder by its
    name: after replacing what a name holds, rerun with ``--force selection``."""

    fraction: float = 0.5
    k: int | None = field(default=None, metadata={"min": 0})
    threshold: float | None = None
    divergence: Literal[DIVERGENCES] | None = None  # type: ignore[valid-type]
    smoothing: float | None = field(default=None, metadata={"min": 0})
    weights: dict[str, float] | None = None
    selector: str | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.weights or {}) - set(DEFAULT_WEIGHTS))
        if unknown:
            raise ConfigError(f"weights.{unknown[0]}: unknown view{closest(unknown[0], DEFAULT_WEIGHTS)}")
        if self.selector is not None:
            for name in SELECTOR_SETTINGS:
                if getattr(self, name) is not None:
                    raise ConfigError(f"{name}: must not be set with selector: a fitted selector brings its own")

    def selector_settings(self) -> dict[str, Any]:
        """The selector's settings the section sets (the others keep ``DivergenceSelector``'s defaults)."""
        return {name: getattr(self, name) for name in SELECTOR_SETTINGS if getattr(self, name) is not None}


SELECTOR_SETTINGS: tuple[str, ...] = ("divergence", "smoothing", "weights")


@dataclass
class PublishConfig:
    """The ``publish`` section: the repos to push to (neither: do not publish); new repos are private unless
    ``public`` (the ``--public`` flag of ``chemactor data push``)."""

    dataset_repo: str | None = None
    model_repo: str | None = None
    public: bool = False


CONSTRAINED_STAGES: tuple[str, ...] = ("generation", "training", "evaluation")  # the stages that produce actions
SECTIONS: dict[str, type] = {
    "seeds": SeedsConfig,
    "generation": PipelineGenerationConfig,
    "selection": SelectionConfig,
    "evaluation": EvaluationConfig,
    "publish": PublishConfig,
}


@dataclass
class PipelineRecipe:
    """The top level of a pipeline recipe; each section's keys are its stage's configuration fields."""

    output_dir: str
    seed: int = 42
    seeds: dict[str, Any] | None = None
    generation: dict[str, Any] | None = None
    selection: dict[str, Any] | None = None
    training: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None
    publish: dict[str, Any] | None = None


@dataclass
class PipelineConfig:
    """A parsed pipeline recipe: the sections as written (what the stage hashes cover) and their typed form.

    Every section is validated when the recipe is read (:func:`chemactor.config.parse_config`; the training
    section by TRL's parser, in :meth:`training_arguments`, before the first stage runs), so a misspelled
    key, a wrong type or an unknown backend, source or split stops the run before any work.
    """

    output_dir: Path
    seed: int = 42
    seeds: dict[str, Any] = field(default_factory=dict)
    generation: dict[str, Any] = field(default_factory=dict)
    selection: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    publish: dict[str, Any] = field(default_factory=dict)
    source: str = "<dict>"
    parsed: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for stage, cls in SECTIONS.items():
            raw = self.section(stage)
            if stage == "generation":
                forbidden = {
                    key: "the pipeline supplies it (the seed train split, the stage folder)"
                    for key in GENERATION_SUPPLIED
                }
                parsed = parse_config(
                    cls,
                    {**GENERATION_DEFAULTS, "seed": self.seed, **raw},
                    path=stage,
                    source=self.source,
                    forbidden=forbidden,
                )
                try:
                    parsed.check_backend(stage)
                except ConfigError as exc:
                    raise ConfigError(f"{self.source}: {exc}") from None
            else:
                parsed = parse_config(cls, raw, path=stage, source=self.source)
            self.parsed[stage] = parsed
        supplied = sorted(set(TRAINING_SUPPLIED) & set(self.training))
        if supplied:
            raise PipelineConfigError(
                f"{self.source}: training.{supplied[0]}: must not be set: the pipeline supplies it"
            )

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], source: str = "<dict>") -> PipelineConfig:
        try:
            recipe = parse_config(PipelineRecipe, raw, source=source)
            sections = {stage: dict(getattr(recipe, stage) or {}) for stage in STAGES}
            return cls(output_dir=Path(recipe.output_dir), seed=recipe.seed, source=source, **sections)
        except PipelineConfigError:
            raise
        except ConfigError as exc:
            raise PipelineConfigError(str(exc)) from None

    @classmethod
    def from_yaml(
        cls, path: str | Path, output_dir: str | Path | None = None, constrained: bool | None = None
    ) -> PipelineConfig:
        """Read a recipe; ``output_dir`` overrides the recipe's own, ``constrained`` the ``constrained`` key of
        every stage that produces actions (generation, training's held-out generations, evaluation)."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PipelineConfigError(f"{path}: cannot read the recipe: {exc}") from None
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise PipelineConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(raw, Mapping):
            raise PipelineConfigError(f"{path}: a recipe is a mapping of sections, got {type(raw).__name__}")
        if output_dir is not None:
            raw = {**raw, "output_dir": str(output_dir)}
        if constrained is not None:
            for stage in CONSTRAINED_STAGES:
                section = raw.get(stage) or {}
                if isinstance(section, Mapping):  # anything else is reported by the validator
                    raw = {**raw, stage: {**section, "constrained": constrained}}
        return cls.from_mapping(raw, source=str(path))

    def section(self, stage: str) -> dict[str, Any]:
        """The options of ``stage`` as written in the recipe (what its hash covers)."""
        return getattr(self, stage)

    def options(self, stage: str) -> dict[str, Any]:
        """The options of ``stage`` with the defaults filled in (the training section: as written)."""
        parsed = self.parsed.get(stage)
        return dict(self.training) if parsed is None else dataclasses.asdict(parsed)

    def training_arguments(self, output_dir: Path) -> tuple[Any, Any, Any]:
        """The SFT recipe's ``(ScriptArguments, SFTConfig, ModelConfig)`` for the training section."""
        require_extra(TRAIN_MODULES, "train", "the pipeline's training stage (run it with --until selection)")
        from chemactor.training import parse_recipe_dict

        try:
            return parse_recipe_dict({"seed": self.seed, **self.training, "output_dir": str(output_dir)}, "training")
        except ConfigError as exc:
            raise PipelineConfigError(f"{self.source}: {exc}") from None


@dataclass
class StageResult:
    """What one stage did in this run: ``ran``, ``skipped`` (unchanged) or ``disabled``."""

    name: str
    status: str
    directory: Path
    hash: str
    seconds: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)


# --- the stages --------------------------------------------------------------------------------------------
# Each takes the config, the folders of the stages it reads and its own folder, and returns a JSON summary.


def _load_seed_records(directory: Path) -> datasets.DatasetDict:
    return datasets.load_from_disk(str(directory / "data"))


def run_seeds(config: PipelineConfig, inputs: Mapping[str, Path], output: Path) -> dict[str, Any]:
    """Seed records of every source, concatenated per split (``examples``: the set the project ships)."""
    from chemactor.builders import load_seeds
    from chemactor.data import write_records

    stage = config.options("seeds")
    limit = stage["max_rows_per_split"]
    parts = [load_seeds(source, stage["data_dir"]) for source in stage["sources"]]
    splits = {}
    for split in SPLITS:
        pieces = [part[split] for part in parts if split in part]
        if limit is not None:  # a random subset, so a large source (ORD) does not give only its first file
            pieces = [piece.shuffle(seed=config.seed).select(range(min(limit, len(piece)))) for piece in pieces]
        splits[split] = datasets.concatenate_datasets(pieces).flatten_indices()
    seeds = datasets.DatasetDict(splits)
    seeds.save_to_disk(str(output / "data"))
    write_records(seeds["train"], output / SEED_TRAIN_FILE)  # the generation stage's inputs and few-shot pool
    sources = [
        {
            "name": name,
            "license": part["train"].info.license or ("MIT" if name == "examples" else ""),
            "homepage": part["train"].info.homepage,
            "rows": {split: len(rows) for split, rows in part.items()},
        }
        for name, part in zip(stage["sources"], parts, strict=True)
    ]
    return {"sources": sources, "rows": {split: len(rows) for split, rows in seeds.items()}}


def run_generation(config: PipelineConfig, inputs: Mapping[str, Path], output: Path) -> dict[str, Any]:
    """Generated records from the seed *train* split only, so no evaluation row has a generated relative.

    With ``dataset`` (a ``load_dataset`` spec such as ``org/chemactor-data:selected``) the rows are those
    already published instead, written as the stage's one shard with a manifest naming their source.
    """
    from chemactor.generation.runner import run_from_config

    spec = config.parsed["generation"].dataset
    if spec:
        from chemactor.builders import read_records
        from chemactor.data import write_records

        rows = read_records(spec)
        write_records(rows, output / "shards" / "part-00000.jsonl")
        manifest = {"dataset": spec, "rows": len(rows), "written": _now()}
        (output / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        return {"backend": "dataset", "dataset": spec, "rows": len(rows), "rows_written": len(rows)}

    train_file = str(inputs["seeds"] / SEED_TRAIN_FILE)
    stage = dataclasses.replace(
        config.parsed["generation"], input=train_file, examples=train_file, output_dir=str(output)
    )
    # a rerun of an incomplete stage should finish it: ask again for what failed before
    summary = run_from_config(stage, retry_failed=True)
    rows = summary.skipped + summary.done  # with retry_failed every skipped item is a finished row
    # rows the step cannot use at all (a procedure without a reaction for the chain) are not failures of it
    failed = sum(count for kind, count in summary.failed.items() if kind != "input")
    result = {
        "backend": stage.resolved_backend(),
        "rows": rows,
        "rows_written": summary.done,
        "failed": dict(summary.failed),
        "crosscheck_failed": summary.crosscheck_failed,
    }
    if not rows or failed > rows:
        counts = ", ".join(f"{kind} {count}" for kind, count in sorted(summary.failed.items())) or "none"
        raise StageIncomplete(
            f"generation left {rows} rows and {failed} failed items ({counts}); the stage is not marked done: "
            "rerun the pipeline to retry the failed items",
            summary=result,
        )
    return result


def run_selection(config: PipelineConfig, inputs: Mapping[str, Path], output: Path) -> dict[str, Any]:
    """Score the generated pool against the seed train split and keep the closest rows (selection's own run)."""
    from chemactor.builders import read_records
    from chemactor.selection import DivergenceSelector
    from chemactor.selection.run import run_selection as select

    stage: SelectionConfig = config.parsed["selection"]
    rule = {name: getattr(stage, name) for name in ("k", "threshold") if getattr(stage, name) is not None} or {
        "fraction": stage.fraction
    }
    seeds = _load_seed_records(inputs["seeds"])
    # the seeds' validation and test rows are evaluation data: generated rows that copy them are dropped
    held_out = datasets.concatenate_datasets([seeds[name] for name in ("validation", "test") if name in seeds])
    generated = read_records(inputs["generation"])
    if stage.selector is not None:
        selector = DivergenceSelector.from_pretrained(stage.selector)
        return select(None, generated, output, selector=selector, held_out=held_out, **rule)
    selector = DivergenceSelector(**stage.selector_settings())
    return select(seeds["train"], generated, output, selector=selector, held_out=held_out, **rule)


def run_training(config: PipelineConfig, inputs: Mapping[str, Path], output: Path) -> dict[str, Any]:
    """Fine-tune with the SFT recipe on the seed train split mixed with the selected generated rows.

    The section holds the recipe's own fields (``chemactor.training.ScriptArguments``, TRL's ``SFTConfig``
    and ``ModelConfig``); seeds and generated data come from the previous stages instead of ``seed_sources``.
    """
    from chemactor.builders import read_records
    from chemactor.training import TrainingData, build_trainer, mix_generated, train_and_save

    args, training_args, model_args = config.training_arguments(output / "model")
    seeds = _load_seed_records(inputs["seeds"])
    selected_dir = inputs["selection"] / "selected"
    records = datasets.DatasetDict({"train": seeds["train"], "validation": seeds["validation"]})
    records, generated = mix_generated(records, read_records(selected_dir), args.mix_ratio, training_args.seed)
    sources = read_stage(inputs["seeds"])["summary"]["sources"]
    trainer = build_trainer(args, training_args, model_args, records)
    data = TrainingData(records, sources, {"path": str(selected_dir), **generated})
    metrics = train_and_save(trainer, args, model_args, data)
    return {"train_rows": len(records["train"]), "metrics": metrics, "torch_threads": torch_threads()}


def run_evaluation(config: PipelineConfig, inputs: Mapping[str, Path], output: Path) -> dict[str, Any]:
    """Evaluate the trained model on a held-out seed split (see :func:`chemactor.evaluation.evaluate_model`)."""
    from chemactor.evaluation import evaluate_model
    from chemactor.hub import headline_scores

    stage = config.options("evaluation")
    report = evaluate_model(
        inputs["training"] / "model",
        _load_seed_records(inputs["seeds"]),
        output,
        split=stage["split"],
        circle_rounds=stage["circle_rounds"],
        batch_size=stage["batch_size"],
        max_new_tokens=stage["max_new_tokens"],
        selection=datasets.Dataset.from_parquet(str(inputs["selection"] / "scores.parquet")),
        examples_shown=stage["examples_shown"],
        metrics=stage["metrics"],
        constrained=stage["constrained"],
        reviewers=stage["reviewers"],
    )
    scores = headline_scores(report)
    return {"split": stage["split"], "counts": report["counts"], "scores": scores, "torch_threads": torch_threads()}


def run_publish(config: PipelineConfig, inputs: Mapping[str, Path], output: Path) -> dict[str, Any]:
    """Push the data as a dataset repo and the model as a model repo, each with what explains it.

    The dataset repo: the seeds and the selected generated rows, and under ``reproduce/`` the recipe, the
    generation manifest, the prompt templates and the selection report. The model repo: config, weights and
    tokenizer only (never checkpoints or optimizer states), a card that links the dataset repo and carries the
    evaluation's headline scores as a ``model-index``, and the evaluation report under ``evaluation/``.
    """
    from chemactor.builders import read_records
    from chemactor.hub import (
        TRAINING_FACTS,
        ExportError,
        eval_results,
        export_dataset,
        push_dataset,
        push_model,
        render_model_card,
    )

    stage = config.options("publish")
    dataset_repo, model_repo = stage["dataset_repo"], stage["model_repo"]
    pushed = {}
    if dataset_repo:
        selected = read_records(inputs["selection"] / "selected")
        folder = export_dataset(
            {"seeds": _load_seed_records(inputs["seeds"]), "selected": datasets.DatasetDict({"train": selected})},
            output / "dataset",
            pretty_name="ChemActor training data",
            overwrite=True,
            reproduction=_reproduction_files(config, inputs),
        )
        pushed["dataset"] = push_dataset(folder, dataset_repo, private=not stage["public"])
    if model_repo:
        model_dir = inputs["training"] / "model"
        facts_path = model_dir / TRAINING_FACTS
        if not facts_path.is_file():
            raise ExportError(f"{facts_path} is missing: rerun training (--force training) to write it")
        report = json.loads((inputs["evaluation"] / "report.json").read_text(encoding="utf-8"))
        evaluation = eval_results(
            report,
            dataset_id=dataset_repo or "+".join(config.options("seeds")["sources"]),
            dataset_name="ChemActor seeds",
            dataset_config="seeds" if dataset_repo else None,
            split=config.options("evaluation")["split"],
        )
        facts = json.loads(facts_path.read_text(encoding="utf-8"))
        card = render_model_card(facts, repo_id=model_repo, dataset_repo=dataset_repo, evaluation=evaluation)
        (output / "model").mkdir(parents=True, exist_ok=True)
        card.save(output / "model" / "README.md")  # the card as pushed
        pushed["model"] = push_model(
            model_dir, model_repo, private=not stage["public"], card=card, evaluation_dir=inputs["evaluation"]
        )
    return {"pushed": pushed}


def _reproduction_files(config: PipelineConfig, inputs: Mapping[str, Path]) -> dict[str, Path | bytes]:
    """What reproduces the published data: the recipe that made it, the generation manifest, the prompt
    templates (the generation prompts the manifest names, and the task views the model is trained on) and
    the selection report with its plots."""
    from chemactor.data import TASKS, task_prompt
    from chemactor.hub import ExportError
    from chemactor.prompts import load_prompt, prompt_name

    recipe = {
        "output_dir": "outputs/reproduce",
        "seed": config.seed,
        **{stage: config.section(stage) for stage in STAGES if stage != "publish" and config.section(stage)},
    }
    files: dict[str, Path | bytes] = {
        "pipeline.yaml": yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True).encode("utf-8"),
        "generation/manifest.json": inputs["generation"] / "manifest.json",
    }
    manifest = json.loads((inputs["generation"] / "manifest.json").read_text(encoding="utf-8"))
    prompts_dir = manifest.get("settings", {}).get("prompts_dir")
    for task, provenance in sorted(manifest.get("prompts", {}).items()):
        prompt = load_prompt(prompt_name(task, provenance["version"]), prompts_dir)
        if prompt.sha256 != provenance["sha256"]:
            raise ExportError(
                f"prompt {prompt.name} ({prompts_dir or 'shipped'}) changed since it generated the data "
                f"(SHA-256 {provenance['sha256']} then, {prompt.sha256} now)"
            )
        files[f"prompts/{prompt.name}.jinja"] = prompt.text.encode("utf-8")
    for task in TASKS:  # the task views the model is trained and asked with
        prompt = task_prompt(task)
        files[f"prompts/{prompt.name}.jinja"] = prompt.text.encode("utf-8")
    for path in sorted([inputs["selection"] / "report.md", *inputs["selection"].glob("*.png")]):
        files[f"selection/{path.name}"] = path
    return files


RUNNERS: dict[str, Callable[[PipelineConfig, Mapping[str, Path], Path], dict[str, Any]]] = {
    "seeds": run_seeds,
    "generation": run_generation,
    "selection": run_selection,
    "training": run_training,
    "evaluation": run_evaluation,
    "publish": run_publish,
}


# --- orchestration -----------------------------------------------------------------------------------------


def stage_dir(output_dir: Path, stage: str) -> Path:
    return output_dir / f"{STAGES.index(stage) + 1}-{stage}"


def stage_hash(config: PipelineConfig, stage: str, produced: Mapping[str, str]) -> str:
    """The identity of a stage's run: its options, the seed, the code version and what it reads.

    ``produced`` names each upstream output by its hash and the time it was written, so a stage rerun on
    purpose (``force``) makes everything downstream rerun too.
    """
    identity = {
        "stage": stage,
        "options": config.section(stage),
        "seed": config.seed,
        "upstream": {name: produced[name] for name in UPSTREAM[stage]},
        "version": __version__,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def read_stage(directory: Path) -> dict[str, Any]:
    path = directory / STAGE_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _write_stage(directory: Path, record: Mapping[str, Any]) -> None:
    partial = directory / (STAGE_FILE + ".partial")
    partial.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    partial.replace(directory / STAGE_FILE)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()  # microseconds: two runs never share a timestamp


def run_pipeline(
    config: PipelineConfig | str | Path,
    *,
    force: Sequence[str] = (),
    until: str | None = None,
    log: Callable[[str], None] = print,
) -> list[StageResult]:
    """Run (or resume) every stage up to ``until``; ``force`` reruns the named stages even if unchanged.

    Publishing runs only when the ``publish`` section names a repo. Writes ``OUTPUT/report.md`` and returns
    one :class:`StageResult` per stage considered.
    """
    if not isinstance(config, PipelineConfig):
        config = PipelineConfig.from_yaml(config)
    for name in [*force, *([until] if until else [])]:
        if name not in STAGES:
            raise PipelineConfigError(f"unknown stage {name!r}; stages are {', '.join(STAGES)}")
    last = STAGES.index(until) if until else len(STAGES) - 1
    # fail early on a typo; a light install (no trl) can still run the stages before training
    if last >= STAGES.index("training") or (config.training and importlib.util.find_spec("trl") is not None):
        config.training_arguments(stage_dir(config.output_dir, "training") / "model")
    config.output_dir.mkdir(parents=True, exist_ok=True)
    produced: dict[str, str] = {}  # stage -> "hash@finished" of the output it left
    results: list[StageResult] = []
    for stage in STAGES[: last + 1]:
        directory = stage_dir(config.output_dir, stage)
        digest = stage_hash(config, stage, produced)
        if stage == "publish" and not any(config.publish.get(key) for key in ("dataset_repo", "model_repo")):
            results.append(StageResult(stage, "disabled", directory, digest))
            continue
        previous = read_stage(directory)
        if previous.get("hash") == digest and previous.get("status") == "done" and stage not in force:
            log(f"[{stage}] unchanged ({digest}), skipped")
            produced[stage] = f"{digest}@{previous['finished']}"
            results.append(StageResult(stage, "skipped", directory, digest, previous["seconds"], previous["summary"]))
            continue
        if previous.get("hash") != digest or stage in force:
            shutil.rmtree(directory, ignore_errors=True)  # stale output must never mix with the new
        directory.mkdir(parents=True, exist_ok=True)
        log(f"[{stage}] running -> {directory}")
        record = {"stage": stage, "hash": digest, "options": config.section(stage), "started": _now()}
        _write_stage(directory, {**record, "status": "running"})
        started = time.monotonic()
        inputs = {name: stage_dir(config.output_dir, name) for name in UPSTREAM[stage]}
        try:
            summary = RUNNERS[stage](config, inputs, directory)
        except StageIncomplete as exc:
            seconds = round(time.monotonic() - started, 1)
            incomplete = {"status": "incomplete", "error": str(exc), "seconds": seconds, "summary": exc.summary}
            _write_stage(directory, {**record, **incomplete})
            log(f"[{stage}] incomplete: {exc}")
            raise
        seconds, finished = round(time.monotonic() - started, 1), _now()
        done = {"status": "done", "finished": finished, "seconds": seconds, "summary": summary}
        _write_stage(directory, {**record, **done})
        log(f"[{stage}] done in {seconds:.1f} s")
        produced[stage] = f"{digest}@{finished}"
        results.append(StageResult(stage, "ran", directory, digest, seconds, summary))
    (config.output_dir / "report.md").write_text(render_report(config, results), encoding="utf-8")
    return results


def render_report(config: PipelineConfig, results: Sequence[StageResult]) -> str:
    """The pipeline's own report: one row per stage, then the evaluation's headline scores and a link."""
    rows = [
        f"| {result.name} | {result.status} | {result.seconds:.1f} | `{result.directory.name}/` | {result.hash} |"
        for result in results
    ]
    lines = [
        f"# ChemActor pipeline: `{config.source}`",
        "",
        f"Output: `{config.output_dir}`, seed {config.seed}.",
        "",
        "| stage | status | seconds (when it ran) | folder | hash |",
        "|---|---|---|---|---|",
        *rows,
    ]
    by_name = {result.name: result for result in results}
    if "seeds" in by_name:
        counts = ", ".join(f"{split} {count}" for split, count in by_name["seeds"].summary["rows"].items())
        lines += ["", f"Seed rows: {counts}."]
    if "selection" in by_name:
        summary, folder = by_name["selection"].summary, by_name["selection"].directory.name
        lines += [
            f"Generated pool {summary['pool']} rows ({summary['duplicates']} duplicates), {summary['selected']} "
            f"selected; see [{folder}/report.md]({folder}/report.md)."
        ]
    if "evaluation" in by_name:
        evaluation = by_name["evaluation"]
        lines += [
            "",
            f"## Scores on the `{evaluation.summary['split']}` split",
            "",
            "| score | value |",
            "|---|---|",
            *(f"| {name} | {value:.3f} |" for name, value in evaluation.summary["scores"].items()),
            "",
            f"Full report with examples and plots: [{evaluation.directory.name}/report.md]"
            f"({evaluation.directory.name}/report.md).",
        ]
    return "\n".join(lines) + "\n"
