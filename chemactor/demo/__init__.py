"""A demo people can click: a Gradio app (and Space) for extraction, generation and circle review.

>>> from chemactor.demo import DemoModel  # doctest: +SKIP
>>> from chemactor.demo.app import build_app  # doctest: +SKIP
>>> build_app(DemoModel.load("outputs/quickstart/4-training/model")).launch()  # doctest: +SKIP

``chemactor demo --model DIR|REPO_ID|URL`` serves it; ``chemactor demo push --model ... --repo-id ORG/NAME``
publishes it as a Space that runs the very same ``app.py``. Gradio is imported only by
:mod:`chemactor.demo.app`, so publishing needs nothing but the core.
"""

from __future__ import annotations

import json
import tempfile
from importlib import resources
from pathlib import Path

from huggingface_hub import SpaceCard, SpaceCardData

from chemactor import __version__
from chemactor.demo.views import DemoModel
from chemactor.hub import push_folder

__all__ = ["DemoModel", "push_demo", "space_files"]

SPACE_REQUIREMENTS: tuple[str, ...] = (f"chemactor[train]=={__version__}", "gradio>=6")


def space_files(model: str, folder: str | Path) -> Path:
    """Write the Space for ``model`` into ``folder``: ``app.py`` (this package's app, unchanged), the model
    it serves (``demo.json``), ``requirements.txt`` and a card whose front matter Spaces read."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    source = resources.files("chemactor.demo").joinpath("app.py").read_text(encoding="utf-8")
    (folder / "app.py").write_text(source, encoding="utf-8")
    (folder / "demo.json").write_text(json.dumps({"model": model}) + "\n", encoding="utf-8")
    (folder / "requirements.txt").write_text("\n".join(SPACE_REQUIREMENTS) + "\n", encoding="utf-8")
    hub_model = [model] if not model.startswith(("http://", "https://")) and not Path(model).exists() else None
    data = SpaceCardData(
        title="ChemActor demo",
        sdk="gradio",
        app_file="app.py",
        models=hub_model,
        tags=["chemistry", "synthesis", "actions", "chemactor"],
        license="mit",
    )
    content = (
        f"---\n{data.to_yaml()}\n---\n\n# ChemActor demo\n\n"
        f"Serves `{model}`: paste an experimental procedure to get its machine-executable action sequence, "
        "a reaction or target SMILES to get a procedure and its actions with a cross-check, or run a circle "
        "review (the model's own description -> actions -> description rounds).\n"
    )
    SpaceCard(content).save(folder / "README.md")
    return folder


def push_demo(model: str, repo_id: str, *, private: bool = True, token: str | None = None) -> str:
    """Publish the demo of ``model`` (a Hub model id or an endpoint URL) as the Space ``repo_id``.

    A local model folder cannot be served from a Space: push the model first (``chemactor train`` with
    ``push_to_hub``, or the pipeline's publish stage) and name its repo here.
    """
    from chemactor.errors import InputError

    if Path(model).exists():
        raise InputError(f"--model {model!r} is a local folder; a Space needs a Hub model id or an endpoint URL")
    with tempfile.TemporaryDirectory(prefix="chemactor-space-") as folder:
        return push_folder(space_files(model, folder), repo_id, repo_type="space", private=private, token=token)
