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
