import importlib.util
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from kbatch.analyzers.specs import extract_specs, spec_conflicts

pytest.importorskip("mecab_ko")

CATALOG = Path(__file__).resolve().parents[1] / "bench" / "catalog.py"


def specs(*titles: str) -> list[frozenset[str]]:
    return extract_specs(list(titles))


def test_storage_spellings_read_the_same():
    spellings = specs("갤럭시 S24 256GB", "갤럭시 S24 256 GB", "갤럭시S24 256기가", "Galaxy S24 256G", "갤럭시 S24 256gb 블랙")
    assert all("capacity:256gb" in found for found in spellings)
    assert specs("아이폰 15 프로 1TB", "아이폰15 프로 1테라") == [frozenset({"series:15", "tier:pro", "capacity:1tb"})] * 2


def test_other_units_are_normalized():
    tv, tv_other, water, water_other, dumplings, dumplings_other = specs(
        "LG 올레드 65인치", "LG 올레드 65형", "백산수 2L 6병", "백산수 2000ml", "비비고 왕교자 1.05kg", "비비고 왕교자 1050g"
    )
    assert "size:65in" in tv & tv_other
    assert "volume:2000ml" in water & water_other
    assert "weight:1050g" in dumplings & dumplings_other


def test_5g_is_a_network_and_8gb_ram_is_memory():
    (phone,) = specs("갤럭시 S24 5G 8GB 256GB 자급제")
    assert {"capacity:256gb", "memory:8gb"} <= phone
    assert not any(spec.startswith("weight") for spec in phone)


def test_s24_and_s23_conflict():
    s24, s23 = specs("삼성 갤럭시 S24 256GB 블랙", "삼성 갤럭시 S23 256GB 블랙")
    assert "model:s24" in s24
    assert spec_conflicts(s24, s23) == 1


def test_colors_agree_across_scripts_and_synonyms():
    korean, english, plain = specs("갤럭시 S24 256GB 블랙", "Galaxy S24 256GB Black", "갤럭시 S24 256GB 검정색")
    assert korean == english == plain
    assert spec_conflicts(korean, english) == 0


def test_black_and_white_conflict():
    black, white = specs("아이폰 15 128GB 블랙", "아이폰 15 128GB 화이트")
    assert spec_conflicts(black, white) == 1


def test_a_spec_missing_on_one_side_is_no_conflict():
    full, short = specs("삼성 갤럭시 S24 울트라 512GB 티타늄 블랙 SM-S928N", "갤럭시 S24 울트라")
    assert spec_conflicts(full, short) == 0
    assert spec_conflicts(frozenset(), full) == 0


def test_one_shared_color_of_several_is_no_conflict():
    assert spec_conflicts(frozenset({"color:black", "color:white"}), frozenset({"color:white"})) == 0


def test_maker_codes_lose_case_and_hyphens():
    phone, headphones, tv = specs("SM-S921N 갤럭시 S24", "소니 WH-1000XM5 실버", "LG 올레드 OLED65C3KNA")
    assert {"code:sms921n", "model:s24"} <= phone
    assert "code:wh1000xm5" in headphones
    assert "code:oled65c3kna" in tv
    other_headphones = specs("Sony WH-1000XM4 Silver")[0]
    assert spec_conflicts(headphones, other_headphones) == 1


def test_series_numbers_match_in_either_script_and_spacing():
    korean, glued, english, older = specs("아이폰 15 프로", "아이폰15프로", "iPhone15 Pro", "아이폰 14 프로")
    assert korean == glued == english == frozenset({"series:15", "tier:pro"})
    assert spec_conflicts(korean, older) == 1


def test_tiers_tell_apart_pro_and_pro_max():
    pro, pro_max, plus = specs("아이폰 15 프로 256GB", "iPhone 15 Pro Max 256GB", "갤럭시 S24+ 256GB")
    assert spec_conflicts(pro, pro_max) == 1
    assert "tier:plus" in plus


def test_words_with_a_color_inside_are_no_color():
    (found,) = specs("샤오미 레드미 노트13 블루투스 이어폰 화이트닝 크림")
    assert not any(spec.startswith("color") for spec in found)


def test_titanium_gives_way_to_the_other_color():
    black, natural = specs("아이폰 15 프로 블랙 티타늄", "아이폰 15 프로 내추럴 티타늄")
    assert "color:black" in black and "color:titanium" not in black
    assert spec_conflicts(black, natural) == 1


def load_catalog_module():
    if "bench_catalog" not in sys.modules:  # registered before it runs: its dataclasses look themselves up
        spec = importlib.util.spec_from_file_location("bench_catalog", CATALOG)
        sys.modules["bench_catalog"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["bench_catalog"])
    return sys.modules["bench_catalog"]


def test_catalog_offers_share_the_specs_of_their_true_product_only():
    catalog, offers = load_catalog_module().make_catalog(400, seed=0)
    assert len(catalog) == 400 and catalog["product_id"].is_unique
    assert set(offers["product_id"]) <= set(catalog["product_id"])
    product_specs = dict(zip(catalog["product_id"], extract_specs(catalog["title"].tolist()), strict=True))
    families = defaultdict(list)
    for product_id in catalog["product_id"]:
        families[product_id.split("-")[0]].append(product_id)
    agree = wrong = wrong_conflicting = 0
    for offer, true_id in zip(extract_specs(offers["title"].tolist()), offers["product_id"], strict=True):
        agree += spec_conflicts(offer, product_specs[true_id]) == 0
        others = [product_id for product_id in families[true_id.split("-")[0]] if product_id != true_id]
        wrong += len(others)
        wrong_conflicting += sum(spec_conflicts(offer, product_specs[other]) > 0 for other in others)
    assert agree / len(offers) >= 0.98
    assert wrong > len(offers)  # most offers have several near-identical wrong products
    assert wrong_conflicting / wrong >= 0.95


def test_catalog_is_deterministic_per_seed():
    make_catalog = load_catalog_module().make_catalog
    first, again, other = make_catalog(50, seed=1), make_catalog(50, seed=1), make_catalog(50, seed=2)
    assert first[0].equals(again[0]) and first[1].equals(again[1])
    assert not first[1].equals(other[1])
