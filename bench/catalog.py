"""A synthetic Korean product catalog and seller offers with known true matches.

    python bench/catalog.py --products 20 [--seed 0]

Products come in families: one line, generation and tier (갤럭시 S24 울트라) in every
storage size, color or screen size, so most wrong candidates for an offer differ from
its true product by a single spec; that is what makes matching hard. An offer rewrites
its product's title the way sellers do: the brand in the other script (삼성 ↔ Samsung),
words reordered, units respelled (256GB, 256 GB, 256기가, 256G), seller words added
([무료배송], 자급제, 당일발송), the brand, category or maker code sometimes left out, but
never a spec that tells the family's products apart. Generations run on past today's
models when more products are asked for. All vocabulary here is made up for this file.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

BRANDS = {
    "samsung": ("삼성전자", "삼성", "Samsung", "SAMSUNG"),
    "apple": ("애플", "Apple", "APPLE"),
    "lg": ("LG전자", "LG", "엘지"),
    "sony": ("소니", "Sony", "SONY"),
    "xiaomi": ("샤오미", "Xiaomi"),
    "dyson": ("다이슨", "Dyson"),
    "nongshim": ("농심", "Nongshim"),
    "cj": ("CJ제일제당", "CJ", "씨제이"),
}
# Marketing color name -> spellings sellers use, the catalog's first.
COLORS = {
    "black": ("블랙", "Black", "검정", "검정색"),
    "white": ("화이트", "White", "흰색"),
    "blue": ("블루", "Blue", "파랑"),
    "pink": ("핑크", "Pink", "분홍"),
    "silver": ("실버", "Silver", "은색"),
    "gold": ("골드", "Gold", "금색"),
    "beige": ("베이지", "Beige"),
    "mint": ("민트", "Mint"),
    "lavender": ("라벤더", "Lavender"),
    "graphite": ("그라파이트", "Graphite"),
    "midnight": ("미드나이트", "Midnight"),
    "starlight": ("스타라이트", "Starlight"),
    "onyx black": ("오닉스 블랙", "Onyx Black", "블랙", "검정"),
    "marble gray": ("마블 그레이", "Marble Gray", "그레이", "회색"),
    "cobalt violet": ("코발트 바이올렛", "Cobalt Violet", "바이올렛", "보라"),
    "amber yellow": ("앰버 옐로우", "Amber Yellow", "옐로우", "노랑"),
    "natural titanium": ("내추럴 티타늄", "Natural Titanium", "내추럴티타늄"),
    "midnight black": ("미드나잇 블랙", "Midnight Black", "블랙"),
    "ocean blue": ("오션 블루", "Ocean Blue", "블루"),
    "mint green": ("민트 그린", "Mint Green", "민트"),
    "bora purple": ("보라 퍼플", "Bora Purple", "퍼플", "보라색"),
    "midnight blue": ("미드나잇 블루", "Midnight Blue", "블루"),
    "snow white": ("스노우 화이트", "Snow White", "화이트", "흰색"),
    "obsidian black": ("옵시디안 블랙", "Obsidian Black", "블랙"),
    "charcoal gray": ("차콜 그레이", "Charcoal Gray", "그레이"),
    "space gray": ("스페이스 그레이", "Space Gray", "스페이스그레이"),
    "yellow nickel": ("옐로우/니켈", "Yellow/Nickel", "옐로우"),
    "gold nickel": ("골드/니켈", "Gold/Nickel", "골드"),
    "prussian blue": ("프러시안 블루", "Prussian Blue", "블루"),
}
SELLER_WORDS = ("[무료배송]", "정품", "자급제", "새상품", "당일발송", "국내정품", "미개봉", "[공식인증]", "빠른배송",
                "특가", "(관부가세 포함)")


@dataclass(frozen=True)
class Line:
    """A product line; a family is one generation ``n`` and one tier of it."""

    brand: str
    category: tuple[str, ...]  # category words, added to some offers
    names: tuple[str, ...]  # line name spellings ("" for none), the catalog's first
    models: tuple[str, ...]  # model label spellings with {n} (generation) and {tier}
    first: int  # first generation
    axes: tuple[tuple[str, tuple], ...]  # (kind, values) that vary inside a family
    tiers: tuple[tuple[str, ...], ...] = (("",),)  # per tier its spellings, each with its own leading space or none
    code: str = ""  # maker code with {n}, {t} (tier index), {tier}, {size}, {L} (generation letter)
    generations: int | None = None  # None: no end


PHONE, LAPTOP, TV = ("스마트폰", "휴대폰", "핸드폰"), ("노트북", "랩탑"), ("TV", "티비", "스마트TV")
LINES = (
    Line("samsung", PHONE, ("갤럭시", "Galaxy"), ("S{n}{tier}",), 22,
         (("capacity", (256, 512, 1024)), ("color", ("onyx black", "marble gray", "cobalt violet", "amber yellow"))),
         (("",), (" 플러스", " Plus", "+", "플러스"), (" 울트라", " Ultra", "울트라")), "SM-S9{n}{t}N"),
    Line("samsung", PHONE, ("갤럭시", "Galaxy"), ("A{n}",), 15, (("capacity", (128, 256)), ("color", ("black", "white", "blue"))),
         code="SM-A{n}5N"),
    Line("samsung", PHONE, ("갤럭시", "Galaxy"), ("Z플립{n}", "Z 플립{n}", "Z Flip{n}"), 4,
         (("capacity", (256, 512)), ("color", ("mint", "graphite", "lavender", "amber yellow"))), code="SM-F7{n}1N"),
    Line("apple", PHONE, ("아이폰", "iPhone"), ("{n}{tier}",), 13,
         (("capacity", (128, 256, 512, 1024)), ("color", ("black", "blue", "pink", "natural titanium"))),
         (("",), (" 플러스", " Plus"), (" 프로", " Pro", "프로"), (" 프로 맥스", " Pro Max", " 프로맥스"))),
    Line("xiaomi", PHONE, ("레드미 노트", "Redmi Note", "홍미노트"), ("{n}{tier}",), 11,
         (("capacity", (128, 256)), ("color", ("midnight black", "ocean blue", "mint green"))), (("",), (" 프로", " Pro", "프로"))),
    Line("samsung", ("무선이어폰", "블루투스 이어폰"), ("갤럭시 버즈", "Galaxy Buds"), ("{n}{tier}",), 2,
         (("color", ("graphite", "white", "bora purple")),), (("",), (" 프로", " Pro", "프로")), "SM-R{n}{t}0"),
    Line("sony", ("무선이어폰", "노이즈캔슬링 이어폰"), ("",), ("WF-1000XM{n}",), 4, (("color", ("black", "silver")),)),
    Line("sony", ("헤드폰", "무선 헤드폰"), ("",), ("WH-1000XM{n}",), 4, (("color", ("black", "silver", "midnight blue")),)),
    Line("lg", LAPTOP, ("그램", "gram", "LG그램"), ("{tier} {n}", "{tier} {n}년형"), 2022,
         (("config", ((16, 512), (16, 1024), (32, 1024))), ("color", ("snow white", "obsidian black", "charcoal gray"))),
         (("14",), ("16",), ("17",)), "{tier}Z90{L}"),
    Line("apple", LAPTOP, ("맥북 에어", "MacBook Air", "맥북에어"), ("{tier} M{n}",), 2,
         (("capacity", (256, 512, 1024)), ("color", ("midnight", "starlight", "silver", "space gray"))), (("13",), ("15",))),
    Line("samsung", ("태블릿", "태블릿PC"), ("갤럭시 탭", "Galaxy Tab", "갤럭시탭"), ("S{n}{tier}",), 8,
         (("capacity", (128, 256, 512)), ("color", ("graphite", "beige", "silver"))),
         (("",), (" 플러스", " Plus", "+", "플러스"), (" 울트라", " Ultra", "울트라")), "SM-X{n}{t}0N"),
    Line("samsung", ("스마트워치", "워치"), ("갤럭시 워치", "Galaxy Watch", "갤럭시워치"), ("{n}",), 5,
         (("length", (40, 44)), ("color", ("graphite", "silver", "gold")))),
    Line("samsung", TV, ("QLED", "큐엘이디"), ("{tier} {n}년형", "{tier} {n}"), 2022, (("size", (55, 65, 75, 85)),),
         (("Q60",), ("Q70",), ("Q80",)), "KQ{size}{tier}{L}AFXKR"),
    Line("lg", TV, ("올레드", "OLED", "올레드 evo"), ("{tier}{n}",), 2, (("size", (55, 65, 77, 83)),),
         (("C",), ("G",)), "OLED{size}{tier}{n}KNA"),
    Line("dyson", ("무선청소기", "청소기", "스틱청소기"), ("",), ("V{n} 디텍트", "V{n} Detect", "V{n}"), 11,
         (("color", ("yellow nickel", "gold nickel", "prussian blue")),)),
    Line("nongshim", ("생수", "먹는샘물"), ("백산수",), ("",), 1, (("volume", ((500, 20), (2000, 6))),), generations=1),
    Line("cj", ("냉동만두", "만두"), ("비비고 왕교자", "비비고 왕교자만두"), ("",), 1, (("weight", (1050, 2100)),), generations=1),
)


@dataclass(frozen=True)
class Product:
    product_id: str
    line: Line
    n: int
    tier: int
    specs: tuple[tuple[str, object], ...]  # (kind, value) per axis


def make_catalog(n_products: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(catalog, offers)``: catalog ``product_id, title``; offers ``offer_id, title, product_id`` (the true match).

    A product id is ``<family>-<variant>``: products sharing the part before the dash are
    one family and differ only in their specs. Each product has one to three offers.
    """
    rng = np.random.default_rng(seed)
    products = list(itertools.islice(_products(rng), n_products))
    catalog = pd.DataFrame({"product_id": [p.product_id for p in products], "title": [_catalog_title(p) for p in products]})
    offers = [(_offer_title(p, rng), p.product_id) for p in products for _ in range(rng.integers(1, 4))]
    offers = [offers[i] for i in rng.permutation(len(offers))]
    return catalog, pd.DataFrame(
        {"offer_id": [f"o{i:06d}" for i in range(len(offers))], "title": [t for t, _ in offers], "product_id": [p for _, p in offers]}
    )


