"""The demo: its views, its Gradio endpoints, a real browser on the served page, and the Space it publishes.

The model behind the app is an endpoint: the TGI-protocol test server answers D2A, R2D and A2D prompts
with fixed, chemically sensible text, so what the page must show is known. A local model folder is
covered by the views test with a tiny model.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chemactor.actions import parse_actions, validate_actions
from chemactor.chem import canonicalize_reaction
from chemactor.data import prompt_for
from chemactor.demo.views import (
    DemoModel,
    action_rows,
    actions_view,
    circle_view,
    draw,
    procedure_view,
    reaction_or_target,
    verdict_rows,
)
from chemactor.errors import InputError

PROCEDURE = (
    "Water (5 mL) was added to the flask. The layers were separated sideways. The mixture was stirred for 2 h at 25 °C."
)
TARGET = "CCOC(C)=O"
SENTENCE_ACTIONS = {
    "added": "ADD water (5 mL).",
    "separated": "COLLECTLAYER sideways.",
    "stirred": "STIR for 2 h at 25 °C.",
}


def answer(kind: str, payload: dict) -> str:
    """The endpoint's 'model': actions per sentence for D2A, a procedure for R2D, a description for A2D."""
    prompt = str(payload["messages"][-1]["content"] if kind == "chat" else payload.get("inputs", ""))
    given = prompt.rsplit("### Input:", 1)[-1].split("### Output:", 1)[0].strip()
    if prompt_for("d2a", given) in prompt:
        return " ".join(actions for word, actions in SENTENCE_ACTIONS.items() if word in given).replace(". ", "; ")
    if prompt_for("r2d", given) in prompt:
        return "Ethanol (1 mL) was added to acetic acid (2 mL). The mixture was stirred for 2 h at 25 °C."
    return "Water (5 mL) was added. The mixture was stirred for 2 h at 25 °C."


@pytest.fixture
def endpoint_model(tgi_server) -> DemoModel:
    server = tgi_server(responder=answer)
    return DemoModel.load(server.url, api="generate")


# --- views ---------------------------------------------------------------------------------------------


def test_action_rows_pin_each_problem_to_its_step():
    actions = parse_actions(
        "MAKESOLUTION with A (1 g) and B (2 mL); ADD SLN dropwise at 0 °C; COLLECTLAYER sideways; WASH with brine 3 x."
    )
    rows = action_rows(actions, validate_actions(actions))
    assert [row[:5] for row in rows] == [
        [1, "MAKESOLUTION", "A; B", "1 g; 2 mL", ""],
        [2, "ADD", "SLN", "", "dropwise, at 0 °C"],
        [3, "COLLECTLAYER", "", "", "sideways"],
        [4, "WASH", "brine", "", "3 x"],
    ]
    assert [bool(row[5]) for row in rows] == [False, False, True, False]
    assert "sideways" in rows[2][5] and "aqueous, organic" in rows[2][5]


def test_a_molecule_is_a_target_and_a_bad_smiles_is_named():
    assert reaction_or_target(" OCC ") == (">>CCO", True)
    reaction = "CCO.CC(=O)O>>CCOC(C)=O"
    assert reaction_or_target(reaction) == (canonicalize_reaction(reaction), False)
    with pytest.raises(InputError, match="RDKit cannot read 'C1CC'"):
        reaction_or_target("C1CC")
    with pytest.raises(InputError, match="one product"):
        reaction_or_target("CCO.CC(=O)O>>")
    with pytest.raises(InputError, match="Paste a reaction"):
        reaction_or_target("   ")
    assert draw(">>CCO", True).startswith("<svg") and "</svg>" in draw("CCO>>CC=O", False)


def test_views_over_an_endpoint(endpoint_model):
    view = actions_view(endpoint_model, PROCEDURE)
    assert view.readable == "ADD water (5 mL); COLLECTLAYER sideways; STIR for 2 h at 25 °C."
    assert [row[1] for row in view.rows] == ["ADD", "COLLECTLAYER", "STIR"]
    assert view.rows[1][5] and not view.rows[0][5]
    assert "1 validation problem" in view.message
    assert [actions for _, actions in view.sentences] == list(SENTENCE_ACTIONS.values())
    assert view.extraction["action_types"] == ["ADD", "COLLECTLAYER", "STIR"]
    with pytest.raises(InputError, match="empty"):
        actions_view(endpoint_model, "  ")

    target = procedure_view(endpoint_model, TARGET)
    assert target.is_target and target.reaction_smiles == ">>CCOC(C)=O"
    assert target.procedure.startswith("Ethanol (1 mL)") and target.svg.startswith("<svg")
    assert [row[1] for row in target.actions.rows] == ["ADD", "STIR"]
    rows = verdict_rows(target.verdicts)
    checks = dict(row for row in rows if row[0] != "reason")
    # the scripted D2A answer adds water, which the written procedure never mentions: the cross-check says so
    assert checks["parse"] == "pass" and checks["compounds_in_description"] == "fail"
    assert ["reason", "compound not in description: water"] in rows and not target.verdicts["passed"]

    circle = circle_view(endpoint_model, PROCEDURE, rounds=2)
    assert [row[0] for row in circle.rounds] == [0, 1, 2]
    assert circle.rounds[1][2] == "ADD water (5 mL); COLLECTLAYER sideways; STIR for 2 h at 25 °C."
    assert circle.action_similarity[0] == pytest.approx(1.0)
    assert len(circle.description_similarity) == 2


