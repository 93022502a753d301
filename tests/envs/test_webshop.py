"""WebShop-v0: the catalog, BM25 search, WebShop's page texts and reward, the expert, official files, bad input,
and the twin reading the reward off a generated done page."""

from __future__ import annotations

import json
import re

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from rank_bm25 import BM25Okapi

from wmgym.envs.webshop import catalog, goals
from wmgym.envs.webshop.env import WebShopEnv, load_shop, search_terms
from wmgym.envs.webshop.search import SearchEngine, page_of, product_text, tokenize
from wmgym.envs.webshop.site import purchase_reward


@pytest.fixture(scope="module")
def env():
    env = gym.make("WebShop-v0", split="test")
    yield env
    env.close()


def _play_expert(env, game, split="test"):
    obs, info = env.reset(seed=game, options={"game": game, "split": split})
    trace, done = [obs], False
    while not done:
        action = env.unwrapped.expert_action()
        obs, reward, terminated, truncated, info = env.step(action)
        trace.append((action, obs))
        done = terminated or truncated
    return reward, terminated, info, trace


# ---------------------------------------------------------------- catalog and splits
def test_generated_catalog_schema_determinism_and_near_duplicates(wmgym_home):
    raw = catalog.generate_raw(1200, seed=0)
    assert raw == catalog.generate_raw(1200, seed=0) and raw != catalog.generate_raw(1200, seed=1)
    items = raw["items"]
    assert len(items) >= 1000 and len({i["asin"] for i in items}) == len(items)
    assert {i["category"] for i in items} == {"beauty", "food", "fashion", "furniture", "electronics"}
    for key in ("asin", "name", "category", "query", "product_category", "pricing", "customization_options",
                "full_description", "small_description"):
        assert all(key in i for i in items), key
    assert set(raw["attributes"][items[0]["asin"]]) == {"attributes", "instruction", "instruction_attributes"}
    by_query = {}
    for i in items:
        by_query.setdefault(i["query"], []).append(i)
    assert min(len(v) for v in by_query.values()) >= 30  # near-duplicates of every product type
    shampoos = by_query["shampoo"]
    assert len({(tuple(raw["attributes"][i["asin"]]["attributes"]), i["pricing"]) for i in shampoos}) > 25
    path = catalog.ensure_generated(1200, 0)
    assert path.parent == catalog.wmgym_home() / "webshop" and json.loads(path.read_text()) == raw


def test_splits_are_disjoint_by_product_and_test_has_200_goals(env):
    shop = env.unwrapped.shop
    assert env.unwrapped.num_games("test") == 200 and env.unwrapped.num_games("train") > 3000
    assert not {g["asin"] for g in shop.splits["test"]} & {g["asin"] for g in shop.splits["train"]}
    goal = shop.splits["test"][0]
    m = re.fullmatch(r"(.+?)(?: with (.+))?, and price lower than (\d+\.00) dollars", goal["instruction_text"])
    assert m and float(m.group(3)) == goal["price_upper"] > shop.prices[goal["asin"]]
    assert m.group(2) == ", and ".join(f"{k}: {v}" for k, v in goal["goal_options"].items())


def test_seed_and_game_option_choose_the_goal(env):
    _, a = env.reset(seed=5)
    _, b = env.reset(seed=5)
    _, c = env.reset(seed=6, options={"game": 3})
    assert a["game_id"] == b["game_id"] and c["game_id"] == "test/00003"
    assert c["task"] == env.unwrapped.shop.splits["test"][3]["instruction_text"]
    _, d = env.reset(options={"game": 3, "split": "train"})
    assert d["split"] == "train" and d["task"] == env.unwrapped.shop.splits["train"][3]["instruction_text"]


# ---------------------------------------------------------------- search
def test_bm25_top_50_ten_a_page_and_one_index(env):
    shop = env.unwrapped.shop
    products = list(shop.products.values())
    query = "organic green tea caffeine free"
    scores = BM25Okapi([tokenize(product_text(p)) for p in products]).get_scores(tokenize(query))
    expected = [products[i]["asin"] for i in np.argsort(-scores, kind="stable")[:50]]
    results = shop.engine.search(query)
    assert list(results) == expected and len(results) == 50
    assert page_of(results, 1) == results[:10] and page_of(results, 5) == results[40:] and not page_of(results, 6)
    assert SearchEngine(products[:5]).search("zzzz unknownword") == ()
    index = shop.engine.bm25
    other = gym.make("WebShop-v0")
    other.reset(seed=0)
    other.step(other.unwrapped._admissible()[0])
    assert other.unwrapped.shop is shop and shop.engine.bm25 is index  # made once per catalog, not per search


