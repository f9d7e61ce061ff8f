"""The ChemActor demo: a Gradio app with three tabs, served locally or as a Hugging Face Space.

1. **Description -> actions**: paste a procedure (or pick a shipped example); the actions come back as a
   table (problems shown on the offending steps), as the readable string to copy, per sentence, and as
   a JSON download.
2. **Reaction or target -> procedure -> actions**: a reaction SMILES or a single target molecule is drawn,
   the model writes the procedure, its actions are extracted and cross-checked.
3. **Circle review**: the model's own D -> A -> D -> A rounds side by side, with their similarity curve.

This file is also the Space's ``app.py`` (``chemactor demo push`` uploads it unchanged): run as a script
it serves the model named by ``$CHEMACTOR_MODEL`` or by ``demo.json`` beside it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from chemactor.demo.views import (
    TABLE_COLUMNS,
    ActionsView,
    DemoModel,
    actions_view,
    circle_view,
    procedure_view,
    verdict_rows,
)
from chemactor.errors import ChemActorError

TITLE = "ChemActor: procedures to machine-executable actions"
SPACE_CONFIG = "demo.json"
_PROBLEM_STYLE = "background-color: #fde2e1"


def _table(view: ActionsView | None) -> Any:
    """The action table; steps with a validation problem are shaded so the eye finds them."""
    frame = pd.DataFrame(view.rows if view else [], columns=list(TABLE_COLUMNS))
    if frame.empty:
        return frame
    return frame.style.apply(lambda row: [_PROBLEM_STYLE if row["problem"] else ""] * len(row), axis=1)


def _status(text: str, ok: bool) -> str:
    """The one-line message above the results: what came out, or what is wrong with the input."""
    return f"**{'Done' if ok else 'Check'}:** {text}"


def _json_file(view: ActionsView) -> str:
    descriptor, name = tempfile.mkstemp(suffix=".json", prefix="chemactor-actions-")
    with open(descriptor, "w", encoding="utf-8") as handle:
        json.dump(view.extraction, handle, ensure_ascii=False, indent=2)
    return name


def _examples() -> list[str]:
    """Procedure texts of the shipped example set, to try the demo without one's own."""
    from chemactor.examples import example_records

    return [record["description"] for record in example_records() if record["description"]]


