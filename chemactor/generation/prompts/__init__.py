"""Versioned few-shot prompt templates for the generation chain (``<task>-<version>.jinja`` files).

A generated row is only as interpretable as the prompt that produced it, so every row records the task,
version and a hash of the template text; the text of a released version never changes (a new wording is
a new file). Pass ``directory`` to use templates of your own with the same variables.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import jinja2

PROMPTS_DIR = Path(__file__).resolve().parent
DEFAULT_VERSION = "v1"
ANSWER_END = "\n###"  # the next few-shot header: where a model that keeps going has finished its answer


@dataclass(frozen=True)
class PromptFile:
    """One template: ``render(**values)`` gives the prompt, ``provenance`` what a row records about it."""

    task: str
    version: str
    text: str
    path: str

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @cached_property
    def _template(self) -> jinja2.Template:
        environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
        return environment.from_string(self.text)

    def render(self, **values: Any) -> str:
        return self._template.render(**values)

    @property
    def provenance(self) -> dict[str, str]:
        return {"task": self.task, "version": self.version, "sha256": self.sha256}


def load_prompt(task: str, version: str = DEFAULT_VERSION, directory: str | Path | None = None) -> PromptFile:
    """The template of ``task`` at ``version`` from ``directory`` (the shipped templates by default)."""
    path = Path(directory or PROMPTS_DIR) / f"{task}-{version}.jinja"
    if not path.is_file():
        known = sorted(p.stem for p in Path(directory or PROMPTS_DIR).glob("*.jinja"))
        raise FileNotFoundError(f"no prompt template {path}; available: {', '.join(known) or 'none'}")
    return PromptFile(task=task, version=version, text=path.read_text(encoding="utf-8"), path=str(path))


def clean_completion(text: str, task: str) -> str:
    """The answer proper: cut where the model starts another few-shot block; D2A answers are one line."""
    answer = text.split(ANSWER_END, 1)[0].strip()
    if task == "d2a":
        answer = next((line.strip() for line in answer.splitlines() if line.strip()), "")
    return answer