def _products(rng: np.random.Generator) -> Iterator[Product]:
    """Whole families, a round of every line's next generation at a time, lines in random order."""
    family = itertools.count()
    for round_ in itertools.count():
        for line in (LINES[i] for i in rng.permutation(len(LINES))):
            if line.generations is not None and round_ >= line.generations:
                continue
            for tier in range(len(line.tiers)):
                number = next(family)
                axes = [[(kind, value) for value in _subset(values, rng)] for kind, values in line.axes]
                for variant, specs in enumerate(itertools.product(*axes)):
                    yield Product(f"p{number:05d}-{variant:02d}", line, line.first + round_, tier, specs)


def _subset(values: tuple, rng: np.random.Generator) -> list:
    """Two or more of an axis's values, in their order."""
    size = int(rng.integers(min(2, len(values)), len(values) + 1))
    return [values[i] for i in sorted(rng.choice(len(values), size, replace=False))]


def _catalog_title(product: Product) -> str:
    line = product.line
    words = [BRANDS[line.brand][0], line.names[0], _model(product, 0, 0)]
    words += [_spell(kind, value)[0] for kind, value in product.specs]
    return _join([*words, _code(product)])


def _offer_title(product: Product, rng: np.random.Generator) -> str:
    line = product.line
    model = _model(product, rng.integers(len(line.models)), rng.integers(len(line.tiers[product.tier])))
    name = _pick(line.names, rng)
    glue = rng.random() < 0.3 and name and ("가" <= name[-1] <= "힣" or model[:1].isdigit())  # 갤럭시S24, iPhone15, not GalaxyS24
    name = ("" if glue else " ").join([name, model])
    head = [_pick(BRANDS[line.brand], rng) if rng.random() < 0.85 else "", name]
    rest = [_pick(_spell(kind, value), rng) for kind, value in product.specs]
    rest += [_pick(line.category, rng) if rng.random() < 0.4 else "", _code(product) if rng.random() < 0.5 else ""]
    rest += [str(word) for word in rng.choice(SELLER_WORDS, rng.integers(0, 3), replace=False)]
    if rng.random() < 0.5:
        rest = [rest[i] for i in rng.permutation(len(rest))]
    if rng.random() < 0.1:
        head.reverse()
    return _join(head + rest)


