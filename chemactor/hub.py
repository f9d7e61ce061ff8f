"""Cards and publishing: a dataset folder that ``load_dataset`` reads, and pushing folders to the Hub.

A dataset export is parquet per config and split plus a ``README.md`` whose YAML front matter lists
``configs:``; that is what ``datasets`` 5 reads from a directory or a Hub repo (it no longer runs
dataset scripts), so ``load_dataset(DIR, "ord")`` and ``load_dataset("org/name", "ord")`` work alike.
Cards are rendered from the Jinja templates in ``model_cards/`` through huggingface_hub's card classes.
Templates and metric modules are read as package resources (``chemactor/resources`` links to the top-level
``model_cards/`` and ``metrics/`` in a checkout; a wheel carries copies), so an installed package publishes
exactly what a checkout does.

Publishing is one commit per push (card included), with typed errors: a refused or failed push raises
:class:`PublishError` and never touches the local folder.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

import datasets
from datasets.info import DatasetInfosDict
from huggingface_hub import (
    CommitOperationAdd,
    DatasetCard,
    DatasetCardData,
    EvalResult,
    HfApi,
    ModelCard,
    ModelCardData,
)
from huggingface_hub.errors import HfHubHTTPError

from chemactor import __version__
from chemactor.data import FIELD_DESCRIPTIONS, prompt_for
from chemactor.errors import OutputError, PublishError

RESOURCES = files("chemactor") / "resources"
CARD = "README.md"
REPRODUCE_DIR = "reproduce"


class ExportError(OutputError):
    """An export folder cannot be written or is not an export (names the folder and the problem)."""


EXPORT_MANIFEST = ".chemactor-export.json"


def export_dataset(
    configs: Mapping[str, datasets.DatasetDict],
    output_dir: str | Path,
    *,
    summaries: Mapping[str, Mapping[str, Any]] | None = None,
    pretty_name: str = "ChemActor seeds",
    overwrite: bool = False,
    inputs: Sequence[str | Path] = (),
    reproduction: Mapping[str, Path | bytes] | None = None,
) -> Path:
    """Write ``configs`` as ``<config>/<split>-00000-of-00001.parquet`` plus a dataset card; return the folder.

    ``summaries`` (per config: dropped rows by reason, cross-split texts, build time) go into the card.
    ``reproduction`` (path under ``reproduce/`` -> a file or its bytes: the recipe, manifest, prompt
    templates and selection report that made the data) is written beside the data and listed in the card;
    ``load_dataset`` ignores it, since the card's ``configs:`` name the data files. The files written are
    listed in a manifest (``.chemactor-export.json``), which is what ``overwrite`` removes and what
    :func:`push_dataset` uploads: files someone else put in the folder are never deleted, replaced or
    published. An existing non-empty folder is refused unless ``overwrite``, and so is an output folder
    that is, contains or lies inside one of ``inputs`` (the data the export was built from).
    """
    output = Path(output_dir)
    _refuse_overlap(output, inputs)
    reproduced = {f"{REPRODUCE_DIR}/{name}": source for name, source in sorted((reproduction or {}).items())}
    parquet = [f"{name}/{split}-00000-of-00001.parquet" for name, splits in configs.items() for split in splits]
    files = [CARD, *parquet, *reproduced]
    if output.exists() and any(output.iterdir()):
        if not overwrite:
            raise ExportError(f"{output} is not empty; pass overwrite=True (--overwrite) to replace its export")
        earlier = exported_files(output)
        if earlier is None:
            raise ExportError(
                f"{output} holds files that no chemactor export wrote (no {EXPORT_MANIFEST}); "
                "refusing to delete anything there: choose an empty or new folder"
            )
        foreign = [name for name in files if (output / name).exists() and name not in earlier]
        if foreign:
            raise ExportError(f"{output}: {', '.join(foreign)} was not written by an export; refusing to replace it")
        for name in earlier:
            (output / name).unlink(missing_ok=True)
        for folder in {(output / name).parent for name in earlier} - {output}:
            with contextlib.suppress(OSError):  # a config folder goes once empty; one holding user files stays
                folder.rmdir()
    output.mkdir(parents=True, exist_ok=True)
    # The manifest first: a kill mid-export leaves files the next --overwrite knows to be its own.
    (output / EXPORT_MANIFEST).write_text(json.dumps({"files": files}, indent=2) + "\n", encoding="utf-8")
    for name, splits in configs.items():
        (output / name).mkdir(parents=True, exist_ok=True)
        for split, rows in splits.items():
            rows.to_parquet(str(output / name / f"{split}-00000-of-00001.parquet"))
    for name, source in reproduced.items():
        (output / name).parent.mkdir(parents=True, exist_ok=True)
        (output / name).write_bytes(source if isinstance(source, bytes) else Path(source).read_bytes())
    card = dataset_card(configs, output, summaries=summaries or {}, pretty_name=pretty_name, reproduction=[*reproduced])
    card.save(output / CARD)
    return output


def exported_files(folder: str | Path) -> list[str] | None:
    """The files (relative paths) the last export into ``folder`` wrote, or ``None`` without a manifest."""
    manifest = Path(folder) / EXPORT_MANIFEST
    if not manifest.is_file():
        return None
    try:
        files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ExportError(f"{manifest}: not an export manifest ({exc})") from None
    unsafe = [
        name for name in files if not isinstance(name, str) or Path(name).is_absolute() or ".." in Path(name).parts
    ]
    if unsafe:
        raise ExportError(f"{manifest}: names files outside the export folder: {unsafe[:3]}")
    return files


def _refuse_overlap(output: Path, inputs: Sequence[str | Path]) -> None:
    """Raise :class:`ExportError` if ``output`` is, contains or is inside one of ``inputs``."""
    target = output.resolve()
    for source in inputs:
        source_path = Path(source).resolve()
        if target == source_path or source_path in target.parents or target in source_path.parents:
            relation = "is" if target == source_path else "is inside" if source_path in target.parents else "contains"
            raise ExportError(f"output folder {output} {relation} the input {source}; choose a folder apart from it")


def dataset_card(
    configs: Mapping[str, datasets.DatasetDict],
    folder: Path,
    *,
    summaries: Mapping[str, Mapping[str, Any]],
    pretty_name: str,
    reproduction: Sequence[str] = (),
) -> DatasetCard:
    """The card of an export in ``folder``: YAML ``configs:`` for ``load_dataset``, then sizes and provenance."""
    described = []
    for name, splits in configs.items():
        info = next(iter(splits.values())).info
        first = next((rows[0] for rows in splits.values() if len(rows)), None)
        described.append(
            {
                "name": name,
                "description": info.description,
                "license": info.license,
                "citation": info.citation.strip(),
                "homepage": info.homepage,
                "rows": {split: len(rows) for split, rows in splits.items()},
                "parquet_bytes": sum(path.stat().st_size for path in (folder / name).glob("*.parquet")),
                "summary": dict(summaries.get(name, {})),
                "example": json.dumps(first, ensure_ascii=False, indent=2) if first else "",
            }
        )
    total = sum(sum(config["rows"].values()) for config in described)
    card_data = DatasetCardData(
        pretty_name=pretty_name,
        license=sorted({config["license"] for config in described if config["license"]}),
        language=["en"],
        task_categories=["text-generation"],
        tags=["chemistry", "synthesis", "reactions", "chemactor"],
        size_categories=[_size_category(total)],
        # The first config is the default, so that a bare ``load_dataset(DIR)`` works too.
        configs=[
            {
                "config_name": config["name"],
                "data_files": [
                    {"split": split, "path": f"{config['name']}/{split}-*.parquet"} for split in config["rows"]
                ],
                **({"default": True} if index == 0 else {}),
            }
            for index, config in enumerate(described)
        ],
    )
    # Features and split sizes go into the YAML too: load_dataset then types the columns from the card
    # and checks that every split arrived whole.
    DatasetInfosDict({name: _split_info(splits) for name, splits in configs.items()}).to_dataset_card_data(card_data)
    return DatasetCard.from_template(
        card_data,
        template_str=_template("dataset_card.md"),
        configs_described=described,
        fields=FIELD_DESCRIPTIONS,
        total_rows=total,
        reproduction=list(reproduction),
    )


def push_dataset(folder: str | Path, repo_id: str, *, private: bool = True, token: str | None = None) -> str:
    """Publish an export folder as the dataset repo ``repo_id`` (one commit); returns the commit URL.

    Only the files the export wrote (its manifest) are uploaded, never anything else in the folder (an
    ``.env``, notes); a new repo is private unless ``private=False`` (``--public``).
    """
    folder = Path(folder)
    configs = _exported_configs(folder)
    if not configs:
        raise ExportError(f"{folder} is not a dataset export: no {CARD} listing configs (run `chemactor data build`)")
    files = exported_files(folder) or [CARD, *(f"{name}/*.parquet" for name in configs)]
    return push_folder(folder, repo_id, repo_type="dataset", private=private, token=token, allow_patterns=files)


def push_folder(
    folder: str | Path,
    repo_id: str,
    *,
    repo_type: str = "model",
    private: bool = False,
    commit_message: str | None = None,
    token: str | None = None,
    allow_patterns: Sequence[str] | None = None,
) -> str:
    """Create ``repo_id`` if needed and upload ``folder`` in one commit; returns the commit URL.

    Dotfiles and dot-folders (``.env``, ``.cache``) are never uploaded; ``allow_patterns`` limits the upload
    to the files it names. Any Hub failure (refused token, server error, unreachable endpoint) becomes
    :class:`PublishError` naming the repo and the cause; the folder is only read.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f"nothing to push: {folder} is not a folder")
    api = HfApi(token=token)
    with _publishing(f"pushing {folder} to {repo_type} repo {repo_id!r}"):
        # a Space must name its SDK; metric Spaces (the only Spaces published here) are Gradio apps
        space_sdk = "gradio" if repo_type == "space" else None
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, space_sdk=space_sdk)
        commit = api.upload_folder(
            repo_id=repo_id,
            repo_type=repo_type,
            folder_path=folder,
            commit_message=commit_message or f"Upload {folder.name} with chemactor",
            allow_patterns=list(allow_patterns) if allow_patterns is not None else None,
            ignore_patterns=[".*", "**/.*", "**/.*/**", ".*/**"],
        )
    return commit.commit_url


