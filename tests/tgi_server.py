"""A text-generation-inference protocol server on 127.0.0.1, for tests and benchmarks.

It answers the routes a TGI deployment answers (``GET /``, ``/info``, ``/health``; ``POST /``,
``/generate``, ``/generate_stream``, ``/v1/chat/completions`` with and without ``stream``) with the same
JSON and server-sent-event shapes, so clients are exercised on the wire rather than through fakes.
What the model "says" comes from a ``responder(kind, payload) -> str`` callable (``kind`` is
``"generate"`` or ``"chat"``, ``payload`` the request JSON), so each server can play a scripted part.

Faults reproduce what real deployments do under load, each by name:
``"422"`` ``"424"`` ``"429"`` ``"500"`` ``"503"`` (TGI's ``{"error", "error_type"}`` bodies), ``"drop"``
(the connection closes without an answer), ``"garbage"`` (a 200 whose body is not JSON),
``"stream_error"`` (a 200 stream that breaks off with an error event), ``"slow"`` (``slow_seconds`` of
extra latency), and 200 answers that follow the protocol's syntax but carry no answer: ``"null"`` (the body
is JSON ``null``), ``"no_choices"`` (a chat completion without ``choices``, a ``/generate`` object without
``generated_text``) and ``"null_text"`` (``"content": null`` / ``"generated_text": null``); a streamed
request gets these as a plain JSON body, a stream without a single event. ``script`` lists faults for the
next requests in order (``None`` for a clean answer); after it runs out, ``faults`` gives each fault a
probability per request (seeded, reproducible).

``parameters.grammar`` on the generate routes is checked as TGI checks it (``{"type": "json" | "json_schema" |
"regex", "value": ...}``, a 422 otherwise); ``grammars=False`` plays a deployment that takes no grammar at all.

Run ``python tests/tgi_server.py --latency 0.2`` to serve from a separate process (benchmarks do); it
prints the URL on its first line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Responder = Callable[[str, dict[str, Any]], str]

ERRORS: dict[str, tuple[int, str, str]] = {
    "422": (422, "validation", "Input validation error: `inputs` must have less than 4096 tokens."),
    "424": (424, "generation", "Request failed during generation: Server error: CUDA out of memory."),
    "429": (429, "overloaded", "Model is overloaded"),
    "500": (500, "incomplete_generation", "Incomplete generation"),
    "503": (503, "unhealthy", "Service Unavailable"),
}
STREAM_ERROR = {"error": "Request failed during generation: Server error: shard died.", "error_type": "generation"}
EMPTY_ANSWERS: tuple[str, ...] = ("null", "no_choices", "null_text")
FAULTS: tuple[str, ...] = (*ERRORS, "drop", "garbage", "stream_error", "slow", *EMPTY_ANSWERS)
GRAMMAR_TYPES: tuple[str, ...] = ("json", "json_schema", "regex")


def grammar_problem(grammar: Any) -> str | None:
    """Why TGI would refuse ``parameters.grammar`` (``None``: it takes it): a known type and a value of its kind."""
    if not isinstance(grammar, dict) or grammar.get("type") not in GRAMMAR_TYPES:
        kind = grammar.get("type") if isinstance(grammar, dict) else grammar
        return f"parameters.grammar: unknown variant `{kind}`, expected one of {', '.join(GRAMMAR_TYPES)}"
    value = grammar.get("value")
    if grammar["type"] == "regex" and not isinstance(value, str):
        return "parameters.grammar.value: invalid type, expected a string"
    if grammar["type"] != "regex" and not isinstance(value, dict | str):
        return "parameters.grammar.value: invalid type, expected a JSON schema"
    return None


def echo_responder(kind: str, payload: dict[str, Any]) -> str:
    """The default model: repeats the last line of the prompt, which makes tests easy to read."""
    prompt = str(payload["messages"][-1]["content"] if kind == "chat" else payload.get("inputs", ""))
    lines = [line for line in prompt.splitlines() if line.strip()]
    return lines[-1] if lines else ""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # benchmarks open many connections at once

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that time out hang up mid-answer; that is expected here, not worth a traceback."""


