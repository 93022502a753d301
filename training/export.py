"""Export SFT data as a LLaMA-Factory dataset (ShareGPT JSON + ``dataset_info.json``).

``wmgym train export --data tw.jsonl alf.jsonl --mix mix3 --allow-missing --out lf_data``

Each episode becomes one record::

    {"system": init_context,
     "conversations": [{"from": "human", "value": action_1}, {"from": "gpt", "value": observation_1}, ...]}

and ``dataset_info.json`` (created, or updated keeping other entries) declares
it with ``formatting: sharegpt``, so ``dataset: <name>`` with
``dataset_dir: <out>`` trains on it in LLaMA-Factory. The messages are the
same chats :mod:`wmgym.training.data` trains on (LLaMA-Factory also puts the
loss on the ``gpt`` turns only), so both routes learn the same task.

``wmgym train export --format word2world`` writes Word2World's layout instead
(:func:`export_word2world`), so Word2World's LLaMA-Factory recipe runs on our
trajectories unchanged but for its ``dataset`` line: one file per env named as
Word2World names its data (``<env>_<split>[_with_env]_<N>.json``; ``_with_env``
where the system prompt carries the hidden environment description, as for
ALFWorld and SciWorld; ``N`` records), each record OpenAI-style messages
(``{"messages": [{"role": "system", ...}, {"role": "user", ...}, ...]}``, the
form Word2World's own scripts read), declared in ``dataset_info.json`` under
the file's stem. The episodes must have been collected with
``format="word2world"`` (their strings are then Word2World's).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from wmgym.worldmodels.protocol import Message

_ROLE_TO_SHAREGPT = {"user": "human", "assistant": "gpt"}
_SHAREGPT_TO_ROLE = {v: k for k, v in _ROLE_TO_SHAREGPT.items()}


def to_sharegpt(messages: list[Message]) -> dict:
    """One chat (system first, then user/assistant turns) as a ShareGPT record."""
    if not messages or messages[0]["role"] != "system":
        raise ValueError("a world-model chat starts with the system message (init_context)")
    convs = []
    for m in messages[1:]:
        if m["role"] not in _ROLE_TO_SHAREGPT:
            raise ValueError(f"unexpected role {m['role']!r} after the system message; valid: user, assistant")
        convs.append({"from": _ROLE_TO_SHAREGPT[m["role"]], "value": m["content"]})
    return {"system": messages[0]["content"], "conversations": convs}


def from_sharegpt(record: dict) -> list[Message]:
    """The chat of a ShareGPT record (inverse of :func:`to_sharegpt`)."""
    messages = [{"role": "system", "content": record.get("system", "")}]
    for turn in record["conversations"]:
        if turn["from"] not in _SHAREGPT_TO_ROLE:
            raise ValueError(f"unknown ShareGPT role {turn['from']!r}; valid: {sorted(_SHAREGPT_TO_ROLE)}")
        messages.append({"role": _SHAREGPT_TO_ROLE[turn["from"]], "content": turn["value"]})
    return messages


def dataset_info_entry(file_name: str) -> dict:
    """The ``dataset_info.json`` entry of a ShareGPT file written by :func:`export_llamafactory`."""
    return {
        "file_name": file_name,
        "formatting": "sharegpt",
        "columns": {"messages": "conversations", "system": "system"},
        "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"},
    }


def export_llamafactory(chats: list[list[Message]], out: str | os.PathLike, name: str = "wmgym_worldmodel") -> Path:
    """Write ``chats`` as ``<out>/<name>.json`` and register it in ``<out>/dataset_info.json``."""
    if not chats:
        raise ValueError("nothing to export: no episodes with steps")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data_file = out / f"{name}.json"
    tmp = data_file.with_suffix(".json.tmp")
    tmp.write_text(json.dumps([to_sharegpt(c) for c in chats], ensure_ascii=False, indent=1))
    os.replace(tmp, data_file)
    info_path = out / "dataset_info.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    info[name] = dataset_info_entry(data_file.name)
    info_path.write_text(json.dumps(info, indent=2, ensure_ascii=False))
    return data_file


def load_llamafactory(dataset_dir: str | os.PathLike, name: str = "wmgym_worldmodel") -> list[list[Message]]:
    """Read an exported dataset back through its ``dataset_info.json`` entry (as LLaMA-Factory would)."""
    dataset_dir = Path(dataset_dir)
    info = json.loads((dataset_dir / "dataset_info.json").read_text())
    if name not in info:
        raise ValueError(f"dataset {name!r} not in {dataset_dir / 'dataset_info.json'}; it has {sorted(info)}")
    entry = info[name]
    if entry.get("formatting") != "sharegpt":
        raise ValueError(f"dataset {name!r} is {entry.get('formatting')!r}, not sharegpt")
    records = json.loads((dataset_dir / entry["file_name"]).read_text())
    return [from_sharegpt(r) for r in records]


def word2world_record(messages: list[Message]) -> dict:
    """One chat as a Word2World data record (OpenAI-style ``messages``, system first)."""
    if not messages or messages[0]["role"] != "system":
        raise ValueError("a world-model chat starts with the system message (init_context)")
    bad = [m["role"] for m in messages[1:] if m["role"] not in _ROLE_TO_SHAREGPT]
    if bad:
        raise ValueError(f"unexpected role {bad[0]!r} after the system message; valid: user, assistant")
    return {"messages": [{"role": m["role"], "content": m["content"]} for m in messages]}


def word2world_dataset_info_entry(file_name: str) -> dict:
    """The ``dataset_info.json`` entry of a Word2World-layout file (LLaMA-Factory's OpenAI-messages form)."""
    return {
        "file_name": file_name,
        "formatting": "sharegpt",
        "columns": {"messages": "messages"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
                 "system_tag": "system"},
    }


def word2world_name(env_id: str, split: str, chats: list[list[Message]]) -> str:
    """Word2World's dataset name for ``chats`` of ``env_id``: ``alfworld_train_with_env_54006`` and the like."""
    from wmgym.envs.word2world import HIDDEN_HEADING

    env = env_id.split("/")[-1].removeprefix("WM-").split("-v")[0].lower()
    with_env = "_with_env" if chats and all(c[0]["content"].startswith(HIDDEN_HEADING) for c in chats) else ""
    return f"{env}_{split}{with_env}_{len(chats)}"


def export_word2world(chats_by_env: dict[tuple[str, str], list[list[Message]]], out: str | os.PathLike) -> list[Path]:
    """Write each ``(env id, split)``'s chats as one Word2World-layout file in ``out``, registered in
    ``out/dataset_info.json`` (other entries kept). Returns the files written."""
    chats_by_env = {key: chats for key, chats in chats_by_env.items() if chats}
    if not chats_by_env:
        raise ValueError("nothing to export: no episodes with steps")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    info_path = out / "dataset_info.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    written = []
    for (env_id, split), chats in sorted(chats_by_env.items()):
        name = word2world_name(env_id, split, chats)
        data_file = out / f"{name}.json"
        tmp = data_file.with_suffix(".json.tmp")
        tmp.write_text(json.dumps([word2world_record(c) for c in chats], ensure_ascii=False, indent=1))
        os.replace(tmp, data_file)
        info[name] = word2world_dataset_info_entry(data_file.name)
        written.append(data_file)
    info_path.write_text(json.dumps(info, indent=2, ensure_ascii=False))
    return written


def load_word2world(dataset_dir: str | os.PathLike, name: str) -> list[list[Message]]:
    """Read a Word2World-layout dataset back through its ``dataset_info.json`` entry."""
    dataset_dir = Path(dataset_dir)
    info = json.loads((dataset_dir / "dataset_info.json").read_text())
    if name not in info:
        raise ValueError(f"dataset {name!r} not in {dataset_dir / 'dataset_info.json'}; it has {sorted(info)}")
    records = json.loads((dataset_dir / info[name]["file_name"]).read_text())
    return [[{"role": m["role"], "content": m["content"]} for m in r["messages"]] for r in records]
