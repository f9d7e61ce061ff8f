"""Use a trained model: extract action sequences from descriptions (D2A), write procedures for reactions (R2D).

Both ask the model exactly as training did (:func:`chemactor.data.prompt_for`, the tokenizer's chat template
when it has one) and never raise for a batch because one answer is bad: every input gets a result that says
whether it is valid and, if not, why. Paragraphs are split into sentences and each sentence is translated
on its own, as Paragraph2Actions does, because that is the unit the models are trained on.

A model is either loaded locally (``from_pretrained``: a directory or a Hub repo id) or served by an
endpoint (``from_endpoint``: text-generation-inference or an OpenAI-compatible server, through
:class:`chemactor.generation.backends.EndpointBackend`).
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tqdm.auto import tqdm

from chemactor.actions import (
    Action,
    ActionConstraint,
    ActionParseError,
    action_types,
    parse_actions,
    validate_actions,
)
from chemactor.chem import InvalidSmilesError, canonicalize_reaction, reaction_target
from chemactor.data import AppendLog, RecordError, iter_jsonl, prompt_for, read_text_lines
from chemactor.errors import LOCAL_MODEL_MODULES, ResumeError, require_extra
from chemactor.generation.backends import EndpointBackend, GenerationError, generate_local, render_prompt

logger = logging.getLogger(__name__)

# Words whose trailing dot does not end a sentence in experimental text ("ca. 5 mL", "sat. aq. NaHCO3").
# Units are not among them: "stirred for 5 min. The mixture ..." ends a sentence at "min.".
_ABBREVIATIONS = frozenset(
    "approx ca aq sat conc temp vol no nos fig figs ex ref refs e.g i.e vs cf lit resp dil soln anhyd calcd abs".split()  # noqa: SIM905
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")


def split_sentences(paragraph: str) -> list[str]:
    """Split a procedure paragraph into sentences, keeping every character but the whitespace between them.

    A boundary is a ``.``/``!``/``?`` followed by whitespace and a capital, digit or bracket, unless the
    word before the dot is a known abbreviation or a capital initial (``J. Smith``); units end sentences.
    """
    sentences, start = [], 0
    for match in _SENTENCE_END.finditer(paragraph):
        word = paragraph[: match.start()].rsplit(None, 1)[-1].rstrip(".!?").lstrip("([{\"'")
        if word.lower() in _ABBREVIATIONS or (len(word) == 1 and word.isupper()):
            continue
        sentences.append(paragraph[start : match.start()])
        start = match.end()
    sentences.append(paragraph[start:])
    return [sentence.strip() for sentence in sentences if sentence.strip()]


def join_actions(outputs: Sequence[str]) -> str:
    """One action string from per-sentence action strings; ``NOACTION`` sentences vanish unless alone."""
    # only the end mark goes: a value may end with a dot of its own (``WAIT for 5 min.`` is ``5 min`` + ".")
    kept = [output.strip().removesuffix(".").strip() for output in outputs if output.strip()]
    meaningful = [output for output in kept if action_types(output + ".") != ["NOACTION"]]
    kept = meaningful or kept[:1]
    return "; ".join(kept) + "." if kept else ""


# --- text generation -------------------------------------------------------------------------------------


class Failure(str):
    """An error text standing in for an answer that could not be had (a ``str``, so batches stay flat lists).

    ``kind`` says why, as the generation runner records it: a :class:`GenerationError` kind (``garbage``,
    ``timeout``, ...), ``local`` (a local model failed on the batch) or ``invalid_smiles``.
    """

    kind: str

    def __new__(cls, text: str, kind: str = "generation") -> Failure:
        failure = super().__new__(cls, text)
        failure.kind = kind
        return failure


def first_line(text: str) -> str:
    """The answer proper: completions end with a newline in training, anything after it is the model rambling."""
    return text.strip().split("\n", 1)[0].strip()


class Completer(Protocol):
    """Completes prompts in input order; an answer that cannot be had is a :class:`Failure`.

    With a ``constraint`` every answer is a readable action string the constraint admits (or a failure).
    """

    def complete(
        self, prompts: Sequence[str], batch_size: int, progress: bool, constraint: ActionConstraint | None = None
    ) -> list[str]: ...


class ModelCompleter:
    """Greedy completion with an in-memory causal LM (a loaded model, or the one a Trainer is training)."""

    def __init__(self, model: Any, tokenizer: Any, max_new_tokens: int = 256) -> None:
        self.model, self.tokenizer, self.max_new_tokens = model, tokenizer, max_new_tokens
        if tokenizer.pad_token is None:  # Llama-family tokenizers ship without one; batches need it
            tokenizer.pad_token = tokenizer.eos_token

    @classmethod
    def from_pretrained(cls, path_or_repo: str, max_new_tokens: int = 256, **kwargs: Any) -> ModelCompleter:
        require_extra(LOCAL_MODEL_MODULES, "train", "a local model (--model; an --endpoint needs no extra)")
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from chemactor.cpu import limit_torch_threads

        limit_torch_threads()  # sized to the cores free now, so a busy machine is not made busier
        tokenizer = AutoTokenizer.from_pretrained(path_or_repo)
        return cls(AutoModelForCausalLM.from_pretrained(path_or_repo, **kwargs), tokenizer, max_new_tokens)

    def render(self, prompt: str) -> str:
        """The prompt as the model saw it in training: through the chat template when there is one."""
        return render_prompt(self.tokenizer, [{"role": "user", "content": prompt}])

    def complete(
        self,
        prompts: Sequence[str],
        batch_size: int = 8,
        progress: bool = True,
        constraint: ActionConstraint | None = None,
    ) -> list[str]:
        """Greedy answers in input order; a batch the model fails on (out of memory, say) fails alone."""
        was_training = self.model.training
        self.model.eval()
        answers: list[str] = []
        try:
            for start in tqdm(range(0, len(prompts), batch_size), desc="generate", disable=not progress):
                batch = [self.render(prompt) for prompt in prompts[start : start + batch_size]]
                try:
                    generated = generate_local(
                        self.model, self.tokenizer, batch, max_new_tokens=self.max_new_tokens, constraint=constraint
                    )
                except RuntimeError as error:
                    answers.extend(Failure(f"generation failed (local): {error}", "local") for _ in batch)
                else:
                    answers.extend(first_line(text) for text, _ in generated)
        finally:
            self.model.train(was_training)
        return answers


class EndpointCompleter:
    """Completion by a served model through the project's endpoint backend (retries, concurrency, failover)."""

    def __init__(self, backend: EndpointBackend, max_new_tokens: int = 256) -> None:
        self.backend, self.max_new_tokens = backend, max_new_tokens

    def complete(
        self,
        prompts: Sequence[str],
        batch_size: int = 8,
        progress: bool = True,
        constraint: ActionConstraint | None = None,
    ) -> list[str]:
        """Answers in input order; ``batch_size`` is moot here, the backend keeps the server busy instead."""
        params: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "temperature": 0.0}
        if constraint is not None:
            params["constraint"] = constraint
        results = self.backend.generate_many(prompts, progress=progress, **params)
        return [
            Failure(f"generation failed ({result.kind}): {result}", result.kind)
            if isinstance(result, GenerationError)
            else first_line(result.text)
            for result in results
        ]