def test_views_with_a_local_model_folder(tmp_path):
    from chemactor.training import build_tiny_model, train_tokenizer

    tokenizer = train_tokenizer([PROCEDURE, *SENTENCE_ACTIONS.values()], vocab_size=300)
    build_tiny_model(tokenizer).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    model = DemoModel.load(str(tmp_path), max_new_tokens=8)
    view = actions_view(model, PROCEDURE)  # random weights: whatever comes out is shown, never raised
    assert view.message and (view.rows or view.problems)
    with pytest.raises(InputError, match="neither a model folder"):
        DemoModel.load(str(tmp_path / "missing" / "deeper" / "folder"))


# --- the served app ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def served(endpoint_model, monkeypatch):
    from chemactor.demo.app import build_app

    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    app = build_app(endpoint_model)
    port = _free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    app.close()


def test_each_endpoint_through_gradio_client(served):
    from gradio_client import Client

    client = Client(served, verbose=False)
    names = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert names == {"/extract", "/procedure", "/circle"}

    status, table, readable, sentences, download = client.predict(PROCEDURE, api_name="/extract")
    assert readable == "ADD water (5 mL); COLLECTLAYER sideways; STIR for 2 h at 25 °C."
    assert [row[1] for row in table["data"]] == ["ADD", "COLLECTLAYER", "STIR"]
    assert json.loads(Path(download).read_text(encoding="utf-8"))["action_types"] == ["ADD", "COLLECTLAYER", "STIR"]
    assert len(sentences["data"]) == 3 and "validation problem" in status

    status, *_ = client.predict("", api_name="/extract")
    assert "empty" in status

    status, svg, procedure, table, readable, verdicts = client.predict(TARGET, api_name="/procedure")
    assert "target >>CCOC(C)=O" in status and "<svg" in svg and procedure.startswith("Ethanol")
    assert ["parse", "pass"] in verdicts["data"]
    status, *_ = client.predict("C1CC", api_name="/procedure")
    assert "RDKit cannot read 'C1CC'" in status

    status, rounds, _ = client.predict(PROCEDURE, 2, api_name="/circle")
    assert [row[0] for row in rounds["data"]] == [0, 1, 2] and "2 rounds" in status


def _chromium():
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (binary and driver):
        pytest.fail("the browser test needs Debian's chromium and chromium-driver (installed by .ci/run)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1600",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)


def _type(element, text: str) -> None:
    """Replace a field's text with key presses, as a person would (``clear()`` bypasses the page's events)."""
    from selenium.webdriver.common.keys import Keys

    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(Keys.DELETE)
    if text:
        element.send_keys(text)