@contextlib.contextmanager
def _publishing(what: str) -> Iterator[None]:
    """Turn any Hub failure (refused token, server error, unreachable endpoint) into :class:`PublishError`."""
    try:
        yield
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        raise PublishError(f"{what} failed: {exc}", status) from exc
    except OSError as exc:  # connection refused, DNS, offline mode
        raise PublishError(f"{what} failed: {exc}") from exc


def push_metric(
    name: str, repo_id: str, *, private: bool = False, token: str | None = None, requirement: str | None = None
) -> str:
    """Publish the metric module ``name`` (``metrics/<name>``) as a Gradio Space: ``evaluate.load(repo_id)``
    then loads it from the Hub.

    The Space's ``requirements.txt`` asks for the light core, no extras (a metric needs no torch), pinned to
    this version: ``chemactor==<version>``. ``requirement`` replaces that line where no package index has the
    version (a Git or wheel URL, say). Returns the commit URL.
    """
    metrics = RESOURCES / "metrics"
    if not (metrics / name / f"{name}.py").is_file():
        known = sorted(entry.name for entry in metrics.iterdir() if (entry / f"{entry.name}.py").is_file())
        raise ExportError(f"no metric module {name!r} in the package; known: {', '.join(known)}")
    with as_file(metrics / name) as source, tempfile.TemporaryDirectory(prefix="chemactor-space-") as staging:
        shutil.copytree(source, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        path = Path(staging) / "requirements.txt"
        core = requirement or f"chemactor=={__version__}"
        lines = [core if line.strip() == "chemactor" else line for line in path.read_text(encoding="utf-8").split("\n")]
        path.write_text("\n".join(lines), encoding="utf-8")
        return push_folder(
            staging, repo_id, repo_type="space", private=private, token=token, commit_message=f"Upload metric {name}"
        )


def _template(name: str) -> str:
    """The card template ``model_cards/<name>``, as shipped in the package."""
    return (RESOURCES / "model_cards" / name).read_text(encoding="utf-8")


def _split_info(splits: datasets.DatasetDict) -> datasets.DatasetInfo:
    sizes = datasets.SplitDict()
    for split, rows in splits.items():
        sizes.add(datasets.SplitInfo(name=split, num_examples=len(rows), num_bytes=rows.data.nbytes))
    total = sum(size.num_bytes for size in sizes.values())
    return datasets.DatasetInfo(features=next(iter(splits.values())).features, splits=sizes, dataset_size=total)


def _exported_configs(folder: Path) -> list[str]:
    card = folder / CARD
    if not card.is_file():
        return []
    return [config["config_name"] for config in DatasetCard.load(card).data.to_dict().get("configs", [])]


def _size_category(rows: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if rows < limit:
            return name
    return "n>1M"


# --- models -----------------------------------------------------------------------------------------------

# What a model repo needs, as file-name patterns of the trained folder's top level: config and weights
# (full or sharded, safetensors or torch, or a PEFT adapter), the tokenizer, the card and the training facts.
# Anything else the trainer leaves there (checkpoints, optimizer and scheduler states, trainer state, RNG
# files, training_args.bin, logs) is never pushed.
MODEL_FILES: tuple[str, ...] = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "model-*-of-*.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model-*-of-*.bin",
    "pytorch_model.bin.index.json",
    "adapter_config.json",
    "adapter_model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "tokenizer.model",
    "chat_template.jinja",
    "chat_template.json",
    CARD,
    "training_facts.json",
)
TRAINING_FACTS = "training_facts.json"
# The evaluation report goes beside the model, under evaluation/ (the card links it).
EVALUATION_FILES: tuple[str, ...] = ("report.md", "report.json", "predictions.jsonl", "plots/*.png")
EVALUATION_DIR = "evaluation"
# The headline scores of an evaluation report that go into the card's model-index: report section -> metrics
# (the names of chemactor.scoring and the metric modules). huggingface_hub keeps one task per dataset and split
# in a model-index, so the three conversions share one task entry and their metrics carry the task's prefix.
EVALUATED_METRICS: dict[str, tuple[str, ...]] = {
    "d2a": ("full_sentence_accuracy", "partial_accuracy_0.75", "levenshtein_similarity", "modified_bleu", "validity"),
    "r2d": ("bleu", "rouge1", "rouge2", "rougeL"),
    "circle": ("circle_score",),
}
EVALUATED_TASK = "Synthesis procedures: description to actions (d2a), reaction to description (r2d), circle review"


def model_facts(
    model: Any,
    *,
    base_model: str | None,
    sources: Sequence[Mapping[str, Any]],
    generated: Mapping[str, Any] | None,
    tasks: Sequence[str],
    metrics: Mapping[str, float],
    training_args: Any,
    train_rows: int | None = None,
    chat: bool = False,
) -> dict[str, Any]:
    """What a trained model's card says, as JSON: saved beside the model so the card can be re-rendered later.

    The publish stage adds what only it knows (the dataset repo, the evaluation report) without loading the
    model again, and a core install without torch can do it.
    """
    config = model.config
    return {
        "base_model": base_model,
        "architecture": config.model_type,
        "parameters": sum(parameter.numel() for parameter in model.parameters()),
        "layers": getattr(config, "num_hidden_layers", None),
        "hidden_size": getattr(config, "hidden_size", None),
        "chat": chat,
        "sources": [dict(source) for source in sources],
        "generated": dict(generated) if generated else None,
        "train_rows": train_rows,
        "tasks": list(tasks),
        "metrics": {name: value for name, value in sorted(metrics.items()) if isinstance(value, (int, float))},
        "hyperparameters": {
            name: getattr(getattr(training_args, name), "value", getattr(training_args, name))  # enums by value
            for name in (
                "learning_rate",
                "lr_scheduler_type",
                "warmup_steps",
                "num_train_epochs",
                "max_steps",
                "per_device_train_batch_size",
                "gradient_accumulation_steps",
                "max_length",
                "bf16",
                "seed",
            )
        },
        "world_size": training_args.world_size,
    }


def headline_scores(report: Mapping[str, Any]) -> dict[str, float]:
    """The headline scores of an evaluation report (``chemactor.evaluation``), named by task: ``d2a_<metric>``,
    ``r2d_<metric>`` and ``circle_score``. The pipeline's report and the model card's model-index show these."""
    scores = {}
    for section, names in EVALUATED_METRICS.items():
        for name in names:
            value = (report.get(section) or {}).get(name)
            if isinstance(value, (int, float)):
                scores[name if section == "circle" else f"{section}_{name}"] = float(value)
    return scores


def eval_results(
    report: Mapping[str, Any], *, dataset_id: str, dataset_name: str, dataset_config: str | None, split: str
) -> list[EvalResult]:
    """The :func:`headline_scores` of an evaluation report as model-index entries."""
    return [
        EvalResult(
            task_type="text-generation",
            task_name=EVALUATED_TASK,
            dataset_type=dataset_id,
            dataset_name=dataset_name,
            dataset_config=dataset_config,
            dataset_split=split,
            metric_type=name,
            metric_name=name,
            metric_value=round(value, 4),
        )
        for name, value in headline_scores(report).items()
    ]


def render_model_card(
    facts: Mapping[str, Any],
    *,
    repo_id: str | None = None,
    dataset_repo: str | None = None,
    evaluation: Sequence[EvalResult] = (),
) -> ModelCard:
    """The card of a fine-tuned model from its :func:`model_facts`: what it started from, what it learned from
    (with licenses, the published dataset), how well it does (a ``model-index`` when ``evaluation`` is given)
    and how to use it.

    A model trained on share-alike data (ORD, CC-BY-SA-4.0) is carded under that license, the conservative
    reading; otherwise the seeds' MIT applies.
    """
    licenses = sorted({source["license"].lower() for source in facts["sources"] if source.get("license")})
    card_data = ModelCardData(
        license="cc-by-sa-4.0" if "cc-by-sa-4.0" in licenses else (licenses[0] if licenses else None),
        language=["en"],
        library_name="transformers",
        pipeline_tag="text-generation",
        base_model=facts["base_model"],
        datasets=[dataset_repo] if dataset_repo else None,
        model_name=(repo_id or "chemactor-model").split("/")[-1] if evaluation else None,
        eval_results=list(evaluation) or None,
        tags=["chemistry", "synthesis", "actions", "chemactor", "sft", "trl"],
    )
    example = "The mixture was stirred for 2 h at 25 °C and concentrated."
    return ModelCard.from_template(
        card_data,
        template_str=_template("model_card.md"),
        **facts,
        repo=repo_id or "<this repo or folder>",
        dataset_repo=dataset_repo,
        evaluation=list(evaluation),
        evaluation_dir=EVALUATION_DIR if evaluation else None,
        example=example,
        example_prompt=repr(prompt_for("d2a", example)),  # a Python literal for the snippet
    )


def push_model(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    card: ModelCard | None = None,
    evaluation_dir: str | Path | None = None,
) -> str:
    """Push a trained model folder as the model repo ``repo_id`` in one commit; returns the commit URL.

    Only :data:`MODEL_FILES` go (config, weights, tokenizer, card, training facts): checkpoints, optimizer,
    scheduler and RNG states, the trainer state and logs stay local. ``card`` replaces the folder's
    ``README.md``; ``evaluation_dir`` (an evaluation report) goes under ``evaluation/``.
    """
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise ExportError(f"{folder} holds no saved model (config.json missing); train or save it first")
    files: dict[str, Path | bytes] = {
        path.name: path
        for path in sorted(folder.iterdir())
        if path.is_file() and any(fnmatch.fnmatch(path.name, pattern) for pattern in MODEL_FILES)
    }
    if not any(name.endswith((".safetensors", ".bin")) for name in files):
        raise ExportError(f"{folder} holds no model weights (*.safetensors or pytorch_model*.bin)")
    if card is not None:
        files[CARD] = str(card).encode("utf-8")
    if evaluation_dir is not None:
        evaluation_dir = Path(evaluation_dir)
        for pattern in EVALUATION_FILES:
            for path in sorted(evaluation_dir.glob(pattern)):
                files[f"{EVALUATION_DIR}/{path.relative_to(evaluation_dir).as_posix()}"] = path
    return push_files(
        files, repo_id, private=private, token=token, commit_message=f"Upload {folder.name} with chemactor"
    )


def push_files(
    files: Mapping[str, Path | bytes],
    repo_id: str,
    *,
    repo_type: str = "model",
    private: bool = False,
    commit_message: str,
    token: str | None = None,
) -> str:
    """Create ``repo_id`` if needed and commit exactly ``files`` (path in the repo -> local file or bytes)."""
    api = HfApi(token=token)
    operations = [
        CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(source) if isinstance(source, Path) else source)
        for name, source in files.items()
    ]
    with _publishing(f"pushing {len(files)} files to {repo_type} repo {repo_id!r}"):
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        commit = api.create_commit(
            repo_id=repo_id, repo_type=repo_type, operations=operations, commit_message=commit_message
        )
    return commit.commit_url
