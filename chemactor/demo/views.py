"""What each tab of the demo shows, computed without any user-interface library.

The Gradio app (:mod:`chemactor.demo.app`) only lays these views out, so everything a user sees is
testable on its own: the action table, the validation problems pinned to their steps, the per-sentence
view, the molecule or reaction drawing, the cross-check verdicts and the circle-review rounds.

Bad input (empty text, a SMILES that RDKit cannot read) raises :class:`~chemactor.errors.InputError`
with a message meant for the page; the app shows it instead of a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chemactor.actions import Action, Chemical, format_actions
from chemactor.actions.model import Slot, slots
from chemactor.chem import InvalidSmilesError, canonicalize_reaction, canonicalize_smiles
from chemactor.errors import InputError
from chemactor.evaluation import Predictors, completer_predictors
from chemactor.generation.crosscheck import crosscheck
from chemactor.inference import ActionExtractor, Extraction, ModelCompleter, ProcedureWriter, split_sentences
from chemactor.scoring.circle import circle_scores, run_circle

TABLE_COLUMNS: tuple[str, ...] = ("step", "action", "compound", "quantity", "conditions", "problem")
_STEP = re.compile(r"^action (\d+) \(")


@dataclass
class DemoModel:
    """One model behind the three tabs: a local folder, a Hub model id or an endpoint URL.

    ``extractor`` and ``writer`` are the D2A and R2D converters of :mod:`chemactor.inference`; ``predictors``
    adds the way back (actions -> description) that circle review needs.
    """

    name: str
    extractor: ActionExtractor
    writer: ProcedureWriter
    predictors: Predictors

    @classmethod
    def load(cls, spec: str, max_new_tokens: int = 256, **endpoint_options: Any) -> DemoModel:
        """``spec`` is a model folder, a Hub repo id (``org/name``) or an ``http(s)://`` endpoint URL."""
        if spec.startswith(("http://", "https://")):
            completer = ActionExtractor.from_endpoint(spec, max_new_tokens, **endpoint_options).completer
        elif Path(spec).is_dir() or re.fullmatch(r"[\w.-]+/[\w.-]+", spec):
            completer = ModelCompleter.from_pretrained(spec, max_new_tokens)
        else:
            raise InputError(f"--model {spec!r} is neither a model folder, a Hub model id (org/name) nor a URL")
        return cls(
            name=spec,
            extractor=ActionExtractor(completer),
            writer=ProcedureWriter(completer),
            predictors=completer_predictors(completer, name=spec),
        )


# --- description -> actions ----------------------------------------------------------------------------


