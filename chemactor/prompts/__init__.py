"""Every prompt the project sends to a model or trains one on, as versioned Jinja templates, and their one loader.

A generated row, a trained model and a review are only as interpretable as the prompt behind them, so each
prompt is a file ``<task>-v<N>.jinja`` in this package and the text of a released version never changes: a
new wording is a new file (``d2a-v2``). The families:

- generation, few-shot (:mod:`chemactor.generation`): ``r2d``, ``target``, ``d2a`` and ``a2d``; each row
  records the task, version and hash (:meth:`PromptTemplate.provenance`);
- task views, what a model is trained and then asked with (:func:`chemactor.data.task_view`): ``view_r2d``,
  ``view_d2a``, ``view_r2a`` and ``view_a2d``, each filled with the one record field it shows;
- peer review (:mod:`chemactor.scoring.review`): ``peer_review`` and ``peer_review_debate``.

Templates render with strict undefined values (a missing value is an error, never an empty string) and keep
their trailing newline. A ``directory`` of one's own holding ``<task>-v<N>.jinja`` files with the same
variables replaces the shipped ones (the generation runner's ``prompts_dir``).

This module sits at the bottom layer beside :mod:`chemactor.errors`, the only package module it imports, so
every layer loads its prompts here. The shipped templates are read with :mod:`importlib.resources`, so a
wheel works as well as a checkout.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from chemactor.errors import ConfigError, closest

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

SUFFIX = ".jinja"
NAME = re.compile(r"[a-z][a-z0-9_]*-v[0-9]+")  # <task>-v<N>
_ENVIRONMENT = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


@dataclass(frozen=True)
class PromptTemplate:
    """One template: :meth:`render` gives the prompt, :attr:`sha256` identifies the text it was made from."""

    name: str
    text: str

    @property
    def task(self) -> str:
        return self.name.rpartition("-")[0]

    @property
    def version(self) -> str:
        return self.name.rpartition("-")[2]

    @cached_property
    def sha256(self) -> str:
        """The SHA-256 of the template text (UTF-8): what a row records and a published dataset is checked by."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @cached_property
    def _template(self) -> jinja2.Template:
        return _ENVIRONMENT.from_string(self.text)

    def render(self, **values: Any) -> str:
        """The prompt for ``values``; a value the template uses but is not given raises ``jinja2.UndefinedError``."""
        return self._template.render(**values)

    def provenance(self, fixed_values: Mapping[str, Any] | None = None) -> dict[str, str]:
        """What a row records about the prompt that made it: task, version and the template's hash.

        The rendered instruction depends on the template and on the values every prompt of a run fills in the
        same way (the D2A prompt's list of action names): with ``fixed_values`` their hash is recorded too, so
        a new action changes the provenance while the template file stays as it was.
        """
        provenance = {"task": self.task, "version": self.version, "sha256": self.sha256}
        if fixed_values is not None:
            fixed = json.dumps(dict(fixed_values), sort_keys=True, ensure_ascii=False).encode("utf-8")
            provenance["fixed_values_sha256"] = hashlib.sha256(fixed).hexdigest()
        return provenance


def prompt_name(task: str, version: str) -> str:
    """The name of ``task``'s template at ``version`` (``d2a``, ``v1`` -> ``d2a-v1``)."""
    return f"{task}-{version}"


def _folder(directory: str | Path | None) -> Traversable:
    return files(__name__) if directory is None else Path(directory)


def prompt_names(directory: str | Path | None = None) -> list[str]:
    """The names of the templates in ``directory`` (the shipped ones by default), sorted; none if it is no folder."""
    folder = _folder(directory)
    if not folder.is_dir():
        return []
    stems = (entry.name.removesuffix(SUFFIX) for entry in folder.iterdir() if entry.name.endswith(SUFFIX))
    return sorted(stem for stem in stems if NAME.fullmatch(stem))


def load_prompt(name: str, directory: str | Path | None = None) -> PromptTemplate:
    """The template ``name`` (``<task>-v<N>``) from ``directory``, the shipped templates by default.

    An unknown name raises :class:`~chemactor.errors.ConfigError` with the closest known one and the list.
    """
    if directory is None:
        return _shipped(name)
    return _read(name, directory)


@cache
def _shipped(name: str) -> PromptTemplate:
    """A shipped template, read and compiled once per process (task views render one per record)."""
    return _read(name, None)


def _read(name: str, directory: str | Path | None) -> PromptTemplate:
    known = prompt_names(directory)
    if name not in known:
        where = "" if directory is None else f" in {directory}"
        raise ConfigError(f"unknown prompt {name!r}{where}{closest(name, known)}; known: {', '.join(known) or 'none'}")
    return PromptTemplate(name=name, text=(_folder(directory) / f"{name}{SUFFIX}").read_text(encoding="utf-8"))


__all__ = ["NAME", "PromptTemplate", "load_prompt", "prompt_name", "prompt_names"]
