"""Text generators behind one interface: an inference endpoint, a local transformers model, or rules.

``EndpointBackend`` talks to text-generation-inference (``/generate``-style ``text_generation`` or
``/v1/chat/completions``) or any OpenAI-compatible server through huggingface_hub's
``AsyncInferenceClient``. Generated data is only as cheap as the endpoint is busy, so the backend keeps
every endpoint loaded up to its concurrency limit, spreads requests over several URLs (least requests in
flight first), and retries what a busy or flaky deployment throws at it: 429 ``overloaded``, 424, 5xx,
timeouts, dropped connections, garbage bodies (including a 200 that is JSON ``null``, a completion without
``choices``, an answer whose text is ``null``, or a stream without a single event) and errors that arrive
inside a 200 stream. A 422 (``validation``: the prompt is too long, say) will fail the same way again, so it
is returned at once as a :class:`GenerationError` for the caller to record.

An endpoint that cannot be reached at all is not a per-item failure: when
:data:`UNREACHABLE_ATTEMPTS` attempts in a row fail to connect before any request has succeeded, the
request raises :class:`~chemactor.errors.EndpointError`, and so does every later request of the backend,
so a run stops early instead of recording every item as failed.

``TransformersBackend`` runs a local model directory with batched ``generate``; concurrent callers are
gathered into batches. ``AugmentBackend`` needs no model at all (see :mod:`chemactor.generation.augment`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import httpx2
from huggingface_hub import AsyncInferenceClient
from huggingface_hub.errors import (
    HfHubHTTPError,
    OfflineModeIsEnabled,
    OverloadedError,
    TextGenerationError,
    ValidationError,
)
from tqdm.auto import tqdm

from chemactor.actions import ActionConstraint, ActionParseError, answer_text
from chemactor.errors import LOCAL_MODEL_MODULES, ConfigError, EndpointError, closest, require_extra
from chemactor.generation.augment import Augmenter

Prompt = str | Sequence[Mapping[str, str]]
"""A plain prompt, or chat messages (``[{"role": "user", "content": ...}, ...]``)."""

DEFAULT_CONCURRENCY = 8

STRUCTURED_OUTPUTS: dict[str, tuple[str, ...]] = {
    "chat": ("json_schema", "json_object", "gbnf"),
    "generate": ("json_schema", "regex"),
}
"""How each API can carry an action constraint (``structured_output``), the first being the default:

- ``json_schema``: OpenAI's ``response_format={"type": "json_schema", ...}``, which huggingface_hub sends to a
  base URL in the shape TGI's chat route takes (``{"type": "json_object", "value": schema}``); on
  ``generate``, TGI's ``grammar={"type": "json", "value": schema}``;
- ``json_object``: ``response_format={"type": "json_object", "schema": ...}`` (llama-cpp-python's server,
  which rejects ``json_schema``);
- ``gbnf``: llama.cpp's ``grammar`` (GBNF) over the readable action format itself, no JSON;
- ``regex``: TGI's ``grammar={"type": "regex", ...}`` over the readable format.
"""
UNREACHABLE_KINDS: frozenset[str] = frozenset({"connection", "offline"})
UNREACHABLE_ATTEMPTS = 3
"""Attempts in a row that fail to connect, before any success, after which an endpoint counts as unreachable."""


@dataclass(frozen=True)
class Generation:
    """One answer: the text, token counts as the server reported them, and who answered."""

    text: str
    usage: dict[str, int] = field(default_factory=dict)
    endpoint: str = ""


class GenerationError(Exception):
    """A request that failed for good (retries exhausted, or not worth retrying).

    ``kind`` names the failure for summaries and ``--retry-failed``: ``validation``, ``overloaded``,
    ``generation``, ``server``, ``timeout``, ``connection``, ``garbage``, ``http``, ``offline``, ``local``,
    or ``empty`` (the generation runner's verdict on a blank answer).
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        retryable: bool,
        status: int | None = None,
        endpoint: str = "",
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable
        self.status = status
        self.endpoint = endpoint
        self.attempts = attempts

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": str(self),
            "status": self.status,
            "endpoint": self.endpoint,
            "attempts": self.attempts,
        }


class MalformedAnswer(ValueError):
    """A 200 answer that carries no answer: ``null``, no ``choices``, ``null`` text, a stream without events."""


