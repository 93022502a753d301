"""StableToolBench-v0: play an API server. Given an API's documentation, answer one request with
``{"error": "", "response": ...}``, as StableToolBench's virtual API server does (Word2World's fifth env).

Description:
    Each game is one (API, request) pair, one request per episode as in Word2World. ``init_context`` holds the
    API's documentation in StableToolBench's layout (``category_name``, ``tool_name``, ``tool_description``,
    ``api_name``, ``api_description``, ``required_parameters`` and ``optional_parameters`` with name, type and
    description). The agent sends the request; the observation is the answer.

Data:
    By default real tools answer: tau2-bench's retail, airline and telecom tools (documented from their
    signatures and docstrings: tau2's JSON schemas) and bfcl-eval's stateful APIs (file system, messages,
    posts, tickets, trading, travel, vehicle, math; documented by BFCL's function docs,
    :mod:`~wmgym.envs.stabletoolbench.bfcl`). Requests are the gold calls of tau2's tasks and of BFCL's
    ``multi_turn_base`` entries (``expert``) and two noisy variants of each (``drop``: a required argument left
    out; ``mistype``: an argument of the wrong type), each answered by the real tool in the state the earlier
    gold calls leave. tau2's task splits and one BFCL entry in five give the test split. With ``data_dir=PATH`` (or ``$STABLETOOLBENCH_DATA``) the official files are served instead:
    ``PATH/tools/<category>/<tool>.json`` (ToolBench's tool documents) and
    ``PATH/tool_response_cache/<category>/<tool>_for_<category>/<api>.json`` (cached real answers keyed by
    ``str(tool_input)``); every cached request is a game, about one in ten in the test split (by a hash of it).

Actions:
    The request as StableToolBench's server takes it: ``{"category": ..., "tool_name": ..., "api_name": ...,
    "tool_input": {...}}``. Not JSON or JSON of another shape: an ``Error: ...`` observation, ``action_valid``
    False, the episode goes on. A well-formed request is answered and ends the episode.

Observations:
    ``{"error": "...", "response": "..."}`` (JSON): the tool's response with an empty error, or the tool's own
    error text with an empty response.

Rewards:
    1 when the request is answered without error, else 0 (``won`` likewise).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any, ClassVar

from wmgym.envs.base import EngineReset, EngineStep, TextEnv, format_init_context

#: The noisy variants of each gold call, after the call itself.
VARIANTS = ("expert", "drop", "mistype")
TASK = ("Play the API server: answer each request to the API documented here with one JSON object "
        '{"error": "", "response": ...}, as the real API would (an error message and an empty response when the '
        "request is invalid).")
_JSON_TYPES = {"string": "STRING", "integer": "NUMBER", "number": "NUMBER", "boolean": "BOOLEAN",
               "array": "ARRAY", "object": "OBJECT"}


def answer(error: str, response: Any) -> str:
    return json.dumps({"error": error, "response": response})


def tau2_doc(domain: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A tau2 tool's JSON schema as a StableToolBench API document."""
    params = schema.get("parameters", {})
    props = params.get("properties", {})
    required = set(params.get("required", []))

    def param(name: str) -> dict[str, Any]:
        spec = props[name]
        kind = spec.get("type") or (spec.get("anyOf") or [{}])[0].get("type", "object")
        return {"name": name, "type": _JSON_TYPES.get(kind, str(kind).upper()),
                "description": spec.get("description", "")}

    return {"category_name": f"tau2_{domain}", "tool_name": f"tau2_{domain}",
            "tool_description": f"tau2-bench's {domain} customer-service tools", "api_name": schema["name"],
            "api_description": schema.get("description", ""),
            "required_parameters": [param(n) for n in props if n in required],
            "optional_parameters": [param(n) for n in props if n not in required]}


def variant_input(call: dict[str, Any], doc: dict[str, Any], variant: str) -> dict[str, Any]:
    """The tool input of ``call`` as ``variant`` makes it (see :data:`VARIANTS`)."""
    args = dict(call["arguments"])
    if variant == "drop":
        required = [p["name"] for p in doc["required_parameters"] if p["name"] in args]
        if required:
            args.pop(required[0])
        else:
            args["unexpected"] = 1
    elif variant == "mistype":
        if args:
            key = sorted(args)[0]
            args[key] = 12345 if isinstance(args[key], str) else "12345"
        else:
            args["unexpected"] = "x"
    return args


