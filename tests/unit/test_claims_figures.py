"""Figures normalised from claim sentences (SAMPLE sentences written for these tests)."""

from __future__ import annotations

import math

import pytest

from pipeline.claims.figures import Figure, figures_relation, parse_figures


def one(text: str) -> Figure:
    figures = parse_figures(text)
    assert len(figures) == 1, figures
    return figures[0]


@pytest.mark.parametrize(("text", "kind", "value", "low", "high", "qualifier"), [
    ("Seoul says about 11,000 North Korean troops are in Kursk.", "troops", 11_000, 11_000, 11_000, "about"),
    ("Up to 12,000 soldiers could be sent next month.", "troops", 12_000, 0, 12_000, "up_to"),
    ("At least 3,000 North Korean troops have been killed or wounded.", "casualties", 3_000, 3_000,
     math.inf, "at_least"),
    ("Losses have exceeded 4,000 killed and wounded.", "casualties", 4_000, 4_000, math.inf, "more_than"),
    ("Between 10,000 and 12,000 troops are in Russia.", "troops", 11_000, 10_000, 12_000, "range"),
    ("Officials said 1,500-3,000 soldiers took part.", "troops", 2_250, 1_500, 3_000, "range"),
    ("Several hundred North Korean casualties were reported.", "casualties", None, 200, 900, "vague"),
    ("Pyongyang has shipped 3 million artillery shells.", "munitions", 3_000_000, 3_000_000, 3_000_000,
     "exact"),
    ("The launcher sits 50 miles behind the front.", "distance", 80.467, 80.467, 80.467, "exact"),
])
def test_kinds_values_and_qualifiers(text, kind, value, low, high, qualifier):
    f = one(text)
    assert (f.kind, f.qualifier) == (kind, qualifier)
    assert f.value == (pytest.approx(value) if value is not None else None)
    assert f.low == pytest.approx(low) and f.high == pytest.approx(high)


def test_dollars_keep_their_period_and_ranges_stay_ranges():
    figures = parse_figures("Each soldier is paid about $2,000 a month, or $24 million per year for the "
                            "unit, with $50 to $150 going to the soldier.")
    assert [(f.kind, f.value, f.period, f.qualifier) for f in figures] == [
        ("usd", 2000, "month", "about"), ("usd", 24_000_000, "year", "exact"), ("usd", 100, None, "range")]
    assert (figures[2].low, figures[2].high) == (50, 150)


def test_years_dates_and_unitless_numbers_are_not_figures():
    assert parse_figures("In 2024, on March 3 and Jan. 11, 2025, the 3rd brigade met 12 times.") == []


def test_a_casualty_verb_makes_soldiers_casualties_but_not_across_clauses():
    figures = parse_figures("North Korea sent 11,000 troops, of whom 4,000 were killed or wounded.")
    assert [(f.kind, f.value) for f in figures] == [("troops", 11_000), ("casualties", 4_000)]


def test_figure_relation_same_different_disjoint_none():
    a = parse_figures("about 10,000 troops were sent")
    assert figures_relation(a, parse_figures("10,000 troops were sent")) == "same"
    assert figures_relation(a, parse_figures("about 12,000 troops were sent")) == "different"
    assert figures_relation(parse_figures("1,100 casualties"),
                            parse_figures("several hundred casualties")) == "different"
    assert figures_relation(a, parse_figures("10,000 artillery shells")) == "disjoint"
    assert figures_relation(a, []) == "none"


def test_a_figure_round_trips_through_its_json_document():
    f = one("more than 600,000 soldiers have been killed or injured")
    doc = f.as_doc()
    assert doc["high"] is None  # JSON has no infinity
    assert Figure.from_dict(doc) == f


def test_seed_figures_are_read_from_the_shared_seed(shared_dir):
    """Facts from the seed (read at run time): pay per soldier per month, with its hedge kept."""
    from pipeline.classify.sentences import split_sentences

    text = (shared_dir / "seeds" / "002_3a4d68c2236e3f11.txt").read_text()
    sentence = next(s for s in split_sentences(text) if "$2,000" in s)
    usd = [f for f in parse_figures(sentence) if f.kind == "usd"]
    assert (usd[0].value, usd[0].period, usd[0].qualifier) == (2000, "month", "about")
    assert any(f.kind == "troops" and f.value == 10_000 for f in parse_figures(sentence))


def test_a_bare_number_takes_its_unit_from_the_estimate_it_ends():
    """Written for this test: the unit is named before the number ("estimate of troops ... to N")."""
    (raised,) = parse_figures("Washington raised its estimate of North Korean soldiers in the Kursk region "
                              "to more than 11,000, an official said.")
    assert (raised.kind, raised.value, raised.qualifier) == ("troops", 11000, "more_than")
    (headline,) = parse_figures("US raises estimate of North Korean troops in Kursk to 11,000")
    assert (headline.kind, headline.value) == ("troops", 11000)
    (toll,) = parse_figures("The toll of North Korean soldiers rose to 300, Seoul said.")
    assert toll.kind == "casualties"
    assert parse_figures("The estimate of costs rose to 2025 levels.") == []
