"""LLaMA-Factory export: ShareGPT records + dataset_info.json that read back to the same chats."""

from __future__ import annotations

import json

import pytest

from wmgym.training.export import export_llamafactory, from_sharegpt, load_llamafactory, to_sharegpt
from wmgym.training.trajectories import TrajectoryWriter
from wmgym.worldmodels.protocol import episode_messages


def test_export_round_trips_through_dataset_info(tmp_path, textworld_expert_episodes):
    chats = [episode_messages(e) for e in textworld_expert_episodes]
    (tmp_path / "dataset_info.json").write_text(json.dumps({"other": {"file_name": "other.json"}}))
    path = export_llamafactory(chats, tmp_path, name="tw")
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert info["other"] == {"file_name": "other.json"}  # existing entries are kept
    assert info["tw"]["formatting"] == "sharegpt" and info["tw"]["file_name"] == path.name
    assert info["tw"]["columns"] == {"messages": "conversations", "system": "system"}
    records = json.loads(path.read_text())
    assert records[1]["system"] == textworld_expert_episodes[1].init_context
    assert [t["from"] for t in records[1]["conversations"]] == ["human", "gpt"] * len(textworld_expert_episodes[1].steps)
    assert records[1]["conversations"][-1]["value"].endswith("[SUCCESS]")
    assert load_llamafactory(tmp_path, "tw") == chats


def test_sharegpt_conversion_rejects_bad_chats():
    with pytest.raises(ValueError, match="system"):
        to_sharegpt([{"role": "user", "content": "look"}])
    with pytest.raises(ValueError, match="role"):
        to_sharegpt([{"role": "system", "content": "s"}, {"role": "tool", "content": "x"}])
    with pytest.raises(ValueError, match="human"):
        from_sharegpt({"system": "s", "conversations": [{"from": "robot", "value": "x"}]})


def test_export_command_with_a_mix(tmp_path, textworld_expert_episodes, capsys):
    from wmgym.cli import main

    data = tmp_path / "tw.jsonl"
    with TrajectoryWriter(data) as w:
        for ep in textworld_expert_episodes:
            w.write(ep)
    out = tmp_path / "lf"
    # A mix naming envs without data fails and names them ...
    assert main(["train", "export", "--data", str(data), "--out", str(out), "--mix", "mix3"]) == 2
    err = capsys.readouterr().err
    assert "ALFWorld-v0" in err and "SciWorld-v0" in err and "--allow-missing" in err
    # ... and with --allow-missing exports what there is.
    assert main(["train", "export", "--data", str(data), "--out", str(out), "--mix", "mix3", "--allow-missing"]) == 0
    assert "MISSING" in capsys.readouterr().out
    exported = sorted(json.dumps(c) for c in load_llamafactory(out))  # the mix shuffles episodes
    assert exported == sorted(json.dumps(episode_messages(e)) for e in textworld_expert_episodes)


def test_export_does_not_depend_on_the_order_of_the_file(tmp_path, textworld_expert_episodes):
    """Like sft, export reads the episodes in a canonical order: the same episodes in another file order (as a
    second collection writes them) give the same dataset, mixed or not."""
    from wmgym.cli import main

    exports = []
    for name, eps in (("a", textworld_expert_episodes), ("b", textworld_expert_episodes[::-1])):
        data = tmp_path / f"{name}.jsonl"
        with TrajectoryWriter(data) as w:
            for ep in eps:
                w.write(ep)
        for mix in ([], ["--mix", "mix3", "--allow-missing"]):
            out = tmp_path / f"lf-{name}-{len(mix)}"
            assert main(["train", "export", "--data", str(data), "--out", str(out), *mix]) == 0
            exports.append([json.dumps(c) for c in load_llamafactory(out)])
    assert len(exports[0]) == len(textworld_expert_episodes) >= 2
    assert exports[:2] == exports[2:]


# ---------------------------------------------------------------------------------- Word2World's layout
@pytest.fixture(scope="module")
def word2world_episodes(wmgym_home):
    """Expert episodes of TextWorld-v0 games 0 and 2 collected with format="word2world"."""
    import gymnasium as gym

    from wmgym.agents import make_agent
    from wmgym.training.collect import run_episode

    env = gym.make("TextWorld-v0", format="word2world")
    expert = make_agent("expert", "TextWorld-v0", privileged=True)
    episodes = [run_episode(env, expert, seed=g, options={"game": g}, env_id="TextWorld-v0", index=g) for g in (0, 2)]
    env.close()
    return episodes


