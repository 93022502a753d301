"""WebShop-v0: WebShop's text-mode shopping site (search, results, item pages, purchase reward).

Description:
    Each game is one goal ("i need a sulfate free shampoo with scent:
    lavender, and size: 16 fl oz, and price lower than 30.00 dollars"). The
    agent searches, opens products, picks option values and buys. The engine
    (:mod:`~wmgym.envs.webshop.site`) follows WebShop's pages, clickables and
    reward; search is BM25 (:mod:`~wmgym.envs.webshop.search`).

Data:
    By default a generated catalog of 1,200 products over WebShop's five
    categories (:mod:`~wmgym.envs.webshop.catalog`), goals split by target
    product (:mod:`~wmgym.envs.webshop.goals`: 200 test goals, ~3,500 train).
    With ``data_dir=PATH`` (or ``$WEBSHOP_DATA``) the official
    ``items_shuffle*.json`` + ``items_ins_v2*.json`` (+ ``items_human_ins*.json``:
    human goals instead of synthetic ones) are served by the same engine.

Observations:
    WebShop's text mode, the page's strings joined by `` [SEP] ``. With
    ``format="word2world"`` each observation ends with the admissible-action
    block of Word2World's AgentGym client (``\\n\\nYour admissible actions of the
    current situation are: \\n[\\n'search[<your query>]',\\n'click[...]',\\n].``).
    ``init_context`` is the first observation (the search page), as in Word2World.

Actions:
    ``search[keywords]`` on the search page, ``click[<clickable>]`` with one of
    the page's clickables (case-insensitive). Anything else (no brackets,
    ``search[]``, an unknown clickable, non-ASCII search text, over-long text)
    leaves the page as it is with ``action_valid=False`` (empty and over-long ones through the base
    class's malformed-action path, answered with ``invalid_action_text``: the current page).
    ``info["admissible_commands"]`` holds ``click[...]`` for each clickable
    (without the search button, which does nothing in WebShop) and, on the
    search page, one search: ``search[<the instruction without its option and
    price clauses>]``. Search takes free text; that entry is a concrete query
    read off the page, so agents that pick from the list (random, explore) reach
    results pages. (AgentGym lists the placeholder ``search[<your query>]``,
    which the ``word2world`` block keeps.)

Rewards:
    0 per step; WebShop's purchase reward on ``click[buy now]``.

Termination:
    On ``click[buy now]``; ``won`` when the reward is 1. Truncation from the
    registered TimeLimit (15 steps, as WebShop's agents are run).
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any, ClassVar

import numpy as np

from wmgym.envs.base import FORMATS, EngineReset, EngineStep, TextEnv
from wmgym.envs.webshop import catalog, goals
from wmgym.envs.webshop.search import PRODUCT_WINDOW, SearchEngine
from wmgym.envs.webshop.site import BUY_NOW, NEXT_PAGE, PREV_PAGE, BACK_TO_SEARCH, Site, fuzzy_match

#: Products in the default generated catalog, and its seed.
NUM_PRODUCTS, CATALOG_SEED = 1200, 0
_SCORE = re.compile(r"Your score \(min 0\.0, max 1\.0\) \[SEP\] ([0-9.eE+-]+)")


@dataclasses.dataclass
class Shop:
    """A loaded catalog: products, BM25 index, purchase prices and goal splits (shared by envs in a process)."""

    products: dict[str, dict[str, Any]]
    engine: SearchEngine
    prices: dict[str, float]
    splits: dict[str, list[dict[str, Any]]]


_SHOPS: dict[tuple, Shop] = {}


def load_shop(data_dir: str | os.PathLike | None = None, num_products: int = NUM_PRODUCTS,
              seed: int = CATALOG_SEED) -> Shop:
    """The shop of an official data folder, or of the generated catalog (built once per process)."""
    folder = catalog.official_dir(data_dir)
    key = (str(folder.resolve()),) if folder else ("generated", num_products, seed)
    if key not in _SHOPS:
        if folder:
            products, human = catalog.load_official(folder)
        else:
            import json

            raw = json.loads(catalog.ensure_generated(num_products, seed).read_text())
            products, human = catalog.load_products(raw["items"], raw["attributes"]), False
        prices = goals.product_prices(products, np.random.default_rng(seed))
        splits = (goals.official_splits(products, prices, human, seed) if folder
                  else goals.generated_splits(products, prices, seed))
        _SHOPS[key] = Shop({p["asin"]: p for p in products}, SearchEngine(products), prices, splits)
    return _SHOPS[key]


def search_terms(instruction: str) -> str:
    """The instruction without its option and price clauses (the words a shopper types)."""
    head = re.split(r" with [^,]*: |, and price lower than ", instruction)[0]
    return head.strip()


def word2world_block(site: Site) -> str:
    """The admissible-action block Word2World's AgentGym client appends to each observation."""
    items = [f"'click[{c}]'," for c in site.clickables()]
    if site.has_search_bar:
        items.insert(0, "'search[<your query>]',")
    return "Your admissible actions of the current situation are: \n[\n" + "\n".join(items) + "\n]."