def build_app(model: DemoModel) -> gr.Blocks:
    """The three-tab app around ``model``; ``.launch()`` serves it, ``gradio_client`` can call
    its endpoints ``/extract``, ``/procedure`` and ``/circle``."""

    def extract(text: str, progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple:  # noqa: B008
        try:
            view = actions_view(model, text)
        except ChemActorError as error:
            return _status(str(error), False), _table(None), "", [], None
        ok = bool(view.rows) and not view.problems
        return _status(view.message, ok), _table(view), view.readable, view.sentences, _json_file(view)

    def procedure(smiles: str, progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple:  # noqa: B008
        try:
            view = procedure_view(model, smiles)
        except ChemActorError as error:
            return _status(str(error), False), "", "", _table(None), "", []
        kind = "target" if view.is_target else "reaction"
        passed = "passed" if view.verdicts.get("passed") else "did not pass"
        message = f"{kind} {view.reaction_smiles}: {view.actions.message} Cross-check {passed}."
        return (
            _status(message, bool(view.verdicts.get("passed"))),
            view.svg,
            view.procedure,
            _table(view.actions),
            view.actions.readable,
            verdict_rows(view.verdicts),
        )

    def circle(text: str, rounds: float, progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple:  # noqa: B008
        try:
            view = circle_view(model, text, int(rounds))
        except ChemActorError as error:
            return _status(str(error), False), [], pd.DataFrame({"round": [], "similarity": [], "of": []})
        curve = pd.DataFrame(
            {
                "round": [*range(1, len(view.action_similarity) + 1)] * 2,
                "similarity": view.action_similarity + view.description_similarity,
                "of": ["actions vs round 1"] * len(view.action_similarity)
                + ["description vs original"] * len(view.description_similarity),
            }
        )
        final = view.action_similarity[-1]
        return (
            _status(f"{len(view.action_similarity)} rounds; actions keep {final:.0%} of round 1.", True),
            view.rounds,
            curve,
        )

    with gr.Blocks(title=TITLE) as app:
        gr.Markdown(f"# {TITLE}\nModel: `{model.name}`")
        with gr.Tab("Description → actions", id="extract"):
            example = gr.Dropdown(choices=_examples(), label="Shipped examples", value=None, elem_id="extract-example")
            text = gr.Textbox(label="Procedure", lines=6, elem_id="extract-input")
            run = gr.Button("Extract actions", variant="primary", elem_id="extract-run")
            status = gr.Markdown(elem_id="extract-status")
            table = gr.Dataframe(headers=list(TABLE_COLUMNS), label="Actions", elem_id="extract-table", wrap=True)
            readable = gr.Textbox(label="Action string", buttons=["copy"], elem_id="extract-readable")
            sentences = gr.Dataframe(headers=["sentence", "actions"], label="Per sentence", wrap=True)
            download = gr.File(label="JSON")
            example.change(lambda value: value or "", example, text, api_visibility="undocumented")
            run.click(extract, text, [status, table, readable, sentences, download], api_name="extract")
        with gr.Tab("Reaction or target → procedure → actions", id="procedure"):
            smiles = gr.Textbox(label="Reaction SMILES (reactants>agents>products) or target SMILES", elem_id="smiles")
            write = gr.Button("Write procedure", variant="primary", elem_id="procedure-run")
            procedure_status = gr.Markdown(elem_id="procedure-status")
            drawing = gr.HTML(elem_id="procedure-drawing")
            written = gr.Textbox(label="Procedure", lines=6, buttons=["copy"], elem_id="procedure-text")
            procedure_table = gr.Dataframe(headers=list(TABLE_COLUMNS), label="Actions", wrap=True)
            procedure_readable = gr.Textbox(label="Action string", buttons=["copy"])
            verdicts = gr.Dataframe(headers=["check", "verdict"], label="Cross-check", elem_id="procedure-verdicts")
            write.click(
                procedure,
                smiles,
                [procedure_status, drawing, written, procedure_table, procedure_readable, verdicts],
                api_name="procedure",
            )
        with gr.Tab("Circle review", id="circle"):
            circle_text = gr.Textbox(label="Procedure", lines=4, elem_id="circle-input")
            rounds = gr.Slider(1, 6, value=3, step=1, label="Rounds")
            review = gr.Button("Run circle review", variant="primary", elem_id="circle-run")
            circle_status = gr.Markdown(elem_id="circle-status")
            chain = gr.Dataframe(
                headers=["round", "description", "actions", "actions vs round 1", "description vs original"],
                label="Rounds",
                wrap=True,
                column_widths=["7%", "39%", "38%", "8%", "8%"],
                elem_id="circle-rounds",
            )
            plot = gr.LinePlot(
                x="round", y="similarity", color="of", y_lim=[0, 1], label="Similarity per round", elem_id="circle-plot"
            )
            review.click(circle, [circle_text, rounds], [circle_status, chain, plot], api_name="circle")
    return app


def main() -> None:
    """Serve the model named by ``$CHEMACTOR_MODEL`` or ``demo.json`` (the Space's entry point)."""
    spec = os.environ.get("CHEMACTOR_MODEL")
    config = Path(__file__).with_name(SPACE_CONFIG)
    if not spec and config.is_file():
        spec = json.loads(config.read_text(encoding="utf-8"))["model"]
    if not spec:
        raise SystemExit(f"set CHEMACTOR_MODEL or write {SPACE_CONFIG} with the model to serve")
    build_app(DemoModel.load(spec)).launch()


if __name__ == "__main__":
    main()
