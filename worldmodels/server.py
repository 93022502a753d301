"""``wmgym serve``: an OpenAI-compatible chat-completions server over the hf backend.

Endpoints: ``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /health``.
It runs on the standard library's ``ThreadingHTTPServer``; one worker thread
owns the model and serves requests in batches: whatever has arrived while the
previous batch ran is stepped together (``step_batch``), grouped by
generation settings.

Requests must follow the world-model chat protocol: a system message (the
``init_context``), then alternating user/assistant turns, ending with a user
turn. The server keeps the KV caches of recent chats (``max_episodes``); a
request that extends a cached chat (the next step of an episode, as an agent
loop sends it) reuses that cache and costs only its new tokens.

Supported fields: ``messages``, ``model``, ``max_tokens`` /
``max_completion_tokens``, ``temperature``, ``top_p``, ``top_k``, ``seed``,
``logprobs``. ``n`` must be 1 and ``stream`` false; ``stop`` is refused.
Other fields are ignored. With ``logprobs``, the response lists every
generated token, the end-of-turn token included, so a client's mean log-prob
equals the hf backend's confidence.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import queue
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from wmgym.worldmodels.hf import HFWorldModel
from wmgym.worldmodels.settings import GenerationSettings


class RequestError(ValueError):
    """A bad request: answered with an OpenAI-style error body."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def parse_chat(messages: Any) -> tuple[str, list[tuple[str, str]], str]:
    """Split protocol messages into ``(init_context, history, action)``."""
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str) or "role" not in m:
            raise RequestError(f"messages[{i}] must be an object with a 'role' and a string 'content'")
    if messages[0]["role"] != "system":
        raise RequestError("the first message must be the system message (the world model's init_context)")
    rest = messages[1:]
    roles = [m["role"] for m in rest]
    expected = ["user" if i % 2 == 0 else "assistant" for i in range(len(rest))]
    if roles != expected or not rest or roles[-1] != "user":
        raise RequestError(f"after the system message, turns must alternate user/assistant and end with a user "
                           f"turn; got roles {roles}")
    history = [(rest[i]["content"], rest[i + 1]["content"]) for i in range(0, len(rest) - 1, 2)]
    return messages[0]["content"], history, rest[-1]["content"]


def request_settings(body: dict[str, Any], defaults: GenerationSettings) -> GenerationSettings:
    """Generation settings of one request (unset fields keep the server's defaults)."""
    if body.get("n", 1) != 1:
        raise RequestError(f"only n=1 is supported, got n={body['n']!r}")
    if body.get("stream"):
        raise RequestError("streaming is not supported; send stream=false")
    if body.get("stop"):
        raise RequestError("'stop' is not supported; turns end at the model's end-of-turn token")
    try:
        return defaults.replace(max_new_tokens=body.get("max_completion_tokens", body.get("max_tokens")),
                                temperature=body.get("temperature"), top_p=body.get("top_p"),
                                top_k=body.get("top_k"))
    except (TypeError, ValueError) as e:
        raise RequestError(str(e)) from None


class _Job:
    def __init__(self, body: dict[str, Any], chat: tuple[str, list[tuple[str, str]], str],
                 settings: GenerationSettings):
        self.body, self.chat, self.settings = body, chat, settings
        self.done = threading.Event()
        self.result: dict[str, Any] | None = None
        self.error: Exception | None = None


