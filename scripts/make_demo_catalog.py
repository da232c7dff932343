"""Write product_service/demo_catalog.jsonl: a few hundred plausible products, deterministic.

.venv/bin/python scripts/make_demo_catalog.py
"""

from __future__ import annotations

import json
import random
import zlib
from decimal import Decimal
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "product_service" / "demo_catalog.jsonl"

# category -> (items with a base price, materials or variants, what it is good for)
CATALOG = {
    "kitchen": (
        [
            ("Coffee Mug", 12),
            ("French Press", 34),
            ("Chef's Knife", 79),
            ("Cutting Board", 29),
            ("Cast Iron Skillet", 45),
            ("Teapot", 38),
            ("Mixing Bowl Set", 27),
            ("Pepper Mill", 24),
        ],
        ["stoneware", "bamboo", "stainless steel", "enamelled", "walnut", "ceramic"],
        [
            "slow Sunday breakfasts",
            "busy weeknight cooking",
            "a first apartment",
            "hosting friends",
            "camping trips",
        ],
    ),
    "outdoor": (
        [
            ("Hiking Backpack", 89),
            ("Trekking Poles", 59),
            ("Camping Lantern", 32),
            ("Insulated Bottle", 28),
            ("Rain Jacket", 119),
            ("Sleeping Bag", 139),
            ("Camp Stove", 74),
            ("Headlamp", 26),
        ],
        ["ultralight", "waterproof", "recycled nylon", "all-season", "packable", "rugged"],
        [
            "alpine day hikes",
            "rainy coastal trails",
            "weekend camping",
            "long-distance treks",
            "early morning runs",
        ],
    ),
    "books": (
        [
            ("Field Guide to Birds", 24),
            ("Sourdough Handbook", 29),
            ("Atlas of Rivers", 39),
            ("Poetry Collection", 18),
            ("Night Sky Almanac", 22),
            ("Woodworking Basics", 31),
            ("City Walks", 19),
            ("Mushroom Foraging Guide", 27),
        ],
        ["hardcover", "illustrated", "pocket edition", "annotated", "paperback", "large print"],
        [
            "curious beginners",
            "a rainy afternoon",
            "gift giving",
            "the bedside table",
            "weekend projects",
        ],
    ),
    "electronics": (
        [
            ("Wireless Headphones", 149),
            ("Bluetooth Speaker", 79),
            ("USB-C Charger", 35),
            ("Mechanical Keyboard", 119),
            ("E-Reader", 129),
            ("Webcam", 69),
            ("Power Bank", 45),
            ("Smart Plug", 19),
        ],
        ["noise-cancelling", "compact", "fast-charging", "backlit", "water-resistant", "wireless"],
        ["long commutes", "a home office", "travel days", "late-night reading", "video calls"],
    ),
    "home": (
        [
            ("Wool Throw", 69),
            ("Linen Duvet Cover", 129),
            ("Table Lamp", 59),
            ("Scented Candle", 22),
            ("Plant Pot", 18),
            ("Wall Clock", 44),
            ("Doormat", 29),
            ("Bath Towel Set", 49),
        ],
        ["hand-woven", "organic cotton", "linen", "brass", "terracotta", "oak"],
        ["cosy evenings", "a calm bedroom", "a bright hallway", "guest rooms", "small spaces"],
    ),
    "toys": (
        [
            ("Wooden Train Set", 49),
            ("Puzzle 1000 Pieces", 21),
            ("Building Blocks", 35),
            ("Plush Fox", 19),
            ("Kite", 25),
            ("Board Game", 39),
            ("Marble Run", 45),
            ("Watercolour Kit", 23),
        ],
        ["classic", "eco-friendly", "family-size", "travel", "deluxe", "beginner"],
        ["rainy days", "curious toddlers", "family game night", "the beach", "birthdays"],
    ),
}


def main() -> None:
    rng = random.Random(20261124)
    lines = []
    for category, (items, variants, uses) in CATALOG.items():
        for item, base in items:
            for variant in rng.sample(variants, 6):
                use = rng.choice(uses)
                price = (Decimal(base) * Decimal(rng.uniform(0.8, 1.35))).quantize(Decimal("1"))
                price = price - Decimal("0.01") if price > 1 else Decimal("0.99")
                name = f"{variant.title()} {item}"
                sku = f"{category[:3].upper()}-{zlib.crc32(name.encode()) % 10**6:06d}"
                lines.append(
                    {
                        "sku": sku,
                        "name": name,
                        "description": (
                            f"A {variant} {item.lower()} made for {use}. "
                            f"Chosen by our {category} team for everyday use and built to last."
                        ),
                        "category": category,
                        "price": str(price),
                        "currency": "EUR",
                        "quantity": rng.choice([0, 3, 8, 15, 25, 40, 60, 100]),
                        "imageUrl": f"https://images.example.com/{sku.lower()}.jpg",
                    }
                )
    seen = set()
    with OUT.open("w") as out:
        for line in lines:
            if line["sku"] in seen:
                continue
            seen.add(line["sku"])
            out.write(json.dumps(line) + "\n")
    print(f"wrote {len(seen)} products to {OUT}")


if __name__ == "__main__":
    main()