# ---------------------------------------------------------------- pages
def test_pages_in_webshop_text_mode(env):
    obs, info = env.reset(options={"game": 0})
    instruction = info["task"]
    assert obs == f"WebShop [SEP] Instruction: [SEP] {instruction} [SEP] Search"
    assert info["init_context"] == obs
    assert info["admissible_commands"] == [f"search[{search_terms(instruction)}]"]
    obs, _, _, _, info = env.step(f"search[{search_terms(instruction)}]")
    head = f"Instruction: [SEP] {instruction} [SEP] Back to Search [SEP] "
    assert obs.startswith(head + "Page 1 (Total results: 50) [SEP] Next > [SEP] ")
    rows = obs.split(" [SEP] ")[5:]
    assert len(rows) == 30 and all(re.fullmatch(r"B0[A-Z0-9]{8}", a) for a in rows[0::3])
    assert all(re.fullmatch(r"\$[\d.]+( to \$[\d.]+)?", p) for p in rows[2::3])
    assert {f"click[{a.lower()}]" for a in rows[0::3]} | {"click[back to search]", "click[next >]"} == set(
        info["admissible_commands"])
    obs, _, _, _, info = env.step("click[next >]")
    assert obs.startswith(head + "Page 2 (Total results: 50) [SEP] < Prev [SEP] Next > [SEP] ")
    asin = obs.split(" [SEP] ")[6]
    obs, _, _, _, info = env.step(f"click[{asin.lower()}]")
    product = env.unwrapped.shop.products[asin]
    options = " [SEP] ".join(f"{name} [SEP] " + " [SEP] ".join(values) for name, values in product["options"].items())
    assert obs == (f"{head}< Prev [SEP] {options} [SEP] {product['Title']} [SEP] Price: {product['Price']} [SEP] "
                   "Rating: N.A. [SEP] Description [SEP] Features [SEP] Reviews [SEP] Buy Now")
    obs, _, _, _, info = env.step("click[Features]")  # clickables match case-insensitively
    assert obs == f"{head}< Prev [SEP] " + " [SEP] ".join(product["BulletPoints"])
    assert info["admissible_commands"] == ["click[< prev]", "click[back to search]"]
    obs, _, _, _, _ = env.step("click[< prev]")
    assert obs.endswith("Buy Now")
    obs, _, _, _, _ = env.step("click[< prev]")
    assert obs.startswith(head + "Page 2 (Total results: 50)")
    obs, _, _, _, _ = env.step("click[back to search]")
    assert obs.startswith("WebShop [SEP] Instruction:")


def test_done_page_reward_and_termination(env):
    reward, terminated, info, trace = _play_expert(env, 1)
    assert reward == 1.0 and terminated and info["won"]
    done = trace[-1][1]
    assert done.startswith("Thank you for shopping with us! [SEP] Your code: [SEP] None")
    assert done.endswith("Your score (min 0.0, max 1.0) [SEP] 1.0 [SEP] Reward Details [SEP] None")
    assert WebShopEnv.twin_extras(done, True) == {"reward": 1.0, "lost": False}
    # Buying the right product with no option set scores below 1 and still ends the episode.
    env.reset(options={"game": 1})
    for action, _ in trace[1:]:
        env.step(action)
        if env.unwrapped.site.page == "item":  # the target's page, before any option is clicked
            break
    obs, reward, terminated, _, info = env.step("click[buy now]")
    assert 0 < reward < 1 and terminated and not info["won"]
    assert WebShopEnv.twin_extras(obs, False) == {"reward": reward, "lost": True}


def test_word2world_format_appends_agentgym_action_block():
    env = gym.make("WebShop-v0", split="test", format="word2world")
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(options={"game": 0})
    page, block = obs.split("\n\n")
    assert block == "Your admissible actions of the current situation are: \n[\n'search[<your query>]',\n" \
                    "'click[search]',\n]."
    assert info["init_context"] == obs and info["format"] == "word2world"
    obs, *_ = env.step(info["admissible_commands"][0])
    assert obs.split("\n\n")[1].startswith("Your admissible actions of the current situation are: \n[\n"
                                           "'click[back to search]',\n'click[next >]',\n'click[b0")
    with pytest.raises(ValueError, match="word2world"):
        gym.make("WebShop-v0", format="agentgym")


