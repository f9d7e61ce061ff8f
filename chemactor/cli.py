"""The ``chemactor`` command line: parse arguments, call the library, print a short summary.

Each command imports its stage lazily so that ``chemactor --help`` stays fast and no stage pays for
another's heavy imports (torch, transformers).
"""

from __future__ import annotations

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


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """ChemActor command line."""


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