@functools.lru_cache(maxsize=None)
def real_games() -> dict[str, list[tuple[str, Any, int, str]]]:
    """``(source, where, gold call index, variant)`` per split: tau2's three domains (``where``: ``(domain, task
    index in its split)``), then bfcl's multi-turn entries (``where``: the entry's index)."""
    from wmgym.envs.stabletoolbench import bfcl
    from wmgym.envs.tau2 import engine

    games: dict[str, list[tuple[str, Any, int, str]]] = {"train": [], "test": []}
    for domain in engine.DOMAINS:
        data = engine.load_domain(domain)
        for split in games:
            for index, task in enumerate(data.tasks[split]):
                for k in range(len(engine.gold_calls(task))):
                    games[split] += [("tau2", (domain, index), k, v) for v in VARIANTS]
    for split, calls in bfcl.games().items():
        games[split] += [("bfcl", entry, k, v) for entry, k in calls for v in VARIANTS]
    return games


@functools.lru_cache(maxsize=None)
def official_games(folder: str) -> dict[str, list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]]:
    """``(doc, tool input, cached answer)`` per split from StableToolBench's ``tools`` and
    ``tool_response_cache`` folders."""
    root = Path(folder)
    docs: dict[tuple[str, str, str], dict[str, Any]] = {}
    for path in sorted((root / "tools").glob("*/*.json")):
        tool = json.loads(path.read_text())
        category = path.parent.name
        for api in tool.get("api_list", []):
            docs[(category, path.stem, api["name"])] = {
                "category_name": category, "tool_name": tool.get("tool_name", path.stem),
                "tool_description": tool.get("tool_description", ""), "api_name": api["name"],
                "api_description": api.get("description", ""),
                "required_parameters": api.get("required_parameters", []),
                "optional_parameters": api.get("optional_parameters", [])}
    games: dict[str, list] = {"train": [], "test": []}
    for path in sorted((root / "tool_response_cache").glob("*/*/*.json")):
        category, tool = path.parent.parent.name, path.parent.name.split(f"_for_{path.parent.parent.name}")[0]
        doc = docs.get((category, tool, path.stem))
        if doc is None:
            continue
        for key, cached in json.loads(path.read_text()).items():
            try:
                tool_input = ast.literal_eval(key)  # the server keys its cache by str(tool_input)
            except (ValueError, SyntaxError):
                continue
            if not isinstance(tool_input, dict):
                continue
            digest = int(hashlib.md5(f"{category}/{tool}/{path.stem}/{key}".encode()).hexdigest(), 16)
            games["test" if digest % 10 == 0 else "train"].append((doc, tool_input, cached))
    if not games["train"] and not games["test"]:
        raise ValueError(f"no StableToolBench games under {root}: expected tools/<category>/<tool>.json and "
                         "tool_response_cache/<category>/<tool>_for_<category>/<api>.json")
    return games


def parse_request(action: str) -> dict[str, Any] | str:
    """The request as a dict, or the error text for an action that is not one."""
    try:
        value = json.loads(action)
    except json.JSONDecodeError as e:
        return f"Error: the request is not valid JSON ({e.msg}, at character {e.pos})"
    keys = {"category", "tool_name", "api_name", "tool_input"}
    if not isinstance(value, dict) or not {"api_name", "tool_input"} <= set(value) or set(value) - keys:
        return f"Error: the request must be one JSON object with keys {sorted(keys)}"
    if not isinstance(value["tool_input"], dict):
        return "Error: tool_input must be a JSON object"
    return value