def _pick(options: tuple[str, ...], rng: np.random.Generator) -> str:
    return options[rng.integers(len(options))]


def _model(product: Product, spelling: int, tier_spelling: int) -> str:
    return product.line.models[spelling].format(n=product.n, tier=product.line.tiers[product.tier][tier_spelling])


def _code(product: Product) -> str:
    line, tier = product.line, product.line.tiers[product.tier][0].strip()
    size = dict(product.specs).get("size", "")
    letter = chr(ord("A") + (product.n - line.first) % 26)
    return line.code.format(n=product.n, t=product.tier, tier=tier, size=size, L=letter)


def _spell(kind: str, value) -> tuple[str, ...]:
    """How sellers write one spec value, the catalog's spelling first."""
    if kind == "color":
        return COLORS[value]
    if kind == "capacity":
        return _capacity(value)
    if kind == "config":
        ram, storage = (_capacity(gb) for gb in value)
        return f"{ram[0]} {storage[0]}", f"RAM {ram[0]} SSD {storage[0]}", f"{ram[2]} {storage[2]}", f"{ram[0]}/{storage[0]}"
    if kind == "size":
        return f"{value}인치", f"{value}형", f"{value} 인치", f"{value}inch"
    if kind == "length":
        return f"{value}mm", f"{value} mm", f"{value}MM"
    if kind == "volume":
        ml, count = value
        if ml < 1000:
            return f"{ml}ml {count}병", f"{ml}mlx{count}", f"{ml}ML {count}개"
        return f"{ml / 1000:g}L {count}병", f"{ml / 1000:g}리터 x {count}병", f"{ml}ml {count}개"
    if kind == "weight":
        return f"{value / 1000:g}kg", f"{value}g", f"{value / 1000:g} kg", f"{value / 1000:g}키로"
    raise ValueError(f"unknown spec kind {kind!r}")


def _capacity(gb: int) -> tuple[str, ...]:
    if gb >= 1024:
        tb = gb // 1024
        return f"{tb}TB", f"{tb} TB", f"{tb}테라", f"{tb}tb"
    return f"{gb}GB", f"{gb} GB", f"{gb}기가", f"{gb}G", f"{gb}gb"


def _join(words: list[str]) -> str:
    return " ".join(" ".join(words).split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=20, help="number of catalog products (default 20)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    catalog, offers = make_catalog(args.products, args.seed)
    pd.set_option("display.width", 200)
    print(catalog.to_string(index=False), end="\n\n")
    print(offers.sort_values("product_id").to_string(index=False))


if __name__ == "__main__":
    main()
