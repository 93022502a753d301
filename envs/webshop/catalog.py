"""WebShop's products: a generated catalog in WebShop's file schema, or the official files.

Both go through :func:`load_products`, which turns WebShop's raw files
(``items_shuffle*.json``: a list of scraped products; ``items_ins_v2*.json``:
per-ASIN attributes and synthetic instruction; optionally
``items_human_ins*.json``: per-ASIN human instructions) into the product
records the site serves, the way WebShop's ``load_products`` does: title,
description, bullet points, ``Price`` tag and numeric ``pricing``, lowercased
option values grouped by lowercased option name, ``Attributes``.

The generated catalog (:func:`generate_raw`) spans WebShop's five categories
with six product types each; every type has many near-duplicates (same type,
other attributes, options and prices), so the search terms and the option
clicks decide the reward. It is deterministic in its seed, takes well under a
second, and is cached as JSON under ``WMGYM_HOME/webshop/``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from wmgym.paths import atomic_write, locked, wmgym_home

#: Bumped when the generator's output changes (it names the cache file).
CATALOG_VERSION = 1
#: Environment variable naming a folder with WebShop's official product files.
DATA_ENV = "WEBSHOP_DATA"

# (category, type, query, product_category, attributes, options {name: values}, (price lo, hi))
_TYPES: list[tuple[str, str, str, str, list[str], dict[str, list[str]], tuple[float, float]]] = [
    ("beauty", "shampoo", "shampoo", "Beauty & Personal Care › Hair Care › Shampoos",
     ["sulfate free", "paraben free", "cruelty free", "for dry hair", "natural ingredients", "long lasting"],
     {"size": ["8 fl oz", "12 fl oz", "16 fl oz", "33.8 fl oz"], "scent": ["coconut", "lavender", "tea tree", "argan"]},
     (6, 35)),
    ("beauty", "face moisturizer", "face moisturizer", "Beauty & Personal Care › Skin Care › Face › Moisturizers",
     ["oil free", "fragrance free", "for sensitive skin", "hyaluronic acid", "anti aging", "dermatologist tested"],
     {"size": ["1.7 oz", "2.5 oz", "4 oz"]}, (9, 60)),
    ("beauty", "lipstick", "lipstick", "Beauty & Personal Care › Makeup › Lips › Lipstick",
     ["long lasting", "matte finish", "vegan", "cruelty free", "moisturizing", "waterproof"],
     {"color": ["ruby red", "nude pink", "berry", "coral", "plum", "mauve"]}, (5, 30)),
    ("beauty", "nail polish", "nail polish", "Beauty & Personal Care › Foot, Hand & Nail Care › Nail Polish",
     ["quick dry", "non toxic", "long lasting", "high gloss", "chip resistant", "vegan"],
     {"color": ["red", "black", "pink", "nude", "navy blue", "teal"], "size": ["1 pack", "3 pack", "6 pack"]}, (4, 25)),
    ("beauty", "hair dryer", "hair dryer", "Beauty & Personal Care › Hair Care › Styling Tools › Hair Dryers",
     ["ionic", "lightweight", "fast drying", "low noise", "travel size", "ceramic"],
     {"color": ["black", "white", "rose gold", "purple"]}, (18, 120)),
    ("beauty", "body lotion", "body lotion", "Beauty & Personal Care › Skin Care › Body › Lotions",
     ["shea butter", "fragrance free", "for dry skin", "non greasy", "natural ingredients", "paraben free"],
     {"size": ["8 fl oz", "16 fl oz", "21 fl oz"], "scent": ["unscented", "vanilla", "cocoa butter", "aloe"]}, (5, 28)),
    ("food", "coffee beans", "coffee beans", "Grocery & Gourmet Food › Beverages › Coffee › Whole Coffee Beans",
     ["organic", "dark roast", "fair trade", "single origin", "low acid", "gluten free"],
     {"size": ["12 ounce", "2 pound", "5 pound"], "flavor name": ["original", "french roast", "espresso", "hazelnut"]},
     (8, 55)),
    ("food", "green tea", "green tea", "Grocery & Gourmet Food › Beverages › Tea › Green Tea",
     ["organic", "caffeine free", "non gmo", "sugar free", "individually wrapped", "gluten free"],
     {"size": ["20 count", "50 count", "100 count"], "flavor name": ["jasmine", "matcha", "mint", "lemon"]}, (4, 30)),
    ("food", "dark chocolate", "dark chocolate", "Grocery & Gourmet Food › Snacks & Sweets › Chocolate › Dark Chocolate",
     ["sugar free", "keto friendly", "gluten free", "non gmo", "organic", "individually wrapped"],
     {"size": ["3.5 ounce", "6 count", "12 count"], "flavor name": ["sea salt", "almond", "orange", "mint"]}, (3, 40)),
    ("food", "protein bar", "protein bar", "Grocery & Gourmet Food › Snacks & Sweets › Bars › Protein Bars",
     ["high protein", "low carb", "gluten free", "plant based", "keto friendly", "low sugar"],
     {"size": ["12 count", "15 count", "24 count"], "flavor name": ["peanut butter", "chocolate chip", "cookie dough",
                                                                  "birthday cake"]}, (12, 45)),
    ("food", "olive oil", "olive oil", "Grocery & Gourmet Food › Pantry Staples › Oils › Olive Oil",
     ["extra virgin", "cold pressed", "organic", "non gmo", "kosher", "first harvest"],
     {"size": ["16.9 fl oz", "25.3 fl oz", "1 gallon"]}, (7, 60)),
    ("food", "beef jerky", "beef jerky", "Grocery & Gourmet Food › Snacks & Sweets › Jerky & Dried Meats › Beef Jerky",
     ["high protein", "grass fed", "low sugar", "gluten free", "keto friendly", "no preservatives"],
     {"size": ["2.85 ounce", "8 ounce", "16 ounce"], "flavor name": ["original", "teriyaki", "peppered", "sweet & hot"]},
     (6, 40)),
    ("fashion", "running shoes", "running shoes", "Clothing, Shoes & Jewelry › Men › Shoes › Athletic › Running",
     ["lightweight", "breathable", "non slip", "rubber sole", "arch support", "memory foam"],
     {"color": ["black", "white", "grey", "navy blue", "red"], "size": ["7", "8", "9", "10", "11", "12"]}, (25, 130)),
    ("fashion", "t-shirt", "t-shirt", "Clothing, Shoes & Jewelry › Women › Clothing › Tops, Tees & Blouses › T-Shirts",
     ["short sleeve", "cotton spandex", "machine wash", "relaxed fit", "crew neck", "moisture wicking"],
     {"color": ["black", "white", "heather grey", "pink", "olive green"],
      "size": ["small", "medium", "large", "x-large"]}, (8, 35)),
    ("fashion", "jeans", "jeans", "Clothing, Shoes & Jewelry › Men › Clothing › Jeans",
     ["slim fit", "straight leg", "stretch denim", "machine wash", "button closure", "relaxed fit"],
     {"color": ["dark wash", "light wash", "black", "medium blue"], "size": ["30w x 30l", "32w x 32l", "34w x 32l",
                                                                           "36w x 34l"]}, (20, 80)),
    ("fashion", "hoodie", "hoodie", "Clothing, Shoes & Jewelry › Men › Clothing › Fashion Hoodies & Sweatshirts",
     ["fleece lined", "pullover", "machine wash", "drawstring closure", "long sleeve", "kangaroo pocket"],
     {"color": ["black", "charcoal", "burgundy", "forest green", "royal blue"],
      "size": ["medium", "large", "x-large", "xx-large"]}, (18, 65)),
    ("fashion", "leggings", "leggings", "Clothing, Shoes & Jewelry › Women › Clothing › Leggings",
     ["high waist", "tummy control", "squat proof", "moisture wicking", "butt lift", "four way stretch"],
     {"color": ["black", "navy", "wine red", "grey"], "size": ["small", "medium", "large"]}, (12, 45)),
    ("fashion", "crew socks", "socks", "Clothing, Shoes & Jewelry › Men › Clothing › Socks & Hosiery › Crew Socks",
     ["cushioned", "moisture wicking", "cotton blend", "arch support", "breathable", "odor resistant"],
     {"color": ["white", "black", "assorted"], "size": ["6 pairs", "12 pairs"]}, (9, 30)),
    ("furniture", "office chair", "office chair", "Home & Kitchen › Furniture › Home Office Furniture › Desk Chairs",
     ["ergonomic", "lumbar support", "adjustable height", "mesh back", "easy assemble", "swivel"],
     {"color": ["black", "grey", "white", "blue"]}, (60, 300)),
    ("furniture", "bookshelf", "bookshelf", "Home & Kitchen › Furniture › Living Room Furniture › Bookcases",
     ["solid wood", "easy assemble", "space saving", "industrial style", "storage space", "wall mounted"],
     {"color": ["rustic brown", "white", "black", "walnut"], "size": ["3 tier", "4 tier", "5 tier"]}, (35, 200)),
    ("furniture", "coffee table", "coffee table", "Home & Kitchen › Furniture › Living Room Furniture › Tables",
     ["solid wood", "storage space", "mid century", "easy clean", "easy assemble", "tempered glass"],
     {"color": ["oak", "walnut", "black", "white"]}, (50, 260)),
    ("furniture", "bed frame", "bed frame", "Home & Kitchen › Furniture › Bedroom Furniture › Beds & Bed Frames",
     ["metal platform", "noise free", "under bed storage", "no box spring needed", "easy assemble", "heavy duty"],
     {"size": ["twin", "full", "queen", "king"]}, (90, 420)),
    ("furniture", "tv stand", "tv stand", "Home & Kitchen › Furniture › Living Room Furniture › TV Stands",
     ["storage space", "cable management", "solid wood", "tempered glass", "easy assemble", "modern style"],
     {"color": ["black", "white", "espresso", "grey oak"], "size": ["55 inch", "65 inch", "75 inch"]}, (70, 330)),
    ("furniture", "bar stool", "bar stool", "Home & Kitchen › Furniture › Kitchen & Dining Room Furniture › Stools",
     ["adjustable height", "swivel", "faux leather", "back support", "easy clean", "set of 2"],
     {"color": ["black", "brown", "white", "grey"]}, (40, 190)),
    ("electronics", "wireless earbuds", "wireless earbuds",
     "Electronics › Headphones, Earbuds & Accessories › Headphones & Earbuds › Earbud Headphones",
     ["noise cancelling", "bluetooth 5.0", "water resistant", "long battery life", "charging case", "built in mic"],
     {"color": ["black", "white", "navy blue"]}, (15, 150)),
    ("electronics", "bluetooth speaker", "bluetooth speaker", "Electronics › Portable Audio & Video › Portable Speakers",
     ["waterproof", "long battery life", "high fidelity", "built in mic", "portable", "stereo sound"],
     {"color": ["black", "blue", "red", "grey"]}, (20, 160)),
    ("electronics", "usb c cable", "usb c cable", "Electronics › Computers & Accessories › Cables › USB Cables",
     ["fast charging", "braided nylon", "high speed", "durable", "data transfer", "3 pack"],
     {"size": ["3 ft", "6 ft", "10 ft"], "color": ["black", "white", "red"]}, (6, 25)),
    ("electronics", "power bank", "power bank", "Electronics › Cell Phones & Accessories › Chargers & Power Adapters",
     ["fast charging", "portable", "led display", "dual usb", "high capacity", "usb c"],
     {"size": ["10000mah", "20000mah", "26800mah"]}, (15, 70)),
    ("electronics", "wireless mouse", "wireless mouse", "Electronics › Computers & Accessories › Computer Mice",
     ["ergonomic", "silent click", "rechargeable", "usb receiver", "adjustable dpi", "bluetooth"],
     {"color": ["black", "grey", "white", "pink"]}, (8, 45)),
    ("electronics", "phone case", "phone case", "Electronics › Cell Phones & Accessories › Cases & Holsters",
     ["shockproof", "slim fit", "wireless charging compatible", "screen protector", "kickstand", "clear back"],
     {"color": ["black", "clear", "blue", "purple", "green"],
      "size": ["iphone 13", "iphone 14", "iphone 15", "galaxy s23"]}, (8, 35)),
]
_BRANDS = {
    "beauty": ["Lumara", "Velvessa", "Purebloom", "Aurelis", "Nouvia", "Sorelle"],
    "food": ["Harvest Lane", "Kettle Peak", "Oakmere", "Sunfield", "Brightvale", "Miller & Rye"],
    "fashion": ["Northtrail", "Kinloch", "Urbanfield", "Stride Co", "Marlowe", "Everpine"],
    "furniture": ["Homestead", "Woodly", "Arvika", "Casabelle", "Lofton", "Nordhaven"],
    "electronics": ["Voltix", "Zentra", "Soundcore Lab", "Kinetiq", "Arclite", "Pulsewave"],
}
_OPENERS = ["i need", "i am looking for", "i want", "find me", "i'd like to buy", "get me", "i'm searching for"]


def _asin(rng: np.random.Generator, taken: set[str]) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    while True:
        asin = "B0" + "".join(alphabet[i] for i in rng.integers(len(alphabet), size=8))
        if asin not in taken:
            taken.add(asin)
            return asin


def _instruction(rng: np.random.Generator, kind: str, attrs: list[str]) -> str:
    opener = _OPENERS[int(rng.integers(len(_OPENERS)))]
    # Every template starts with the first attribute, which picks the article.
    article = "" if kind.endswith("s") else (" an" if attrs[0][0] in "aeiou" else " a")
    if len(attrs) == 1:
        return f"{opener}{article} {attrs[0]} {kind}"
    if rng.random() < 0.5:
        return f"{opener}{article} {' and '.join(attrs[:-1])} {kind} that is {attrs[-1]}"
    return f"{opener}{article} {', '.join(attrs[:-1])} and {attrs[-1]} {kind}"


def generate_raw(num_products: int = 1200, seed: int = 0) -> dict[str, Any]:
    """A catalog in WebShop's raw file schema: ``{"items": [...], "attributes": {asin: {...}}}``.

    ``items`` follows ``items_shuffle*.json`` and ``attributes`` follows ``items_ins_v2*.json``.
    Products cycle through the product types, so each type holds ``num_products / 30`` near-duplicates.
    """
    rng = np.random.default_rng(seed)
    items, attributes, taken = [], {}, set()
    for i in range(num_products):
        category, kind, query, path, attr_pool, option_pool, (lo, hi) = _TYPES[i % len(_TYPES)]
        brand = _BRANDS[category][int(rng.integers(len(_BRANDS[category])))]
        attrs = [attr_pool[j] for j in sorted(rng.choice(len(attr_pool), size=int(rng.integers(2, 5)), replace=False))]
        shown = attrs[: int(rng.integers(1, 3))]  # the title names one or two; the rest are in the text only
        options = {}
        for name, pool in option_pool.items():
            count = int(rng.integers(2, len(pool) + 1))
            options[name.title()] = [{"value": pool[j], "image": None}
                                     for j in sorted(rng.choice(len(pool), size=count, replace=False))]
        price = round(float(rng.uniform(lo, hi)), 0) - 0.01
        if rng.random() < 0.2:  # a price range, as products with size-dependent prices show
            pricing = f"${price:.2f} - ${price * 1.3 + 2:.2f}"
        else:
            pricing = f"${price:.2f}"
        title = f"{brand} {' '.join(a.title() for a in shown)} {kind.title()}"
        if option_pool:
            first = next(iter(options.values()))
            title += f", {first[0]['value'].title()}"
        bullets = [f"{a.capitalize()}: this {kind} is {a}, made to last." for a in attrs]
        bullets.append(f"What you get: one {kind} from {brand}, backed by a 30-day return policy.")
        asin = _asin(rng, taken)
        items.append({
            "asin": asin, "name": title, "category": category, "query": query, "product_category": path,
            "full_description": f"The {brand} {kind} is {', '.join(attrs)}. A {kind} for everyday use.",
            "small_description": bullets, "pricing": pricing, "customization_options": options or None,
            "images": [f"https://example.invalid/{asin}.jpg"],
        })
        goal_attrs = attrs[: int(rng.integers(1, min(3, len(attrs)) + 1))]
        attributes[asin] = {"attributes": attrs, "instruction": _instruction(rng, kind, goal_attrs),
                            "instruction_attributes": goal_attrs}
    return {"items": items, "attributes": attributes}


def generated_catalog_path(num_products: int, seed: int) -> Path:
    return wmgym_home() / "webshop" / f"catalog-v{CATALOG_VERSION}-n{num_products}-seed{seed}.json"


def ensure_generated(num_products: int = 1200, seed: int = 0) -> Path:
    """The cached generated catalog's path (written once, atomically, under a lock)."""
    path = generated_catalog_path(num_products, seed)
    if not path.is_file():
        with locked(path.with_suffix(".lock")):
            if not path.is_file():
                atomic_write(path, json.dumps(generate_raw(num_products, seed)))
    return path


