"""Shared test configuration: offline Hugging Face settings and the location of the reference data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

for _name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_EVALUATE_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
    os.environ.setdefault(_name, "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CHEMACTOR_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The reference data folder (``../shared/data`` or ``$CHEMACTOR_DATA_DIR``)."""
    if not (SHARED_DATA / "paragraph2actions").is_dir():
        pytest.fail(f"reference data not found at {SHARED_DATA}; set CHEMACTOR_DATA_DIR")
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