class StableToolBenchEnv(TextEnv):
    """StableToolBench's API-server task (see module docstring).

    Args:
        split: ``"train"`` or ``"test"``.
        render_mode: ``"ansi"`` or ``"human"``.
        data_dir: StableToolBench's official folder (``tools`` + ``tool_response_cache``); default
            ``$STABLETOOLBENCH_DATA``, else tau2's real tools.
    """

    splits: ClassVar[tuple[str, ...]] = ("train", "test")
    invalid_action_text: ClassVar[str] = answer("Error: the request is empty or too long", "")
    max_action_length: ClassVar[int] = 4096
    scripted_agent: ClassVar[str | None] = "wmgym.agents.scripted.tau2:Tau2Agent"
    engine_benchmark: ClassVar[str | None] = "wmgym.benchmarks.engines.stabletoolbench:main"
    #: One request per episode: short chats (tiny tokenizer: median 438 tokens, max 997 on 60 expert and noisy
    #: episodes, docs/tool-envs.md), many of them; 2k holds each whole. Not tuned, not trained yet.
    default_twin: ClassVar[dict[str, Any] | None] = {
        "train": [("expert", 600), ("noisy-expert:0.5", 300)],
        "test": [("expert", 100)],
        "sft": {"preset": "tiny", "curriculum": 0.0, "max_steps": 800, "batch_tokens": 8192, "lr": 3e-3,
                "max_length": 2048, "eval_steps": 200, "save_steps": 200},
        "max_steps": 3,
    }
    context_version: ClassVar[int] = 1

    def __init__(self, split: str | None = None, render_mode: str | None = None,
                 data_dir: str | os.PathLike | None = None, format: str = "wmgym"):
        super().__init__(split=split, render_mode=render_mode, format=format)
        folder = data_dir or os.environ.get("STABLETOOLBENCH_DATA")
        self.data_dir = str(Path(folder).resolve()) if folder else None
        if self.data_dir is None:
            from wmgym.envs.tau2 import engine

            engine.load_domain("retail")  # the ImportError naming the install command, now rather than at reset

    def _games(self, split: str) -> list[Any]:
        return official_games(self.data_dir)[split] if self.data_dir else real_games()[split]

    def _num_games(self, split: str) -> int:
        return len(self._games(split))

    def _engine_reset(self, split: str, index: int) -> EngineReset:
        game = self._games(split)[index]
        if self.data_dir:
            doc, tool_input, cached = game
            self._answer = json.dumps(cached)
            variant = "cached"
        elif game[0] == "tau2":
            from wmgym.envs.tau2 import engine

            _, (domain, task_index), k, variant = game
            data = engine.load_domain(domain)
            task = data.tasks[split][task_index]
            call = engine.gold_calls(task)[k]
            doc = tau2_doc(domain, next(s for s in data.schemas if s["name"] == call["name"]))
            tool_input = variant_input(call, doc, variant)
            self._source = ("tau2", (domain, task), k)
        else:
            from wmgym.envs.stabletoolbench import bfcl

            _, entry, k, variant = game
            call = bfcl.gold_call(entry, k)
            doc = bfcl.doc(entry, call["name"])
            tool_input = variant_input(call, doc, variant)
            self._source = ("bfcl", entry, k)
        self._doc, self._tool_input = doc, tool_input
        self._request = self._render(tool_input)
        # The call's variants (the noisy policies' choices); a cached official request has no others.
        self._variants = sorted({self._request} | ({self._render(variant_input(call, doc, v)) for v in VARIANTS}
                                                   if not self.data_dir else set()))
        observation = f"API documentation:\n{json.dumps(doc)}\n\nSend one request to this API."
        context = format_init_context(TASK, [f"API documentation: {json.dumps(doc)}"], observation)
        return EngineReset(observation=observation, task=TASK, game_id=f"{split}/{index:05d}", init_context=context,
                           admissible_commands=self._variants, extra={"variant": variant, "api": doc["api_name"]})

    def _render(self, tool_input: dict[str, Any]) -> str:
        doc = self._doc
        return json.dumps({"category": doc["category_name"], "tool_name": doc["tool_name"],
                           "api_name": doc["api_name"], "tool_input": tool_input})

    def _serve(self, request: dict[str, Any]) -> str:
        """The real answer to ``request``: the cache's, or the real tool's (tau2's or bfcl's) in the state the earlier
        gold calls leave."""
        if self.data_dir:
            if request["api_name"] == self._doc["api_name"] and request["tool_input"] == self._tool_input:
                return self._answer
            return answer(f"Error: no cached response for this request to {request['api_name']!r}", "")
        source, where, k = self._source
        if source == "bfcl":
            from wmgym.envs.stabletoolbench import bfcl

            error, response = bfcl.serve(where, k, str(request["api_name"]), request["tool_input"])
            return answer(error, response)
        from wmgym.envs.tau2 import engine

        domain, task = where
        episode = engine.Episode(engine.load_domain(domain), task)
        for call in engine.gold_calls(task)[:k]:
            episode.call(call["name"], call["arguments"])
        response, error = episode.call(str(request["api_name"]), request["tool_input"])
        return answer(response, "") if error else answer("", response)

    def _engine_step(self, action: str) -> EngineStep:
        request = parse_request(action)
        if isinstance(request, str):
            return EngineStep(answer(request, ""), admissible_commands=self._variants, action_valid=False)
        observation = self._serve(request)
        ok = json.loads(observation).get("error", "x") == ""
        return EngineStep(observation, reward=float(ok), won=ok, lost=not ok, admissible_commands=self._variants,
                          action_valid=True, extra={"api": self._doc["api_name"]})

    def expert_action(self) -> str | None:
        """The game's request (the gold call, or its noisy variant)."""
        return None if self._done else self._request