# ---------------------------------------------------------------- reward
def _case():
    product = {"asin": "B000000001", "Title": "Lumara Sulfate Free Shampoo, Lavender", "query": "shampoo",
               "product_category": "Beauty & Personal Care › Hair Care › Shampoos", "Attributes": ["sulfate free",
                                                                                            "cruelty free"],
               "BulletPoints": ["Gentle on hair."], "Description": "A shampoo with natural ingredients."}
    goal = {"asin": "B000000001", "query": "shampoo", "name": product["Title"],
            "product_category": product["product_category"], "attributes": ["sulfate free", "natural ingredients"],
            "goal_options": {"scent": "lavender", "size": "16 fl oz"}, "price_upper": 20.0}
    return product, goal


def test_reward_on_hand_made_cases():
    product, goal = _case()
    assert purchase_reward(product, goal, 12.0, {"scent": "lavender", "size": "16 fl oz"}) == 1.0
    assert purchase_reward(product, goal, 12.0, {"scent": "coconut", "size": "16 fl oz"}) == pytest.approx(4 / 5)
    assert purchase_reward(product, goal, 12.0, {"scent": "lavender"}) == pytest.approx(4 / 5)
    assert purchase_reward(product, goal, 25.0, {"scent": "lavender", "size": "16 fl oz"}) == pytest.approx(4 / 5)
    assert purchase_reward(product, dict(goal, attributes=["paraben free"]), 12.0,
                           {"scent": "lavender", "size": "16 fl oz"}) == pytest.approx(3 / 4)
    speaker = dict(product, Title="Voltix Waterproof Bluetooth Speaker", query="bluetooth speaker",
                   product_category="Electronics › Portable Audio & Video › Portable Speakers")
    assert purchase_reward(speaker, goal, 12.0, {"scent": "lavender", "size": "16 fl oz"}) == 0.0  # wrong type
    # A near-duplicate: same type, other brand, one attribute missing -> under 1 but typed right.
    twin = dict(product, Title="Nouvia Sulfate Free Shampoo, Coconut", Attributes=["sulfate free"],
                Description="A shampoo.")
    assert purchase_reward(twin, goal, 12.0, {"scent": "lavender", "size": "16 fl oz"}) == pytest.approx(4 / 5)


# ---------------------------------------------------------------- expert and agents
def test_expert_succeeds_on_test_goals(env):
    wins = sum(_play_expert(env, game)[2]["won"] for game in range(0, 200, 4))
    assert wins / 50 >= 0.95
    # A search that missed the target: the expert goes back and searches the target's title.
    env.reset(options={"game": 9})
    _, _, _, _, info = env.step("search[zzzz]")
    assert "(Total results: 0)" in env.unwrapped.site.text() and info["action_valid"]
    actions = []
    for _ in range(10):
        actions.append(env.unwrapped.expert_action())
        _, reward, terminated, _, info = env.step(actions[-1])
        if terminated:
            break
    assert info["won"] and actions[:2] == ["click[back to search]",
                                           f"search[{env.unwrapped.site.product['Title']}]"]


def test_collection_policies_and_scripted_agent_play(env):
    from wmgym.agents.factory import make_agent
    from wmgym.agents.scripted.webshop import WebShopAgent

    for spec in ("expert", "noisy-expert:0.3", "explore", "random"):
        agent = make_agent(spec, "WebShop-v0", privileged=True)
        obs, info = env.reset(seed=3)
        agent.reset(obs, info, 3, env=env)
        for _ in range(15):
            obs, _, terminated, truncated, info = env.step(agent.act(obs, info))
            if terminated or truncated:
                break
    agent = make_agent("scripted", "WebShop-v0")
    assert isinstance(agent, WebShopAgent)
    won = 0
    for game in range(20):
        obs, info = env.reset(options={"game": game})
        agent.reset(obs, info, game)
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(agent.act(obs, info))
            assert info["action_valid"], obs
            done = terminated or truncated
        won += info["won"]
    assert 5 <= won < 20  # it shops, and near-duplicates fool it now and then