class WebShopEnv(TextEnv):
    """WebShop's text site (see module docstring).

    Args:
        split: ``"train"`` or ``"test"``.
        render_mode: ``"ansi"`` or ``"human"``.
        data_dir: folder with WebShop's official files (default ``$WEBSHOP_DATA``, else the generated catalog).
        format: ``"wmgym"`` (WebShop's text) or ``"word2world"`` (plus the admissible-action block).
        num_products: size of the generated catalog.
        catalog_seed: seed of the generated catalog, its prices and goals.
    """

    splits: ClassVar[tuple[str, ...]] = ("train", "test")
    #: WebShop answers a malformed action (empty, over-long) with the page as it is, so an env's
    #: ``invalid_action_text`` is its current page (set on every reset and step). The class value is what
    #: the twin, which has no page, answers.
    invalid_action_text: ClassVar[str] = "Nothing happens."
    heldout_split: ClassVar[str] = "test"
    scripted_agent: ClassVar[str | None] = "wmgym.agents.scripted.webshop:WebShopAgent"
    formats = FORMATS  # ours and Word2World's (word2world.py)
    #: The generic recipe (coverage: expert, noisy experts and random play on train; expert and noisy expert on
    #: the held-out split; the tiny stack with its curriculum) with two WebShop facts, measured with the tiny
    #: tokenizer on 60 episodes of each policy: results pages are long (~370 tokens; item pages ~130), so chats
    #: run to 1.1k tokens (expert, median; max 1.9k), 1.4k (noisy expert; max 3.9k) and 2.7k (random, which uses
    #: its 15 steps; max 3.5k): 4k-token chats hold every episode whole, where the generic 2k would cut the
    #: random and longer noisy ones into windows. ``max_steps`` 15 is WebShop's own limit (the registered
    #: TimeLimit, as its agents are run), written out so the data plan does not move if that limit does. Not
    #: tuned beyond that. Changing it retrains the default twin.
    default_twin: ClassVar[dict[str, Any] | None] = {
        "train": [("expert", 300), ("noisy-expert:0.3", 300), ("random", 100)],
        "test": [("expert", 30), ("noisy-expert:0.3", 30)],
        "sft": {"preset": "tiny", "curriculum": 0.3, "max_steps": 1600, "batch_tokens": 4096, "lr": 3e-3,
                "max_length": 4096, "eval_steps": 400, "save_steps": 400},
        "max_steps": 15,
    }
    engine_benchmark: ClassVar[str | None] = "wmgym.benchmarks.engines.webshop:main"
    #: Only ``Buy Now`` ends an episode, and a purchase cannot be taken back (``wmgym bench verifier``).
    irreversible_actions: ClassVar[tuple[str, ...]] = (f"click[{BUY_NOW.lower()}]",)
    context_version: ClassVar[int] = 1

    def __init__(self, split: str | None = None, render_mode: str | None = None,
                 data_dir: str | os.PathLike | None = None, format: str = "wmgym", num_products: int = NUM_PRODUCTS,
                 catalog_seed: int = CATALOG_SEED):
        super().__init__(split=split, render_mode=render_mode, format=format)  # the base checks and records it
        self.shop = load_shop(data_dir, num_products, catalog_seed)
        self.site = Site(self.shop.products, self.shop.engine, self.shop.prices)

    def prepare_games(self, split: str, indices: list[int], workers: int = 1, progress: bool = True) -> None:
        """Nothing left to prepare: making the env built (and cached) the catalog and the goals every game
        shares. Checks the split and the indices."""
        n = self._num_games(self._check_split(split))
        bad = [i for i in indices if not 0 <= int(i) < n]
        if bad:
            raise ValueError(f"game indices {bad[:5]} are out of range for split {split!r}: valid are 0..{n - 1}")

    # ----------------------------------------------------------------- engine
    def _num_games(self, split: str) -> int:
        return len(self.shop.splits[split])

    def _observation(self) -> str:
        text = self.site.text()
        return text + "\n\n" + word2world_block(self.site) if self.format == "word2world" else text

    def _admissible(self) -> list[str]:
        commands = [f"click[{c}]" for c in self.site.clickables() if c != "search"]
        if self.site.has_search_bar:
            commands.insert(0, f"search[{search_terms(self.site.instruction)}]")
        return commands

    def _engine_reset(self, split: str, index: int) -> EngineReset:
        goal = self.shop.splits[split][index]
        self.site.start(goal)
        observation = self.invalid_action_text = self._observation()
        return EngineReset(observation=observation, task=goal["instruction_text"], game_id=f"{split}/{index:05d}",
                           init_context=observation, admissible_commands=self._admissible(),
                           extra={"format": self.format})

    def _engine_step(self, action: str) -> EngineStep:
        valid = self.site.act(action)
        bought = valid and self.site.page == "done"
        reward = float(self.site.reward) if bought else 0.0
        won = bought and reward >= 1.0 - 1e-9
        observation = self.invalid_action_text = self._observation()
        return EngineStep(observation=observation, reward=reward, won=won, lost=bought and not won,
                          admissible_commands=self._admissible(), action_valid=valid,
                          extra={"format": self.format})

    @classmethod
    def twin_extras(cls, observation: str, success: bool) -> dict[str, Any]:
        """The purchase reward a twin's done page shows (and a loss when it is under 1)."""
        m = _SCORE.search(observation)
        if m is None:
            return {}
        try:
            score = float(m.group(1))
        except ValueError:
            return {}
        return {"reward": score, "lost": score < 1.0 - 1e-9}

    # ----------------------------------------------------------------- expert
    def expert_action(self) -> str | None:
        """Search the goal's terms (then the target's title if that missed it), open the target, set its
        options, buy."""
        site, goal = self.site, self.site.goal
        target = goal.get("asin")
        if site.page == "search":
            if not site.searches:
                return f"search[{search_terms(site.instruction)}]"
            # The goal's words missed the target: its title (ASCII only, as the search box takes).
            return f"search[{self.shop.products[target]['Title'].encode('ascii', 'ignore').decode()}]"
        if site.page == "results":
            if target in site.results:
                shown = site.results.index(target) // PRODUCT_WINDOW + 1
                if shown == site.page_no:
                    return f"click[{target.lower()}]"
                return f"click[{(NEXT_PAGE if shown > site.page_no else PREV_PAGE).lower()}]"
            return f"click[{BACK_TO_SEARCH.lower()}]"
        if site.page == "sub":
            return f"click[{PREV_PAGE.lower()}]"
        if site.page == "item":
            if site.asin != target:
                return f"click[{PREV_PAGE.lower()}]"
            wanted = goal["goal_options"]
            wanted = list(wanted.values()) if isinstance(wanted, dict) else list(wanted)
            values = [v for vs in site.product["options"].values() for v in vs]
            for value in wanted:
                if any(fuzzy_match(chosen, value) for chosen in site.options.values()):
                    continue
                close = [v for v in values if fuzzy_match(v, value)]
                best = value.lower() if value.lower() in values else (close[0] if close else None)
                if best is not None and site.options.get(self._group_of(best)) != best:
                    return f"click[{best}]"
            return f"click[{BUY_NOW.lower()}]"
        return None

    def _group_of(self, value: str) -> str | None:
        groups = [name for name, values in self.site.product["options"].items() if value in values]
        return groups[-1] if groups else None