def _parse_pricing(pricing: Any) -> tuple[list[float], str]:
    """WebShop's reading of a ``"$12.99"`` / ``"$10.99 - $15.99"`` string: numbers and the page's price tag."""
    if not pricing:
        return [100.0], "$100.0"
    values = []
    for part in str(pricing).split("$")[1:]:
        digits = re.sub(r"[^\d.]", "", part)
        if digits:
            values.append(float(digits))
    if not values:
        return [100.0], "$100.0"
    if len(values) == 1:
        return values, f"${values[0]}"
    return values[:2], f"${values[0]} to ${values[1]}"


def load_products(items: list[dict], attributes: dict[str, dict],
                  human: dict[str, list[dict]] | None = None) -> list[dict[str, Any]]:
    """Product records as WebShop's site serves them (duplicates and over-long ASINs dropped, like WebShop)."""
    products, seen = [], set()
    for raw in items:
        asin = str(raw.get("asin", ""))
        if asin in ("", "nan") or len(asin) > 10 or asin in seen:
            continue
        seen.add(asin)
        bullets = raw.get("small_description") or []
        pricing, price_tag = _parse_pricing(raw.get("pricing"))
        options: dict[str, list[str]] = {}
        for name, contents in (raw.get("customization_options") or {}).items():
            if contents:
                options[name.lower()] = [c["value"].strip().replace("/", " | ").lower() for c in contents]
        ins = attributes.get(asin, {})
        products.append({
            "asin": asin, "Title": raw.get("name", ""), "name": raw.get("name", ""),
            "category": raw.get("category", ""), "query": str(raw.get("query", "")).lower().strip(),
            "product_category": raw.get("product_category", ""),
            "Description": raw.get("full_description") or "",
            "BulletPoints": bullets if isinstance(bullets, list) else [bullets],
            "pricing": pricing, "Price": price_tag, "Rating": "N.A.", "Reviews": [], "options": options,
            "Attributes": ins.get("attributes") or ["DUMMY_ATTR"],
            "instruction_text": ins.get("instruction"), "instruction_attributes": ins.get("instruction_attributes"),
            "instructions": (human or {}).get(asin),
        })
    return products


def _one(folder: Path, pattern: str, required: bool) -> Path | None:
    found = sorted(folder.glob(pattern))
    if not found and required:
        raise FileNotFoundError(f"no {pattern} in {folder}; WebShop's data folder needs items_shuffle*.json and "
                                "items_ins_v2*.json (and optionally items_human_ins*.json)")
    return found[0] if found else None


def official_dir(data_dir: str | os.PathLike | None) -> Path | None:
    """The official data folder: ``data_dir``, else ``$WEBSHOP_DATA``, else ``None`` (the generated catalog)."""
    chosen = data_dir if data_dir is not None else os.environ.get(DATA_ENV)
    if not chosen:
        return None
    path = Path(chosen).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"WebShop data_dir {str(path)!r} is not a folder")
    return path


def load_official(folder: Path) -> tuple[list[dict[str, Any]], bool]:
    """Products of an official data folder, and whether it carries human instructions."""
    items = json.loads(_one(folder, "items_shuffle*.json", True).read_text())
    attributes = json.loads(_one(folder, "items_ins_v2*.json", True).read_text())
    human_path = _one(folder, "items_human_ins*.json", False)
    human = json.loads(human_path.read_text()) if human_path else None
    return load_products(items, attributes, human), human is not None