def _status(exc: BaseException) -> int | None:
    """The HTTP status behind ``exc``; huggingface_hub chains TGI errors onto the HTTP error."""
    while exc is not None:
        response = getattr(exc, "response", None)
        if isinstance(exc, HfHubHTTPError) and response is not None:
            return response.status_code
        exc = exc.__cause__
    return None


def classify_error(exc: BaseException, endpoint: str = "") -> GenerationError | None:
    """Map what the client raised to a :class:`GenerationError`; ``None`` for programming errors."""
    status = _status(exc)
    message = f"{type(exc).__name__}: {exc}".strip()
    if isinstance(exc, OfflineModeIsEnabled):
        kind, retryable = "offline", False
        message = f"HF_HUB_OFFLINE=1 blocks every URL, {endpoint} included; unset it to use endpoints"
    elif isinstance(exc, ValidationError) or status == 422:
        kind, retryable = "validation", False
    elif isinstance(exc, OverloadedError) or status == 429:
        kind, retryable = "overloaded", True
    elif isinstance(exc, TimeoutError | asyncio.TimeoutError) or status in (408, 504):
        kind, retryable = "timeout", True
    elif status is not None and (status >= 500 or status == 424):
        kind, retryable = ("generation" if status == 424 else "server"), True
    elif status is not None:
        kind, retryable = "http", False
    elif isinstance(exc, TextGenerationError):  # an error event inside a 200 stream
        kind, retryable = "generation", True
    elif isinstance(exc, httpx2.TransportError):
        kind, retryable = "connection", True
    elif isinstance(exc, ValueError | KeyError | IndexError | AttributeError):  # a body that is not the protocol
        kind, retryable = "garbage", True
    else:
        return None
    return GenerationError(message, kind=kind, retryable=retryable, status=status, endpoint=endpoint)


class Backend(ABC):
    """What the generation runner needs from a generator: endpoints, local models and augmentation alike.

    A backend either answers prompts (:meth:`agenerate`) or, when ``writes_variants`` is true, writes new
    rows from input records (:meth:`variant`: rule-based augmentation needs no prompt). The runner asks
    ``writes_variants`` instead of testing backend classes, so a new backend needs no change to it.
    """

    writes_variants: ClassVar[bool] = False

    def __init__(self) -> None:
        # requests, retries, failed:<kind>, prompt_tokens, completion_tokens (and batches for a local model)
        self.stats: Counter[str] = Counter()

    def variant(self, record: Mapping[str, Any], index: int) -> tuple[str, str, dict[str, str]]:
        """The ``index``-th new (description, actions, substitutions) from ``record`` (``writes_variants`` only)."""
        raise NotImplementedError(f"{type(self).__name__} answers prompts; it does not write variants of records")

    @abstractmethod
    async def agenerate(self, prompt: Prompt, **params: Any) -> Generation:
        """Generate for one prompt; raise :class:`GenerationError` when it cannot."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Provenance recorded in every generated row's ``meta``."""

    async def aclose(self) -> None:  # noqa: B027 (a no-op by default: not every backend holds connections)
        """Release connections or workers bound to the running event loop."""

    def _count(self, generation: Generation) -> Generation:
        self.stats["requests"] += 1
        for name, value in generation.usage.items():
            self.stats[name] += value
        return generation

    def generate_many(
        self, items: Iterable[Prompt], *, progress: bool = True, **params: Any
    ) -> list[Generation | GenerationError]:
        """Generate for every prompt concurrently (bounded by the backend), in input order.

        Failures are returned in place rather than raised, so one bad prompt never costs the others.
        Runs its own event loop: call :meth:`agenerate` instead from async code.
        """
        prompts = list(items)

        async def run() -> list[Generation | GenerationError]:
            bar = tqdm(total=len(prompts), desc="generate", unit="req", disable=not progress)

            async def one(prompt: Prompt) -> Generation | GenerationError:
                try:
                    return await self.agenerate(prompt, **params)
                except GenerationError as error:
                    return error
                finally:
                    bar.update()
                    bar.set_postfix(retries=self.stats["retries"], refresh=False)

            try:
                return list(await asyncio.gather(*(one(prompt) for prompt in prompts)))
            finally:
                bar.close()
                await self.aclose()

        return asyncio.run(run())