def test_scripted_agent_reads_any_page_a_twin_may_write(env):
    """In a twin the agent reads generated pages, which can lack what a real page always has (an item page
    without '< Prev', results without products, no page at all): it still answers with an action."""
    from wmgym.agents.factory import make_agent

    agent = make_agent("scripted", "WebShop-v0")
    obs, info = env.reset(options={"game": 0})
    agent.reset(obs, info, 0)
    obs, *_ = env.step(agent.act(obs, info))  # the results page
    obs, *_ = env.step(agent.act(obs, info))  # an item page
    assert "< Prev" in obs and "Buy Now" in obs
    for page in (obs.replace("< Prev [SEP] ", ""), obs.split(" [SEP] Buy Now")[0], "Page 1 (Total results: 0)",
                 "", "garbled [SEP] Price: $3.00 [SEP] Buy Now"):
        action = agent.act(page, info)
        assert isinstance(action, str) and action.startswith(("click[", "search[")), (page, action)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("bad", ["search[]", "search[   ]", "click[nonexistent]", "buy now", "search shampoo",
                                 "click[buy now", "x" * 10_000, "search[" + "x" * 10_000 + "]", "search[café]",
                                 "click[ショップ]", "click[search]", ""])
def test_bad_input_leaves_the_page(env, bad):
    for search_first in (False, True):  # on the search page, then on a results page
        obs, info = env.reset(options={"game": 2})
        if search_first:
            obs, _, _, _, info = env.step(info["admissible_commands"][0])
        after, reward, terminated, truncated, info2 = env.step(bad)
        assert after == obs and reward == 0.0 and not terminated
        assert info2["action_valid"] is False and info2["admissible_commands"] == info["admissible_commands"]


# ---------------------------------------------------------------- official files
def _official(tmp_path, human: bool = False):
    items, attrs, human_ins = [], {}, {}
    for k, (name, query, color) in enumerate([("Acme Waterproof Hiking Boots", "hiking boots", "brown"),
                                               ("Acme Leather Hiking Boots", "hiking boots", "black"),
                                               ("Zest Organic Green Tea", "green tea", None)]):
        asin = f"B00TEST00{k}"
        items.append({"asin": asin, "name": name, "category": "fashion", "query": query,
                      "product_category": "Clothing › Shoes › Boots" if "Boots" in name else "Grocery › Tea",
                      "full_description": f"{name}, sturdy.", "small_description": [f"{name} bullet"],
                      "pricing": f"${40 + 10 * k}.99", "images": [""],
                      "customization_options": {"Color": [{"value": color, "image": None},
                                                          {"value": "Grey/White", "image": None}]} if color else None})
        attrs[asin] = {"attributes": ["waterproof" if k == 0 else "leather"], "instruction":
                       f"i want {name.lower()}", "instruction_attributes": ["waterproof" if k == 0 else "leather"]}
        human_ins[asin] = [{"instruction": f"find {query} please", "instruction_attributes": ["sturdy"],
                            "instruction_options": [color] if color else []}]
    (tmp_path / "items_shuffle_1000.json").write_text(json.dumps(items))
    (tmp_path / "items_ins_v2_1000.json").write_text(json.dumps(attrs))
    if human:
        (tmp_path / "items_human_ins.json").write_text(json.dumps(human_ins))
    return tmp_path