@dataclass
class ActionsView:
    """The extraction of one procedure as the first tab shows it."""

    readable: str
    rows: list[list[Any]]
    problems: list[str]
    sentences: list[list[str]]
    extraction: dict[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        """One line for the page: what came out, and how many problems it has."""
        if not self.rows:
            return "No actions: " + "; ".join(self.problems) if self.problems else "No actions."
        if self.problems:
            return f"{len(self.rows)} actions, {len(self.problems)} validation problem(s): " + "; ".join(self.problems)
        return f"{len(self.rows)} actions, all valid."


def action_rows(actions: Sequence[Action], problems: Sequence[str] = ()) -> list[list[Any]]:
    """One table row per action: step (1-based), type, compounds, quantities, conditions, problems.

    ``problems`` are :func:`chemactor.actions.validate_actions` messages; each names the 0-based action it
    concerns (``action 2 (ADD): ...``), so it is shown on that step; sequence-level problems name none.
    """
    by_step: dict[int, list[str]] = {}
    for problem in problems:
        match = _STEP.match(problem)
        if match:
            by_step.setdefault(int(match.group(1)), []).append(problem.split(": ", 1)[-1])
    rows = []
    for index, action in enumerate(actions):
        compounds, quantities, conditions = _columns(action)
        rows.append([index + 1, action.name, compounds, quantities, conditions, "; ".join(by_step.get(index, []))])
    return rows


def _columns(action: Action) -> tuple[str, str, str]:
    """Compounds, quantities and the remaining conditions of one action, as table cells."""
    compounds: list[str] = []
    quantities: list[str] = []
    conditions: list[str] = []
    for spec in slots(type(action)):
        value = getattr(action, spec.name)
        slot, keyword = spec.metadata["slot"], spec.metadata["keyword"]
        if slot is Slot.CHEMICAL or slot is Slot.CHEMICALS:
            chemicals: list[Chemical] = [value] if slot is Slot.CHEMICAL else list(value)
            compounds += [chemical.name for chemical in chemicals]
            quantities += [", ".join(chemical.quantity) for chemical in chemicals if chemical.quantity]
        elif slot is Slot.TEXT and value is not None:
            if spec.metadata["compound"]:
                compounds.append(value)
            else:
                conditions.append(f"{keyword} {value}" if keyword else str(value))
        elif slot is Slot.FLAG and value:
            conditions.append(keyword)
        elif slot is Slot.REPETITIONS and value != 1:
            conditions.append(f"{value} x")
    return "; ".join(compounds), "; ".join(quantities), ", ".join(conditions)


def actions_view(model: DemoModel, description: str) -> ActionsView:
    """Extract the actions of ``description`` (sentence by sentence) and lay them out for the page."""
    if not description.strip():
        raise InputError("Paste a procedure first: the text is empty.")
    extraction = model.extractor.extract([description], progress=False)[0]
    return _view_of(extraction, model)


def _view_of(extraction: Extraction, model: DemoModel) -> ActionsView:
    sentences = extraction.sentences or split_sentences(extraction.description)
    answers = _per_sentence(model, sentences)
    per_sentence = [[sentence, actions] for sentence, actions in zip(sentences, answers, strict=True)]
    return ActionsView(
        readable=format_actions(extraction.parsed) if extraction.parsed else extraction.actions,
        rows=action_rows(extraction.parsed, extraction.errors),
        problems=list(extraction.errors),
        sentences=per_sentence if len(sentences) > 1 else [],
        extraction=extraction.to_dict(),
    )


def _per_sentence(model: DemoModel, sentences: list[str]) -> list[str]:
    """Each sentence's own actions (only asked for when there are several sentences)."""
    if len(sentences) < 2:
        return [""] * len(sentences)
    return [
        row.actions or "; ".join(row.errors) for row in model.extractor.extract(sentences, split=False, progress=False)
    ]


# --- reaction or target molecule -> procedure -> actions -------------------------------------------------


@dataclass
class ProcedureView:
    """What the second tab shows: the structure drawn, the procedure, its actions and the verdicts."""

    reaction_smiles: str
    is_target: bool
    svg: str
    procedure: str
    actions: ActionsView
    verdicts: dict[str, Any]


def reaction_or_target(smiles: str) -> tuple[str, bool]:
    """``(reaction SMILES, is_target)``: a single molecule becomes the product-only reaction ``>>target``.

    A ChemActor model writes procedures from reaction SMILES; for a target alone, the product is all that
    is known, and the model chooses what to make it from.
    """
    text = smiles.strip()
    if not text:
        raise InputError("Paste a reaction SMILES (reactants>agents>products) or a target molecule SMILES.")
    try:
        if ">" in text:
            return canonicalize_reaction(text), False
        return ">>" + canonicalize_smiles(text), True
    except InvalidSmilesError as error:
        raise InputError(f"RDKit cannot read {text!r}: {error.reason}") from error


def draw(reaction_smiles: str, is_target: bool, size: tuple[int, int] = (520, 220)) -> str:
    """An SVG drawing of the target molecule or of the whole reaction (RDKit's 2D depiction)."""
    from rdkit import Chem
    from rdkit.Chem import rdChemReactions
    from rdkit.Chem.Draw import rdMolDraw2D

    drawer = rdMolDraw2D.MolDraw2DSVG(*size)
    if is_target:
        drawer.DrawMolecule(Chem.MolFromSmiles(reaction_smiles.split(">>", 1)[1]))
    else:
        drawer.DrawReaction(rdChemReactions.ReactionFromSmarts(reaction_smiles, useSmiles=True))
    drawer.FinishDrawing()
    svg = drawer.GetDrawingText()
    return svg[svg.index("<svg") :]  # the XML prolog has no place inside an HTML page


def procedure_view(model: DemoModel, smiles: str) -> ProcedureView:
    """Write the procedure for a reaction or target (R2D), extract its actions (D2A) and cross-check them."""
    reaction, is_target = reaction_or_target(smiles)
    procedure = model.writer.describe([reaction], progress=False)[0]
    if not procedure.valid:
        raise InputError(f"No procedure could be written: {procedure.error}")
    extraction = model.extractor.extract([procedure.text], progress=False)[0]
    if extraction.actions:  # a product-only reaction has no precursors for $n$ or product checks to count
        verdicts = crosscheck(extraction.actions, procedure.text, "" if is_target else reaction)
    else:
        verdicts = {"passed": False, "checks": {}, "reasons": list(extraction.errors)}
    return ProcedureView(
        reaction_smiles=reaction,
        is_target=is_target,
        svg=draw(reaction, is_target),
        procedure=procedure.text,
        actions=_view_of(extraction, model),
        verdicts=verdicts,
    )


def verdict_rows(verdicts: dict[str, Any]) -> list[list[str]]:
    """The cross-check as a table: each check with ``pass``/``fail``, then each reason."""
    rows = [[name, "pass" if passed else "fail"] for name, passed in verdicts.get("checks", {}).items()]
    return rows + [["reason", reason] for reason in verdicts.get("reasons", [])]


# --- circle review --------------------------------------------------------------------------------------


@dataclass
class CircleView:
    """The rounds D0 -> A1 -> D1 -> ... side by side, and how similar each round stays to the first."""

    rounds: list[list[Any]]
    action_similarity: list[float]
    description_similarity: list[float]


def circle_view(model: DemoModel, description: str, rounds: int = 3) -> CircleView:
    """Run ``rounds`` rounds of the model's own D2A and A2D on ``description``.

    With no reference actions in a demo, each round's actions are compared with round 1's (what the
    model first understood) and each description with the original text.
    """
    if not description.strip():
        raise InputError("Paste a procedure first: the text is empty.")
    if not 1 <= rounds <= 10:
        raise InputError(f"rounds must be between 1 and 10, got {rounds}")
    chain = run_circle([description.strip()], model.predictors.d2a, model.predictors.a2d, rounds, batch_size=1)[0]
    scores = circle_scores([chain.actions], [chain.actions[0]], [chain.descriptions])
    table = [[0, chain.descriptions[0], "", None, None]]
    for index in range(rounds):
        table.append(
            [
                index + 1,
                chain.descriptions[index + 1],
                chain.actions[index],
                round(scores["action_similarity_to_first"][index], 3),
                round(scores["description_similarity"][index], 3),
            ]
        )
    return CircleView(
        rounds=table,
        action_similarity=list(scores["action_similarity_to_first"]),
        description_similarity=list(scores["description_similarity"]),
    )
