"""The ``openai`` backend: any OpenAI-compatible chat-completions server, over plain HTTP.

Works with ``vllm serve``, ``wmgym serve`` and hosted APIs. Chats live on the
client; each step sends the whole chat (servers with prefix caching, like
vLLM's and ours, only compute the new tokens). ``step_batch`` sends its
requests concurrently so a batching server can step them together.

Confidence is the mean of the per-token log-probs the server returns when
asked (``logprobs=true``); a server that returns none gives NaN.
"""

from __future__ import annotations

import json
import math
import os
import time
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
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1``.
        api_key: bearer token (default: ``$OPENAI_API_KEY``, else ``"EMPTY"`` as local servers expect).
        timeout: seconds to wait for one response.
        max_concurrency: parallel requests in ``step_batch``.
        retries: extra attempts after a connection error or a 5xx answer.
        **generation: :class:`GenerationSettings` fields (``max_context_tokens`` is the server's business).
    """

    def __init__(self, model: str, *, base_url: str = "http://127.0.0.1:8000/v1", api_key: str | None = None,
                 timeout: float = 300.0, max_concurrency: int = 16, retries: int = 2, **generation: Any):
        self.model = str(model)
        self.base_url = base_url.rstrip("/")
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
            raise RuntimeError(f"{self.base_url} answered without a chat completion: {str(reply)[:300]}") from None
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

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST JSON to ``base_url + path`` and return the JSON answer (retrying transient failures)."""
        data = json.dumps(body).encode("utf-8")
        url = self.base_url + path
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(url, data=data, method="POST", headers={
                "Content-Type": "application/json", "Authorization": f"Bearer {self.api_key}"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as e:
                detail = e.read().decode("utf-8", "replace")[:500]
                if e.code < 500 or attempt == self.retries:
                    raise RuntimeError(f"{url} answered HTTP {e.code}: {detail}") from None
            except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                if attempt == self.retries:
                    raise ConnectionError(f"cannot reach the world-model server at {url}: {e}") from None
            time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")
