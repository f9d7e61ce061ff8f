"""The metric modules as users meet them: evaluate.load from the repository and, pushed as Spaces, by repo id."""

from __future__ import annotations

import doctest
import json
import subprocess
import sys
from pathlib import Path

import evaluate
import pytest
from huggingface_hub import HfApi

from chemactor.hub import ExportError, push_metric

REPO_ROOT = Path(__file__).resolve().parents[1]
METRICS = ("action_extraction", "procedure_generation", "circle_review")


def _run_examples(text: str, name: str) -> doctest.TestResults:
    test = doctest.DocTestParser().get_doctest(text, {"evaluate": evaluate}, name, name, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    return runner.summarize(verbose=False)


@pytest.mark.parametrize("name", METRICS)
def test_card_and_docstring_examples_give_the_output_they_show(name, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)  # the examples load "metrics/<name>" as a user does from the repository root
    card = (REPO_ROOT / "metrics" / name / "README.md").read_text(encoding="utf-8")
    module = evaluate.load(f"metrics/{name}")
    for text, where in ((card, f"{name}/README.md"), (module.inputs_description, f"{name}.py")):
        results = _run_examples(text, where)
        assert results.attempted >= 3, where
        assert results.failed == 0, where


@pytest.mark.parametrize("name", METRICS)
def test_space_files_are_complete(name):
    folder = REPO_ROOT / "metrics" / name
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\n") and "sdk: gradio" in card and "app_file: app.py" in card
    assert f'with_name("{name}.py")' in (folder / "app.py").read_text(encoding="utf-8")
    assert "chemactor" in (folder / "requirements.txt").read_text(encoding="utf-8").split()


def test_unknown_circle_review_configuration_is_refused():
    with pytest.raises(KeyError, match="round_trip \\(default\\) or peer_review"):
        evaluate.load(str(REPO_ROOT / "metrics" / "circle_review"), "peer-review")


def test_peer_review_configuration_against_reviewer_servers(tgi_server):
    def reviewer(score: float):
        return lambda kind, payload: json.dumps({"score": score, "rationale": "checked"})

    servers = [tgi_server(reviewer(0.9)), tgi_server(reviewer(0.5)), tgi_server(lambda kind, payload: "no idea")]
    metric = evaluate.load(str(REPO_ROOT / "metrics" / "circle_review"), "peer_review")
    results = metric.compute(
        predictions=["ADD water; FILTER."],
        references=["ADD water; STIR; FILTER."],
        reviewers=[server.url for server in servers],
        debate_rounds=1,
    )
    assert results["consensus"] == pytest.approx(0.7)
    assert results["agreement"] == pytest.approx(0.6)
    assert results["unparsable"] == 2  # the third reviewer, once per round
    assert [len(server.payloads) for server in servers] == [2, 2, 2]
    with pytest.raises(ValueError, match="needs reviewers"):
        metric.compute(predictions=["A."], references=["A."])


@pytest.mark.slow
def test_pushed_as_spaces_and_loaded_back_by_repo_id(hub_env, monkeypatch, tmp_path):
    endpoint = hub_env.endpoint
    monkeypatch.setattr(evaluate.config, "HUB_EVALUATE_URL", endpoint + "/spaces/{path}/resolve/{revision}/{name}")
    monkeypatch.setattr(evaluate.config, "HF_EVALUATE_OFFLINE", False)
    monkeypatch.setattr(evaluate.config, "HF_UPDATE_DOWNLOAD_COUNTS", False)
    api = HfApi(endpoint=endpoint, token=hub_env.token)
    user = api.whoami()["name"]
    for name in METRICS:
        repo_id = f"{user}/{name}"
        push_metric(name, repo_id, token=hub_env.token)
        assert {"README.md", "app.py", "requirements.txt", f"{name}.py"} <= set(
            api.list_repo_files(repo_id, repo_type="space")
        )

        module = evaluate.load(repo_id, cache_dir=str(tmp_path / "evaluate"))
        assert ("GET", f"/spaces/{repo_id}/resolve/main/{name}.py", 200) in hub_env.requests
        assert module.name == name
    scores = evaluate.load(f"{user}/action_extraction", cache_dir=str(tmp_path / "evaluate")).compute(
        predictions=["FILTER; WASH with water."], references=["FILTER; WASH with water."]
    )
    assert scores["full_sentence_accuracy"] == 1.0


def test_push_metric_names_the_known_metrics_when_asked_for_an_unknown_one():
    with pytest.raises(ExportError, match=r"no metric module 'bleu'.*action_extraction, circle_review"):
        push_metric("bleu", "user/bleu")


def test_metrics_push_command_reports_an_unknown_metric(tmp_path):
    command = [sys.executable, "-m", "chemactor.cli", "metrics", "push", "bleu", "--repo-id", "user/bleu"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.startswith("error: no metric module 'bleu'") and "Traceback" not in result.stderr


@pytest.mark.parametrize("name", ["action_extraction", "procedure_generation"])
def test_paper_configuration_is_chosen_by_name(name):
    with pytest.raises(KeyError, match="choose default or chemactor_paper"):
        evaluate.load(str(REPO_ROOT / "metrics" / name), "paper")
    paper = evaluate.load(str(REPO_ROOT / "metrics" / name), "chemactor_paper")
    results = paper.compute(predictions=["FILTER ; CONCENTRATE"], references=["FILTER ; CONCENTRATE"])
    assert results["bleu2"] == pytest.approx(100.0)
