"""A ReAct agent over any OpenAI-compatible chat endpoint, or a local HF model.

``wmgym bench consistency --agents react --agent-url http://host:8000/v1 --agent-model NAME``
``wmgym bench consistency --agents react --agent-model /path/to/local/hf/model``

Each step the agent sends the task, the commands admissible at reset (as the
twin reports them too), and the latest turns of the episode, and asks for a
``Thought:`` line and an ``Action:`` line; the action is read from the last
``Action:`` line (or the first non-empty line when the model ignores the
format). Plain HTTP through ``urllib``: no client library needed. Greedy by
default (``temperature=0``); with sampling the episode seed goes with each
request, so real env and twin get the same draws.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
from typing import Any

SYSTEM_PROMPT = (
    "You are an agent playing a text-based game. Reach the goal in as few steps as possible.\n"
    "Answer every observation with exactly two lines:\n"
    "Thought: <one short sentence of reasoning>\n"
    "Action: <one game command>\n"
    "Commands look like the examples given; use the object names the game uses."
)
MAX_ACTION_CHARS = 200


def parse_action(reply: str) -> str:
    """The command in a ReAct reply: the last ``Action:`` line, else the first non-empty line."""
    matches = re.findall(r"(?im)^\s*action\s*:\s*(.+?)\s*$", reply)
    text = matches[-1] if matches else next((ln.strip() for ln in reply.splitlines() if ln.strip()), "")
    text = re.sub(r"^(?:thought\s*:.*)$", "", text, flags=re.I).strip()
    text = text.strip("`'\" ").lstrip("> ").rstrip(".").strip()
    return text[:MAX_ACTION_CHARS] or "look"


def chat_completion(url: str, model: str, messages: list[dict[str, str]], *, api_key: str | None = None,
                    temperature: float = 0.0, max_tokens: int = 128, seed: int | None = None, timeout: float = 120.0,
                    retries: int = 2) -> str:
    """POST ``{url}/chat/completions`` and return the first choice's text."""
    body: dict[str, Any] = {"model": model, "messages": messages, "temperature": temperature,
                            "max_tokens": max_tokens}
    if seed is not None and temperature > 0:
        body["seed"] = seed
    request = urllib.request.Request(
        url.rstrip("/") + "/chat/completions", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json",
                 "Authorization": f"Bearer {api_key or os.environ.get('OPENAI_API_KEY') or 'EMPTY'}"})
    for attempt in range(retries + 1):
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                data = json.loads(response.read().decode())
            return str(data["choices"][0]["message"]["content"] or "")
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")[:300]
            if e.code < 500 or attempt == retries:
                raise RuntimeError(f"agent endpoint {url} answered HTTP {e.code}: {detail}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            if attempt == retries:
                raise RuntimeError(f"agent endpoint {url} unreachable: {e}") from None
        time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


class _LocalChat:
    """Greedy (or sampled) chat replies from a local HF causal LM with a chat template."""

    def __init__(self, path: str, max_tokens: int, temperature: float):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path)
        if self.tokenizer.chat_template is None:
            raise ValueError(f"local agent model {path} has no chat template; use an instruct/chat model")
        self.model = AutoModelForCausalLM.from_pretrained(path, use_safetensors=True, dtype=torch.float32)
        self.model.eval()
        self.max_tokens, self.temperature = max_tokens, temperature

    def __call__(self, messages: list[dict[str, str]], seed: int | None) -> str:
        import torch

        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                 return_dict=True)
        kwargs: dict[str, Any] = {"max_new_tokens": self.max_tokens, "do_sample": self.temperature > 0,
                                  "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id}
        if self.temperature > 0:
            kwargs["temperature"] = self.temperature
            torch.manual_seed(seed or 0)
        with torch.no_grad():
            out = self.model.generate(**ids, **kwargs)
        return self.tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)


class ReActAgent:
    """ReAct over an OpenAI-compatible endpoint (``url``) or a local HF model directory (``model`` alone).

    Args:
        model: served model name (with ``url``) or local model directory.
        url: API root such as ``http://127.0.0.1:8000/v1``; ``None`` runs ``model`` locally.
        api_key: bearer token (default ``$OPENAI_API_KEY`` or ``EMPTY``).
        temperature: 0 decodes greedily.
        max_tokens: reply length cap.
        history: episode turns (action + observation) kept in the prompt.
        max_commands: admissible commands listed as examples.
    """

    name = "react"
    privileged = False

    def __init__(self, model: str | None = None, url: str | None = None, api_key: str | None = None,
                 temperature: float = 0.0, max_tokens: int = 128, history: int = 8, max_commands: int = 40,
                 timeout: float = 120.0):
        if not model:
            raise ValueError("the react agent needs --agent-model: a served model name (with --agent-url) or a "
                             "local HF model directory")
        if history < 0 or max_tokens < 1:
            raise ValueError(f"history must be >= 0 and max_tokens >= 1, got {history}, {max_tokens}")
        if url is None and not os.path.isdir(model):
            raise ValueError(f"--agent-model {model!r} is not a local directory; give --agent-url for a served model")
        self.model, self.url, self.api_key = model, url, api_key
        self.temperature, self.max_tokens, self.history_len = float(temperature), int(max_tokens), int(history)
        self.max_commands, self.timeout = int(max_commands), float(timeout)
        self._local = None if url else _LocalChat(model, self.max_tokens, self.temperature)
        self.turns: list[tuple[str, str]] = []
        self.seed = 0
        self.replies: list[str] = []
        self.task, self.commands, self.first = "", [], ""
        self._pending: str | None = None

    def reset(self, observation: str, info: dict[str, Any], seed: int | None, env: Any = None) -> None:
        self.task = info.get("task", "")
        self.commands = list(info.get("admissible_commands") or [])[: self.max_commands]
        self.first = observation
        self.turns, self.replies, self.seed = [], [], seed or 0
        self._pending: str | None = None

    def messages(self) -> list[dict[str, str]]:
        """The prompt for the next action (the current observation is the last turn's)."""
        lines = [f"Task: {self.task}"] if self.task else []
        if self.commands:
            lines.append("Example commands: " + "; ".join(self.commands))
        lines += ["", "Start:", self.first]
        recent = self.turns[-self.history_len:] if self.history_len else []
        if len(self.turns) > len(recent):
            lines.append(f"(... {len(self.turns) - len(recent)} earlier steps omitted ...)")
        for action, obs in recent:  # the last one holds the current observation
            lines += [f"> {action}", obs]
        lines += ["", "What next?"]
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n".join(lines).strip()}]

    def act(self, observation: str, info: dict[str, Any]) -> str:
        if self._pending is not None:
            self.turns.append((self._pending, observation))
        msgs = self.messages()
        step_seed = self.seed * 1000 + len(self.turns)
        if self._local is not None:
            reply = self._local(msgs, step_seed)
        else:
            reply = chat_completion(self.url, self.model, msgs, api_key=self.api_key, temperature=self.temperature,
                                    max_tokens=self.max_tokens, seed=step_seed, timeout=self.timeout)
        self.replies.append(reply)
        self._pending = parse_action(reply)
        return self._pending