def _wait_for(browser, condition, timeout: float = 60.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(condition)


@pytest.mark.slow
def test_a_real_browser_pastes_clicks_and_sees_the_table(served, tmp_path_factory):
    from selenium.webdriver.common.by import By

    shots = Path(os.environ.get("CHEMACTOR_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    browser = _chromium()
    try:
        browser.get(served)
        box = _wait_for(browser, lambda b: b.find_element(By.CSS_SELECTOR, "#extract-input textarea"))
        browser.find_element(By.CSS_SELECTOR, "#extract-example input").click()  # a shipped example fills the box
        _wait_for(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "[role='option']"))[0].click()
        _wait_for(browser, lambda b: len(box.get_attribute("value")) > 20)
        _type(box, PROCEDURE)
        browser.find_element(By.ID, "extract-run").click()
        table = _wait_for(browser, lambda b: "COLLECTLAYER" in b.find_element(By.ID, "extract-table").text and b)
        table_text = table.find_element(By.ID, "extract-table").text
        assert "ADD" in table_text and "STIR" in table_text and "expected one of aqueous, organic" in table_text
        status = browser.find_element(By.ID, "extract-status").text
        assert "1 validation problem" in status
        browser.save_screenshot(str(shots / "demo-extract.png"))

        _type(box, "")
        browser.find_element(By.ID, "extract-run").click()
        _wait_for(browser, lambda b: "text is empty" in b.find_element(By.ID, "extract-status").text)

        browser.find_element(By.XPATH, "//button[@role='tab' and contains(., 'Reaction or target')]").click()
        smiles = _wait_for(browser, lambda b: b.find_element(By.CSS_SELECTOR, "#smiles textarea, #smiles input"))
        _type(smiles, "C1CC")
        browser.find_element(By.ID, "procedure-run").click()
        _wait_for(browser, lambda b: "RDKit cannot read" in b.find_element(By.ID, "procedure-status").text)
        _type(smiles, TARGET)
        browser.find_element(By.ID, "procedure-run").click()
        _wait_for(
            browser,
            lambda b: "Ethanol" in b.find_element(By.CSS_SELECTOR, "#procedure-text textarea").get_attribute("value"),
        )
        assert browser.find_element(By.CSS_SELECTOR, "#procedure-drawing svg")
        browser.save_screenshot(str(shots / "demo-procedure.png"))

        browser.find_element(By.XPATH, "//button[@role='tab' and contains(., 'Circle review')]").click()
        circle = _wait_for(browser, lambda b: b.find_element(By.CSS_SELECTOR, "#circle-input textarea"))
        _type(circle, PROCEDURE)
        browser.find_element(By.ID, "circle-run").click()
        _wait_for(browser, lambda b: "rounds; actions keep" in b.find_element(By.ID, "circle-status").text)
        _wait_for(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#circle-plot canvas, #circle-plot svg"))
        browser.save_screenshot(str(shots / "demo-circle.png"))
    finally:
        browser.quit()
    assert all((shots / f"demo-{tab}.png").stat().st_size > 10_000 for tab in ("extract", "procedure", "circle"))


# --- the Space ---------------------------------------------------------------------------------------------


def _requirements_met(path: Path) -> list[str]:
    """The lines of a requirements file that the running environment does not satisfy."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import Requirement

    unmet = []
    for line in path.read_text(encoding="utf-8").split():
        requirement = Requirement(line)
        try:
            installed = version(requirement.name)
        except PackageNotFoundError:
            unmet.append(line)
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            unmet.append(line)
    return unmet


@pytest.mark.slow
def test_demo_push_publishes_a_space_that_starts_from_its_own_files(hub_env, tgi_server, tmp_path):
    from gradio_client import Client
    from huggingface_hub import HfApi, SpaceCard, snapshot_download
    from typer.testing import CliRunner

    from chemactor.cli import app

    server = tgi_server(responder=answer)
    pushed = CliRunner().invoke(app, ["demo", "push", "--model", server.url, "--repo-id", "chemactor/demo-space"])
    assert pushed.exit_code == 0, pushed.output
    api = HfApi()
    files = set(api.list_repo_files("chemactor/demo-space", repo_type="space")) - {".gitattributes"}
    assert files == {"README.md", "app.py", "demo.json", "requirements.txt"}
    assert api.space_info("chemactor/demo-space").private  # private unless --public
    space = Path(snapshot_download("chemactor/demo-space", repo_type="space", local_dir=tmp_path / "space"))
    card = SpaceCard.load(space / "README.md").data
    assert card.sdk == "gradio" and card.app_file == "app.py"
    assert _requirements_met(space / "requirements.txt") == []

    port = _free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    for name in ("HF_HUB_OFFLINE", "CHEMACTOR_MODEL"):
        env.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "app.py"], cwd=space, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 120
        while True:
            try:
                client = Client(url, verbose=False)
                break
            except Exception:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the Space's app.py did not start:\n{process.stdout.read()}")
                time.sleep(1)
        _, _, readable, _, _ = client.predict(PROCEDURE, api_name="/extract")
        assert readable == "ADD water (5 mL); COLLECTLAYER sideways; STIR for 2 h at 25 °C."
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_demo_command_needs_a_model():
    from typer.testing import CliRunner

    from chemactor.cli import app
    from chemactor.errors import ConfigError

    result = CliRunner().invoke(app, ["demo"])
    assert isinstance(result.exception, ConfigError) and "--model" in str(result.exception)


def test_a_local_folder_cannot_be_a_space_model(tmp_path):
    from chemactor.demo import push_demo

    with pytest.raises(InputError, match="local folder"):
        push_demo(str(tmp_path), "chemactor/demo-space")
