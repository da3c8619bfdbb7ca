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
from pipeline.alerts.novelty_eval import (
    Features,
    _counts,
    _groups,
    _objective,
    bootstrap,
    metrics,
    predict,
    select,
)
from pipeline.alerts.novelty_eval import Pair as EvalPair
from pipeline.alerts.signatures import (
    claim_date,
    days_apart,
    event_conflict,
    event_match,
    event_match_across_languages,
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


def test_forces_sent_to_another_country_are_another_event_whoever_sends_them():
    to_russia = event_signature("North Korean troops have been sent to Russia, Washington confirms.")
    to_ukraine = event_signature("Seoul may send a team of military analysts to Ukraine.")
    assert to_russia.destinations == {"ru"} and to_ukraine.destinations == {"ua"}
    assert "different countries" in (event_conflict(to_russia, to_ukraine) or "")
    # The sender may be named either way: Moscow deploying Pyongyang's soldiers is the same story.
    by_moscow = event_signature("Moscow to deploy 10,000 North Korean soldiers, Kyiv says.")
    german = event_signature("Nordkorea schickt weitere Soldaten nach Russland.")
    assert by_moscow.destinations == frozenset() and german.destinations == {"ru"}
    assert event_conflict(to_russia, by_moscow) is None and event_conflict(to_russia, german) is None
    # Only an actor right behind "to" is a destination: "sent ... to help Russia" is a purpose.
    far = event_signature("Pyongyang sent soldiers last autumn, and later asked Russia for help.")
    assert far.destinations == frozenset()


def test_one_sentence_reports_one_kind_of_event():
    ratified = event_signature("Russian lawmakers ratify the defence treaty with Pyongyang")
    deployed = event_signature("The treaty comes as 11,000 North Korean soldiers are deployed in Russia.")
    assert ratified.one_sentence and deployed.one_sentence
    assert "kinds of events: treaty vs force" in (event_conflict(ratified, deployed) or "")
    shelled = event_signature("Kyiv's artillery is shelling North Korean units in the Kursk region")
    sent = event_signature("Pyongyang sent more units to the Kursk region")
    assert "attack vs force" in (event_conflict(shelled, sent) or "")
    # A longer text may name another act in passing: no conflict from that alone.
    story = event_signature("Putin thanked Kim for sending troops. Thousands of them are thought to "
                            "have been killed.")
    assert not story.one_sentence
    assert event_conflict(story, event_signature("Putin thanks Kim for the troops he sent")) is None
    # A pledge to help if attacked reports no attack.
    pledge = event_signature("The two leaders vowed to aid each other if either country is attacked")
    assert "shell" not in pledge.actions


def test_an_act_in_a_time_clause_is_background_not_the_event():
    # Invented wording of the shape met in a feed: the deployment is named only as the time since.
    fired = event_signature("Kyiv's gunners opened fire on the North Korean units last night, the first "
                            "time since they were sent to the front, an official said.")
    assert fired.actions == {"shell"}
    sent = event_signature("Pyongyang sent more units to the front")
    assert "attack vs force" in (event_conflict(fired, sent) or "")
    # The same verb outside a time clause still counts.
    both = event_signature("Kyiv fired on the units Pyongyang sent to the front")
    assert both.actions == {"shell", "deploy"}
    assert event_signature("Seit Pjöngjang Truppen entsandt hat, wächst die Sorge").actions == frozenset()


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


def test_the_first_number_of_a_story_is_an_update_a_vague_amount_is_not():
    cluster = new_cluster({"id": "c1", "text": "North Korea has sent troops to Russia.", "outlet": "wire"},
                          "2024-10-23T00:00:00Z")
    assert claim_event(parse_figures("North Korea has sent 10,000 troops to Russia."), cluster) == "update"
    vague = parse_figures("North Korea has sent thousands of troops to Russia.")
    assert vague and claim_event(vague, cluster) == "repeat"
    assert claim_event([], cluster) == "repeat"
    # Once the story has its number, the same number again is corroboration.
    counted = new_cluster({"id": "c2", "text": "North Korea has sent 10,000 troops to Russia.",
                           "outlet": "wire", "figures": [f.as_doc() for f in parse_figures(
                               "North Korea has sent 10,000 troops to Russia.")]}, "2024-10-23T00:00:00Z")
    assert claim_event(parse_figures("Some 10,000 North Korean troops are in Russia."), counted) == "repeat"


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


# Across languages: the cosine given is multilingual-e5's, and the event must be shared.
KILLED_EN = "Ukraine's military intelligence says 200 North Korean soldiers were killed in the Kursk region."
KILLED_DE = ("Nach Angaben des ukrainischen Militärgeheimdienstes wurden in der Region Kursk 200 "
             "nordkoreanische Soldaten getötet.")
KILLED_DE_DONETSK = ("Nach Angaben des ukrainischen Militärgeheimdienstes wurden in der Region Donezk 200 "
                     "nordkoreanische Soldaten getötet.")
CAPTURED_PL = "Ukraina pojmała w obwodzie kurskim dwóch żołnierzy z Korei Północnej."


def test_a_translation_is_caught_across_languages_by_its_event():
    en, de = event_signature(KILLED_EN), event_signature(KILLED_DE)
    assert event_match_across_languages(en, de)
    same, why = judge(0.86, 0.0, KILLED_EN, parse_figures(KILLED_EN), "2024-12-16", KILLED_DE,
                      parse_figures(KILLED_DE), "2024-12-16", T, cross_language=True)
    assert same, why
    # The same e5 cosine decides nothing on its own: without a shared event or figure, no merge.
    assert judge_features(0.95, 0.0, "none", None, None, False, 0.0, T, match=False,
                          cross_language=True) == (False, "not similar enough")
    # MiniLM's bars do not apply across languages (no content words are shared there) ...
    assert judge_features(0.81, 0.0, "none", None, None, False, 0.0, T, match=True, cross_language=True)[0]
    assert not judge_features(0.81, 0.0, "none", None, None, False, 0.0, T, match=False)[0]
    # ... and switched off, nothing in another language is ever the same claim.
    off = replace(T, xl_cosine_min=1.01)
    assert not judge(0.99, 0.0, KILLED_EN, [], "2024-12-16", KILLED_DE, [], "2024-12-16", off,
                     cross_language=True)[0]


def test_different_claims_in_two_languages_are_not_merged():
    # another place
    same, why = judge(0.93, 0.0, KILLED_EN, [], "2024-12-16", KILLED_DE_DONETSK, [], "2024-12-16", T,
                      cross_language=True)
    assert not same, why
    assert "places" in (event_conflict(event_signature(KILLED_EN), event_signature(KILLED_DE_DONETSK)) or "")
    # another action on the same front (killed vs captured)
    same, why = judge(0.9, 0.0, KILLED_EN, [], "2024-12-16", CAPTURED_PL, [], "2024-12-16", T,
                      cross_language=True)
    assert not same
    # the same kind of event months later is new
    same, why = judge(0.95, 0.0, KILLED_EN, [], "2024-12-16", KILLED_DE, [], "2025-04-20", T,
                      cross_language=True)
    assert not same and "days apart" in why
    # figures that differ, from different sources: never a silent repeat
    seoul = "South Korea's spy agency says North Korea has sent 3,000 troops to Russia."
    pentagon_pl = "Pentagon: Korea Północna wysłała do Rosji 10 000 żołnierzy."
    same, why = judge(0.92, 0.0, seoul, parse_figures(seoul), "2024-10-23", pentagon_pl,
                      parse_figures(pentagon_pl), "2024-10-24", T, cross_language=True)
    assert not same, why


def test_across_languages_a_place_or_a_source_stands_in_for_a_second_actor():
    a = event_signature("Two North Korean soldiers were captured in Kursk, Kyiv's intelligence said.")
    b = event_signature("Dwóch żołnierzy Korei Północnej wzięto do niewoli w obwodzie kurskim.")
    assert "capture" in a.actions & b.actions and "troops" in a.objects & b.objects
    assert event_match_across_languages(a, b) and not event_match(a, b)  # one common actor, one place
    # "military intelligence" names the Ukrainian service (a source) but no actor pattern matches it
    c = event_signature("North Korean troops were captured, the military intelligence agency said.")
    d = event_signature("Budanow: żołnierze Korei Północnej trafili do niewoli.")
    assert event_match_across_languages(c, d) and not event_match(c, d)


def test_pairs_know_when_they_cross_languages():
    assert EvalPair("a", "b", "repeat", languages=("en", "pl")).cross_language
    assert not EvalPair("a", "b", "repeat", languages=("en", "en")).cross_language
    assert not EvalPair("a", "b", "repeat").cross_language  # the team's pairs: no language given
    # Judged by e5 as novelty judges them: two languages, or one that MiniLM cannot read.
    assert EvalPair("a", "b", "repeat", languages=("pl", "pl")).by_e5
    assert EvalPair("a", "b", "repeat", languages=("en", "de")).by_e5
    assert not EvalPair("a", "b", "repeat", languages=("en", "en")).by_e5
    assert not EvalPair("a", "b", "repeat").by_e5


def test_selection_by_parts_finds_what_judging_every_pair_finds():
    """``select`` judges same- and cross-language pairs apart and adds the counts: it must pick the
    setting that judging every pair under every setting picks."""
    def f(cos: float, cross: bool, match: bool = True, gap: float = 0.5) -> Features:
        return Features(cos, 0.2, "none", None, None, False, gap, match, cross_language=cross)

    data = [("repeat", f(0.66, False)), ("different", f(0.62, False)), ("repeat", f(0.72, False)),
            ("repeat", f(0.83, True)), ("different", f(0.81, True)), ("repeat", f(0.87, True, gap=12.0)),
            ("different", f(0.9, True, match=False)), ("update", f(0.58, False))]
    pairs = [EvalPair("", "", g, ids=(str(i), f"{i}b")) for i, (g, _) in enumerate(data)]
    grid = [replace(T, cosine_min=c, xl_cosine_min=x, window_days=w)
            for c in (0.55, 0.65, 0.7) for x in (0.8, 0.82, 0.86, 1.01) for w in (3.0, 14.0)]
    gold = [g for g, _ in data]
    n_same = sum(g != "different" for g in gold)

    def brute() -> object:
        scored = [(_objective(_counts(gold, [predict(x, t)[0] for _, x in data]), n_same,
                              len(gold) - n_same, len(gold)), -i, t) for i, t in enumerate(grid)]
        return max(scored, key=lambda s: (s[0], s[1]))[2]

    chosen = select(list(zip(pairs, [x for _, x in data], strict=True)), grid)
    assert chosen == brute()
    assert chosen.xl_cosine_min == 0.82 and chosen.window_days == 14.0
