"""bfcl-eval's stateful Python APIs (file system, messaging, posting, tickets, trading, travel, vehicle, math) as
real tools for StableToolBench-v0.

The games are the gold calls of BFCL's ``multi_turn_base`` entries: each entry's classes start from its
``initial_config`` (``_load_scenario``, as BFCL's executor does), the gold calls before the one asked run first,
and the call is answered by the method itself. Gold calls are parsed with :mod:`ast` (literal arguments only)
and called as methods: nothing is ``eval``-ed. API documents come from BFCL's function docs (written from the
methods' signatures and docstrings). The ``bfcl-eval`` package is imported on first use.
"""

from __future__ import annotations

import ast
import copy
import functools
import importlib
import inspect
import json
from typing import Any

from wmgym.envs.tau2.engine import INSTALL

#: BFCL's multi-turn categories whose entries become games.
CATEGORY = "multi_turn_base"
#: One entry in five is held out (by its position in BFCL's file).
TEST_EVERY = 5


def _require(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"StableToolBench-v0's bfcl tools need {module!r} ({e}); install with: {INSTALL}") from e


def parse_call(text: str) -> tuple[str, list[Any], dict[str, Any]]:
    """``name(args, key=value)`` with literal arguments -> ``(name, args, kwargs)``; ``ValueError`` otherwise."""
    node = ast.parse(text.strip(), mode="eval").body
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise ValueError(f"not a plain call: {text!r}")
    return (node.func.id, [ast.literal_eval(a) for a in node.args],
            {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg})


@functools.lru_cache(maxsize=None)
def _data() -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], dict[str, str]]:
    """BFCL's entries with their gold calls, the function docs by name, and the class of each method."""
    from importlib import resources

    config = _require("bfcl_eval.constants.executable_backend_config")
    root = resources.files("bfcl_eval") / "data"
    entries = [json.loads(line) for line in (root / f"BFCL_v4_{CATEGORY}.json").read_text().splitlines() if line]
    answers = {a["id"]: a["ground_truth"] for a in
               (json.loads(line) for line in (root / "possible_answer" / f"BFCL_v4_{CATEGORY}.json").read_text()
                .splitlines() if line)}
    for entry in entries:
        entry["ground_truth"] = answers[entry["id"]]
    docs: dict[str, dict[str, Any]] = {}
    owner: dict[str, str] = {}
    for class_name, module_name in config.CLASS_FILE_PATH_MAPPING.items():
        if class_name not in {c for e in entries for c in e["involved_classes"]}:
            continue
        cls = getattr(_require(module_name), class_name)
        owner.update({name: class_name for name, _ in inspect.getmembers(cls, inspect.isfunction)
                      if not name.startswith("_")})
    for path in (root / "multi_turn_func_doc").iterdir():
        for line in path.read_text().splitlines():
            if line.strip():
                doc = json.loads(line)
                docs.setdefault(doc["name"], doc)
    return entries, docs, owner


@functools.lru_cache(maxsize=None)
def games() -> dict[str, list[tuple[int, int]]]:
    """``(entry index, gold call index over the entry's turns)`` per split."""
    entries, _, _ = _data()
    out: dict[str, list[tuple[int, int]]] = {"train": [], "test": []}
    for i, entry in enumerate(entries):
        calls = [c for turn in entry["ground_truth"] for c in turn]
        out["test" if i % TEST_EVERY == 0 else "train"] += [(i, k) for k in range(len(calls))]
    return out


def _class_of(entry: dict[str, Any], name: str) -> str | None:
    """The class among the entry's that has method ``name`` (method names repeat across BFCL's classes)."""
    config = _require("bfcl_eval.constants.executable_backend_config")
    for class_name in entry["involved_classes"]:
        cls = getattr(_require(config.CLASS_FILE_PATH_MAPPING[class_name]), class_name)
        if not name.startswith("_") and callable(getattr(cls, name, None)):
            return class_name
    return None


def gold_call(entry_index: int, k: int) -> dict[str, Any]:
    """The ``k``-th gold call of an entry as ``{"name", "arguments"}`` (positional arguments named)."""
    entries, _, owner = _data()
    text = [c for turn in entries[entry_index]["ground_truth"] for c in turn][k]
    name, args, kwargs = parse_call(text)
    class_name = _class_of(entries[entry_index], name)
    if args and class_name is not None:
        config = _require("bfcl_eval.constants.executable_backend_config")
        cls = getattr(_require(config.CLASS_FILE_PATH_MAPPING[class_name]), class_name)
        params = [p for p in inspect.signature(getattr(cls, name)).parameters if p != "self"]
        kwargs = {**dict(zip(params, args)), **kwargs}
    return {"name": name, "arguments": kwargs}


def doc(entry_index: int, name: str) -> dict[str, Any]:
    """A BFCL function doc as a StableToolBench API document (category ``bfcl``, tool: the class it belongs to)."""
    entries, docs, _ = _data()
    spec = docs[name]
    params = spec.get("parameters", {})
    props, required = params.get("properties", {}), set(params.get("required", []))

    def param(p: str) -> dict[str, Any]:
        return {"name": p, "type": str(props[p].get("type", "any")).upper(),
                "description": props[p].get("description", "")}

    tool = _class_of(entries[entry_index], name) or "bfcl"
    description = spec.get("description", "")
    return {"category_name": "bfcl", "tool_name": tool, "tool_description": description.split(" Tool description:")[0],
            "api_name": name, "api_description": description.split("Tool description: ")[-1],
            "required_parameters": [param(p) for p in props if p in required],
            "optional_parameters": [param(p) for p in props if p not in required]}


def serve(entry_index: int, k: int, name: str, arguments: dict[str, Any]) -> tuple[str, str]:
    """``(error, response)``: fresh instances of the entry's classes, its gold calls before ``k`` played, then
    ``name(**arguments)`` called on the class that has it."""
    entries, _, _ = _data()
    config = _require("bfcl_eval.constants.executable_backend_config")
    entry = entries[entry_index]
    instances = {}
    for class_name in entry["involved_classes"]:
        instance = getattr(_require(config.CLASS_FILE_PATH_MAPPING[class_name]), class_name)()
        if class_name not in config.STATELESS_CLASSES:
            instance._load_scenario(copy.deepcopy(entry["initial_config"].get(class_name, {})))
        instances[class_name] = instance

    def call(method: str, kwargs: dict[str, Any]) -> tuple[str, str]:
        instance = instances.get(_class_of(entry, method) or "")
        if instance is None:
            return f"Error: API {method!r} does not exist", ""
        try:
            result = getattr(instance, method)(**kwargs)
        except Exception as e:  # the API's own error, as BFCL's executor reports it
            return f"Error during execution: {e}", ""
        if isinstance(result, dict) and isinstance(result.get("error"), str):
            return result["error"], ""
        return "", result if isinstance(result, str) else json.dumps(result, default=str)

    for j in range(k):
        previous = gold_call(entry_index, j)
        call(previous["name"], previous["arguments"])
    return call(name, arguments)
