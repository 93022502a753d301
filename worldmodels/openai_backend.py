"""The ``openai`` backend: any OpenAI-compatible chat-completions server, over plain HTTP.

Works with ``vllm serve``, ``wmgym serve`` and hosted APIs. Chats live on the
client; each step sends the whole chat (servers with prefix caching, like
vLLM's and ours, only compute the new tokens). ``step_batch`` sends its
requests concurrently so a batching server can step them together.

Confidence is the mean of the per-token log-probs the server returns when
asked (``logprobs=true``); a server that returns none gives NaN.

Several endpoints serving the same model (``base_url=[URL, URL]`` or ``"URL,URL"``) share the load
round-robin: any of them can take any step, since the chat travels whole. An endpoint that fails (no
connection, a 5xx answer) is set aside for ``cooldown`` seconds, the request goes to the next one, and
the failure is warned about once and recorded in :attr:`OpenAIWorldModel.endpoint_failures`.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import threading
import time
import warnings
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from wmgym.worldmodels.base import Chat, ClientChats, WMStep
from wmgym.worldmodels.protocol import build_messages, parse_observation
from wmgym.worldmodels.settings import GenerationSettings


class OpenAIWorldModel(ClientChats):
    """World model behind an OpenAI-compatible endpoint.

    Args:
        model: the served model name (``GET /v1/models`` lists it).
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1``; a list (or comma-separated string) of roots
            serving the same model spreads requests over them round-robin.
        api_key: bearer token (default: ``$OPENAI_API_KEY``, else ``"EMPTY"`` as local servers expect).
        timeout: seconds to wait for one response.
        max_concurrency: parallel requests in ``step_batch``.
        retries: extra rounds over the endpoints after a connection error or a 5xx answer.
        cooldown: seconds a failed endpoint is skipped while others answer.
        **generation: :class:`GenerationSettings` fields (``max_context_tokens`` is the server's business).
    """

    def __init__(self, model: str, *, base_url: str | list[str] = "http://127.0.0.1:8000/v1",
                 api_key: str | None = None, timeout: float = 300.0, max_concurrency: int = 16, retries: int = 2,
                 cooldown: float = 30.0, **generation: Any):
        self.model = str(model)
        urls = base_url.split(",") if isinstance(base_url, str) else list(base_url)
        self.base_urls = [u.strip().rstrip("/") for u in urls if u.strip()]
        if not self.base_urls:
            raise ValueError(f"base_url names no endpoint: {base_url!r}")
        self.base_url = self.base_urls[0]
        self.cooldown = cooldown
        self.endpoint_failures: list[dict[str, Any]] = []
        """One record per failed request to an endpoint: ``url``, ``error``, ``time`` (epoch seconds)."""
        self.requests_per_endpoint = dict.fromkeys(self.base_urls, 0)
        """Requests each endpoint answered."""
        self._down_until = dict.fromkeys(self.base_urls, 0.0)
        # Each process starts at its own endpoint, so many clients (Ray workers) spread from the first request.
        self._turn = itertools.count(os.getpid() % len(self.base_urls))
        self._lock = threading.Lock()
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.settings = GenerationSettings.from_kwargs(generation)
        self.timeout, self.max_concurrency, self.retries = timeout, max_concurrency, retries
        super().__init__()

    def _generate(self, chats: list[Chat], actions: list[str]) -> list[WMStep]:
        if len(chats) == 1:
            return [self._complete(chats[0], actions[0])]
        with ThreadPoolExecutor(min(self.max_concurrency, len(chats))) as pool:
            return list(pool.map(self._complete, chats, actions))

    # ------------------------------------------------------------ HTTP
    def _complete(self, chat: Chat, action: str) -> WMStep:
        s = self.settings
        body: dict[str, Any] = {"model": self.model, "messages": build_messages(chat.init_context, chat.history, action),
                                "max_tokens": s.max_new_tokens, "temperature": s.temperature, "top_p": s.top_p,
                                "logprobs": True}
        if s.top_k:
            body["top_k"] = s.top_k  # a vLLM extension; sent only when asked for
        if chat.seed is not None:
            body["seed"] = chat.seed + len(chat.history)
        reply = self.post("/chat/completions", body)
        try:
            choice = reply["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise RuntimeError(f"{', '.join(self.base_urls)} answered without a chat completion: "
                               f"{str(reply)[:300]}") from None
        entries = (choice.get("logprobs") or {}).get("content") or []
        logprobs = [e["logprob"] for e in entries if isinstance(e, dict) and "logprob" in e]
        confidence = sum(logprobs) / len(logprobs) if logprobs else math.nan
        parsed = parse_observation(text, truncated=choice.get("finish_reason") == "length")
        usage = reply.get("usage") or {}
        return WMStep(text=text, observation=parsed.observation, success=parsed.success, confidence=float(confidence),
                      parse_error=parsed.parse_error,
                      extra={"prompt_tokens": usage.get("prompt_tokens"),
                             "completion_tokens": usage.get("completion_tokens"), "token_logprobs": logprobs,
                             "finish_reason": choice.get("finish_reason")})

    def _order(self) -> list[str]:
        """The endpoints to try for one request: round-robin from the next turn, those cooling down last."""
        with self._lock:
            start = next(self._turn) % len(self.base_urls)
            now = time.time()
            ring = self.base_urls[start:] + self.base_urls[:start]
            return [u for u in ring if self._down_until[u] <= now] + [u for u in ring if self._down_until[u] > now]

    def _failed(self, url: str, error: str) -> None:
        with self._lock:
            first = self._down_until[url] <= time.time()
            self._down_until[url] = time.time() + self.cooldown
            self.endpoint_failures.append({"url": url, "error": error, "time": time.time()})
        if first and len(self.base_urls) > 1:
            warnings.warn(f"world-model endpoint {url} failed ({error}); its requests go to the other endpoints "
                          f"for {self.cooldown:g} s", RuntimeWarning, stacklevel=3)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST JSON to ``path`` on the next endpoint and return the JSON answer; a connection error or a 5xx
        answer moves the request to the next endpoint (``retries`` more rounds over all of them)."""
        data = json.dumps(body).encode("utf-8")
        errors: list[str] = []
        unreachable = False  # a connection error (vs servers that answered 5xx) decides the exception type
        for attempt in range(self.retries + 1):
            for root in self._order():
                url = root + path
                request = urllib.request.Request(url, data=data, method="POST", headers={
                    "Content-Type": "application/json", "Authorization": f"Bearer {self.api_key}"})
                try:
                    with urllib.request.urlopen(request, timeout=self.timeout) as response:
                        answer = json.loads(response.read())
                    with self._lock:
                        self.requests_per_endpoint[root] += 1
                    return answer
                except urllib.error.HTTPError as e:
                    detail = e.read().decode("utf-8", "replace")[:500]
                    if e.code < 500:  # the request itself is wrong: every endpoint would refuse it
                        raise RuntimeError(f"{url} answered HTTP {e.code}: {detail}") from None
                    errors.append(f"{url}: HTTP {e.code}: {detail}")
                    self._failed(root, f"HTTP {e.code}")
                except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
                    errors.append(f"{url}: {e}")
                    unreachable = True
                    self._failed(root, str(getattr(e, "reason", e)))
            if attempt < self.retries:
                time.sleep(0.5 * 2**attempt)
        if not unreachable:
            raise RuntimeError("world-model server(s) failed: " + "; ".join(errors[-len(self.base_urls):]))
        raise ConnectionError("cannot reach the world-model server at " + ", ".join(self.base_urls) + ": "
                              + "; ".join(errors[-len(self.base_urls):]))