class WorldModelServer:
    """The model side of the server: episode reuse and batched generation (see module docstring)."""

    def __init__(self, wm: HFWorldModel, model_name: str, max_episodes: int = 64, max_batch: int = 16):
        self.wm, self.model_name = wm, model_name
        self.max_episodes, self.max_batch = max_episodes, max_batch
        self._episodes: collections.OrderedDict[int, str] = collections.OrderedDict()  # handle -> init_context
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="wmgym-serve-worker", daemon=True)
        self._worker.start()

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        """Answer one chat-completions request (blocks until generated)."""
        if body.get("model") not in (None, self.model_name):
            raise RequestError(f"model {body['model']!r} is not served here; served: [{self.model_name!r}]", 404)
        job = _Job(body, parse_chat(body.get("messages")), request_settings(body, self.wm.settings))
        self._queue.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result

    def close(self) -> None:
        self._queue.put(None)

    def _handle_for(self, context: str, history: list[tuple[str, str]], busy: set[int]) -> int:
        """A cached episode this chat extends (its cache stays useful), else a new one."""
        best, best_len = None, -1
        for handle, ctx in self._episodes.items():
            if ctx != context or handle in busy:
                continue
            had = self.wm.history(handle)
            if len(had) <= len(history) and history[:len(had)] == had and len(had) > best_len:
                best, best_len = handle, len(had)
        if best is None:
            best = self.wm.start(context)
            self._episodes[best] = context
            while len(self._episodes) > self.max_episodes:
                old, _ = self._episodes.popitem(last=False)
                self.wm.end(old)
        self._episodes.move_to_end(best)
        self.wm.set_history(best, history)
        return best

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            jobs = [job]
            while len(jobs) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                jobs.append(nxt)
            try:
                groups: dict[tuple, list[_Job]] = collections.defaultdict(list)
                for j in jobs:
                    groups[dataclasses.astuple(j.settings)].append(j)
                for group in groups.values():
                    self._generate(group, group[0].settings)
            except Exception as e:  # noqa: BLE001 - the worker must outlive any one batch
                for j in jobs:
                    if not j.done.is_set():
                        j.error = e
                        j.done.set()

    def _generate(self, jobs: list[_Job], settings: GenerationSettings) -> None:
        try:
            with self.wm.lock:
                busy: set[int] = set()
                handles = []
                for job in jobs:
                    handles.append(self._handle_for(job.chat[0], job.chat[1], busy))
                    busy.add(handles[-1])
                    if job.body.get("seed") is not None:
                        self.wm.set_seed(handles[-1], int(job.body["seed"]))
                steps = self.wm.step_batch(handles, [job.chat[2] for job in jobs], settings=settings)
        except Exception as e:  # answer every waiting request, never leave one hanging
            for job in jobs:
                job.error = e
                job.done.set()
            return
        for job, step in zip(jobs, steps):
            job.result = self._response(job.body, step)
            job.done.set()

    def _response(self, body: dict[str, Any], step: Any) -> dict[str, Any]:
        finish = "length" if step.parse_error and "max_new_tokens" in step.parse_error else "stop"
        logprobs = None
        if body.get("logprobs"):
            tokens = step.extra["token_ids"]
            logprobs = {"content": [
                {"token": (piece := self.wm.tokenizer.decode([t])), "logprob": lp,
                 "bytes": list(piece.encode("utf-8")), "top_logprobs": []}
                for t, lp in zip(tokens, step.extra["token_logprobs"])]}
        prompt, completion = step.extra["prompt_tokens"], step.extra["completion_tokens"]
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": self.model_name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": step.text},
                         "finish_reason": finish, "logprobs": logprobs}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }


def _make_handler(server: WorldModelServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet: one line per request is noise here
            pass

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str) -> None:
            kind = "invalid_request_error" if status < 500 else "server_error"
            self._send(status, {"error": {"message": message, "type": kind, "code": status}})

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [
                    {"id": server.model_name, "object": "model", "created": 0, "owned_by": "wmgym"}]})
            elif self.path.rstrip("/") == "/health":
                self._send(200, {"status": "ok"})
            else:
                self._error(404, f"no route {self.path!r}; routes: /v1/chat/completions, /v1/models, /health")

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._error(404, f"no route {self.path!r}; POST /v1/chat/completions")
                return
            try:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"null")
                if not isinstance(body, dict):
                    raise RequestError("the request body must be a JSON object")
                self._send(200, server.submit(body))
            except json.JSONDecodeError as e:
                self._error(400, f"the request body is not JSON: {e}")
            except RequestError as e:
                self._error(e.status, str(e))
            except Exception as e:  # noqa: BLE001 - the client gets a 500 with the reason
                self._error(500, f"{type(e).__name__}: {e}")

    return Handler


def make_server(wm: HFWorldModel, model_name: str, host: str = "127.0.0.1", port: int = 8000,
                **options: Any) -> ThreadingHTTPServer:
    """An HTTP server (not yet serving) for ``wm``; ``port=0`` picks a free port (``server.server_port``)."""
    backend = WorldModelServer(wm, model_name, **options)
    httpd = ThreadingHTTPServer((host, port), _make_handler(backend))
    httpd.daemon_threads = True
    httpd.wm_backend = backend  # type: ignore[attr-defined]
    return httpd


def serve_in_thread(httpd: ThreadingHTTPServer) -> threading.Thread:
    """Serve ``httpd`` from a daemon thread (tests, notebooks); stop with ``httpd.shutdown()``."""
    thread = threading.Thread(target=httpd.serve_forever, name="wmgym-serve", daemon=True)
    thread.start()
    return thread