class _LoopState:
    """Clients and limits of one event loop: httpx connections cannot cross loops."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.clients: dict[str, AsyncInferenceClient] = {}
        self.in_flight: Counter[str] = Counter()
        self.semaphore: asyncio.Semaphore | None = None
        self.lock = asyncio.Lock()


class EndpointBackend(Backend):
    """Generate through one or more TGI / OpenAI-compatible endpoints.

    ``max_concurrency`` bounds requests in flight over all URLs; left ``None``, it is the sum of each
    server's ``/info`` ``max_concurrent_requests`` (8 per endpoint that does not say). ``timeout`` bounds
    each attempt; failed attempts are retried ``max_retries`` times with exponential backoff and full
    jitter (``backoff * 2**attempt``, at most ``max_backoff`` seconds), on another URL when there is one.
    ``stream=True`` reads answers as server-sent events (token by token).

    A request with a ``constraint`` (an :class:`~chemactor.actions.ActionConstraint`) sends it the way
    ``structured_output`` says (see :data:`STRUCTURED_OUTPUTS`), asks for as many new tokens as the longest
    constrained answer may take, and returns the answer as a readable action string whatever form the
    server wrote it in; a ``constraint`` that is a JSON schema asks for a JSON answer under it. A server
    that refuses the constraint (the same request without it is answered) raises
    :class:`~chemactor.errors.EndpointError` naming the option that turns it off.
    """

    def __init__(
        self,
        urls: str | Sequence[str],
        model: str | None = None,
        max_concurrency: int | None = None,
        timeout: float = 120.0,
        max_retries: int = 5,
        api: Literal["chat", "generate"] = "chat",
        *,
        token: str | None = None,
        stream: bool = False,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        structured_output: str | None = None,
    ) -> None:
        super().__init__()
        self.urls = [url.rstrip("/") for url in ([urls] if isinstance(urls, str) else urls)]
        if not self.urls:
            raise ConfigError("endpoints: EndpointBackend needs at least one endpoint URL")
        if api not in ("chat", "generate"):
            raise ConfigError(
                f"api: must be 'chat' or 'generate', got {api!r}{closest(str(api), ('chat', 'generate'))}"
            )
        if structured_output is not None and structured_output not in STRUCTURED_OUTPUTS[api]:
            known = STRUCTURED_OUTPUTS[api]
            raise ConfigError(
                f"structured_output: {structured_output!r} does not go with api {api!r}"
                f"{closest(structured_output, known)}; use one of {', '.join(known)}"
            )
        self.structured_output = structured_output or STRUCTURED_OUTPUTS[api][0]
        self._takes_constraint: set[str] = set()  # URLs that have answered a constrained request
        self.model = model
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.api = api
        self.token = token
        self.stream = stream
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._state: _LoopState | None = None
        self._turn = 0
        self._unreachable_attempts = 0  # attempts in a row that could not connect, while nothing has succeeded
        self.unreachable: EndpointError | None = None

    def describe(self) -> dict[str, Any]:
        return {"backend": "endpoint", "api": self.api, "model": self.model, "endpoints": self.urls}

    def _client(self, url: str) -> AsyncInferenceClient:
        return AsyncInferenceClient(base_url=url, token=self.token, timeout=self.timeout)

    async def _loop_state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        if self._state is None or self._state.loop is not loop:
            self._state = _LoopState(loop)
        state = self._state
        async with state.lock:
            if state.semaphore is None:
                state.clients = {url: self._client(url) for url in self.urls}
                limit = self.max_concurrency or await self._server_concurrency()
                state.semaphore = asyncio.Semaphore(limit)
                self.max_concurrency = limit
        return state

    async def _server_concurrency(self) -> int:
        """Sum of the endpoints' advertised ``max_concurrent_requests`` (``/info``), defaults where absent."""
        total = 0
        for url in self.urls:
            # /info is a TGI route that huggingface_hub only asks of the "hf-inference" provider
            client = AsyncInferenceClient(url, provider="hf-inference", token=self.token, timeout=self.timeout)
            try:
                info = await asyncio.wait_for(client.get_endpoint_info(), self.timeout)
                total += int(info.get("max_concurrent_requests") or DEFAULT_CONCURRENCY)
            except Exception:  # not TGI (an OpenAI-compatible server has no /info): use the default
                total += DEFAULT_CONCURRENCY
            finally:
                await client.close()
        return total

    def _pick(self, state: _LoopState, avoid: str | None) -> str:
        """Least requests in flight first, rotating among ties; avoid the URL that just failed."""
        candidates = [url for url in self.urls if url != avoid] or self.urls
        self._turn += 1
        rotated = candidates[self._turn % len(candidates) :] + candidates[: self._turn % len(candidates)]
        return min(rotated, key=lambda url: state.in_flight[url])

    async def agenerate(self, prompt: Prompt, **params: Any) -> Generation:
        if self.unreachable is not None:
            raise self.unreachable
        state = await self._loop_state()
        assert state.semaphore is not None
        failed_url: str | None = None
        async with state.semaphore:
            for attempt in range(self.max_retries + 1):
                if self.unreachable is not None:  # another request found out while this one waited
                    raise self.unreachable
                url = self._pick(state, failed_url)
                state.in_flight[url] += 1
                try:
                    generation = await asyncio.wait_for(self._request(state, url, prompt, params), self.timeout)
                    self._unreachable_attempts = 0
                    if params.get("constraint") is not None:
                        self._takes_constraint.add(url)
                    return self._count(generation)
                except Exception as exc:
                    error = classify_error(exc, url)
                    if error is None:
                        raise
                    error.attempts = attempt + 1
                    self._check_reachable(error)
                    final = not error.retryable or attempt == self.max_retries
                    if final and params.get("constraint") is not None and error.status is not None:
                        await self._refuses_constraint(state, url, prompt, params, error)
                    if final:
                        self.stats[f"failed:{error.kind}"] += 1
                        raise error from exc
                    self.stats["retries"] += 1
                    failed_url = url
                finally:
                    state.in_flight[url] -= 1
                delay = min(self.max_backoff, self.backoff * 2**attempt)
                await asyncio.sleep(random.uniform(0, delay))
        raise AssertionError("unreachable")  # the loop returns or raises

    def _check_reachable(self, error: GenerationError) -> None:
        """Raise :class:`EndpointError` once enough attempts in a row failed to connect before any success."""
        if error.kind not in UNREACHABLE_KINDS or self.stats["requests"]:
            self._unreachable_attempts = 0
            return
        self._unreachable_attempts += 1
        if error.kind == "offline" or self._unreachable_attempts >= UNREACHABLE_ATTEMPTS:
            reason = (
                str(error)
                if error.kind == "offline"
                else f"{self._unreachable_attempts} attempts in a row failed and none ever succeeded; last: {error}"
            )
            self.unreachable = EndpointError(
                f"endpoint {', '.join(self.urls)} cannot be reached ({reason}); no item was recorded as failed: "
                "rerun when it is up"
            )
            raise self.unreachable from error

    async def _refuses_constraint(
        self, state: _LoopState, url: str, prompt: Prompt, params: Mapping[str, Any], error: GenerationError
    ) -> None:
        """Raise :class:`EndpointError` when ``url`` refuses the constraint of a request that failed for good.

        Refusing means: no constrained request has succeeded there yet, the same request without its constraint
        is answered, and with it fails again; so a server that does not take the constraint in this form stops
        the run at the first request, and a one-off fault is never mistaken for a refusal.
        """
        if url in self._takes_constraint:
            return
        bare = {key: value for key, value in params.items() if key != "constraint"} | {"max_new_tokens": 1}
        for request, refused in ((bare, False), (params, True)):
            try:
                await asyncio.wait_for(self._request(state, url, prompt, request), self.timeout)
            except Exception:
                if not refused:
                    return  # the failure is not about the constraint; report it as usual
            else:
                if refused:
                    return
        raise EndpointError(
            f"{url} refused the action constraint sent as structured_output={self.structured_output!r} "
            f"({error}); choose another structured_output ({', '.join(STRUCTURED_OUTPUTS[self.api])}) or turn "
            "the constraint off (--no-constrained, or constrained: false in the recipe)"
        )

    def _constrain(self, params: dict[str, Any], constraint: ActionConstraint | Mapping[str, Any]) -> None:
        """Put ``constraint`` into ``params`` in the form :attr:`structured_output` names.

        An :class:`ActionConstraint` also gets as many new tokens as its longest answer may take (every
        token carries at least one byte); a plain JSON schema (a reviewer's verdict, say) always goes as JSON.
        """
        form = self.structured_output
        if isinstance(constraint, ActionConstraint):
            text_form = "readable" if form in ("gbnf", "regex") else "json"
            params["max_new_tokens"] = max(params.get("max_new_tokens") or 0, constraint.max_bytes(text_form) + 1)
            schema = constraint.json_schema()
        else:
            schema = dict(constraint)
            form = {"gbnf": "json_object", "regex": "json_schema"}.get(form, form)
        if form == "json_schema" and self.api == "chat":
            wrapped = {"name": schema.get("title", "answer"), "schema": schema, "strict": False}
            params["response_format"] = {"type": "json_schema", "json_schema": wrapped}
        elif form == "json_schema":
            params["grammar"] = {"type": "json", "value": schema}
        elif form == "json_object":
            params["response_format"] = {"type": "json_object", "schema": schema}
        elif form == "gbnf":
            params["extra_body"] = {**params.get("extra_body", {}), "grammar": constraint.gbnf()}
        else:
            params["grammar"] = {"type": "regex", "value": constraint.regex()}

    async def _request(self, state: _LoopState, url: str, prompt: Prompt, params: Mapping[str, Any]) -> Generation:
        """One attempt. ``max_new_tokens`` and TGI's ``grammar`` are spelled the chat route's way there."""
        params = dict(params)
        constraint = params.pop("constraint", None)
        if constraint is not None:
            self._constrain(params, constraint)
            generation = await self._request(state, url, prompt, params)
            if not isinstance(constraint, ActionConstraint):
                return generation
            return dataclasses.replace(generation, text=_action_answer(generation.text))
        if self.api == "chat":
            messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
            if "max_new_tokens" in params:
                params["max_tokens"] = params.pop("max_new_tokens")
            if "grammar" in params:
                params["response_format"] = params.pop("grammar")
            return await self._chat(state, url, messages, params)
        if not isinstance(prompt, str):
            raise TypeError("the 'generate' api takes a plain prompt string, not chat messages")
        return await self._text_generation(state, url, prompt, params)

    async def _chat(self, state: _LoopState, url: str, messages: list, params: dict[str, Any]) -> Generation:
        if not self.stream:
            output = await state.clients[url].chat_completion(messages, model=self.model, **params)
            if output is None or not output.choices or output.choices[0].message is None:
                raise MalformedAnswer("a 200 chat completion without choices")
            text = output.choices[0].message.content
            if text is None:
                raise MalformedAnswer("a 200 chat completion whose content is null")
            usage = output.usage
            counts = (
                {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens} if usage else {}
            )
            return Generation(text=text, usage=counts, endpoint=url)
        # A streamed response stays open until its client closes, so each stream gets a client of its own.
        parts: list[str] = []
        counts = {}
        async with self._client(url) as client:
            chunks = await client.chat_completion(
                messages, model=self.model, stream=True, stream_options={"include_usage": True}, **params
            )
            events = 0
            async for chunk in chunks:
                events += 1
                if chunk.choices:
                    parts.append(chunk.choices[0].delta.content or "")
                if chunk.usage:
                    counts = {
                        "prompt_tokens": chunk.usage.prompt_tokens,
                        "completion_tokens": chunk.usage.completion_tokens,
                    }
        if not events:
            raise MalformedAnswer("a 200 stream without a single event")
        return Generation(text="".join(parts), usage=counts, endpoint=url)

    async def _text_generation(self, state: _LoopState, url: str, prompt: str, params: dict[str, Any]) -> Generation:
        if not self.stream:
            output = await state.clients[url].text_generation(prompt, details=True, **params)
            if output.generated_text is None:
                raise MalformedAnswer("a 200 answer without generated_text (or null)")
            counts = {"completion_tokens": output.details.generated_tokens} if output.details else {}
            return Generation(text=output.generated_text, usage=counts, endpoint=url)
        parts: list[str] = []
        counts = {}
        events = 0
        async with self._client(url) as client:
            async for event in await client.text_generation(prompt, details=True, stream=True, **params):
                events += 1
                parts.append(event.token.text if not event.token.special else "")
                if event.details is not None:
                    counts = {"completion_tokens": event.details.generated_tokens}
        if not events:
            raise MalformedAnswer("a 200 stream without a single event")
        return Generation(text="".join(parts), usage=counts, endpoint=url)

    async def aclose(self) -> None:
        state, self._state = self._state, None
        if state is not None:
            for client in state.clients.values():
                await client.close()


