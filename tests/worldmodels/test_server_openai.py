"""``wmgym serve`` on loopback, and the ``openai`` backend against it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from wmgym.worldmodels import load_world_model
from wmgym.worldmodels.hf import HFWorldModel
from wmgym.worldmodels.server import make_server, serve_in_thread

ACTIONS = ["open fridge", "go north", "take key from box", "inventory"]
CONTEXT = "Task: eat the apple\n- You are in the kitchen."


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    wm = HFWorldModel(tiny_model_dir, max_new_tokens=12)
    httpd = make_server(wm, "tiny", port=0)
    serve_in_thread(httpd)
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    httpd.wm_backend.close()


def _url(httpd, path=""):
    return f"http://127.0.0.1:{httpd.server_port}/v1{path}"


def _post(httpd, body):
    req = urllib.request.Request(_url(httpd, "/chat/completions"), data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_openai_backend_matches_hf_backend(server, tiny_model_dir):
    remote = load_world_model("tiny", backend="openai", base_url=_url(server), max_new_tokens=12)
    local = load_world_model(tiny_model_dir, max_new_tokens=12)
    r, h = remote.start(CONTEXT), local.start(CONTEXT)
    for i, action in enumerate(ACTIONS):
        if i == 2:  # teacher forcing and anchoring travel in the chat the client sends
            for wm, handle in ((remote, r), (local, h)):
                wm.observe(handle, "look", "You are in the kitchen.")
                wm.replace_last(handle, "The kitchen.")
        a, b = remote.step(r, action), local.step(h, action)
        assert a.text == b.text and a.parse_error == b.parse_error and a.success == b.success
        assert a.confidence == pytest.approx(b.confidence, abs=1e-4)
    # The server reused one cached episode for the whole growing chat.
    assert len(server.wm_backend._episodes) == 1


def test_openai_step_batch_is_served_in_batches(server, tiny_model_dir):
    remote = load_world_model("tiny", backend="openai", base_url=_url(server), max_new_tokens=12)
    local = load_world_model(tiny_model_dir, max_new_tokens=12)
    contexts = [CONTEXT, "You are in a hall.", "go"]
    rs, hs = [remote.start(c) for c in contexts], [local.start(c) for c in contexts]
    for t in range(2):
        actions = [ACTIONS[(t + i) % 4] for i in range(3)]
        got = remote.step_batch(rs, actions)
        want = [local.step(h, a) for h, a in zip(hs, actions)]
        assert [s.text for s in got] == [s.text for s in want]
    f = remote.fork(rs[0])
    assert remote.history(f) == remote.history(rs[0])


def test_response_shape_and_logprobs(server):
    status, body = _post(server, {"model": "tiny", "messages": [{"role": "system", "content": CONTEXT},
                                                                 {"role": "user", "content": "look"}],
                                  "max_tokens": 3, "logprobs": True})
    assert status == 200 and body["object"] == "chat.completion"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "length" and choice["message"]["role"] == "assistant"
    assert len(choice["logprobs"]["content"]) == body["usage"]["completion_tokens"] == 3
    with urllib.request.urlopen(_url(server, "/models"), timeout=10) as r:
        assert json.loads(r.read())["data"][0]["id"] == "tiny"


@pytest.mark.parametrize("body, status, message", [
    ({"messages": [{"role": "user", "content": "look"}]}, 400, "first message must be the system"),
    ({"messages": [{"role": "system", "content": "c"}, {"role": "assistant", "content": "x"}]}, 400, "alternate"),
    ({"messages": [{"role": "system", "content": "c"}, {"role": "user", "content": "x"}], "n": 2}, 400, "n=1"),
    ({"messages": [{"role": "system", "content": "c"}, {"role": "user", "content": "x"}], "stream": True}, 400,
     "streaming"),
    ({"messages": [{"role": "system", "content": "c"}, {"role": "user", "content": "x"}], "temperature": -2}, 400,
     "temperature"),
    ({"model": "gpt-9", "messages": []}, 404, "served: \\['tiny'\\]"),
])
def test_bad_requests_get_openai_style_errors(server, body, status, message):
    got, answer = _post(server, body)
    assert got == status and re.search(message, answer["error"]["message"])


def test_unreachable_server_is_a_clear_error():
    wm = load_world_model("tiny", backend="openai", base_url="http://127.0.0.1:9/v1", retries=0, timeout=5)
    with pytest.raises(ConnectionError, match="127.0.0.1:9"):
        wm.step(wm.start("ctx"), "look")


@pytest.mark.slow
def test_wmgym_serve_command(tiny_model_dir):
    """The console command serves on a real port until stopped."""
    proc = subprocess.Popen([sys.executable, "-m", "wmgym.cli", "serve", "--model", str(tiny_model_dir), "--port", "0",
                             "--max-new-tokens", "5"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = proc.stdout.readline()
        match = re.search(r"at (http://\S+/v1)", line)
        assert match, line
        wm = load_world_model(tiny_model_dir.name, backend="openai", base_url=match.group(1), max_new_tokens=4)
        step = wm.step(wm.start(CONTEXT), "look")
        assert step.extra["completion_tokens"] <= 4 and step.confidence < 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