class TGIServer:
    """One TGI-protocol server in a background thread; ``.url`` is its base URL, ``.close()`` stops it."""

    def __init__(
        self,
        responder: Responder = echo_responder,
        *,
        latency: float = 0.0,
        faults: Mapping[str, float] | None = None,
        script: Iterable[str | None] = (),
        slow_seconds: float = 5.0,
        seed: int = 0,
        model_id: str = "chemactor/tgi-test",
        max_concurrent_requests: int | None = 128,
        port: int = 0,
        grammars: bool = True,
    ) -> None:
        unknown = set(faults or {}) | {fault for fault in script if fault is not None}
        unknown -= set(FAULTS)
        if unknown:
            raise ValueError(f"unknown fault(s) {sorted(unknown)}; known: {', '.join(FAULTS)}")
        self.responder = responder
        self.latency = latency
        self.faults = dict(faults or {})
        self.script = list(script)
        self.slow_seconds = slow_seconds
        self.model_id = model_id
        self.max_concurrent_requests = max_concurrent_requests
        self.grammars = grammars
        self.requests: Counter[str] = Counter()  # route -> count
        self.injected: Counter[str] = Counter()  # fault -> count
        self.payloads: list[dict[str, Any]] = []
        self.in_flight = 0
        self.peak_in_flight = 0  # the most generation requests served at once
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._httpd = _HTTPServer(("127.0.0.1", port), _handler_for(self))
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="tgi-server", daemon=True)
        self._thread.start()

    def next_fault(self, route: str, payload: dict[str, Any]) -> str | None:
        """Count the request and decide its fault: the script first, then the rates."""
        with self._lock:
            self.requests[route] += 1
            self.payloads.append(payload)
            if self.script:
                fault = self.script.pop(0)
            else:
                fault = next((name for name, rate in self.faults.items() if self._random.random() < rate), None)
            if fault is not None:
                self.injected[fault] += 1
            return fault

    def track(self, delta: int) -> None:
        with self._lock:
            self.in_flight += delta
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def info(self) -> dict[str, Any]:
        """The ``/info`` document of a TGI deployment (the fields clients read)."""
        return {
            "model_id": self.model_id,
            "model_sha": None,
            "model_pipeline_tag": "text-generation",
            "max_concurrent_requests": self.max_concurrent_requests,
            "max_best_of": 2,
            "max_stop_sequences": 4,
            "max_input_tokens": 4095,
            "max_total_tokens": 4096,
            "validation_workers": 2,
            "max_client_batch_size": 4,
            "router": "text-generation-router",
            "version": "3.3.4",
        }

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> TGIServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _tokens(text: str) -> list[str]:
    """Whitespace-preserving pseudo-tokens, so streamed pieces join back to the exact text."""
    pieces = text.split(" ")
    return [piece if index == 0 else f" {piece}" for index, piece in enumerate(pieces)] if text else []


