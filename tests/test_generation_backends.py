"""EndpointBackend against real TGI-protocol servers on 127.0.0.1: answers, token counts, every failure path."""

from __future__ import annotations

import asyncio

import pytest
from huggingface_hub import constants

from chemactor.errors import EndpointError
from chemactor.generation.backends import UNREACHABLE_ATTEMPTS, EndpointBackend, Generation, GenerationError


def fast_backend(urls, **kwargs) -> EndpointBackend:
    """Tiny backoff so retry tests take milliseconds; everything else as users get it."""
    return EndpointBackend(urls, backoff=0.001, max_backoff=0.01, **kwargs)


def generate(backend: EndpointBackend, prompt="Step one\nADD water", **params) -> Generation:
    return asyncio.run(backend.agenerate(prompt, **params))


@pytest.mark.parametrize("stream", [False, True])
def test_generate_api_returns_text_and_token_count(tgi_server, stream):
    server = tgi_server(lambda kind, payload: "STIR for 2 h at 25 °C.")
    generation = generate(fast_backend(server.url, api="generate", stream=stream), max_new_tokens=32)
    assert generation == Generation("STIR for 2 h at 25 °C.", {"completion_tokens": 7}, server.url)
    assert server.requests["/"] == 1  # huggingface_hub posts text_generation to the base URL
    assert server.payloads[0]["parameters"]["max_new_tokens"] == 32


@pytest.mark.parametrize("stream", [False, True])
def test_chat_api_names_the_model_and_reports_usage(tgi_server, stream):
    server = tgi_server(lambda kind, payload: f"{kind}: {payload['messages'][-1]['content']}")
    backend = fast_backend(server.url, api="chat", model="served-model", stream=stream)
    generation = generate(backend, "hello there", max_new_tokens=8)
    assert generation.text == "chat: hello there"
    assert generation.usage == {"prompt_tokens": 2, "completion_tokens": 3}
    payload = server.payloads[0]
    assert payload["model"] == "served-model" and payload["max_tokens"] == 8


def test_chat_messages_pass_through_and_generate_api_rejects_them(tgi_server):
    server = tgi_server()
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "ADD THF"}]
    assert generate(fast_backend(server.url), messages).text == "ADD THF"
    assert server.payloads[0]["messages"] == messages
    with pytest.raises(TypeError, match="plain prompt"):
        generate(fast_backend(server.url, api="generate"), messages)


@pytest.mark.parametrize("api", ["generate", "chat"])
@pytest.mark.parametrize("fault", ["429", "424", "500", "503", "drop", "garbage"])
def test_transient_failures_are_retried(tgi_server, api, fault):
    server = tgi_server(script=[fault, None])
    backend = fast_backend(server.url, api=api)
    assert generate(backend).text == "ADD water"
    assert server.injected[fault] == 1
    assert backend.stats["retries"] == 1 and backend.stats["requests"] == 1


@pytest.mark.parametrize("api", ["generate", "chat"])
def test_error_inside_a_200_stream_is_an_error(tgi_server, api):
    server = tgi_server(lambda kind, payload: "ADD water ; STIR", script=["stream_error", None])
    backend = fast_backend(server.url, api=api, stream=True)
    assert generate(backend).text == "ADD water ; STIR"  # retried, not returned half-done
    assert backend.stats["retries"] == 1
    server.script = ["stream_error"]
    with pytest.raises(GenerationError) as caught:
        generate(fast_backend(server.url, api=api, stream=True, max_retries=0))
    assert caught.value.kind == "generation" and caught.value.retryable


@pytest.mark.parametrize("api", ["generate", "chat"])
def test_validation_error_is_not_retried(tgi_server, api):
    server = tgi_server(script=["422", None])
    with pytest.raises(GenerationError) as caught:
        generate(fast_backend(server.url, api=api))
    error = caught.value
    assert (error.kind, error.retryable, error.status, error.attempts) == ("validation", False, 422, 1)
    assert sum(server.requests.values()) == 1


def test_retries_give_up_after_max_retries(tgi_server):
    server = tgi_server(faults={"503": 1.0})
    backend = fast_backend(server.url, api="generate", max_retries=2)
    with pytest.raises(GenerationError) as caught:
        generate(backend)
    assert (caught.value.kind, caught.value.attempts, caught.value.status) == ("server", 3, 503)
    assert server.requests["/"] == 3 and backend.stats["failed:server"] == 1


