"""Event-aware, time-aware novelty: the pure parts (signatures, conflicts, the time window, the
decision on precomputed parts, the pair metrics). SAMPLE sentences, written for these tests."""

from __future__ import annotations

from dataclasses import replace

from pipeline.alerts.clusters import (
    claim_event,
    new_cluster,
)
from pipeline.alerts.novelty import (
    DEFAULT_THRESHOLDS,
    judge,
    judge_features,
)
from pipeline.alerts.novelty_eval import Pair as EvalPair
from pipeline.alerts.novelty_eval import _groups, bootstrap, metrics
from pipeline.alerts.signatures import (
    claim_date,
    days_apart,
    event_conflict,
    event_match,
    event_signature,
    sources_compatible,
)
from pipeline.claims.figures import parse_figures

T = DEFAULT_THRESHOLDS


def test_signature_finds_actions_agents_objects_sources_and_places():
    sig = event_signature("Lawmakers in Moscow ratified the defence treaty with Pyongyang on Wednesday, "
                          "Ukraine's president Zelensky said, as troops gathered in Kursk.")
    assert {"ratify"} <= sig.actions and ("ratify", "ru") in sig.agents
    assert {"treaty", "troops"} <= sig.objects and "kursk" in sig.places
    assert "ua/zelensky" in sig.sources and "ua" not in sig.sources
    assert {"nk", "ru", "ua"} <= sig.actors
    # "Pyongyang" names the government here, not a place.
    assert "pyongyang" not in event_signature("Pyongyang denied sending anyone.").places
    assert "pyongyang" in event_signature("The two leaders met in Pyongyang.").places


def test_stages_of_one_story_are_different_events():
    signed = event_signature("The two leaders signed a mutual defence pact.")
    in_force = event_signature("The mutual defence pact between the two countries entered into force.")
    assert "treaty" in (event_conflict(signed, in_force) or "")
    captured = event_signature("Kyiv captured two North Korean soldiers.")
    swap = event_signature("Kyiv offered to swap the two captured North Korean soldiers for its own men.")
    assert "pow" in (event_conflict(captured, swap) or "")
    sent = event_signature("Pyongyang sent more soldiers to the front.")
    pulled = event_signature("Pyongyang pulled back its soldiers from the front.")
    assert "force" in (event_conflict(sent, pulled) or "")


def test_the_same_act_by_another_actor_and_another_object_are_different():
    ru = event_signature("Russian senators ratify the defence treaty.")
    nk = event_signature("North Korea ratifies the defence treaty.")
    assert "different actors" in (event_conflict(ru, nk) or "")
    troops = event_signature("North Korean troops have been deployed near Kursk.")
    engineers = event_signature("North Korean engineers have been deployed near Kursk.")
    assert "objects" in (event_conflict(troops, engineers) or "")


def test_paraphrases_and_translations_keep_their_event():
    en = event_signature("Putin and Kim sign a partnership treaty in Pyongyang.")
    de = event_signature("Putin und Kim unterzeichnen in Pjöngjang ein Partnerschaftsabkommen.")
    assert en.actions == de.actions == {"sign"} and en.places == de.places == {"pyongyang"}
    assert event_conflict(en, de) is None
    a = event_signature("About 1,500 North Korean troops were sent, Seoul's spy agency said.")
    b = event_signature("South Korea says Pyongyang dispatched roughly 1,500 soldiers.")
    assert event_conflict(a, b) is None and sources_compatible(a.sources, b.sources)


def test_source_compatibility():
    assert sources_compatible(frozenset({"ua"}), frozenset({"ua/hur"})) is True
    assert sources_compatible(frozenset({"ua/zelensky"}), frozenset({"ua/hur"})) is False
    assert sources_compatible(frozenset({"sk"}), frozenset({"usa"})) is False
    assert sources_compatible(frozenset(), frozenset({"usa"})) is None


def test_dates():
    assert days_apart("2024-06-19T10:00:00Z", "2024-06-21T10:00:00+00:00") == 2.0
    assert days_apart("2024-06-19", "2024-10-19T00:00:00Z") == 122.0
    assert days_apart(None, "2024-06-19") is None and days_apart("not a date", "2024-06-19") is None
    assert claim_date({"published": "2024-06-19", "first_seen": "2026-01-01"}) == "2024-06-19"
    assert claim_date({"first_seen": "2026-01-01"}) == "2026-01-01"


SUMMONED_JUNE = "The foreign ministry summoned the Russian ambassador over the defence pact."
SUMMONED_OCT = "The foreign ministry summoned Russia's ambassador to protest against the pact."


def test_the_same_kind_of_event_months_apart_is_new():
    same, why = judge(0.95, 0.6, SUMMONED_JUNE, [], "2024-06-20", SUMMONED_OCT, [], "2024-10-21", T)
    assert not same and "days apart" in why
    same, why = judge(0.95, 0.6, SUMMONED_JUNE, [], "2024-06-20", SUMMONED_OCT, [], "2024-06-21", T)
    assert same, why
    # No dates (the team's sentences): the window cannot apply.
    assert judge(0.95, 0.6, SUMMONED_JUNE, [], None, SUMMONED_OCT, [], None, T)[0]


