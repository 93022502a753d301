"""Twin inference over several OpenAI-compatible endpoints: real ``wmgym serve`` servers on loopback,
round-robin, and one server killed mid-run (its requests go to the other, and the failure is reported)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from wmgym.worldmodels import load_world_model

CONTEXTS = ["Task: eat the apple\n- You are in the kitchen.", "You are in a hall.", "go"]
ACTIONS = ["open fridge", "go north", "take key from box", "inventory"]


def _start_server(model_dir) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "wmgym.cli", "serve", "--model", str(model_dir), "--port", "0",
                             "--max-new-tokens", "12"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = proc.stdout.readline()
    match = re.search(r"at (http://\S+/v1)", line)
    if not match:
        proc.kill()
        raise AssertionError(f"wmgym serve did not start: {line!r}")
    return proc, match.group(1)


@pytest.fixture
def two_servers(tiny_model_dir):
    procs = []
    try:
        for _ in range(2):
            procs.append(_start_server(tiny_model_dir))
        yield procs
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)


def test_round_robin_then_a_killed_server_is_retried_elsewhere_and_reported(two_servers, tiny_model_dir):
    (_, url_a), (proc_b, url_b) = two_servers
    remote = load_world_model(tiny_model_dir.name, backend="openai", base_url=[url_a, url_b], max_new_tokens=12,
                              retries=0)
    local = load_world_model(tiny_model_dir, max_new_tokens=12)
    rs, hs = [remote.start(c) for c in CONTEXTS], [local.start(c) for c in CONTEXTS]

    def step_all(t: int) -> None:
        for i, (r, h) in enumerate(zip(rs, hs)):
            action = ACTIONS[(t + i) % len(ACTIONS)]
            assert remote.step(r, action).text == local.step(h, action).text  # any server, the same answer

    step_all(0)
    step_all(1)
    served = dict(remote.requests_per_endpoint)
    assert served[url_a] == served[url_b] == 3  # six requests, round-robin
    assert remote.endpoint_failures == []

    os.kill(proc_b.pid, signal.SIGKILL)  # mid-run: the chats live on the client, server A can continue them
    proc_b.wait(timeout=30)
    with pytest.warns(RuntimeWarning, match=re.escape(url_b)):
        step_all(2)
    step_all(3)
    assert remote.requests_per_endpoint[url_b] == served[url_b]
    assert remote.requests_per_endpoint[url_a] == served[url_a] + 6
    # B failed once, then was set aside for the cooldown rather than tried before every request.
    assert [f["url"] for f in remote.endpoint_failures] == [url_b]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_all_endpoints_dead_names_each_of_them():
    urls = [f"http://127.0.0.1:{_free_port()}/v1" for _ in range(2)]
    wm = load_world_model("m", backend="openai", base_url=",".join(urls), retries=0, timeout=5)
    with pytest.raises(ConnectionError) as e, pytest.warns(RuntimeWarning, match="failed"):
        wm.step(wm.start("ctx"), "look")
    assert all(u in str(e.value) for u in urls)
    assert sorted(f["url"] for f in wm.endpoint_failures) == sorted(urls)


def test_wm_endpoint_flags_select_the_openai_backend():
    import argparse

    from wmgym.benchmarks.models import add_model_args, wm_settings

    p = argparse.ArgumentParser()
    add_model_args(p)
    backend, kw = wm_settings(p.parse_args(["--wm-endpoint", "http://a/v1", "--wm-endpoint", "http://b/v1",
                                            "--wm-arg", "max_new_tokens=8"]))
    assert backend == "openai" and kw == {"base_url": ["http://a/v1", "http://b/v1"], "max_new_tokens": 8}
    with pytest.raises(ValueError, match="--backend vllm"):
        wm_settings(p.parse_args(["--wm-endpoint", "http://a/v1", "--backend", "vllm"]))
    with pytest.raises(ValueError, match="not both"):
        wm_settings(p.parse_args(["--wm-endpoint", "http://a/v1", "--wm-arg", "base_url=http://b/v1"]))


@pytest.mark.slow
def test_bench_consistency_on_ray_over_two_servers_one_killed_mid_run(trained_textworld_model_dir, tmp_path,
                                                                      capsys):
    """``wmgym bench consistency --ray --wm-endpoint A --wm-endpoint B``: B dies mid-run; the rows are those
    of the local hf twin, and the results say B failed."""
    pytest.importorskip("ray")
    from wmgym.benchmarks import consistency
    from wmgym.worldmodels.hf import HFWorldModel
    from wmgym.worldmodels.server import make_server, serve_in_thread

    servers = []
    for _ in range(2):
        httpd = make_server(HFWorldModel(trained_textworld_model_dir, max_new_tokens=96), "tw", port=0)
        serve_in_thread(httpd)
        servers.append(httpd)
    urls = [f"http://127.0.0.1:{s.server_port}/v1" for s in servers]
    b = servers[1]

    def kill_b():  # once B has served a chat: shut it and close its socket, new connections are refused
        deadline = time.time() + 300
        while not b.wm_backend._episodes and time.time() < deadline:
            time.sleep(0.005)
        b.shutdown()
        b.server_close()

    args = ["--split", "train", "--game-list", "0,2", "--agents", "scripted,random", "--max-steps", "6",
            "--wm-arg", "max_new_tokens=96"]
    try:
        assert consistency.main([*args, "--model", str(trained_textworld_model_dir), "--out", str(tmp_path / "hf")]) == 0
        killer = threading.Thread(target=kill_b, daemon=True)
        killer.start()
        assert consistency.main([*args, "--model", "tw", "--wm-endpoint", urls[0], "--wm-endpoint", urls[1],
                                 "--ray", "--workers", "2", "--out", str(tmp_path / "ep")]) == 0
        killer.join(timeout=60)
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()
            s.wm_backend.close()
    hf, ep = (json.loads((tmp_path / d / "result.json").read_text())["results"] for d in ("hf", "ep"))
    for spec in ("scripted", "random"):
        assert ep["envs"]["TextWorld-v0"]["agents"][spec]["games"] == hf["envs"]["TextWorld-v0"]["agents"][spec]["games"]
    traffic = ep["wm_endpoints"]
    assert traffic["requests"][urls[0]] > 0 and traffic["requests"][urls[1]] > 0
    assert traffic["failures"][urls[1]] >= 1 and urls[0] not in traffic["failures"]
    assert f"warning: world-model endpoint {urls[1]} failed" in capsys.readouterr().err