def test_slow_answer_times_out_and_is_retried(tgi_server):
    server = tgi_server(script=["slow", None], slow_seconds=3.0)
    backend = fast_backend(server.url, api="generate", timeout=0.3)
    assert generate(backend).text == "ADD water"
    assert backend.stats["retries"] == 1 and server.injected["slow"] == 1  # the second attempt answered
    server.script = ["slow"]
    with pytest.raises(GenerationError) as caught:
        generate(fast_backend(server.url, api="generate", timeout=0.3, max_retries=0))
    assert caught.value.kind == "timeout"


def test_unreachable_endpoint_is_a_connection_error_then_an_endpoint_error(tgi_server):
    server = tgi_server()
    url = server.url
    server.close()
    backend = fast_backend(url, max_retries=1)
    with pytest.raises(GenerationError) as caught:  # two attempts: not yet "a few in a row"
        generate(backend)
    assert (caught.value.kind, caught.value.attempts) == ("connection", 2)
    with pytest.raises(EndpointError, match=f"{url} cannot be reached .*{UNREACHABLE_ATTEMPTS} attempts in a row"):
        generate(backend)
    with pytest.raises(EndpointError):  # from now on without a request
        generate(backend)
    assert backend.stats["failed:connection"] == 1


def test_connection_failures_after_a_success_are_item_failures(tgi_server):
    server = tgi_server()
    backend = fast_backend(server.url, max_retries=4)
    assert generate(backend).text == "ADD water"
    server.close()
    with pytest.raises(GenerationError) as caught:
        generate(backend)
    assert caught.value.kind == "connection" and backend.unreachable is None


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("api", ["generate", "chat"])
@pytest.mark.parametrize("fault", ["null", "no_choices", "null_text"])
def test_a_200_without_an_answer_is_garbage_and_retried(tgi_server, api, stream, fault):
    server = tgi_server(script=[fault, None])
    backend = fast_backend(server.url, api=api, stream=stream)
    assert generate(backend).text == "ADD water"
    assert backend.stats["retries"] == 1
    server.script = [fault]
    with pytest.raises(GenerationError) as caught:
        generate(fast_backend(server.url, api=api, stream=stream, max_retries=0))
    assert caught.value.kind == "garbage" and caught.value.retryable


def test_offline_mode_is_reported_not_retried(tgi_server, monkeypatch):
    server = tgi_server()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(EndpointError, match="HF_HUB_OFFLINE"):
        generate(fast_backend(server.url))
    assert sum(server.requests.values()) == 0


def test_requests_spread_over_endpoints_and_avoid_a_failing_one(tgi_server):
    healthy, broken = tgi_server(latency=0.02), tgi_server(faults={"503": 1.0})
    backend = fast_backend([broken.url, healthy.url], max_concurrency=4)
    results = backend.generate_many([f"prompt {i}" for i in range(12)], progress=False)
    assert [r.text for r in results] == [f"prompt {i}" for i in range(12)]  # every one recovered, in order
    assert {r.endpoint for r in results} == {healthy.url}
    assert broken.requests["/v1/chat/completions"] >= 1

    first, second = tgi_server(latency=0.05), tgi_server(latency=0.05)
    fast_backend([first.url, second.url], max_concurrency=8).generate_many(["x"] * 16, progress=False)
    assert first.requests["/v1/chat/completions"] >= 4 and second.requests["/v1/chat/completions"] >= 4


def test_concurrency_defaults_to_the_servers_info(tgi_server):
    server = tgi_server(latency=0.2, max_concurrent_requests=3)
    backend = fast_backend(server.url)
    results = backend.generate_many(["a"] * 9, progress=False)
    # the server saw three requests at once, never more: the limit held and was used
    assert backend.max_concurrency == 3 and server.peak_in_flight == 3
    assert all(isinstance(r, Generation) for r in results)


def test_generate_many_returns_failures_in_place(tgi_server):
    server = tgi_server(script=[None, "422", None])
    results = fast_backend(server.url, max_concurrency=1).generate_many(["a", "b", "c"], progress=False)
    assert [type(r) for r in results] == [Generation, GenerationError, Generation]
    assert results[1].kind == "validation"


def test_constrained_decoding_reaches_the_server_in_each_apis_spelling(tgi_server):
    server = tgi_server()
    grammar = {"type": "regex", "value": "[A-Z]+( [^;]+)?(; [A-Z]+( [^;]+)?)*\\."}
    generate(fast_backend(server.url, api="generate"), grammar=grammar)
    generate(fast_backend(server.url, api="chat"), grammar=grammar)
    assert server.payloads[0]["parameters"]["grammar"] == grammar
    assert server.payloads[1]["response_format"] == grammar
