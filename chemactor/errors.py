"""The one root of user-facing errors, and the exit codes the command line maps them to.

Everything a user can cause (a bad file, a misspelled recipe key, an endpoint that cannot be reached, a
refused upload, an output folder that belongs to another run) raises a subclass of
:class:`ChemActorError` whose message names the file and line, the key path, or the row. The command
line catches this root only: it prints the message on one line and exits with the class's
``exit_code``. Anything else is a bug and keeps its traceback.

Exit codes (documented in the README):

- ``0``: the work is complete;
- ``1``: a user error (:class:`ChemActorError`), nothing was done or what was done is kept;
- ``2``: interrupted; rerun the same command to resume;
- ``3``: finished, but some items failed (counts printed; ``--retry-failed`` retries them).

This module is the bottom layer: it imports nothing from the package, so every module may use it.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_INTERRUPTED = 2
EXIT_FAILED_ITEMS = 3


class ChemActorError(Exception):
    """A problem the user can fix; the message alone (no traceback) tells them what and where."""

    exit_code: int = EXIT_USER_ERROR


class InputError(ChemActorError, ValueError):
    """Input data is unreadable or breaks the record schema: names the file and line, the row or the field."""


class ConfigError(ChemActorError, ValueError):
    """A recipe or option set is invalid: names the key path and, for a misspelling, the closest valid name."""


class EndpointError(ChemActorError):
    """An endpoint cannot be reached at all, or rejects every request of a kind (names the URL)."""


class PublishError(ChemActorError):
    """A push to the Hub failed or was refused; ``.status`` is the HTTP status when the server answered."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class OutputError(ChemActorError):
    """An output file or folder cannot be written, or holds something that is not this run's partial output."""


class ResumeError(OutputError):
    """Resuming would mix two runs: the output was written with other settings or from other input."""


class MissingExtraError(ChemActorError):
    """A command needs an optional dependency group; the message is the one line that installs it."""


class FailedItemsError(ChemActorError):
    """The work finished but some items failed; they are recorded and ``--retry-failed`` retries them."""

    exit_code = EXIT_FAILED_ITEMS


# What training needs, by import name: the `train` extra of setup.cfg installs these.
TRAIN_MODULES = ("torch", "transformers", "trl", "accelerate", "tokenizers")
# What running a local model needs (inference, local generation backend): part of the same extra.
LOCAL_MODEL_MODULES = ("torch", "transformers", "xgrammar")


def require_extra(modules: str | tuple[str, ...], extra: str, purpose: str) -> None:
    """Raise :class:`MissingExtraError` if any of ``modules`` cannot be imported; call before a heavy import.

    One line says what to install, so a light install (``pip install chemactor``) fails clearly at the
    first command that needs torch or transformers rather than with an ``ImportError`` deep inside.
    """
    import importlib.util

    names = (modules,) if isinstance(modules, str) else modules
    missing = [name for name in names if importlib.util.find_spec(name) is None]
    if missing:
        torch_first = " (install the CPU or CUDA torch build you want first)" if extra == "train" else ""
        raise MissingExtraError(
            f"{purpose} needs the '{extra}' extra ({', '.join(missing)} not installed): "
            f"pip install 'chemactor[{extra}]'{torch_first}"
        )


def closest(name: str, choices: list[str] | tuple[str, ...] | set[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices`` to a misspelled ``name``, or ``''``."""
    import difflib

    match = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""