def test_figures_from_different_sources_are_never_a_silent_repeat():
    seoul = "North Korea has sent 3,000 troops to Russia, South Korea's spy agency said."
    pentagon = "North Korea has sent 10,000 troops to Russia, the Pentagon said."
    figures_a, figures_b = parse_figures(seoul), parse_figures(pentagon)
    same, why = judge(0.92, 0.7, seoul, figures_a, "2024-10-23", pentagon, figures_b, "2024-10-28", T)
    assert not same and "different sources" in why
    # The same source revising its figure three weeks later is an update.
    later = "North Korea has now sent 11,000 troops to Russia, South Korea's spy agency said."
    same, why = judge(0.92, 0.7, seoul, figures_a, "2024-10-23", later, parse_figures(later), "2024-11-14", T)
    assert same and "revised figure" in why
    cluster = new_cluster({"id": "c1", "text": seoul, "outlet": "wire",
                           "figures": [f.as_doc() for f in figures_a]}, "2024-10-23T00:00:00Z")
    assert claim_event(parse_figures(later), cluster) == "update"
    # ... but not months later.
    months = judge(0.92, 0.7, seoul, figures_a, "2024-10-23", later, parse_figures(later), "2025-03-01", T)
    assert not months[0]


def test_a_first_figure_for_a_claim_that_had_none_is_corroboration():
    cluster = new_cluster({"id": "c1", "text": "North Korea has sent troops to Russia.", "outlet": "wire"},
                          "2024-10-23T00:00:00Z")
    assert claim_event(parse_figures("North Korea has sent 10,000 troops to Russia."), cluster) == "repeat"
    assert claim_event(parse_figures("North Korea has sent 10,000 shells to Russia."), cluster) == "repeat"


def test_judge_features_order_and_switches():
    assert judge_features(0.3, 0.0, "none", None, None, False, 0.0, T) == (False, "not similar enough")
    assert judge_features(0.9, 0.5, "none", "different places: a vs b", None, False, 0.0, T)[0] is False
    no_split = replace(T, split_sources=False)
    assert judge_features(0.9, 0.5, "none", None, False, False, 1.0, no_split)[0] is True
    assert judge_features(0.9, 0.5, "none", None, False, False, 1.0, T)[0] is False


def test_cluster_dates_follow_publication_not_fetch_time():
    c = new_cluster({"id": "c1", "text": "x", "outlet": "w", "published": "2024-06-19T08:00:00Z",
                     "first_seen": "2026-03-02T09:00:00Z"}, "2026-03-02T09:30:00Z")
    assert c["first_seen"] == c["last_seen"] == "2024-06-19T08:00:00Z"


def test_metrics_bootstrap_and_groups():
    gold = ["repeat", "update", "different", "different"]
    pred = ["repeat", "repeat", "different", "update"]
    m = metrics(gold, pred)
    assert m["recall"] == 1.0 and m["merge_rate"] == 0.5 and m["accuracy"] == 0.5
    ci = bootstrap(gold, pred, rounds=200)
    assert ci["accuracy"] is not None and 0.0 <= ci["accuracy"][0] <= 0.5 <= ci["accuracy"][1] <= 1.0
    pairs = [EvalPair("", "", "repeat", ids=ids) for ids in (("a", "b"), ("b", "c"), ("d", "e"))]
    groups = _groups(pairs)
    assert groups[0] == groups[1] != groups[2]


def test_a_translation_of_the_same_event_on_the_same_day_may_pass_a_low_cosine():
    en = "At least 30 North Korean soldiers fighting for Russia were killed or wounded in Kursk, Kyiv said."
    pl = ("W obwodzie kurskim zginęło lub zostało rannych co najmniej 30 żołnierzy Korei Północnej "
          "walczących po stronie Rosji.")
    a, b = event_signature(en), event_signature(pl)
    assert event_match(a, b) and "kill" in a.actions & b.actions
    low_bar = replace(T, cosine_event=0.2)
    assert judge(0.25, 0.0, en, [], "2024-12-16", pl, [], "2024-12-16", low_bar)[0]
    assert not judge(0.25, 0.0, en, [], "2024-12-16", pl, [], "2024-12-16", replace(T, cosine_event=1.0))[0]
    # A week later it is another report, however alike.
    assert not judge(0.25, 0.0, en, [], "2024-12-16", pl, [], "2024-12-23", low_bar)[0]


def test_a_bad_real_pair_names_the_file_the_line_and_the_field(tmp_path):
    import json

    import pytest

    from pipeline.alerts.novelty_eval import load_real_pairs
    from pipeline.errors import ConfigError

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "news_items.jsonl").write_text(json.dumps({"id": "x1", "title": "T", "text": "S.",
                                                         "published": "2024-06-19"}) + "\n")
    (corpus / "claim_pairs.jsonl").write_text(
        json.dumps({"a": "x1", "b": "x1", "relation": "repeat"}) + "\n"
        + json.dumps({"a": "x1", "b": "x9", "relation": "repeat"}) + "\n")
    with pytest.raises(ConfigError) as err:
        load_real_pairs(tmp_path)
    assert "claim_pairs.jsonl" in str(err.value) and "line 2" in str(err.value) and "'b'" in str(err.value)
    (corpus / "claim_pairs.jsonl").write_text(json.dumps({"a": "x1", "b": "x1", "relation": "repeat"}) + "\n")
    (pair,) = load_real_pairs(tmp_path)
    assert pair.a == "T. S." and pair.a_date == "2024-06-19" and pair.group == "real"
    assert load_real_pairs(tmp_path / "absent") == []