def _handler_for(server: TGIServer) -> type[BaseHTTPRequestHandler]:
    counter = itertools.count()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as clients pool connections
        disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms delayed-ACK stall

        def log_message(self, format: str, *args: Any) -> None:  # silence per-request logging
            pass

        # --- plumbing -----------------------------------------------------------------------------

        def _send_json(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _send_error(self, fault: str) -> None:
            status, error_type, message = ERRORS[fault]
            self._send_json(status, {"error": message, "error_type": error_type})

        def _start_stream(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")  # an SSE body ends when the connection does
            self.end_headers()
            self.close_connection = True

        def _event(self, body: Any) -> None:
            data = body if isinstance(body, str) else json.dumps(body)
            self.wfile.write(f"data: {data}\n\n".encode())
            self.wfile.flush()

        def _drop(self) -> None:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

        # --- routes -------------------------------------------------------------------------------

        def do_GET(self) -> None:
            if self.path == "/health":
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif self.path in ("/", "/info"):
                self._send_json(200, server.info())
            elif self.path == "/v1/models":
                self._send_json(200, {"object": "list", "data": [{"id": server.model_id, "object": "model"}]})
            else:
                self._send_json(404, {"error": f"no route {self.path}", "error_type": "not_found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                payload = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError as exc:
                self._send_json(
                    422, {"error": f"Failed to deserialize the JSON body: {exc}", "error_type": "validation"}
                )
                return
            route = self.path.rstrip("/") or "/"
            if route not in ("/", "/generate", "/generate_stream", "/v1/chat/completions"):
                self._send_json(404, {"error": f"no route {self.path}", "error_type": "not_found"})
                return
            server.track(+1)
            try:
                self._answer(route, payload)
            finally:
                server.track(-1)

        def _answer(self, route: str, payload: dict[str, Any]) -> None:
            fault = server.next_fault(route, payload)
            grammar = (payload.get("parameters") or {}).get("grammar")
            if route != "/v1/chat/completions" and grammar is not None:
                problem = grammar_problem(grammar) if server.grammars else "grammar is not supported by this model"
                if problem:
                    self._send_json(422, {"error": f"Input validation error: {problem}", "error_type": "validation"})
                    return
            delay = server.latency + (server.slow_seconds if fault == "slow" else 0.0)
            if delay:
                time.sleep(delay)
            if fault == "drop":
                self._drop()
            elif fault in ERRORS:
                self._send_error(fault)
            elif fault == "garbage":
                data = b"<html>502 Bad Gateway</html> \x00\xff not json"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            elif fault == "null":
                self._send_json(200, None)
            elif route == "/v1/chat/completions":
                self._chat(payload, fault)
            else:
                stream = route == "/generate_stream" or (route == "/" and bool(payload.get("stream")))
                self._generate(payload, fault, stream=stream, as_list=route == "/")

        def _generate(self, payload: dict[str, Any], fault: str | None, *, stream: bool, as_list: bool) -> None:
            text = server.responder("generate", payload)
            tokens = _tokens(text)
            parameters = payload.get("parameters") or {}
            details = {
                "finish_reason": "eos_token",
                "generated_tokens": len(tokens),
                "seed": parameters.get("seed"),
                "prefill": [],
                "tokens": [{"id": i, "text": tok, "logprob": -0.1, "special": False} for i, tok in enumerate(tokens)],
            }
            if not stream or fault in EMPTY_ANSWERS:
                body: dict[str, Any] = {"generated_text": None if fault == "null_text" else text}
                if fault == "no_choices":
                    del body["generated_text"]
                if parameters.get("details"):
                    body["details"] = details
                self._send_json(200, [body] if as_list else body)
                return
            self._start_stream()
            for index, token in enumerate(tokens):
                if fault == "stream_error" and index >= len(tokens) // 2:
                    self._event(STREAM_ERROR)
                    return
                last = index == len(tokens) - 1
                self._event(
                    {
                        "index": index,
                        "token": {"id": index, "text": token, "logprob": -0.1, "special": False},
                        "generated_text": text if last else None,
                        "details": {k: details[k] for k in ("finish_reason", "generated_tokens", "seed")}
                        if last
                        else None,
                    }
                )
            if fault == "stream_error":  # an empty answer still breaks off
                self._event(STREAM_ERROR)

        def _chat(self, payload: dict[str, Any], fault: str | None) -> None:
            text = server.responder("chat", payload)
            tokens = _tokens(text)
            prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in payload.get("messages", []))
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(tokens),
                "total_tokens": prompt_tokens + len(tokens),
            }
            common = {
                "id": f"chatcmpl-{next(counter)}",
                "created": int(time.time()),
                "model": payload.get("model") or server.model_id,
                "system_fingerprint": "3.3.4-native",
            }
            if not payload.get("stream") or fault in EMPTY_ANSWERS:
                choice = {
                    "index": 0,
                    "message": {"role": "assistant", "content": None if fault == "null_text" else text},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
                body = {**common, "object": "chat.completion", "choices": [choice], "usage": usage}
                if fault == "no_choices":
                    del body["choices"]
                self._send_json(200, body)
                return
            self._start_stream()
            for index, token in enumerate(tokens):
                if fault == "stream_error" and index >= len(tokens) // 2:
                    break
                delta = {"role": "assistant", "content": token}
                self._event(
                    {
                        **common,
                        "object": "chat.completion.chunk",
                        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}],
                        "usage": None,
                    }
                )
            if fault == "stream_error":
                self._event(STREAM_ERROR)
                return
            final = {
                "index": 0,
                "delta": {"role": "assistant", "content": ""},
                "logprobs": None,
                "finish_reason": "stop",
            }
            include_usage = (payload.get("stream_options") or {}).get("include_usage")
            self._event(
                {
                    **common,
                    "object": "chat.completion.chunk",
                    "choices": [final],
                    "usage": usage if include_usage else None,
                }
            )
            self._event("[DONE]")

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every generation request")
    parser.add_argument("--max-concurrent-requests", type=int, default=128)
    args = parser.parse_args()
    server = TGIServer(latency=args.latency, port=args.port, max_concurrent_requests=args.max_concurrent_requests)
    print(server.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.close()


if __name__ == "__main__":
    main()