def endpoint_backends(specs: Sequence[str | Mapping[str, Any]], **defaults: Any) -> dict[str, EndpointBackend]:
    """Name -> :class:`EndpointBackend` for each spec: a URL, or ``{"url": ..., "model": ..., "name": ...}``.

    Extra keys of a spec, and ``defaults`` under them, are backend options (``api``, ``max_retries``, ...).
    A backend is named by its ``name``, else its model and URL, so two models served at one URL stay apart
    (peer review reports each reviewer by this name).
    """
    backends: dict[str, EndpointBackend] = {}
    for spec in specs:
        options = {**defaults, **({"url": spec} if isinstance(spec, str) else spec)}
        url, name = options.pop("url"), options.pop("name", None)
        name = name or (f"{options['model']}@{url}" if options.get("model") else url)
        if name in backends:
            raise ValueError(f"two endpoints are named {name!r}; give each a distinct 'name'")
        backends[name] = EndpointBackend(url, **options)
    if not backends:
        raise ValueError("no endpoint given: at least one URL or {'url': ...} spec is needed")
    return backends


class TransformersBackend(Backend):
    """Generate with a local causal LM directory (``from_pretrained``), batching concurrent requests.

    Requests that arrive together (the runner keeps many in flight) are padded into one ``generate`` call
    of up to ``batch_size`` prompts with the same sampling parameters, run in a worker thread so the event
    loop keeps writing finished rows meanwhile.
    """

    def __init__(self, model_path: str | Path, batch_size: int = 8, device: str | None = None) -> None:
        super().__init__()
        require_extra(LOCAL_MODEL_MODULES, "train", "the transformers generation backend")
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from chemactor.cpu import limit_torch_threads

        limit_torch_threads()
        self.model_path = str(model_path)
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path, padding_side="left")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(self.model_path)
        if device:
            self.model.to(device)
        self.model.eval()
        self._pending: list[tuple[str, dict[str, Any], asyncio.Future[Generation]]] = []
        self._worker: asyncio.Task[None] | None = None

    def describe(self) -> dict[str, Any]:
        return {"backend": "transformers", "model": self.model_path}

    async def agenerate(self, prompt: Prompt, **params: Any) -> Generation:
        future: asyncio.Future[Generation] = asyncio.get_running_loop().create_future()
        self._pending.append((render_prompt(self.tokenizer, prompt), params, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return self._count(await future)

    async def _drain(self) -> None:
        while self._pending:
            await asyncio.sleep(0)  # let callers scheduled in the same tick join the batch
            params = self._pending[0][1]
            batch = [item for item in self._pending if item[1] == params][: self.batch_size]
            self._pending = [item for item in self._pending if all(item is not other for other in batch)]
            self.stats["batches"] += 1
            try:
                generations = await asyncio.to_thread(self._generate_batch, [item[0] for item in batch], params)
            except Exception as exc:  # a model error fails this batch, not the whole run
                error = GenerationError(f"{type(exc).__name__}: {exc}", kind="local", retryable=False)
                self.stats["failed:local"] += len(batch)
                for _, _, future in batch:
                    future.set_exception(error)
                continue
            for (_, _, future), generation in zip(batch, generations, strict=True):
                future.set_result(generation)

    def _generate_batch(self, prompts: list[str], params: Mapping[str, Any]) -> list[Generation]:
        return [
            Generation(text=text, usage=usage, endpoint=self.model_path)
            for text, usage in generate_local(self.model, self.tokenizer, prompts, **params)
        ]


def _action_answer(text: str) -> str:
    """A constrained answer as a readable action string; an answer that is not one is kept for the parser to judge."""
    try:
        return answer_text(text)
    except ActionParseError:
        return text


def render_prompt(tokenizer: Any, prompt: Prompt) -> str:
    """The text a local model sees: a plain string as is, chat messages through the tokenizer's template."""
    if isinstance(prompt, str):
        return prompt
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template(list(prompt), tokenize=False, add_generation_prompt=True)
    return "\n\n".join(message["content"] for message in prompt)


def generate_local(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    max_new_tokens: int = 256,
    temperature: float | None = 0.0,
    top_p: float = 1.0,
    seed: int | None = None,
    constraint: ActionConstraint | None = None,
    **_: Any,
) -> list[tuple[str, dict[str, int]]]:
    """One padded ``generate`` call over rendered ``texts``: ``(answer, token usage)`` per text, in order.

    The one place local generation happens, for the transformers backend and for in-memory models
    (inference, evaluation during training). Left padding so every answer starts right after its prompt;
    no special tokens added when the tokenizer has a chat template, which writes its own BOS. Parameters
    a server would take but a local model has no use for (``stop``, ``grammar``, ...) are ignored.

    With a ``constraint`` every answer is decoded under the readable action grammar (xgrammar's logits
    processor), with as many new tokens as its longest answer may take as far as the model's context allows
    (never fewer than ``max_new_tokens``).
    """
    import torch

    if seed is not None:
        torch.manual_seed(int(seed))
    temperature = temperature or 0.0
    kwargs: dict[str, Any] = {
        "max_new_tokens": max_new_tokens,
        "do_sample": temperature > 0,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if temperature > 0:
        kwargs.update(temperature=temperature, top_p=top_p)
    padding_side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        inputs = tokenizer(
            list(texts), return_tensors="pt", padding=True, add_special_tokens=not tokenizer.chat_template
        ).to(model.device)
    finally:
        tokenizer.padding_side = padding_side
    if constraint is not None:
        room = getattr(model.config, "max_position_embeddings", None)
        wanted = constraint.max_bytes() + 1
        left = room - inputs["input_ids"].shape[1] if room else wanted
        kwargs["max_new_tokens"] = max(max_new_tokens, min(wanted, left))
        kwargs["logits_processor"] = [action_logits_processor(model, tokenizer, constraint)]
    with torch.inference_mode():
        output = model.generate(**inputs, **kwargs)
    results = []
    for row, mask in zip(output[:, inputs["input_ids"].shape[1] :], inputs["attention_mask"], strict=True):
        ends = (row == tokenizer.eos_token_id).nonzero()
        length = int(ends[0]) if len(ends) else len(row)
        text = tokenizer.decode(row[:length], skip_special_tokens=True)
        results.append((text, {"prompt_tokens": int(mask.sum()), "completion_tokens": length}))
    return results


_COMPILERS: dict[tuple[int, int], Any] = {}


def action_logits_processor(model: Any, tokenizer: Any, constraint: ActionConstraint) -> Any:
    """A transformers logits processor (xgrammar's) that admits only answers of ``constraint``, as readable text.

    Grammars are compiled once per tokenizer and constraint (xgrammar caches compiled grammars per compiler).
    A processor serves one ``generate`` call.
    """
    import xgrammar
    from xgrammar.contrib.hf import LogitsProcessor

    vocab_size = model.get_output_embeddings().weight.shape[0]
    key = (id(tokenizer), vocab_size)
    if key not in _COMPILERS:
        info = xgrammar.TokenizerInfo.from_huggingface(
            tokenizer, vocab_size=vocab_size, stop_token_ids=[tokenizer.eos_token_id]
        )
        _COMPILERS[key] = (tokenizer, xgrammar.GrammarCompiler(info))  # the tokenizer kept alive: its id is the key
    return LogitsProcessor(_COMPILERS[key][1].compile_grammar(constraint.gbnf()))


class AugmentBackend(Backend):
    """Rule-based generation without a model: new (description, actions) pairs from seed pairs.

    It is the default when no endpoint is configured, so the pipeline runs anywhere. Compound names,
    quantities, temperatures and durations are substituted consistently in the text and the actions;
    see :class:`~chemactor.generation.augment.Augmenter`.
    """

    writes_variants: ClassVar[bool] = True

    def __init__(self, seeds: Iterable[Mapping[str, Any]], seed: int = 0) -> None:
        super().__init__()
        self.seed = seed
        self.augmenter = Augmenter.from_records(seeds)

    async def agenerate(self, prompt: Prompt, **params: Any) -> Generation:
        raise NotImplementedError("the augment backend writes variants of records; it answers no prompts")

    def describe(self) -> dict[str, Any]:
        return {"backend": "augment", "seed": self.seed, "vocabulary": self.augmenter.sizes()}

    def variant(self, record: Mapping[str, Any], index: int) -> tuple[str, str, dict[str, str]]:
        """The ``index``-th variant of a seed row: (description, actions, substitutions made).

        Reproducible: the same seed row, index and ``seed`` give the same variant, so a resumed run
        regenerates exactly what an interrupted one would have written.
        """
        rng = random.Random(f"{self.seed}:{record['id']}:{index}")
        return self.augmenter.augment(record["description"], record["actions"], rng)
