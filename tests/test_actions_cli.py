"""``chemactor check-actions``: parse and validate an action file line by line."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from chemactor.cli import app


def test_a_reference_split_checks_clean(shared_data: Path) -> None:
    folder = shared_data / "smiles2actions"
    result = CliRunner().invoke(
        app,
        [
            "check-actions",
            str(folder / "tgt-test.txt"),
            "--style",
            "placeholder",
            "--reactions",
            str(folder / "src-test.txt"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "10 sequences checked, 0 with problems" in result.output


def test_problems_are_reported_by_file_and_line(tmp_path: Path) -> None:
    actions = tmp_path / "actions.txt"
    actions.write_text("ADD $1$ ; YIELD $-1$\nADD $3$ ; YIELD $-1$\nSHAKE $1$\n", encoding="utf-8")
    reactions = tmp_path / "reactions.txt"
    reactions.write_text("C C O . C C ( = O ) O >> C C O C ( C ) = O\n" * 3, encoding="utf-8")
    result = CliRunner().invoke(
        app, ["check-actions", str(actions), "--style", "placeholder", "--reactions", str(reactions)]
    )
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert f"{actions}:2: action 0 (ADD): $3$ is beyond the 2 precursor(s) of the reaction" in lines
    assert f"{actions}:3: action 0 'SHAKE $1$': unknown action 'SHAKE'" in lines
    assert not any(line.startswith(f"{actions}:1:") for line in lines)
    assert "3 sequences checked, 2 with problems" in result.output


def test_mismatched_files_and_unknown_style_are_usage_errors(tmp_path: Path) -> None:
    actions = tmp_path / "actions.txt"
    actions.write_text("CONCENTRATE.\nPURIFY.\n", encoding="utf-8")
    reactions = tmp_path / "reactions.txt"
    reactions.write_text("CCO>>CC=O\n", encoding="utf-8")
    mismatched = CliRunner().invoke(app, ["check-actions", str(actions), "--reactions", str(reactions)])
    assert mismatched.exit_code == 1 and "has 2 lines but" in mismatched.output
    unknown = CliRunner().invoke(app, ["check-actions", str(actions), "--style", "json"])
    assert unknown.exit_code == 1 and "unknown style 'json'" in unknown.output
