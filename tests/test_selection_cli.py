"""`chemactor select` end to end: selected records, scores, report and plots on disk; bad input reported."""

from __future__ import annotations

import json

import datasets
import pandas as pd
import pytest
from typer.testing import CliRunner

from chemactor.builders import load_generated, load_seeds
from chemactor.cli import app
from chemactor.data import RecordError, get_meta, make_record, write_records


def test_select_writes_rows_scores_report_and_plots(shared_data, tmp_path):
    seeds = load_seeds("paragraph2actions", shared_data)
    real = [row for split in ("validation", "test") for row in seeds[split]]
    bad = [
        make_record(id=f"bad-{index}", source="generated", description=row["description"], actions="MIXIFY; SHAKE.")
        for index, row in enumerate(real[:6])
    ]
    good = [
        make_record(id=f"good-{index}", source="generated", description=row["description"], actions=row["actions"])
        for index, row in enumerate(real)
    ]
    write_records(good + bad, tmp_path / "pool.jsonl")

    result = CliRunner().invoke(
        app,
        [
            "select",
            "--reference",
            "paragraph2actions",
            "--data-dir",
            str(shared_data),
            "--pool",
            str(tmp_path / "pool.jsonl"),
            "--output",
            str(tmp_path / "out"),
            "--k",
            "10",
        ],
    )
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    selected = load_generated(out / "selected")
    assert len(selected) == 10 and not any(row.startswith("bad-") for row in selected["id"])
    assert set(get_meta(selected[0])["divergence"]) >= {"divergence", "divergence_consistency"}
    scores = datasets.Dataset.from_parquet(str(out / "scores.parquet"))
    assert len(scores) == 26 and sum(scores["selected"]) == 10
    report = (out / "report.md").read_text()
    assert "| action_types |" in report and "KL kept" in report
    for plot in ("score_histograms.png", "action_types.png"):
        assert (out / plot).read_bytes().startswith(b"\x89PNG") and f"({plot})" in report


def test_select_scores_with_a_selector_saved_by_an_earlier_run(shared_data, tmp_path):
    seeds = load_seeds("paragraph2actions", shared_data)
    real = [row for split in ("validation", "test") for row in seeds[split]]
    pool = [
        make_record(id=f"row-{index}-{kind}", source="generated", description=row["description"], actions=actions)
        for index, row in enumerate(real)
        for kind, actions in (("real", row["actions"]), ("bad", "MIXIFY; SHAKE."))
    ]
    write_records(pool, tmp_path / "pool.jsonl")
    common = ["select", "--pool", str(tmp_path / "pool.jsonl"), "--k", "12", "--data-dir", str(shared_data)]
    runner = CliRunner()
    fit_options = ["--reference", "paragraph2actions", "--divergence", "js", "-o", str(tmp_path / "fitted")]
    fitted = runner.invoke(app, [*common, *fit_options])
    assert fitted.exit_code == 0, fitted.output
    loaded = runner.invoke(
        app, [*common, "--selector", str(tmp_path / "fitted" / "selector"), "-o", str(tmp_path / "loaded")]
    )
    assert loaded.exit_code == 0, loaded.output
    assert json.loads(loaded.stdout.strip().splitlines()[-1])["reference"] is None  # the summary: loaded, not fitted
    first, second = (pd.read_parquet(tmp_path / folder / "scores.parquet") for folder in ("fitted", "loaded"))
    pd.testing.assert_frame_equal(first, second)  # every score, flag and selected row: js came with the selector
    assert second["selected"].sum() == 12


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ([], "give one of --reference (real pairs to fit on) and --selector (a fitted selector)"),
        (["--reference", "paragraph2actions", "--selector", "{tmp}"], "give one of --reference"),
        (["--selector", "{tmp}", "--divergence", "js"], "--divergence goes with --reference"),
        (["--selector", "{tmp}"], "no selector_config.json; not a saved selector"),
    ],
)
def test_select_needs_one_selector_source(tmp_path, options, message):
    options = [option.format(tmp=tmp_path) for option in options]
    command = ["select", "--pool", str(tmp_path / "pool.jsonl"), "-o", str(tmp_path / "out"), "--k", "1"]
    result = CliRunner().invoke(app, [*command, *options])
    assert result.exit_code == 1 and message in str(result.exception)
    assert not (tmp_path / "out").exists()


def test_select_reports_bad_input(tmp_path):
    (tmp_path / "pool.csv").write_text("description,actions\n")
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "select",
            "--reference",
            str(tmp_path / "missing.jsonl"),
            "--pool",
            str(tmp_path / "pool.csv"),
            "--output",
            str(tmp_path / "out"),
            "--k",
            "1",
        ],
    )
    assert result.exit_code == 1 and "missing.jsonl is not a seed source" in str(result.exception)
    (tmp_path / "ref.jsonl").write_text('{"description": "Water was added.", "text": "ADD water."}\n')
    result = runner.invoke(
        app,
        [
            "select",
            "--reference",
            str(tmp_path / "ref.jsonl"),
            "--pool",
            str(tmp_path / "ref.jsonl"),
            "--output",
            str(tmp_path / "out"),
            "--k",
            "1",
        ],
    )
    assert result.exit_code == 1 and "ref.jsonl:1: missing field(s) id, source, reaction_smiles, actions" in str(
        result.exception
    )


def test_run_selection_keeps_the_columns_of_a_plain_pool(shared_data, tmp_path):
    from chemactor.selection.run import load_pairs, run_selection

    test = load_seeds("paragraph2actions", shared_data)["test"]
    plain = test.select_columns(["description", "actions"]).add_column("origin", ["model-a"] * len(test))
    plain.to_parquet(str(tmp_path / "pool.parquet"))
    with pytest.raises(RecordError, match=r"pool\.parquet:row 1: missing field\(s\) id, source"):
        load_pairs(tmp_path / "pool.parquet")  # files are read as records; a plain table is Python's business
    summary = run_selection(load_pairs("paragraph2actions", shared_data), plain, tmp_path / "out", k=4)
    assert summary["selected"] == 4 and summary["pool"] == len(test)
    selected = datasets.Dataset.from_json(summary["selected_path"])
    assert selected.column_names == ["description", "actions", "origin"] and len(selected) == 4
