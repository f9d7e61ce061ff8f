"""The action constraint on the wire: each server gets it in its own shape, only steps that produce actions send it."""

from __future__ import annotations

import asyncio
import json

import pytest

from chemactor.actions import ActionConstraint, actions_to_json, parse_actions
from chemactor.errors import EndpointError
from chemactor.examples import example_records
from chemactor.generation import EndpointBackend, GenerationRunner, RunSettings
from chemactor.inference import ActionExtractor
from chemactor.scoring.review import REVIEW_SCHEMA, peer_review

ACTIONS = "ADD THF (10 mL); STIR for 2 h at 25 °C; CONCENTRATE."
AS_JSON = json.dumps(actions_to_json(parse_actions(ACTIONS)), ensure_ascii=False, indent=1)
CONSTRAINT = ActionConstraint(max_actions=4)


def ask(backend: EndpointBackend, **params):
    return asyncio.run(backend.agenerate("The mixture was stirred.", constraint=CONSTRAINT, **params))


@pytest.mark.parametrize(
    ("structured_output", "grammar", "answer"),
    [
        ("json_schema", {"type": "json", "value": CONSTRAINT.json_schema()}, AS_JSON),
        ("regex", {"type": "regex", "value": CONSTRAINT.regex()}, ACTIONS),
    ],
)
def test_tgi_generate_gets_its_grammar_parameter(tgi_server, structured_output, grammar, answer):
    server = tgi_server(lambda kind, payload: answer)
    backend = EndpointBackend(server.url, api="generate", structured_output=structured_output)
    assert ask(backend, max_new_tokens=16).text == ACTIONS  # the JSON answer comes back as readable actions
    parameters = server.payloads[-1]["parameters"]
    assert parameters["grammar"] == grammar  # in TGI's shape: the server checks it and would answer 422
    form = "json" if structured_output == "json_schema" else "readable"
    assert parameters["max_new_tokens"] == CONSTRAINT.max_bytes(form) + 1  # room for the longest answer


@pytest.mark.parametrize(
    ("structured_output", "key", "expected"),
    [
        # huggingface_hub sends OpenAI's json_schema response_format to a base URL in TGI's shape
        ("json_schema", "response_format", {"type": "json_object", "value": CONSTRAINT.json_schema()}),
        ("json_object", "response_format", {"type": "json_object", "schema": CONSTRAINT.json_schema()}),
        ("gbnf", "grammar", CONSTRAINT.gbnf()),
    ],
)
def test_chat_servers_get_the_form_they_take(tgi_server, structured_output, key, expected):
    server = tgi_server(lambda kind, payload: AS_JSON if key == "response_format" else ACTIONS)
    assert ask(EndpointBackend(server.url, structured_output=structured_output)).text == ACTIONS
    assert server.payloads[-1][key] == expected


def test_a_form_the_api_cannot_carry_is_a_config_error():
    from chemactor.errors import ConfigError

    with pytest.raises(ConfigError, match="structured_output: 'gbnf' does not go with api 'generate'"):
        EndpointBackend("http://127.0.0.1:9", api="generate", structured_output="gbnf")


def test_a_server_that_refuses_the_constraint_stops_the_run_with_the_option_to_turn_it_off(tgi_server):
    server = tgi_server(lambda kind, payload: ACTIONS, grammars=False)
    extractor = ActionExtractor.from_endpoint(server.url, api="generate", max_retries=2)
    with pytest.raises(EndpointError, match="--no-constrained"):
        extractor.extract(["The mixture was stirred."], progress=False)
    # unconstrained, the same server answers
    [extraction] = ActionExtractor.from_endpoint(server.url, api="generate", constrained=False).extract(
        ["The mixture was stirred."], progress=False
    )
    assert extraction.actions == ACTIONS and extraction.valid


def test_extract_reads_json_answers_into_validated_actions(tgi_server):
    server = tgi_server(lambda kind, payload: AS_JSON)
    [extraction] = ActionExtractor.from_endpoint(server.url).extract(["The mixture was stirred."], progress=False)
    assert extraction.valid and extraction.actions == ACTIONS
    assert server.payloads[-1]["response_format"]["value"] == ActionConstraint().json_schema()


def test_only_the_d2a_step_is_constrained(tgi_server, tmp_path):
    def responder(kind, payload):
        return AS_JSON if "response_format" in payload else "The mixture was stirred for 2 h."

    server = tgi_server(responder)
    reactions = [row for row in example_records() if row["reaction_smiles"]][:2]
    for constrained in (True, False):
        server.payloads.clear()
        runner = GenerationRunner(
            EndpointBackend(server.url), RunSettings(shots=1, constrained=constrained), example_records()
        )
        summary = runner.run(reactions, tmp_path / str(constrained), progress=False)
        assert summary.done == 2
        constrained_requests = [payload for payload in server.payloads if "response_format" in payload]
        assert len(constrained_requests) == (2 if constrained else 0)  # one D2A per row; R2D never
    rows = [json.loads(line) for line in (tmp_path / "True" / "shards").glob("*.jsonl").__next__().open()]
    assert {row["actions"] for row in rows} == {ACTIONS}


def test_reviewers_answer_under_the_review_schema(tgi_server):
    server = tgi_server(lambda kind, payload: '{"score": 0.5, "rationale": "half right"}')
    result = peer_review([ACTIONS], [ACTIONS], {"r": EndpointBackend(server.url)}, debate_rounds=0)
    assert result["consensus"] == 0.5
    assert server.payloads[-1]["response_format"]["value"] == REVIEW_SCHEMA
