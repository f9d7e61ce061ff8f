"""Shared test configuration: offline Hugging Face settings, hypothesis settings and the reference data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

for _name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_EVALUATE_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
    os.environ.setdefault(_name, "1")

# Property tests check parsers, not speed: a busy CI machine must not turn a slow example into a failure.
settings.register_profile("chemactor", deadline=None)
settings.load_profile("chemactor")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHIPPED_DATA = Path(__file__).with_name("data") / "reference"
SHARED_DATA = Path(os.environ.get("CHEMACTOR_DATA_DIR") or SHIPPED_DATA)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The reference data folder: ``$CHEMACTOR_DATA_DIR`` (e.g. the full set) or the copy the repository ships
    (``tests/data/reference``: both IBM sets whole, a sample of ORD)."""
    if not (SHARED_DATA / "paragraph2actions").is_dir():
        pytest.fail(f"CHEMACTOR_DATA_DIR={SHARED_DATA} holds no reference data (no paragraph2actions/ folder)")
    return SHARED_DATA


@pytest.fixture
def tgi_server(monkeypatch):
    """Factory: ``tgi_server(responder=..., latency=..., faults=..., script=...)`` starts a TGI-protocol
    server on 127.0.0.1 (see ``tests/tgi_server.py``) and returns it (``.url``); all stop after the test.

    Offline mode makes huggingface_hub clients refuse every URL, loopback included, so it is lifted for
    the duration of the test (the Hub itself stays unreachable: nothing here points at it).
    """
    from huggingface_hub import constants
    from tgi_server import TGIServer

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    servers: list[TGIServer] = []

    def start(*args, **kwargs) -> TGIServer:
        servers.append(TGIServer(*args, **kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture(scope="session")
def seed_builds(shared_data):
    """Every seed source built once per session from the reference data: ``{source: DatasetBuild}``
    (``.dataset`` is the DatasetDict; the full ORD set has 14k rows, so build it here rather than per test)."""
    from chemactor.builders import build_seeds
    from chemactor.data import SEED_SOURCES

    return {source: build_seeds(source, shared_data) for source in SEED_SOURCES}


@pytest.fixture(scope="session")
def hub_server(tmp_path_factory):
    """A Hub-protocol server on 127.0.0.1 for the whole session (see ``tests/hub_server.py``): ``.endpoint``,
    ``.token``, ``.fail(...)`` for injected errors. Tests reach it through ``hub_env``."""
    from hub_server import HubServer

    with HubServer(tmp_path_factory.mktemp("hub")) as server:
        yield server


@pytest.fixture
def hub_env(hub_server, monkeypatch, tmp_path):
    """Point huggingface_hub and datasets at ``hub_server`` for one test, with its token, and restore after.

    Both libraries copy HF_ENDPOINT and HF_HUB_OFFLINE into module constants at import, so the constants
    are patched along with the environment; Xet is off (the server speaks plain LFS) and the download
    caches live in the test's folder so nothing is served from an earlier run.
    """
    import datasets
    from huggingface_hub import constants

    endpoint = hub_server.endpoint
    for name, value in {
        "HF_ENDPOINT": endpoint,
        "HF_TOKEN": hub_server.token,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_CACHE": str(tmp_path / "hub-cache"),
        "HF_DATASETS_CACHE": str(tmp_path / "datasets-cache"),
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setattr(datasets.config, "HF_ENDPOINT", endpoint)
    monkeypatch.setattr(datasets.config, "HUB_DATASETS_URL", endpoint + "/datasets/{repo_id}/resolve/{revision}/{path}")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets-cache")
    yield hub_server
    hub_server.clear_failures()


@pytest.fixture(scope="session")
def seeds(shared_data):
    """The Paragraph2Actions seeds, train/validation/test (the selection tests' real pairs)."""
    from chemactor.builders import load_seeds

    return load_seeds("paragraph2actions", shared_data)


@pytest.fixture(scope="session")
def reference(seeds):
    """Selection's reference: the seeds' train split and the shipped examples' train split, pairs only."""
    import datasets

    from chemactor.examples import load_examples

    return datasets.concatenate_datasets([seeds["train"], load_examples()["train"]]).filter(
        lambda row: bool(row["description"] and row["actions"])
    )
