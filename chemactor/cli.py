"""The ``chemactor`` command line: parse arguments, call the library, print a short summary.

Each command imports its stage lazily so that ``chemactor --help`` stays fast and no stage pays for
another's heavy imports (torch, transformers).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from chemactor import __version__

app = typer.Typer(
    name="chemactor",
    help="Reactions <-> experimental descriptions <-> machine-executable synthesis actions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"chemactor {__version__}")
        raise typer.Exit()


_DEBUG = {"on": False}


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of an error, not just its message."),
) -> None:
    """ChemActor command line.

    Exit codes: 0 complete; 1 user error (the message names the file, key or row); 2 interrupted (rerun the
    same command to resume); 3 finished with failed items (rerun with --retry-failed).
    """
    _DEBUG["on"] = debug


data_app = typer.Typer(help="Build, export and publish the ChemActor datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("build")
def data_build(
    output: Annotated[Path, typer.Option("--output", "-o", help="Export folder: parquet per config/split + card.")],
    source: Annotated[
        str, typer.Option(help="paragraph2actions, smiles2actions, ord, all (the three), or generated.")
    ] = "all",
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Reference data folder (as tests/data/reference; upstream if omitted) or generation output."),
    ] = None,
    skip_bad_rows: Annotated[bool, typer.Option(help="Drop and count unreadable rows instead of stopping.")] = False,
    overwrite: Annotated[
        bool, typer.Option(help="Replace an earlier export in OUTPUT (only the files it wrote; others stay).")
    ] = False,
) -> None:
    """Build seed (or generated) datasets and export them so that `load_dataset(OUTPUT, CONFIG)` works."""
    import json

    from chemactor.builders import build_generated, build_seeds
    from chemactor.chem import InvalidSmilesError
    from chemactor.data import SEED_SOURCES, RecordError
    from chemactor.hub import ExportError, export_dataset

    sources = SEED_SOURCES if source == "all" else (source,)
    try:
        if source == "generated":
            if data_dir is None:
                raise ValueError("--source generated needs --data-dir: the generation output directory")
            builds = [build_generated(data_dir, skip_bad_rows=skip_bad_rows)]
        else:
            builds = [build_seeds(name, data_dir, skip_bad_rows=skip_bad_rows) for name in sources]
        summaries = {build.source: build.summary() for build in builds}
        folder = export_dataset(
            {build.source: build.dataset for build in builds},
            output,
            summaries=summaries,
            pretty_name="ChemActor generated data" if source == "generated" else "ChemActor seeds",
            overwrite=overwrite,
            inputs=[data_dir] if data_dir is not None else [],
        )
    except (RecordError, InvalidSmilesError, ExportError, OSError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    for name, summary in summaries.items():
        typer.echo(f"{name}: {json.dumps(summary)}")
    typer.echo(f"wrote {folder}")


@data_app.command("push")
def data_push(
    folder: Annotated[Path, typer.Argument(help="An export folder written by `chemactor data build`.")],
    repo_id: Annotated[str, typer.Option("--repo-id", help="Dataset repo on the Hub, ORG/NAME.")],
    public: Annotated[bool, typer.Option(help="Create the repo as public (default: private).")] = False,
) -> None:
    """Publish an export folder to the Hub in one commit: the card and data files the export wrote, nothing else."""
    from chemactor.hub import ExportError, PublishError, push_dataset

    try:
        url = push_dataset(folder, repo_id, private=not public)
    except (ExportError, PublishError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(url)


metrics_app = typer.Typer(help="Publish the evaluate metric modules.", no_args_is_help=True)
app.add_typer(metrics_app, name="metrics")


@metrics_app.command("push")
def metrics_push(
    name: Annotated[str, typer.Argument(help="action_extraction, procedure_generation or circle_review.")],
    repo_id: Annotated[str, typer.Option("--repo-id", help="Space repo on the Hub, ORG/NAME.")],
    public: Annotated[bool, typer.Option(help="Create the Space as public (default: private).")] = False,
    requirement: Annotated[
        str | None,
        typer.Option(help="The Space's chemactor requirement (default chemactor==VERSION, the light core)."),
    ] = None,
) -> None:
    """Publish metrics/NAME as a Gradio Space, so that `evaluate.load(REPO_ID)` works (with a token while
    it is private; `--public` for everyone)."""
    from chemactor.hub import push_metric

    typer.echo(push_metric(name, repo_id, private=not public, requirement=requirement))


@app.command("select")
def select(
    pool: Annotated[str, typer.Option(help="Candidate pairs: a generation output folder or a .jsonl/.parquet file.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for selected rows, scores and report.")],
    reference: Annotated[
        str | None, typer.Option(help="Real pairs to fit on: a seed source name, a generation folder or a file.")
    ] = None,
    selector: Annotated[
        Path | None,
        typer.Option(
            help="A fitted selector to score with instead of fitting on --reference: the selector/ folder of an "
            "earlier run (or DivergenceSelector.save_pretrained)."
        ),
    ] = None,
    fraction: Annotated[float | None, typer.Option(help="Keep this fraction of the pool.")] = None,
    k: Annotated[int | None, typer.Option("--k", help="Keep this many rows.")] = None,
    threshold: Annotated[float | None, typer.Option(help="Keep rows with divergence at most this.")] = None,
    divergence: Annotated[
        str | None, typer.Option(help="Per-sample divergence when fitting: kl (default) or js.")
    ] = None,
    num_proc: Annotated[int | None, typer.Option(help="Processes for scoring (datasets.map).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Reference data folder, for seed source names.")] = None,
    skip_bad_rows: Annotated[
        bool, typer.Option(help="Drop and count unreadable rows and repeated ids instead of stopping.")
    ] = False,
    held_out: Annotated[
        list[str] | None,
        typer.Option(help="Seed source whose validation/test rows no selected row may overlap (repeatable)."),
    ] = None,
) -> None:
    """Keep the generated pairs closest to the real data; write them, their scores, a report and plots.

    The selector is fitted on --reference, or loaded with --selector: a selector fitted and saved by an earlier
    run scores every row as it did there (its settings come with it, and --held-out adds to the rows it keeps
    out).
    """
    import json

    from chemactor.builders import RowDrops
    from chemactor.data import ensure_writable
    from chemactor.errors import ConfigError
    from chemactor.selection import DivergenceSelector
    from chemactor.selection.run import held_out_pairs, load_pairs, run_selection

    if (reference is None) == (selector is None):
        raise ConfigError("give one of --reference (real pairs to fit on) and --selector (a fitted selector)")
    if selector is not None and divergence is not None:
        raise ConfigError("--divergence goes with --reference: a fitted selector brings its own")
    fitted = DivergenceSelector.from_pretrained(selector) if selector is not None else None
    ensure_writable(output)
    dropped = {"reference": RowDrops(), "pool": RowDrops()}
    reference_rows = None
    if reference is not None:
        reference_rows = load_pairs(reference, data_dir, skip_bad_rows=skip_bad_rows, dropped=dropped["reference"])
    pool_rows = load_pairs(pool, data_dir, skip_bad_rows=skip_bad_rows, dropped=dropped["pool"])
    for name, counts in dropped.items():
        if counts:
            typer.echo(f"{name}: {RowDrops.describe(counts)}", err=True)
    summary = run_selection(
        reference_rows,
        pool_rows,
        output,
        fraction=fraction,
        k=k,
        threshold=threshold,
        num_proc=num_proc,
        selector=fitted or (DivergenceSelector() if divergence is None else DivergenceSelector(divergence=divergence)),
        held_out=held_out_pairs(held_out, data_dir) if held_out else None,
    )
    summary["dropped"] = {name: dict(counts) for name, counts in dropped.items() if counts}
    typer.echo(json.dumps(summary))


def _read_recipe(path: Path | None) -> dict:
    """A YAML recipe as a mapping (empty without one); unreadable YAML is a ConfigError naming the file."""
    import yaml

    from chemactor.errors import ConfigError

    if path is None:
        return {}
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a recipe is a mapping of keys, got {type(raw).__name__}")
    return raw


def _raise_for_failures(failed: dict[str, int], what: str, hint: str = "rerun with --retry-failed") -> None:
    """Exit 3 (:class:`~chemactor.errors.FailedItemsError`) with counts per kind when items failed."""
    from chemactor.errors import FailedItemsError

    if failed:
        counts = ", ".join(f"{kind} {count}" for kind, count in sorted(failed.items()))
        raise FailedItemsError(f"{sum(failed.values())} {what} failed ({counts}); {hint}")


@app.command("generate")
def generate(
    config: Annotated[Path | None, typer.Option(help="YAML recipe (recipes/generate.yaml); flags override it.")] = None,
    input: Annotated[
        str | None,
        typer.Option(
            help="Seed source (ord, paragraph2actions, smiles2actions, examples), records (.jsonl/.parquet), "
            "an ORD dataset (.pb/.pb.gz) or target molecules (.smi: SMILES and an optional name per line)."
        ),
    ] = None,
    output_dir: Annotated[
        Path | None, typer.Option("--output-dir", "--output", "-o", help="Output folder (shards + manifest).")
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Reference data folder, for seed source names.")] = None,
    split: Annotated[str | None, typer.Option(help="Use only this split of the input.")] = None,
    limit: Annotated[int | None, typer.Option(help="Use only the first N input rows.")] = None,
    backend: Annotated[
        str | None, typer.Option(help="endpoint, transformers or augment (default without endpoints).")
    ] = None,
    steps: Annotated[str | None, typer.Option(help="chain, r2d, d2a or augment.")] = None,
    endpoints: Annotated[
        list[str] | None,
        typer.Option("--endpoints", "--endpoint", help="Endpoint URL; repeat for several (load-balanced)."),
    ] = None,
    api: Annotated[str | None, typer.Option(help="chat (/v1/chat/completions) or generate (TGI).")] = None,
    model: Annotated[str | None, typer.Option(help="Served model name, or a local model folder.")] = None,
    max_concurrency: Annotated[
        int | None, typer.Option(help="Requests in flight (default: the servers' /info).")
    ] = None,
    samples: Annotated[int | None, typer.Option(help="Generated rows per input row.")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="Sampling: new tokens per answer.")] = None,
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature.")] = None,
    retry_failed: Annotated[bool, typer.Option(help="Retry the items that failed in earlier runs.")] = False,
    shard: Annotated[
        str | None,
        typer.Option(help="i/n: do shard i (0 to n-1) of the inputs, split by id, into OUTPUT/shard-i-of-n/."),
    ] = None,
    constrained: Annotated[bool | None, typer.Option(help=CONSTRAINED_HELP)] = None,
    structured_output: Annotated[str | None, typer.Option(help=STRUCTURED_OUTPUT_HELP)] = None,
) -> None:
    """Generate (description, actions) rows with an LLM endpoint, a local model or rule-based augmentation.

    Every flag is also a recipe key of the same name (sampling.max_new_tokens, sampling.temperature). Rerun
    the same command to resume: finished rows are kept and skipped. Exit 3 when some items failed.
    """
    from chemactor.config import parse_config
    from chemactor.generation.runner import GenerationConfig, run_from_config

    options = _read_recipe(config)
    flags = {
        "input": input,
        "output_dir": str(output_dir) if output_dir else None,
        "data_dir": str(data_dir) if data_dir else None,
        "split": split,
        "limit": limit,
        "backend": backend,
        "steps": steps,
        "endpoints": endpoints or None,
        "api": api,
        "model": model,
        "max_concurrency": max_concurrency,
        "samples": samples,
        "shard": shard,
        "constrained": constrained,
        "structured_output": structured_output,
    }
    options.update({name: value for name, value in flags.items() if value is not None})
    sampling = {"max_new_tokens": max_new_tokens, "temperature": temperature}
    if any(value is not None for value in sampling.values()):
        recipe_sampling = options.get("sampling") or {}
        if isinstance(recipe_sampling, dict):  # anything else is reported by the validator below
            options["sampling"] = {
                **recipe_sampling,
                **{name: value for name, value in sampling.items() if value is not None},
            }
    parsed = parse_config(GenerationConfig, options, source=str(config) if config else "generate")
    summary = run_from_config(parsed, retry_failed=retry_failed)
    typer.echo(str(summary))
    _raise_for_failures(dict(summary.failed), "items")


@app.command("train", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train(
    ctx: typer.Context,
    recipe: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, help="YAML recipe (recipes/sft_cpu_tiny.yaml, recipes/sft_full.yaml)."
        ),
    ],
) -> None:
    """Fully fine-tune a model with the SFT recipe; extra `--field value` flags override the recipe.

    Rerun the same command to resume from the last checkpoint in the output directory. For several
    processes or GPUs: `accelerate launch --config_file recipes/accelerate/ddp.yaml -m chemactor.training RECIPE`.
    """
    import json

    from chemactor.errors import TRAIN_MODULES, require_extra

    require_extra(TRAIN_MODULES, "train", "chemactor train")
    from chemactor.training import main as run_recipe

    metrics = run_recipe([str(recipe), *ctx.args])
    typer.echo(json.dumps(metrics, default=str))


ENDPOINT_APIS: tuple[str, ...] = ("chat", "generate")
CONSTRAINED_HELP = "Decode D2A answers under the action grammar, so each one parses (--no-constrained: free text)."
STRUCTURED_OUTPUT_HELP = (
    "How an endpoint takes the constraint: json_schema (default), json_object (llama-cpp-python), gbnf "
    "(llama.cpp grammar) on chat; json_schema or regex (TGI grammar) on generate."
)


def _converter(
    kind: str,
    model: str | None,
    endpoint: list[str] | None,
    api: str,
    served_model: str | None,
    max_new_tokens: int,
    **constraint_options: Any,
):
    """An ``ActionExtractor`` or ``ProcedureWriter`` over a local model or an endpoint, as the flags say.

    ``constraint_options`` (extraction only): ``constrained``, and ``structured_output`` for an endpoint.
    """
    from chemactor.errors import ConfigError, InputError, closest
    from chemactor.inference import ActionExtractor, ProcedureWriter

    cls = ActionExtractor if kind == "extract" else ProcedureWriter
    if bool(model) == bool(endpoint):
        raise ConfigError("give exactly one of --model (folder or Hub repo) and --endpoint")
    if endpoint:
        if api not in ENDPOINT_APIS:
            raise ConfigError(f"--api {api!r}{closest(api, ENDPOINT_APIS)}: use one of {', '.join(ENDPOINT_APIS)}")
        return cls.from_endpoint(endpoint, max_new_tokens, api=api, model=served_model, **constraint_options)
    if Path(model).exists() and not Path(model).is_dir():
        raise InputError(f"--model {model}: a model is a folder (or a Hub repo id), not a file")
    if model.startswith((".", "/", "~")) and not Path(model).expanduser().is_dir():
        raise InputError(f"--model {model}: no such model folder")
    constraint_options.pop("structured_output", None)  # a server's option
    try:
        return cls.from_pretrained(model, max_new_tokens, **constraint_options)
    except (OSError, ValueError) as exc:  # not a model folder, or a repo id the Hub (or its cache) does not have
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"--model {model}: cannot load the model: {reason}") from exc


def _run_conversion(
    items: list[str] | None,
    input: Path | None,
    output: Path | None,
    make_convert,
    input_key: str,
    retry_failed: bool = False,
) -> None:
    """Convert command-line items to JSON lines on stdout, or a file line by line (resumable) to ``output``.

    The input is read and the output folder checked before the model loads, so a typo costs no model load.
    Inputs whose answer did not come (the row's ``failure`` names the kind) make the command exit 3.
    """
    import json
    from collections import Counter

    from chemactor.data import ensure_writable, read_text_lines
    from chemactor.errors import ConfigError, OutputError
    from chemactor.inference import convert_file

    if bool(items) == bool(input):
        raise ConfigError("give the inputs as arguments or with --input FILE, not both")
    failed: Counter[str] = Counter()

    def counted(convert):
        def run(chunk: list[str]) -> list[dict]:
            rows = convert(chunk)
            failed.update(row["failure"] for row in rows if row.get("failure"))
            return rows

        return run

    hint = "each such row says why in 'failure' and its errors"
    if input is None:
        convert = counted(make_convert())
        for row in convert(items):
            typer.echo(json.dumps(row, ensure_ascii=False))
        _raise_for_failures(dict(failed), "inputs", hint)
        return
    if output is None:
        raise ConfigError("--input needs --output (a JSONL file, appended to when resuming)")
    read_text_lines(input)
    if output.is_dir():
        raise OutputError(f"{output}: is a folder; --output is a JSONL file")
    ensure_writable(output.parent)
    written = convert_file(counted(make_convert()), input, output, input_key, retry_failed=retry_failed)
    typer.echo(f"{written} rows written to {output}")
    _raise_for_failures(dict(failed), "inputs", f"{hint}; rerun with --retry-failed to convert them again")


@app.command("extract")
def extract(
    texts: Annotated[list[str] | None, typer.Argument(help="Procedure texts (paragraphs are split).")] = None,
    model: Annotated[str | None, typer.Option(help="Trained model folder or Hub repo id.")] = None,
    endpoint: Annotated[list[str] | None, typer.Option(help="Endpoint URL serving the model; repeatable.")] = None,
    api: Annotated[str, typer.Option(help="Endpoint API: chat or generate (TGI).")] = "chat",
    served_model: Annotated[str | None, typer.Option(help="Model name to ask the endpoint for (chat API).")] = None,
    input: Annotated[Path | None, typer.Option(help="Text file, one description per line.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="JSONL results (resumable).")] = None,
    batch_size: Annotated[int, typer.Option(help="Sentences per generate call.")] = 8,
    max_new_tokens: Annotated[int, typer.Option(help="New tokens per sentence.")] = 256,
    split: Annotated[bool, typer.Option(help="Split paragraphs into sentences first.")] = True,
    retry_failed: Annotated[bool, typer.Option(help="With --input: convert again the lines that failed.")] = False,
    constrained: Annotated[bool, typer.Option(help=CONSTRAINED_HELP)] = True,
    structured_output: Annotated[str | None, typer.Option(help=STRUCTURED_OUTPUT_HELP)] = None,
) -> None:
    """Description -> synthesis actions (D2A), one JSON object per input with validity and errors."""

    def make_convert():
        extractor = _converter(
            "extract",
            model,
            endpoint,
            api,
            served_model,
            max_new_tokens,
            constrained=constrained,
            structured_output=structured_output,
        )
        return lambda chunk: [
            row.to_dict() for row in extractor.extract(chunk, batch_size, split=split, progress=False)
        ]

    _run_conversion(texts, input, output, make_convert, input_key="description", retry_failed=retry_failed)


@app.command("describe")
def describe(
    reactions: Annotated[list[str] | None, typer.Argument(help="Reaction SMILES reactants>agents>products.")] = None,
    model: Annotated[str | None, typer.Option(help="Trained model folder or Hub repo id.")] = None,
    endpoint: Annotated[list[str] | None, typer.Option(help="Endpoint URL serving the model; repeatable.")] = None,
    api: Annotated[str, typer.Option(help="Endpoint API: chat or generate (TGI).")] = "chat",
    served_model: Annotated[str | None, typer.Option(help="Model name to ask the endpoint for (chat API).")] = None,
    input: Annotated[Path | None, typer.Option(help="Text file, one reaction SMILES per line.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="JSONL results (resumable).")] = None,
    batch_size: Annotated[int, typer.Option(help="Reactions per generate call.")] = 8,
    max_new_tokens: Annotated[int, typer.Option(help="New tokens per procedure.")] = 512,
    retry_failed: Annotated[bool, typer.Option(help="With --input: convert again the lines that failed.")] = False,
) -> None:
    """Reaction -> experimental procedure (R2D), one JSON object per input with validity and error."""

    def make_convert():
        writer = _converter("describe", model, endpoint, api, served_model, max_new_tokens)
        return lambda chunk: [row.to_dict() for row in writer.describe(chunk, batch_size, progress=False)]

    _run_conversion(reactions, input, output, make_convert, input_key="reaction", retry_failed=retry_failed)


@app.command("check-actions")
def check_actions(
    path: Annotated[Path, typer.Argument(help="Text file, one action sequence per line (e.g. tgt-train.txt).")],
    style: Annotated[str, typer.Option(help="readable, or placeholder (the Smiles2Actions $n$ form).")] = "readable",
    reactions: Annotated[
        Path | None, typer.Option(help="Parallel file of reaction SMILES (space-tokenized or not) for $n$ checks.")
    ] = None,
    allow_unknown: Annotated[bool, typer.Option(help="Accept 'unknown' for a value the text does not give.")] = True,
) -> None:
    """Parse and validate action sequences: prints FILE:LINE: problem for each, exits 1 if there is any."""
    from chemactor.actions import STYLES, ActionParseError, parse_actions, validate_actions
    from chemactor.chem import InvalidSmilesError, detokenize_reaction
    from chemactor.data import read_text_lines

    if style not in STYLES:
        typer.echo(f"error: unknown style {style!r}; known: {', '.join(STYLES)}", err=True)
        raise typer.Exit(1)
    lines = read_text_lines(path)
    reaction_lines = read_text_lines(reactions) if reactions else [""] * len(lines)
    if len(reaction_lines) != len(lines):
        typer.echo(f"error: {path} has {len(lines)} lines but {reactions} has {len(reaction_lines)}", err=True)
        raise typer.Exit(1)
    flawed = 0
    for number, (text, reaction) in enumerate(zip(lines, reaction_lines, strict=True), start=1):
        try:
            actions = parse_actions(text, style)
            problems = validate_actions(
                actions, detokenize_reaction(reaction) if reaction else None, allow_unknown=allow_unknown
            )
        except (ActionParseError, InvalidSmilesError) as exc:
            problems = [str(exc)]
        for problem in problems:
            typer.echo(f"{path}:{number}: {problem}")
        flawed += bool(problems)
    typer.echo(f"{len(lines)} sequences checked, {flawed} with problems", err=True)
    raise typer.Exit(1 if flawed else 0)


@app.command("evaluate")
def evaluate(
    model: Annotated[str, typer.Option(help="Trained model folder, or an endpoint URL serving it.")],
    data: Annotated[
        str, typer.Option(help="examples, a seed source name, a save_to_disk folder or a JSONL file of records.")
    ] = "examples",
    split: Annotated[str, typer.Option(help="The split to evaluate on.")] = "test",
    output: Annotated[Path, typer.Option("--output", "-o", help="Report folder.")] = Path("outputs/evaluation"),
    data_dir: Annotated[Path | None, typer.Option(help="Reference data folder, for seed source names.")] = None,
    circle_rounds: Annotated[int, typer.Option(help="Circle-review rounds (D2A then A2D per round).")] = 3,
    batch_size: Annotated[int, typer.Option(help="Inputs per generate call.")] = 8,
    max_new_tokens: Annotated[int, typer.Option(help="New tokens per answer.")] = 256,
    api: Annotated[str, typer.Option(help="Endpoint API: chat or generate (TGI).")] = "chat",
    metrics: Annotated[
        list[str] | None,
        typer.Option(help="Extra metric set beside ChemActor's; repeatable. paper: the ChemActor paper's code's."),
    ] = None,
    constrained: Annotated[bool, typer.Option(help=CONSTRAINED_HELP)] = True,
    structured_output: Annotated[str | None, typer.Option(help=STRUCTURED_OUTPUT_HELP)] = None,
    reviewers: Annotated[
        list[str] | None,
        typer.Option(
            "--reviewers", "--reviewer", help="Reviewer LLM endpoint URL (chat API): peer review beside the round trip."
        ),
    ] = None,
) -> None:
    """Run a model over a split (D2A, R2D, circle review); write report.json, report.md and plots.

    Exit 3 when some answers did not come (failures.jsonl lists them): no score is computed then.
    """
    from chemactor.config import parse_config
    from chemactor.data import ensure_writable
    from chemactor.evaluation import EvaluationConfig, evaluate_model, load_predictors, load_split_data

    options = parse_config(
        EvaluationConfig,
        {
            "split": split,
            "circle_rounds": circle_rounds,
            "batch_size": batch_size,
            "max_new_tokens": max_new_tokens,
            "metrics": metrics or [],
            "constrained": constrained,
            "reviewers": reviewers or [],
        },
        source="evaluate",
    )
    ensure_writable(output)
    # api and structured_output matter to endpoints only
    endpoint_options = {"api": api} | ({"structured_output": structured_output} if structured_output else {})
    predictors = load_predictors(
        model, options.batch_size, options.max_new_tokens, options.constrained, **endpoint_options
    )
    dataset = load_split_data(data, data_dir)
    report = evaluate_model(
        predictors,
        dataset,
        output,
        options.split,
        circle_rounds=options.circle_rounds,
        batch_size=options.batch_size,
        metrics=options.metrics,
        reviewers=options.reviewers,
    )
    for task in ("d2a", "r2d", "d2a_paper", "r2d_paper"):
        if task in report:
            scores = {name: round(value, 4) for name, value in report[task].items() if isinstance(value, float)}
            typer.echo(f"{task}: {scores}")
    typer.echo(f"report: {output / 'report.md'}")


@app.command("pipeline")
def pipeline(
    recipe: Annotated[Path, typer.Argument(help="Pipeline recipe (recipes/quickstart.yaml).")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Override the recipe's output_dir.")] = None,
    force: Annotated[list[str] | None, typer.Option(help="Rerun this stage even if unchanged; repeatable.")] = None,
    until: Annotated[str | None, typer.Option(help="Stop after this stage.")] = None,
    constrained: Annotated[
        bool | None, typer.Option(help="Override the recipe's 'constrained' in every stage that produces actions.")
    ] = None,
) -> None:
    """Seeds -> generation -> selection -> training -> evaluation -> publish; rerun to resume.

    The whole recipe is checked before the first stage runs. A stage whose options and inputs are unchanged
    since it last finished is skipped; a stage that left nothing usable (exit 3) is not marked done and a
    rerun retries it.
    """
    from chemactor.pipeline import PipelineConfig, run_pipeline

    config = PipelineConfig.from_yaml(recipe, output, constrained)
    results = run_pipeline(config, force=force or (), until=until, log=typer.echo)
    for result in results:
        typer.echo(f"{result.name:<11} {result.status:<8} {result.directory}")
    typer.echo(f"report: {config.output_dir / 'report.md'}")


demo_app = typer.Typer(help="Serve or publish the Gradio demo.", invoke_without_command=True)
app.add_typer(demo_app, name="demo")


@demo_app.callback()
def demo(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option(help="Model folder, Hub model id or endpoint URL to serve.")] = None,
    port: Annotated[
        int | None, typer.Option(help="Port on 127.0.0.1 (default: Gradio's, 7860 or the next free).")
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on; 0.0.0.0 to share on the network.")] = "127.0.0.1",
) -> None:
    """Serve the three-tab demo: description -> actions, reaction/target -> procedure, circle review."""
    if ctx.invoked_subcommand is not None:
        return
    from chemactor.errors import ConfigError, require_extra

    if model is None:
        raise ConfigError("chemactor demo needs --model (a model folder, a Hub model id or an endpoint URL)")
    require_extra("gradio", "demo", "chemactor demo")
    from chemactor.demo import DemoModel
    from chemactor.demo.app import build_app

    build_app(DemoModel.load(model)).launch(server_name=host, server_port=port)


@demo_app.command("push")
def demo_push(
    model: Annotated[str, typer.Option(help="Hub model id (or endpoint URL) the Space serves.")],
    repo_id: Annotated[str, typer.Option("--repo-id", help="Space repo on the Hub, ORG/NAME.")],
    public: Annotated[bool, typer.Option(help="Make the Space public (private by default).")] = False,
) -> None:
    """Publish the demo as a Gradio Space that runs the same app from its own requirements."""
    from chemactor.demo import push_demo

    typer.echo(push_demo(model, repo_id, private=not public))


def main() -> None:
    """Console-script entry point: a user error prints one line and exits with its documented code.

    Only :class:`~chemactor.errors.ChemActorError` (and ``OSError``, whose message names the path: a full
    disk, a missing or read-only folder) is turned into a one-line message; any other exception is a bug
    and keeps its traceback. ``--debug`` shows the traceback of user errors too.
    """
    import sys

    from chemactor.errors import EXIT_INTERRUPTED, EXIT_USER_ERROR, ChemActorError

    try:
        app()
    except SystemExit as exc:
        if exc.code == 130:  # typer's exit for Ctrl-C
            typer.echo("interrupted: rerun the same command to resume", err=True)
            sys.exit(EXIT_INTERRUPTED)
        if exc.code == 2:  # click's usage error is a user error here; 2 means "interrupted, resumable"
            sys.exit(EXIT_USER_ERROR)
        raise
    except (ChemActorError, OSError) as exc:
        if _DEBUG["on"]:
            raise
        typer.echo(f"error: {exc}", err=True)
        sys.exit(getattr(exc, "exit_code", EXIT_USER_ERROR))


if __name__ == "__main__":
    main()
