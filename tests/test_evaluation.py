"""Evaluation report: scores, circle review, best/worst examples, plots (a trained model directory is evaluated
in tests/test_pipeline.py)."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from chemactor.errors import InputError
from chemactor.evaluation import Predictors, evaluate_model, load_predictors
from chemactor.examples import load_examples

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def examples() -> datasets.DatasetDict:
    return load_examples()


def _lookup_predictors(examples: datasets.DatasetDict, wrong_ids: set[str] = frozenset()) -> Predictors:
    """Converters that answer from the annotations (wrongly for ``wrong_ids``): a model with known scores."""
    rows = [row for split in examples.values() for row in split]
    actions = {row["description"]: row["actions"] for row in rows}
    described = {row["actions"]: row["description"] for row in rows}
    wrong = {row["description"] for row in rows if row["id"] in wrong_ids}
    return Predictors(
        d2a=lambda texts: ["NOACTION." if text in wrong else actions.get(text, "NOACTION.") for text in texts],
        r2d=lambda reactions: [next(r["description"] for r in rows if r["reaction_smiles"] == x) for x in reactions],
        a2d=lambda texts: [described.get(text, "") for text in texts],
        name="lookup",
    )


def test_a_perfect_model_scores_one_everywhere(examples, tmp_path: Path):
    report = evaluate_model(_lookup_predictors(examples), examples, tmp_path, split="test", circle_rounds=2)
    assert report["counts"] == {"d2a": 12, "r2d": 2}
    assert report["d2a"]["full_sentence_accuracy"] == 1.0
    assert report["r2d"]["rougeL"] == pytest.approx(1.0)
    assert report["circle"]["action_similarity_to_reference"] == [1.0, 1.0]
    assert report["circle"]["decay"] == 0.0


def test_report_files_rank_the_worst_examples_and_hold_plots(examples, tmp_path: Path):
    test_ids = examples["test"]["id"]
    wrong = {test_ids[0], test_ids[3]}
    scored_pool = datasets.Dataset.from_dict(
        {"divergence": [0.1, 2.0, -1.0, 0.5], "divergence_words": [0.2, 1.0, -0.5, 0.0], "selected": [1, 0, 1, 0]}
    )
    report = evaluate_model(
        _lookup_predictors(examples, wrong), examples, tmp_path, split="test", selection=scored_pool, circle_rounds=1
    )
    assert report["d2a"]["full_sentence_accuracy"] == pytest.approx(10 / 12)
    assert {row["id"] for row in report["examples"]["d2a"]["worst"][:2]} == wrong
    assert json.loads((tmp_path / "report.json").read_text(encoding="utf-8")) == report

    predictions = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 14
    assert {row["id"] for row in predictions if row["score"] < 1.0} == wrong

    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")
    for heading in ("## D2A", "### Per action type", "## Circle review", "## R2D", "D2A: worst examples"):
        assert heading in markdown
    assert sorted(report["plots"]) == [
        "plots/action_type_f1.png",
        "plots/circle_review.png",
        "plots/selection_divergence.png",
    ]
    for plot in report["plots"]:
        assert (tmp_path / plot).read_bytes()[:8] == PNG_MAGIC
        assert f"]({plot})" in markdown


def test_a_split_without_usable_rows_is_refused(examples, tmp_path: Path):
    only_inputs = examples["test"].map(lambda row: {"actions": "", "reaction_smiles": ""})
    with pytest.raises(ValueError, match="split 'test' has no row"):
        evaluate_model(_lookup_predictors(examples), only_inputs, tmp_path)


def test_a_missing_model_directory_is_named(examples, tmp_path: Path):
    with pytest.raises(InputError, match="no-such-model"):
        evaluate_model(tmp_path / "no-such-model", examples, tmp_path / "out")


def test_an_endpoint_is_evaluated_over_http(examples, tgi_server, tmp_path: Path):
    """A TGI-protocol server on 127.0.0.1 answers from the annotations; the endpoint path scores like a model."""
    rows = [row for split in examples.values() for row in split]
    actions = {row["description"]: row["actions"] for row in rows}
    described = {row["actions"]: row["description"] for row in rows}
    described.update({row["reaction_smiles"]: row["description"] for row in rows if row["reaction_smiles"]})

    def responder(kind: str, payload: dict) -> str:
        prompt = payload["inputs"]
        text = prompt.split("### Input:\n", 1)[1].rsplit("\n\n### Output:", 1)[0]
        answers = actions if prompt.startswith("Convert the experimental procedure") else described
        return answers.get(text, "NOACTION.") + "\n"

    server = tgi_server(responder=responder)
    predictors = load_predictors(server.url, api="generate")
    report = evaluate_model(predictors, examples, tmp_path, split="test", circle_rounds=1)
    assert report["model"] == server.url
    # the two reaction paragraphs are asked sentence by sentence, which the annotations do not cover
    assert report["d2a"]["full_sentence_accuracy"] == pytest.approx(10 / 12)
    assert report["r2d"]["rougeL"] == pytest.approx(1.0)
    assert server.requests["/generate"] + server.requests["/"] > 12 * 2


def test_cli_evaluate_reports_a_missing_model(tmp_path: Path, monkeypatch, capsys):
    from chemactor.cli import main

    monkeypatch.setattr("sys.argv", ["chemactor", "evaluate", "--model", str(tmp_path / "nope"), "-o", str(tmp_path)])
    with pytest.raises(SystemExit) as caught:
        main()
    assert caught.value.code == 1
    message = f"--model '{tmp_path / 'nope'}' is neither an endpoint URL (http://, https://) nor a model directory"
    assert capsys.readouterr().err == f"error: {message}\n"


def test_paper_metrics_are_reported_beside_ours(examples, tmp_path: Path):
    report = evaluate_model(
        _lookup_predictors(examples), examples, tmp_path, split="test", circle_rounds=1, metrics=["paper"]
    )
    assert report["d2a"]["full_sentence_accuracy"] == 1.0
    assert report["d2a_paper"]["acc_100"] == 100.0 and report["d2a_paper"]["chemtrans_em"] == 200.0
    assert report["r2d_paper"]["bleu2"] == pytest.approx(100.0)
    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "## D2A as the ChemActor paper's code computes it (percent)" in markdown
    assert "| chemtrans_em | 200.000 |" in markdown
    with pytest.raises(ValueError, match=r"unknown metric set\(s\) papers; known: paper"):
        evaluate_model(_lookup_predictors(examples), examples, tmp_path, metrics=["papers"])


def test_cli_evaluate_adds_paper_metrics(examples, tgi_server, tmp_path: Path, monkeypatch, capsys):
    from chemactor.cli import main

    rows = [row for split in examples.values() for row in split]
    answers = {row["description"]: row["actions"] for row in rows}
    answers.update({row["reaction_smiles"]: row["description"] for row in rows if row["reaction_smiles"]})
    answers.update({row["actions"]: row["description"] for row in rows})

    def responder(kind: str, payload: dict) -> str:
        text = payload["inputs"].split("### Input:\n", 1)[1].rsplit("\n\n### Output:", 1)[0]
        return answers.get(text, "NOACTION.") + "\n"

    server = tgi_server(responder=responder)
    output = tmp_path / "out"
    arguments = ["chemactor", "evaluate", "--model", server.url, "--api", "generate", "--circle-rounds", "1"]
    monkeypatch.setattr("sys.argv", [*arguments, "-o", str(output), "--metrics", "paper"])
    with pytest.raises(SystemExit) as caught:
        main()
    printed = capsys.readouterr().out
    assert caught.value.code == 0, printed
    assert "d2a_paper: {'bleu2'" in printed and "r2d_paper: {'bleu2'" in printed
    report = json.loads((output / "report.json").read_text(encoding="utf-8"))
    assert report["d2a_paper"]["acc_100"] == pytest.approx(100 * report["d2a"]["full_sentence_accuracy"])
    monkeypatch.setattr("sys.argv", [*arguments, "-o", str(tmp_path / "other"), "--metrics", "bleu"])
    with pytest.raises(SystemExit) as caught:
        main()
    assert caught.value.code != 0 and "metrics[0]: 'bleu' is not one of paper" in capsys.readouterr().err
