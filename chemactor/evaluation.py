"""Run a model over one split in both directions, score it, and write a report a person can read.

The model is seen only through three batch converters (:class:`Predictors`): descriptions -> actions
(D2A), reactions -> descriptions (R2D), and actions -> descriptions, which closes the circle-review chain
D0 -> A1 -> D1 -> ... . A local model directory and an endpoint both become such converters through
:mod:`chemactor.inference`, so evaluation never needs to know where the text comes from, and a test can
pass plain functions.

Scores come from :mod:`chemactor.scoring` (the same code behind the ``metrics/`` evaluate modules), so a
number in a report means exactly what the metric card says. Outputs in ``output_dir``:
``predictions.jsonl`` (every example with its score), ``report.json``, ``report.md`` and ``plots/*.png``.

A score is never computed from answers that did not come: when any request fails for good (an endpoint
answering garbage, a local model failing on a batch, an input the model cannot be asked about), the
failed items go to ``failures.jsonl`` and :class:`~chemactor.errors.FailedItemsError` is raised with their
counts, before any score or report is written. (An endpoint that cannot be reached at all stops the run
earlier, with :class:`~chemactor.errors.EndpointError`.)
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import datasets
from tqdm.auto import tqdm

from chemactor.data import SPLITS, has_task, prompt_for
from chemactor.errors import FailedItemsError, InputError
from chemactor.inference import ActionExtractor, Completer, Failure, ProcedureWriter
from chemactor.scoring import EXTRA_METRICS
from chemactor.scoring.action_metrics import action_metrics, levenshtein_similarities, paper_action_metrics
from chemactor.scoring.circle import Converter, circle_scores, run_circle
from chemactor.scoring.procedure_metrics import paper_procedure_metrics, procedure_metrics

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
PREDICTIONS = "predictions.jsonl"
PLOTS = "plots"
FAILURES = "failures.jsonl"


@dataclass
class EvaluationConfig:
    """Evaluation options: ``chemactor evaluate``'s flags and the pipeline's ``evaluation`` section."""

    split: Literal[SPLITS] = "test"  # type: ignore[valid-type]
    circle_rounds: int = field(default=3, metadata={"min": 1})
    batch_size: int = field(default=8, metadata={"min": 1})
    max_new_tokens: int = field(default=256, metadata={"min": 1})
    examples_shown: int = field(default=3, metadata={"min": 0})
    # extra metric sets reported beside ChemActor's; "paper": the ChemActor paper's code's definitions
    metrics: list[str] = field(default_factory=list, metadata={"choices": EXTRA_METRICS})
    constrained: bool = True  # D2A answers (circle review included) decoded under the action grammar
    reviewers: list[str] = field(default_factory=list)  # endpoint URLs of reviewer LLMs: peer review of the D2A


@dataclass(frozen=True)
class Predictors:
    """A model as batch converters; ``name`` is what the report calls it.

    ``a2d`` writes a description from an action sequence (the ``a2d`` task view), the way back that circle
    review needs; a model trained without that view still answers, and the circle then shows how little
    of the content survives.
    """

    d2a: Converter
    r2d: Converter
    a2d: Converter
    name: str = "model"


def completer_predictors(completer: Completer, name: str, batch_size: int = 8, constrained: bool = True) -> Predictors:
    """The three converters of one model (local or served), through :mod:`chemactor.inference`; with
    ``constrained``, D2A answers are decoded under the action grammar."""
    extractor, writer = ActionExtractor(completer, constrained), ProcedureWriter(completer)

    def d2a(descriptions: list[str]) -> list[str]:
        extractions = iter(extractor.extract(_asked(descriptions), batch_size, progress=False))
        return _answers(descriptions, [(e.actions, e.failure, "; ".join(e.errors)) for e in extractions])

    def r2d(reactions: list[str]) -> list[str]:
        procedures = writer.describe(_asked(reactions), batch_size, progress=False)
        return _answers(reactions, [(p.text, p.failure, p.error or "") for p in procedures])

    def a2d(actions: list[str]) -> list[str]:
        return _answers(
            actions, completer.complete([prompt_for("a2d", text) for text in _asked(actions)], batch_size, False)
        )

    return Predictors(d2a=d2a, r2d=r2d, a2d=a2d, name=name)


def _asked(inputs: list[str]) -> list[str]:
    """The inputs worth asking about: a failure of an earlier circle round stays a failure."""
    return [text for text in inputs if not isinstance(text, Failure)]


def _answers(inputs: list[str], results: Sequence[str | tuple[str, str | None, str]]) -> list[str]:
    """One answer per input in order: earlier failures passed on, results with a failure kind as :class:`Failure`."""
    answers = iter(results)
    out: list[str] = []
    for text in inputs:
        if isinstance(text, Failure):
            out.append(text)
            continue
        answer = next(answers)
        if isinstance(answer, tuple):
            value, kind, message = answer
            answer = Failure(message, kind) if kind else value
        out.append(answer)
    return out


def load_predictors(
    model: str | Path,
    batch_size: int = 8,
    max_new_tokens: int = 256,
    constrained: bool = True,
    **endpoint_options: Any,
) -> Predictors:
    """Predictors for a local model directory, or for an endpoint URL (``http://`` or ``https://``).

    ``endpoint_options`` go to :class:`~chemactor.generation.backends.EndpointBackend` (``model``, ``api``);
    a local directory ignores them.
    """
    text = str(model)
    if text.startswith(("http://", "https://")):
        completer = ActionExtractor.from_endpoint(text, max_new_tokens, **endpoint_options).completer
    elif Path(text).is_dir():
        completer = ActionExtractor.from_pretrained(text, max_new_tokens).completer
    else:
        raise InputError(f"--model {text!r} is neither an endpoint URL (http://, https://) nor a model directory")
    return completer_predictors(completer, name=text, batch_size=batch_size, constrained=constrained)


def load_split_data(spec: str | Path, data_dir: str | Path | None = None) -> datasets.DatasetDict:
    """Records to evaluate on, grouped by their ``split`` field: ``examples`` (the shipped set), a seed source
    name (``data_dir``), a ``save_to_disk`` folder, or a file of records (:func:`chemactor.builders.read_records`)."""
    from chemactor.builders import read_records

    records = read_records(spec, data_dir=data_dir)
    return datasets.DatasetDict(
        {split: records.filter(lambda row, s=split: row["split"] == s) for split in sorted(set(records["split"]))}
    )


def evaluate_model(
    model: str | Path | Predictors,
    dataset: datasets.DatasetDict | datasets.Dataset,
    output_dir: str | Path,
    split: str = "test",
    *,
    circle_rounds: int = 3,
    batch_size: int = 8,
    max_new_tokens: int = 256,
    selection: datasets.Dataset | None = None,
    examples_shown: int = 3,
    metrics: Sequence[str] = (),
    constrained: bool = True,
    reviewers: Sequence[str] = (),
) -> dict[str, Any]:
    """Evaluate ``model`` on ``dataset[split]`` (D2A, R2D and circle review) and write the report files.

    ``selection``, when given, is the selection stage's scored pool; its divergence distribution is
    plotted beside the scores. ``metrics`` names extra metric sets (``"paper"``: the ChemActor paper's
    definitions, in percent, as ``d2a_paper`` and ``r2d_paper``) to report beside the project's own.
    ``constrained`` decodes a model loaded here under the action grammar (:class:`Predictors` come as they
    are). ``reviewers`` (endpoint URLs) score the D2A predictions against the references by peer review
    (:func:`chemactor.scoring.review.peer_review`) beside the round trip. Returns the report (what
    ``report.json`` holds).
    """
    unknown = sorted(set(metrics) - set(EXTRA_METRICS))
    if unknown:
        raise ValueError(f"unknown metric set(s) {', '.join(unknown)}; known: {', '.join(EXTRA_METRICS)}")
    predictors = (
        model if isinstance(model, Predictors) else load_predictors(model, batch_size, max_new_tokens, constrained)
    )
    if isinstance(dataset, datasets.DatasetDict):
        if split not in dataset:
            raise InputError(f"no split {split!r} to evaluate on; the data has {', '.join(dataset)}")
        rows = dataset[split]
    else:
        rows = dataset
    d2a_rows = [row for row in rows if has_task(row, "d2a")]
    r2d_rows = [row for row in rows if has_task(row, "r2d")]
    if not d2a_rows and not r2d_rows:
        raise InputError(f"split {split!r} has no row with a description and actions or a reaction and description")

    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"model": predictors.name, "split": split, "counts": {}}
    scored: list[dict[str, Any]] = []

    # every answer first, so that nothing is scored when some did not come
    descriptions = [row["description"] for row in d2a_rows]
    # the first circle round is the plain D2A run: its actions are the D2A predictions
    chains = (
        run_circle(descriptions, predictors.d2a, predictors.a2d, rounds=circle_rounds, batch_size=batch_size)
        if d2a_rows
        else []
    )
    reactions = [row["reaction_smiles"] for row in r2d_rows]
    r2d_predictions = _batched(predictors.r2d, reactions, batch_size, desc="R2D") if r2d_rows else []
    failures = [
        *_failures("d2a", d2a_rows, [[*chain.actions, *chain.descriptions] for chain in chains]),
        *_failures("r2d", r2d_rows, [[prediction] for prediction in r2d_predictions]),
    ]
    if failures:
        _write_jsonl(failures, output / FAILURES)
        counts = Counter(failure["kind"] for failure in failures)
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(counts.items()))
        raise FailedItemsError(
            f"evaluation of {predictors.name}: {len(failures)} of {len(d2a_rows) + len(r2d_rows)} examples got no "
            f"answer ({kinds}); no score computed; see {output / FAILURES}"
        )

    if d2a_rows:
        references = [row["actions"] for row in d2a_rows]
        predictions = [chain.actions[0] for chain in chains]
        report["d2a"] = action_metrics(predictions, references)
        if "paper" in metrics:
            report["d2a_paper"] = paper_action_metrics(predictions, references)
        report["circle"] = circle_scores(
            [chain.actions for chain in chains], references, [chain.descriptions for chain in chains]
        )
        if reviewers:
            report["peer_review"] = _peer_review(predictions, references, reviewers)
        similarities = levenshtein_similarities(predictions, references)
        scored += _scored("d2a", d2a_rows, descriptions, references, predictions, similarities)
        report["counts"]["d2a"] = len(d2a_rows)

    if r2d_rows:
        references = [row["description"] for row in r2d_rows]
        predictions = r2d_predictions
        report["r2d"] = procedure_metrics(predictions, references)
        if "paper" in metrics:
            report["r2d_paper"] = paper_procedure_metrics(predictions, references)
        rouge = [procedure_metrics([p], [r])["rougeL"] for p, r in zip(predictions, references, strict=True)]
        scored += _scored("r2d", r2d_rows, reactions, references, predictions, rouge)
        report["counts"]["r2d"] = len(r2d_rows)

    report["examples"] = {
        task: _best_and_worst([row for row in scored if row["task"] == task], examples_shown) for task in ("d2a", "r2d")
    }
    report["plots"] = _plot_all(report, output / PLOTS, selection)
    _write_jsonl(scored, output / PREDICTIONS)
    (output / REPORT_JSON).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (output / REPORT_MD).write_text(render_markdown(report), encoding="utf-8")
    return report


def _peer_review(predictions: list[str], references: list[str], urls: Sequence[str]) -> dict[str, Any]:
    """Peer review of the D2A predictions by reviewer LLMs served at ``urls`` (chat API), answers kept out."""
    from chemactor.generation.backends import endpoint_backends
    from chemactor.scoring.review import peer_review

    result = peer_review(predictions, references, endpoint_backends(list(dict.fromkeys(urls)), api="chat"))
    return {key: value for key, value in result.items() if key != "reviews"}


def _batched(converter: Converter, texts: list[str], batch_size: int, desc: str) -> list[str]:
    outputs: list[str] = []
    for start in tqdm(range(0, len(texts), batch_size), desc=desc, unit="batch"):
        outputs.extend(converter(texts[start : start + batch_size]))
    if len(outputs) != len(texts):
        raise ValueError(f"the model returned {len(outputs)} outputs for {len(texts)} inputs")
    return outputs


def _failures(task: str, rows: Sequence[Mapping[str, Any]], answers: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    """One entry per row whose answers include a :class:`~chemactor.inference.Failure` (the first one)."""
    failed = []
    for row, texts in zip(rows, answers, strict=True):
        failure = next((text for text in texts if isinstance(text, Failure)), None)
        if failure is not None:
            failed.append({"task": task, "id": row["id"], "kind": failure.kind, "message": str(failure)})
    return failed


def _scored(
    task: str,
    rows: Sequence[Mapping[str, Any]],
    inputs: Sequence[str],
    references: Sequence[str],
    predictions: Sequence[str],
    scores: Sequence[float],
) -> list[dict[str, Any]]:
    return [
        {"task": task, "id": row["id"], "input": text, "reference": reference, "prediction": prediction, "score": score}
        for row, text, reference, prediction, score in zip(rows, inputs, references, predictions, scores, strict=True)
    ]


def _best_and_worst(rows: list[dict[str, Any]], count: int) -> dict[str, list[dict[str, Any]]]:
    ranked = sorted(rows, key=lambda row: (-row["score"], row["id"]))
    worst = ranked[::-1][: min(count, max(len(ranked) - count, 0))]
    return {"best": ranked[:count], "worst": worst}


def _write_jsonl(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


# --- plots --------------------------------------------------------------------------------------------


def _plot_all(report: Mapping[str, Any], directory: Path, selection: datasets.Dataset | None) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    if "circle" in report:
        written.append(plot_circle(report["circle"], directory / "circle_review.png"))
    if report.get("d2a", {}).get("per_action_type"):
        written.append(plot_action_types(report["d2a"]["per_action_type"], directory / "action_type_f1.png"))
    if selection is not None:
        from chemactor.selection.report import plot_score_histograms

        written.append(plot_score_histograms(selection, directory / "selection_divergence.png"))
    return [str(Path(PLOTS) / Path(path).name) for path in written]


def plot_circle(circle: Mapping[str, Any], path: Path) -> str:
    """Similarity per circle-review round: actions to the reference and to round 1, descriptions to D0."""
    import matplotlib.pyplot as plt

    rounds = list(range(1, circle["rounds"] + 1))
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(rounds, circle["action_similarity_to_reference"], marker="o", label="actions vs reference")
    axes.plot(rounds, circle["action_similarity_to_first"], marker="s", label="actions vs round 1")
    if "description_similarity" in circle:
        axes.plot(rounds, circle["description_similarity"], marker="^", label="description vs input (ROUGE-L)")
    axes.set(xlabel="round", ylabel="similarity", ylim=(0, 1.05), xticks=rounds, title="Circle review (round trip)")
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return str(path)


def plot_action_types(per_type: Mapping[str, Mapping[str, float]], path: Path) -> str:
    """F1 per action type (support in the reference beside each bar), most frequent types on top."""
    import matplotlib.pyplot as plt

    names = sorted(per_type, key=lambda name: (per_type[name]["support"], name))
    f1 = [per_type[name]["f1"] for name in names]
    figure, axes = plt.subplots(figsize=(6, 0.3 * len(names) + 1.2))
    bars = axes.barh(names, f1, color="tab:blue")
    for bar, name in zip(bars, names, strict=True):
        axes.text(1.01, bar.get_y() + bar.get_height() / 2, f"n={per_type[name]['support']}", va="center", fontsize=8)
    axes.set(xlim=(0, 1.12), xlabel="F1", title="D2A: F1 per action type")
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return str(path)


# --- markdown --------------------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        text = f"{value:.3f}" if isinstance(value, float) else str(value)
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _scalars(metrics: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return [(name, value) for name, value in metrics.items() if isinstance(value, int | float)]


def render_markdown(report: Mapping[str, Any]) -> str:
    """The human-readable report: score tables, circle rounds, per-type F1, best and worst examples, plots."""
    counts = ", ".join(f"{count} {task.upper()}" for task, count in report["counts"].items())
    parts = [f"# Evaluation of `{report['model']}` on `{report['split']}`", f"Examples: {counts}."]
    if "d2a" in report:
        parts += ["## D2A: description -> actions", _table(("metric", "value"), _scalars(report["d2a"]))]
        per_type = report["d2a"]["per_action_type"]
        rows = [(name, s["precision"], s["recall"], s["f1"], s["support"]) for name, s in sorted(per_type.items())]
        parts += ["### Per action type", _table(("type", "precision", "recall", "F1", "support"), rows)]
    if "circle" in report:
        circle = report["circle"]
        header = ["round", "actions vs reference", "actions vs round 1"]
        columns = [circle["action_similarity_to_reference"], circle["action_similarity_to_first"]]
        if "description_similarity" in circle:
            header.append("description vs input (ROUGE-L)")
            columns.append(circle["description_similarity"])
        rows = [(i + 1, *values) for i, values in enumerate(zip(*columns, strict=True))]
        parts += [
            "## Circle review (round trip)",
            f"Circle score {circle['circle_score']:.3f} (mean action similarity to the reference over "
            f"{circle['rounds']} rounds); decay from round 1 to round {circle['rounds']}: {circle['decay']:.3f}.",
            _table(header, rows),
        ]
    if "peer_review" in report:
        review = report["peer_review"]
        rows = [
            (index, *(summary["reviewer_scores"][name] for name in review["reviewers"]), summary["consensus"])
            for index, summary in enumerate(review["rounds"])
        ]
        parts += [
            "## Circle review (peer review of the D2A predictions)",
            f"Consensus {_number(review['consensus'])}, agreement {_number(review['agreement'])}, "
            f"unreadable answers {review['unparsable']}; round 0 is the independent review, then the debate.",
            _table(("round", *review["reviewers"], "consensus"), rows),
        ]
    if "r2d" in report:
        parts += ["## R2D: reaction -> description", _table(("metric", "value"), _scalars(report["r2d"]))]
    for task in ("d2a", "r2d"):
        if f"{task}_paper" in report:
            parts += [
                f"## {task.upper()} as the ChemActor paper's code computes it (percent)",
                _table(("metric", "value"), _scalars(report[f"{task}_paper"])),
            ]
    for task, label in (("d2a", "Levenshtein similarity"), ("r2d", "ROUGE-L F1")):
        for kind in ("best", "worst"):
            shown = report["examples"][task][kind]
            if shown:
                rows = [(row["id"], row["score"], row["input"], row["reference"], row["prediction"]) for row in shown]
                parts += [
                    f"### {task.upper()}: {kind} examples ({label})",
                    _table(("id", "score", "input", "reference", "prediction"), rows),
                ]
    if report["plots"]:
        parts += ["## Plots", "\n".join(f"![{Path(plot).stem}]({plot})" for plot in report["plots"])]
    return "\n\n".join(parts) + "\n"
