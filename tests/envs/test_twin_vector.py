"""gym.make_vec("WM-<Env>-v0"): one batched generation per vector step, each row playing as the single twin.

The API cases use the echo fake (rows are told apart by their actions); the equality case uses the tiny model
trained on real TextWorld episodes, whose greedy text the batch must reproduce row for row.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, VectorEnv

from wm_fakes import EchoRule, FakeWorldModel

from wmgym.envs.twin_vector import TwinVectorEnv

GAME = {"game": 0}  # a generated train game of TextWorld-v0 (the expert-episode fixtures use it too)


class CountingFake(FakeWorldModel):
    """The echo fake that records the size of every ``step_batch`` call."""

    def __init__(self):
        super().__init__(EchoRule())
        self.batches: list[int] = []

    def step_batch(self, handles, actions):
        self.batches.append(len(handles))
        return super().step_batch(handles, actions)

    def step(self, handle, action):
        if not self.batches or self.batches[-1] == 0:
            raise AssertionError("the vector env must not step rows one by one")
        return super().step(handle, action)


def _vec(n: int, wm, **kwargs) -> VectorEnv:
    return gym.make_vec("WM-TextWorld-v0", num_envs=n, model=wm, **kwargs)


def test_make_vec_uses_the_batched_entry_point():
    wm = CountingFake()
    vec = _vec(3, wm)
    assert isinstance(vec, TwinVectorEnv) and isinstance(vec, VectorEnv)
    assert vec.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert vec.max_episode_steps == gym.spec("WM-TextWorld-v0").max_episode_steps
    assert all(env.world_model is wm for env in vec.envs)
    obs, infos = vec.reset(seed=5, options=GAME)
    assert isinstance(obs, tuple) and len(obs) == 3 and vec.observation_space.contains(obs)
    assert list(infos["game_id"]) == ["train/00000"] * 3 and infos["_game_id"].all()
    obs, rewards, terminated, truncated, infos = vec.step(("look", "inventory", "go north"))
    assert wm.batches == [3], "one step_batch for the three rows"
    assert obs == ("You look.", "You inventory.", "You go north.")
    assert vec.observation_space.contains(obs)
    assert rewards.dtype == np.float64 and terminated.dtype == np.bool_ and truncated.dtype == np.bool_
    assert list(infos["wm_confidence"]) == [-0.1] * 3
    obs, *_ = vec.step(np.array(["open fridge", "look", "wait"], dtype=object))  # what SyncVectorEnv takes too
    assert wm.batches == [3, 3] and obs[0] == "You open fridge."
    vec.close()
    assert all(env.handle is None for env in vec.envs)


def test_malformed_actions_skip_the_model_and_bad_types_change_nothing():
    wm = CountingFake()
    vec = _vec(2, wm)
    vec.reset(seed=0, options=GAME)
    obs, *_, infos = vec.step(("", "look"))
    assert wm.batches == [1] and obs[0] == "Nothing happens." and obs[1] == "You look."
    assert list(infos["action_valid"]) == [False, True]
    with pytest.raises(TypeError, match="action 1 must be a str"):
        vec.step(("look", 3))
    with pytest.raises(ValueError, match="num_envs=2"):
        vec.step(("look",))
    assert wm.batches == [1]
    with pytest.raises(ValueError, match="NextStep"):
        _vec(2, wm, autoreset_mode="sometimes")


@pytest.mark.parametrize("mode", list(AutoresetMode))
def test_truncation_and_autoreset_follow_gymnasium(mode):
    vec = _vec(2, FakeWorldModel(EchoRule()), max_episode_steps=2, autoreset_mode=mode)
    assert vec.metadata["autoreset_mode"] == mode
    first, _ = vec.reset(seed=1, options=GAME)
    vec.step(("look", "look"))
    obs, rewards, terminated, truncated, infos = vec.step(("look", "look"))
    assert truncated.all() and not terminated.any()
    if mode == AutoresetMode.SAME_STEP:
        assert list(infos["final_obs"]) == ["You look.", "You look."] and infos["_final_obs"].all()
        assert all(o != "You look." for o in obs) and infos["final_info"]["action_valid"].all()
        return
    assert obs == ("You look.", "You look.")
    if mode == AutoresetMode.DISABLED:
        with pytest.raises(gym.error.ResetNeeded, match="reset_mask"):
            vec.step(("look", "look"))
        obs, _ = vec.reset(options={"reset_mask": np.array([True, True]), **GAME})
        assert obs == first
        return
    obs, rewards, terminated, truncated, _ = vec.step(("look", "look"))  # NEXT_STEP: this step resets
    assert not (truncated.any() or terminated.any()) and rewards.tolist() == [0.0, 0.0]
    assert all("You look." != o for o in obs)


def test_rows_play_as_single_twins_with_a_trained_model(trained_textworld_model_dir, textworld_expert_episodes):
    """Same seeds and actions: each row's greedy text, reward and ending equal a single twin's, across a win and
    the autoreset after it."""
    model = str(trained_textworld_model_dir)
    plans = [[s.action for s in e.steps] for e in textworld_expert_episodes]  # 1 step and 5 steps
    plans = [plans[0] + ["look", "inventory"], plans[1][:3], ["inventory", "look", "go west"]]
    options = [{"game": 0}, {"game": 2}, {"game": 2}]
    steps = 3
    singles = [gym.make("WM-TextWorld-v0", model=model, max_new_tokens=48) for _ in plans]
    want_obs, want = [], []
    for i, (env, plan) in enumerate(zip(singles, plans)):
        rows, done = [env.reset(seed=10 + i, options=options[i])[0]], False
        for t in range(steps):
            if done:  # Gymnasium's NEXT_STEP autoreset: the step after the end is a reset
                rows.append((env.reset()[0], 0.0, False, False))
                done = False
                continue
            obs, reward, terminated, truncated, _ = env.step(plan[t])
            rows.append((obs, reward, terminated, truncated))
            done = terminated or truncated
        want_obs.append(rows[0])
        want.append(rows[1:])
    assert want[0][0][2], "the trained twin should win game 0 with the expert's action, or the autoreset goes untested"

    vec = gym.make_vec("WM-TextWorld-v0", num_envs=len(plans), model=model, max_new_tokens=48)
    assert vec.envs[0].world_model is singles[0].unwrapped.world_model
    calls = []
    original = vec.world_model.step_batch
    vec.world_model.step_batch = lambda h, a, *r: calls.append(len(h)) or original(h, a, *r)
    try:
        obs = []
        for i in range(len(plans)):  # per-row options: reset each row alone with the reset mask
            mask = np.arange(len(plans)) == i
            o, _ = vec.reset(seed=[10 + j for j in range(len(plans))], options={"reset_mask": mask, **options[i]})
            obs.append(o[i])
        assert obs == want_obs
        for t in range(steps):
            o, r, term, trunc, _ = vec.step(tuple(p[t] for p in plans))
            got = [(o[i], r[i], term[i], trunc[i]) for i in range(len(plans))]
            assert got == [w[t] for w in want], f"step {t}"
    finally:
        del vec.world_model.step_batch
    assert calls == [3, 2, 3], "one batched generation per vector step, of every row that steps"
    assert len({w[1][0] for w in want}) > 1, "rows should say different things, or the test proves little"
    vec.close()
    for env in singles:
        env.close()
