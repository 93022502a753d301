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
