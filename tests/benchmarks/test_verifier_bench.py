"""``wmgym bench verifier`` end to end on WebShop-v0 with a tiny twin trained here, its counterfactual, and the
fidelity and consistency benchmarks on the same twin."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest

from wmgym.agents import make_agent, play
from wmgym.benchmarks import verifier

GAMES = [0, 40, 80, 120]


@pytest.fixture(scope="module")
def webshop_twin_dir(tmp_path_factory):
    """A tiny world model fitted (60 full-batch steps, seconds) to three expert WebShop test episodes."""
    from wmgym.training.collect import run_episode
    from wmgym.training.tiny import build_tiny_model, fit_tiny_model
    from wmgym.worldmodels.protocol import episode_messages

    env = gym.make("WebShop-v0", split="test")
    expert = make_agent("expert", "WebShop-v0", privileged=True)
    episodes = [run_episode(env, expert, seed=g, options={"game": g}, env_id="WebShop-v0", index=g)
                for g in GAMES[:3]]
    env.close()
    chats = [episode_messages(e) for e in episodes]
    path = build_tiny_model(tmp_path_factory.mktemp("ws-wm"), [m["content"] for c in chats for m in c],
                            vocab_size=1500, hidden_size=64, intermediate_size=128)
    losses = fit_tiny_model(path, chats, steps=60, lr=1e-2)
    assert losses[-1] < 0.5 * losses[0]
    return str(path)


def test_irreversible_actions_are_an_env_declaration():
    is_buy = verifier.irreversible_predicate("WebShop-v0")
    assert is_buy("click[buy now]") and is_buy(" Click[Buy Now] ") and not is_buy("click[back to search]")
    with pytest.raises(ValueError, match="TextWorld-v0 declares no irreversible_actions.*WebShop-v0"):
        verifier.irreversible_predicate("TextWorld-v0")
    with pytest.raises(ValueError, match="budgets must be ints >= 0"):
        verifier.VerifierConfig(budgets=[0, -1])


def test_counterfactual_replays_the_real_episode_in_a_copy():
    env, shadow = gym.make("WebShop-v0", split="test"), gym.make("WebShop-v0", split="test")
    obs, _ = env.reset(seed=5, options={"game": 5})
    actions = []
    while (action := env.unwrapped.expert_action()) != "click[buy now]":
        obs, *_ = env.step(action)
        actions.append(action)
    assert verifier.counterfactual(shadow, 5, {"game": 5}, actions, "click[buy now]", obs) == (1.0, True)
    # Without the option clicks (the goal of game 5 names two) the same purchase misses them: reward < 1.
    assert len(actions) == 4 and actions[2].startswith("click[")  # search, product, two options
    env.reset(seed=5, options={"game": 5})
    for a in actions[:2]:
        obs, *_ = env.step(a)
    reward, won = verifier.counterfactual(shadow, 5, {"game": 5}, actions[:2], "click[buy now]", obs)
    assert reward < 1.0 and not won
    env.close()
    shadow.close()


class OracleRule:
    """A twin that knows the real outcome: it replays the chat's actions in a real env of the chat's game (found by
    its instruction) and answers with the real page, marked as a success when the real env is won."""

    def __init__(self, games: list[int]):
        self.env = gym.make("WebShop-v0", split="test")
        goals = self.env.unwrapped.shop.splits["test"]
        self.games = {goals[k]["instruction_text"]: k for k in games}

    def __call__(self, context: str, history: list[tuple[str, str]], action: str) -> tuple[str, float]:
        from wmgym.worldmodels.protocol import target_text

        game = next(k for text, k in self.games.items() if text in context)
        self.env.reset(seed=game, options={"game": game})
        for a, _ in history:
            self.env.step(a)
        obs, _, _, _, info = self.env.step(action)
        return target_text(obs, bool(info["won"])), -0.1


def test_an_oracle_twin_blocks_exactly_the_wrong_purchases(tmp_path):
    """With a twin that predicts every purchase right, each blocked buy would have lost and each verified one wins;
    budget 0 blocks nothing."""
    from wm_fakes import FakeWorldModel

    cfg = verifier.VerifierConfig(agents=["scripted", "scripted:0.5"], budgets=[0, 1, 10], game_list=GAMES + [9, 77])
    res = verifier.run(cfg, FakeWorldModel(OracleRule(cfg.game_list)), out=str(tmp_path / "oracle")).path
    agents = json.loads((res / "result.json").read_text())["results"]["agents"]
    blocked = 0
    for spec, per_budget in agents.items():
        assert per_budget["0"]["verifications"] == per_budget["0"]["blocked"] == 0
        for budget, r in per_budget.items():
            assert r["right_blocked"] == 0 and r["prevented"] == r["blocked"]
            for x in r["games"]:
                if x["verifications"] > x["blocked"]:  # a buy the twin let through: the oracle said it wins
                    assert x["won"], (spec, budget, x)
            blocked += r["blocked"]
        # A wrong purchase made without a verifier is prevented (at least once) with an unlimited budget.
        assert per_budget["10"]["prevented"] >= min(1, per_budget["0"]["wrong_real"])
        assert per_budget["10"]["wrong_real"] <= per_budget["0"]["wrong_real"]
    assert blocked > 0  # the games include wrong purchases (game 80: scripted buys the wrong lotion)


def test_verifier_benchmark_end_to_end(webshop_twin_dir, tmp_path):
    from wmgym.cli import main

    out = tmp_path / "ver"
    assert main(["bench", "verifier", "--model", webshop_twin_dir, "--game-list", ",".join(map(str, GAMES)),
                 "--budgets", "0,2", "--agents", "scripted,scripted:0.5", "--out", str(out),
                 "--wm-arg", "max_new_tokens=400"]) == 0
    for name in ("result.json", "report.md", "success_vs_budget_WebShop-v0.png"):
        assert (out / name).stat().st_size > 0, name
    data = json.loads((out / "result.json").read_text())
    res = data["results"]
    assert data["benchmark"] == "verifier" and res["irreversible_actions"] == ["click[buy now]"]
    assert data["metadata"]["context_versions"] == {"WebShop-v0": 1}
    real = gym.make("WebShop-v0", split="test")
    for spec, per_budget in res["agents"].items():
        assert sorted(per_budget, key=int) == ["0", "2"]
        for budget, r in per_budget.items():
            rows = r["games"]
            assert [x["game"] for x in rows] == GAMES and r["success"]["n"] == len(GAMES)
            assert r["success"]["wins"] == sum(x["won"] for x in rows)
            assert r["mean_reward"] == pytest.approx(sum(x["reward"] for x in rows) / len(rows))
            assert r["blocked"] == r["prevented"] + r["right_blocked"]
            assert r["verifications"] >= r["blocked"] and r["irreversible_real"] >= r["wrong_real"]
            assert all(x["verifications"] <= int(budget) for x in rows)
            assert r["wrong_real"] == sum(1 for x in rows if x["irreversible_real"] and not x["won"])
        # Budget 0 is the agent without a verifier: the same games, rewards and outcomes.
        zero = per_budget["0"]
        assert zero["verifications"] == zero["blocked"] == 0
        for x in zero["games"]:
            plain = play(real, make_agent(spec, "WebShop-v0"), seed=x["game"], options={"game": x["game"]})
            assert (plain["won"], plain["steps"], sum(plain["rewards"])) == (x["won"], x["steps"], x["reward"])
    real.close()
    report = (out / "report.md").read_text()
    assert "wrong prevented" in report and "![success_vs_budget_WebShop-v0.png]" in report


def test_fidelity_and_consistency_run_on_a_webshop_twin(webshop_twin_dir, tmp_path):
    from wmgym.cli import main

    assert main(["bench", "fidelity", "--env", "WebShop-v0", "--model", webshop_twin_dir, "--episodes", "3",
                 "--out", str(tmp_path / "fid")]) == 0
    fid = json.loads((tmp_path / "fid" / "result.json").read_text())["results"]
    assert json.dumps(fid).count("WebShop-v0") >= 1
    assert main(["bench", "consistency", "--env", "WebShop-v0", "--model", webshop_twin_dir, "--games", "3",
                 "--agents", "scripted", "--out", str(tmp_path / "cons"), "--wm-arg", "max_new_tokens=400"]) == 0
    cons = json.loads((tmp_path / "cons" / "result.json").read_text())["results"]["envs"]["WebShop-v0"]
    assert cons["games"] == 3 and cons["agents"]["scripted"]["real"]["n"] == 3