def test_word2world_export_writes_word2worlds_layout(tmp_path, word2world_episodes, capsys):
    from wmgym.cli import main
    from wmgym.training.export import load_word2world

    assert all(ep.format == "word2world" for ep in word2world_episodes)  # collection records the env's format
    data = tmp_path / "tw.jsonl"
    with TrajectoryWriter(data) as w:
        for ep in word2world_episodes:
            w.write(ep)
    out = tmp_path / "llama_factory"
    assert main(["train", "export", "--data", str(data), "--out", str(out), "--format", "word2world"]) == 0
    assert "dataset: textworld_train_2" in capsys.readouterr().out
    info = json.loads((out / "dataset_info.json").read_text())
    assert info == {"textworld_train_2": {
        "file_name": "textworld_train_2.json", "formatting": "sharegpt", "columns": {"messages": "messages"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
                 "system_tag": "system"}}}
    records = json.loads((out / "textworld_train_2.json").read_text())
    ep = word2world_episodes[0]  # canonical order: game 0 first
    assert list(records[0]) == ["messages"]
    assert records[0]["messages"][0] == {"role": "system", "content": ep.init_context}
    # Word2World's TextWorld system prompt: the first observation alone, with AgentGym's action line.
    assert ep.init_context == ep.initial_observation and "\nAVAILABLE ACTIONS: " in ep.init_context
    assert records[0]["messages"][1] == {"role": "user", "content": ep.steps[0].action}  # the bare action
    assert records[0]["messages"][-1]["content"].endswith(" [SUCCESS]")
    assert load_word2world(out, "textworld_train_2") == [episode_messages(e) for e in word2world_episodes]


def test_export_refuses_mixed_or_wrong_formats(tmp_path, word2world_episodes, textworld_expert_episodes):
    from wmgym.cli import main

    mixed = tmp_path / "mixed.jsonl"
    with TrajectoryWriter(mixed) as w:
        w.write(word2world_episodes[0])
        w.write(textworld_expert_episodes[1])
    with pytest.raises(ValueError, match=r"mix formats \{'word2world': 1, 'wmgym': 1\}"):
        from wmgym.training.trajectories import check_formats, load_episodes

        check_formats(load_episodes(mixed))
    assert main(["train", "export", "--data", str(mixed), "--out", str(tmp_path / "a")]) == 2
    ours = tmp_path / "ours.jsonl"
    with TrajectoryWriter(ours) as w:
        w.write(textworld_expert_episodes[0])
    with pytest.raises(ValueError, match="collect them with format='word2world'"):
        check_formats(load_episodes(ours), "word2world")
    assert main(["train", "export", "--data", str(ours), "--out", str(tmp_path / "b"), "--format", "word2world"]) == 2
    assert not (tmp_path / "b").exists()



def test_sft_refuses_mixed_formats(tmp_path, word2world_episodes, textworld_expert_episodes):
    from wmgym.training.sft import SFTConfig
    from wmgym.training.sft_batches import load_data

    mixed = tmp_path / "mixed.jsonl"
    with TrajectoryWriter(mixed) as w:
        for ep in (word2world_episodes[0], textworld_expert_episodes[1]):
            w.write(ep)
    with pytest.raises(ValueError, match="mix formats"):
        load_data(SFTConfig(data=[str(mixed)], out=str(tmp_path / "run")))


def test_collect_command_takes_the_format(tmp_path, wmgym_home):
    from wmgym.cli import main
    from wmgym.training.trajectories import load_episodes

    out = tmp_path / "tw.jsonl"
    assert main(["collect", "--env", "TextWorld-v0", "--episodes", "1", "--out", str(out), "--format", "word2world",
                 "--quiet"]) == 0
    (ep,) = load_episodes(out)
    assert ep.format == "word2world" and "\nAVAILABLE ACTIONS: " in ep.init_context
    # Episodes of the other format are not the ones a resume skips: this run collects its own.
    assert main(["collect", "--env", "TextWorld-v0", "--episodes", "1", "--out", str(out), "--quiet"]) == 0
    assert [e.format for e in load_episodes(out)] == ["word2world", "wmgym"]