@pytest.mark.parametrize("human", [False, True])
def test_official_files_are_served_by_the_same_engine(tmp_path, monkeypatch, human):
    folder = _official(tmp_path, human)
    (tmp_path / "empty").mkdir()
    env = gym.make("WebShop-v0", data_dir=folder)
    shop = env.unwrapped.shop
    assert sorted(shop.products) == ["B00TEST000", "B00TEST001", "B00TEST002"]
    assert shop.products["B00TEST000"]["options"] == {"color": ["brown", "grey | white"]}
    assert shop.products["B00TEST000"]["Price"] == "$40.99"
    n = env.unwrapped.num_games("train") + env.unwrapped.num_games("test")
    assert n == (3 if human else 5)  # human: one per product; synthetic: one per option value (tea: 1)
    for split in ("train", "test"):
        for game in range(env.unwrapped.num_games(split)):
            reward, terminated, info, _ = _play_expert(env, game, split)
            assert terminated and info["won"], (split, game, info["task"])
    monkeypatch.setenv("WEBSHOP_DATA", str(folder))
    assert gym.make("WebShop-v0").unwrapped.shop is shop
    with pytest.raises(FileNotFoundError, match="items_shuffle"):
        load_shop(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_shop(tmp_path / "nowhere")


# ---------------------------------------------------------------- twin
def test_twin_reads_the_reward_from_its_done_page(env):
    from wm_fakes import FakeWorldModel

    _, _, _, trace = _play_expert(env, 7)
    done_page = trace[-1][1]
    half = done_page.replace("[SEP] 1.0 [SEP] Reward Details", "[SEP] 0.5 [SEP] Reward Details")

    def rule(context, history, action):
        if action == "click[buy now]":
            return (done_page + " [SUCCESS]" if history else half), -0.1
        return trace[1 + len(history)][1] if 1 + len(history) < len(trace) else "Nothing happens.", -0.1

    twin = gym.make("WM-WebShop-v0", model=FakeWorldModel(rule), split="test")
    check_env(twin.unwrapped, skip_render_check=True)
    obs, info = twin.reset(options={"game": 7})
    assert obs == trace[0] and info["init_context"] == trace[0]
    obs, reward, terminated, _, info = twin.step("click[buy now]")  # first step: the 0.5 page
    assert reward == 0.5 and terminated and not info["won"]
    twin.reset(options={"game": 7})
    for action, _ in trace[1:-1]:
        assert twin.step(action)[1] == 0.0
    obs, reward, terminated, _, info = twin.step("click[buy now]")
    assert reward == 1.0 and terminated and info["won"] and obs == done_page
    assert WebShopEnv.twin_extras("Instruction: [SEP] x [SEP] Search", False) == {}


# ---------------------------------------------------------------- default twin and mixes
def test_default_twin_recipe_holds_every_collected_chat_whole(tmp_path):
    """The declared recipe's ``max_length`` fits whole chats of its longest-running policies, played to its
    ``max_steps`` (random uses them all), with the tiny tokenizer trained on them."""
    from wmgym.training.collect import CollectConfig, collect
    from wmgym.training.default import recipe_for
    from wmgym.training.tiny import build_tokenizer
    from wmgym.training.trajectories import load_episodes
    from wmgym.worldmodels.protocol import episode_messages

    recipe = recipe_for("WebShop-v0")
    assert recipe.max_steps == 15 and recipe.sft["max_length"] == 4096
    assert [p for p, _ in recipe.train] == ["expert", "noisy-expert:0.3", "random"]
    path = tmp_path / "ws.jsonl"
    for policy in ("expert", "random"):
        collect(CollectConfig(env="WebShop-v0", policy=policy, episodes=6, out=str(path), progress=False,
                              max_steps=recipe.max_steps, seed=50))
    chats = [episode_messages(e) for e in load_episodes(path)]
    tokenizer = build_tokenizer(chats, recipe.sft["preset"])
    lengths = [len(tokenizer(tokenizer.apply_chat_template(c, tokenize=False))["input_ids"]) for c in chats]
    assert max(lengths) < recipe.sft["max_length"]
    assert max(lengths) > 2048  # the generic 2k would cut them (why the recipe raises it)


@pytest.mark.slow
def test_mix4_trains_with_webshop_data(tmp_path, capsys):
    """``--mix mix4`` on one short episode of each of its four envs (SciWorld starts its JVM): the mix finds them
    all and a few SFT steps run."""
    from wmgym.cli import main
    from wmgym.training.collect import CollectConfig, collect
    from wmgym.wrappers.mixed import MIXES

    files = []
    for env_id in MIXES["mix4"]:
        files.append(str(tmp_path / f"{env_id}.jsonl"))
        collect(CollectConfig(env=env_id, policy="expert", episodes=1, out=files[-1], progress=False, max_steps=3))
    out = tmp_path / "run"
    assert main(["train", "sft", "--data", *files, "--mix", "mix4", "--out", str(out), "--preset", "tiny",
                 "--max-steps", "4", "--save-steps", "1000", "--eval-fraction", "0", "--max-length", "4096",
                 "--batch-tokens", "4096", "--logging-steps", "2", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    for env_id in MIXES["mix4"]:
        assert f"{env_id}: weight 0.250, 1 episodes" in printed
    summary = json.loads((out / "sft_summary.json").read_text())
    assert summary["steps"] == 4 and (out / "model.safetensors").exists()