def _endpoint_completer(urls: str | Sequence[str], max_new_tokens: int, **backend_kwargs: Any) -> EndpointCompleter:
    return EndpointCompleter(EndpointBackend(urls, **backend_kwargs), max_new_tokens)


# --- D2A ---------------------------------------------------------------------------------------------------


@dataclass
class Extraction:
    """The actions extracted from one description, and whether they are usable."""

    description: str
    actions: str
    parsed: list[Action] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)
    failure: str | None = None  # the kind of failure when no answer came for a sentence (a Failure's kind)

    @property
    def valid(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (``parsed`` as action type names)."""
        return {
            "description": self.description,
            "actions": self.actions,
            "valid": self.valid,
            "errors": self.errors,
            "action_types": [action.name for action in self.parsed],
            "sentences": self.sentences,
            "failure": self.failure,
        }


class ActionExtractor:
    """Description -> action sequence with a trained ChemActor model.

    Answers are decoded under the action grammar (:class:`~chemactor.actions.ActionConstraint`) unless
    ``constrained`` is false: a locally run model through xgrammar, a served one as its server takes it.

    >>> extractor = ActionExtractor.from_pretrained("outputs/sft-tiny")  # doctest: +SKIP
    >>> extractor.extract(["The mixture was stirred for 2 h at 25 °C."])[0].actions  # doctest: +SKIP
    'STIR for 2 h at 25 °C.'
    """

    def __init__(self, completer: Completer, constrained: bool = True, constraint: ActionConstraint | None = None):
        self.completer = completer
        self.constraint = (constraint or ActionConstraint()) if constrained else None

    @classmethod
    def from_pretrained(
        cls, path_or_repo: str, max_new_tokens: int = 256, constrained: bool = True, **model_kwargs: Any
    ) -> ActionExtractor:
        return cls(ModelCompleter.from_pretrained(path_or_repo, max_new_tokens, **model_kwargs), constrained)

    @classmethod
    def from_model(
        cls, model: Any, tokenizer: Any, max_new_tokens: int = 256, constrained: bool = True
    ) -> ActionExtractor:
        return cls(ModelCompleter(model, tokenizer, max_new_tokens), constrained)

    @classmethod
    def from_endpoint(
        cls, urls: str | Sequence[str], max_new_tokens: int = 256, constrained: bool = True, **backend_kwargs: Any
    ) -> ActionExtractor:
        """Use a served model; ``backend_kwargs`` go to ``EndpointBackend`` (``model``, ``api``,
        ``structured_output``, ...)."""
        return cls(_endpoint_completer(urls, max_new_tokens, **backend_kwargs), constrained)

    def extract(
        self, descriptions: Iterable[str], batch_size: int = 8, split: bool = True, progress: bool = True
    ) -> list[Extraction]:
        """One :class:`Extraction` per description; with ``split``, sentence by sentence, actions joined."""
        descriptions = list(descriptions)
        sentences = [split_sentences(text) if split else [text.strip()] for text in descriptions]
        prompts = [prompt_for("d2a", sentence) for group in sentences for sentence in group if sentence]
        answers = iter(self.completer.complete(prompts, batch_size, progress, self.constraint))
        return [
            _extraction(description, group, [next(answers) for sentence in group if sentence])
            for description, group in zip(descriptions, sentences, strict=True)
        ]


def _extraction(description: str, sentences: list[str], answers: list[str]) -> Extraction:
    failures = [
        f"sentence {index + 1}: {answer}" for index, answer in enumerate(answers) if isinstance(answer, Failure)
    ]
    if not description.strip():
        return Extraction(description, "", errors=["empty description"])
    if failures:
        kind = next(answer.kind for answer in answers if isinstance(answer, Failure))
        return Extraction(description, "", errors=failures, sentences=sentences, failure=kind)
    actions = join_actions(answers)
    if not actions:
        return Extraction(description, "", errors=["no actions generated"], sentences=sentences)
    try:
        parsed = parse_actions(actions)
    except ActionParseError as error:
        return Extraction(description, actions, errors=[f"unparsable actions: {error}"], sentences=sentences)
    return Extraction(description, actions, parsed, list(validate_actions(parsed)), sentences)


# --- R2D ---------------------------------------------------------------------------------------------------


@dataclass
class Procedure:
    """The procedure written for one reaction; ``error`` says why there is none."""

    reaction: str
    text: str
    error: str | None = None
    failure: str | None = None  # the kind of failure when no procedure came (a Failure's kind)

    @property
    def valid(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "reaction": self.reaction,
            "text": self.text,
            "valid": self.valid,
            "error": self.error,
            "failure": self.failure,
        }


class ProcedureWriter:
    """Reaction SMILES -> experimental procedure text with a trained ChemActor model.

    Reactions are canonicalized with RDKit first (the training data is canonical); one that does not parse
    gets its error and is not sent to the model.
    """

    def __init__(self, completer: Completer) -> None:
        self.completer = completer

    @classmethod
    def from_pretrained(cls, path_or_repo: str, max_new_tokens: int = 512, **model_kwargs: Any) -> ProcedureWriter:
        return cls(ModelCompleter.from_pretrained(path_or_repo, max_new_tokens, **model_kwargs))

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, max_new_tokens: int = 512) -> ProcedureWriter:
        return cls(ModelCompleter(model, tokenizer, max_new_tokens))

    @classmethod
    def from_endpoint(
        cls, urls: str | Sequence[str], max_new_tokens: int = 512, **backend_kwargs: Any
    ) -> ProcedureWriter:
        return cls(_endpoint_completer(urls, max_new_tokens, **backend_kwargs))

    def describe(self, reactions: Iterable[str], batch_size: int = 8, progress: bool = True) -> list[Procedure]:
        """One :class:`Procedure` per reaction SMILES, in input order."""
        reactions = list(reactions)
        inputs = [_canonical_reaction(reaction) for reaction in reactions]
        prompts = [prompt_for("r2d", smiles) for smiles in inputs if not isinstance(smiles, Failure)]
        answers = iter(self.completer.complete(prompts, batch_size, progress))
        texts = [smiles if isinstance(smiles, Failure) else next(answers) for smiles in inputs]
        return [
            Procedure(reaction, "", str(text), text.kind)
            if isinstance(text, Failure)
            else Procedure(reaction, text)
            if text
            else Procedure(reaction, "", "empty procedure")
            for reaction, text in zip(reactions, texts, strict=True)
        ]


def _canonical_reaction(reaction: str) -> str:
    """The RDKit-canonical reaction, or a :class:`Failure` naming what does not parse.

    A single molecule (or ``>>molecule``) is a target: the product-only reaction ``>>target`` asks the model
    for a procedure that makes it, leaving the choice of starting materials to the model.
    """
    try:
        target = reaction_target(reaction)
        return canonicalize_reaction(reaction) if target is None else ">>" + target
    except InvalidSmilesError as error:
        return Failure(f"invalid reaction SMILES: {error}", "invalid_smiles")


# --- files -------------------------------------------------------------------------------------------------


def convert_file(
    convert: Callable[[list[str]], list[dict[str, Any]]],
    input_path: str | Path,
    output_path: str | Path,
    input_key: str,
    chunk_size: int = 64,
    retry_failed: bool = False,
) -> int:
    """Convert every non-blank line of ``input_path``, one JSON line each in ``output_path``; returns rows written.

    Each output row is ``{"line": N, **result}``, ``N`` the input's line number, and echoes its input under
    ``input_key`` (``description`` for D2A, ``reaction`` for R2D). Rows are appended as they are done through
    :class:`chemactor.data.AppendLog`, so a killed run loses at most the chunk in flight (a torn last line is
    cut) and a rerun converts only the lines not in the output yet. With ``retry_failed``, lines whose last
    row records a ``failure`` are converted again; the new row, appended later, supersedes the failed one.
    An output file whose rows are not this input's (another input file, unrelated lines, a line answered
    twice) raises :class:`ResumeError` and is never appended to.
    """
    items = {line_no: text.strip() for line_no, text in enumerate(read_text_lines(input_path), start=1) if text.strip()}
    failed = _converted_lines(Path(output_path), items, input_path, input_key)
    done = {line_no for line_no, failure in failed.items() if not (retry_failed and failure)}
    log = AppendLog(output_path)  # only now, once the file is known to be ours, is a torn last line cut
    if log.repaired:
        logger.warning("%s: cut a torn last line (%d bytes) left by an interrupted run", output_path, log.repaired)
    todo = [(line_no, text) for line_no, text in items.items() if line_no not in done]
    with log, tqdm(total=len(items), initial=len(items) - len(todo), unit="row") as bar:
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start : start + chunk_size]
            for (line_no, _), row in zip(chunk, convert([text for _, text in chunk]), strict=True):
                log.append({"line": line_no, **row})
            bar.update(len(chunk))
    return len(todo)


def _converted_lines(output: Path, items: dict[int, str], input_path: str | Path, input_key: str) -> dict[int, bool]:
    """Whether the last row of each input line in ``output`` failed; :class:`ResumeError` unless every row is
    one of this input's, and a line is repeated only after a failed row (a retry)."""
    failed: dict[int, bool] = {}
    if not output.exists():
        return failed
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a torn last line is expected here: convert_file cuts it and says so
            for out_line, row in iter_jsonl(output):
                line_no = row.get("line")
                known = isinstance(line_no, int) and items.get(line_no) == row.get(input_key)
                if not known or failed.get(line_no) is False:
                    raise ResumeError(
                        f"{output}:{out_line}: not a result for {input_path} line {line_no!r} "
                        f"(the file holds other output); refusing to append: choose another output file"
                    )
                failed[line_no] = bool(row.get("failure"))
    except RecordError as exc:  # a line that is not JSON: whatever the file is, it is not this command's output
        raise ResumeError(f"{exc}; {output} is not this command's output, refusing to append") from exc
    return failed
