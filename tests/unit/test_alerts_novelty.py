"""Pure parts of novelty: word overlap, the same-claim rule, events, and cluster bookkeeping."""

from __future__ import annotations

from dataclasses import replace

from pipeline.alerts.clusters import (
    apply_claim,
    claim_event,
    new_cluster,
)
from pipeline.alerts.novelty import (
    DEFAULT_THRESHOLDS,
    same_claim,
)
from pipeline.alerts.signatures import (
    lexical_similarity,
)
from pipeline.claims.figures import parse_figures

NOW = "2026-03-02T09:30:00.000Z"


def claim(cid: str, text: str, outlet: str, outlets: list[str] | None = None) -> dict:
    return {"id": cid, "text": text, "outlet": outlet, "outlets": outlets or [outlet],
            "article_id": f"art-{cid}",
            "motives": [], "figures": [f.as_doc() for f in parse_figures(text)], "first_seen": NOW,
            "attribution": {"kind": "official"}, "embedding": [0.0] * 4}


def test_lexical_similarity_maps_names_and_synonyms_and_ignores_numbers():
    a = "Pyongyang dispatched 1,500 soldiers to Moscow's war."
    b = "North Korea sent 3,000 troops to Russia's war."
    assert lexical_similarity(a, b) == 1.0
    assert lexical_similarity(a, "Rice prices rose in the spring.") == 0.0


def test_same_claim_rule():
    # The rule's shape with explicit bars (the shipped ones are chosen by cross-validation).
    t = replace(DEFAULT_THRESHOLDS, cosine_strict=0.90, cosine_min=0.70, lexical_min=0.30,
                cosine_figures=0.65)
    assert same_claim(0.95, 0.0, t)  # near-identical meaning, any wording
    assert same_claim(0.75, 0.5, t) and not same_claim(0.75, 0.1, t)
    assert same_claim(0.67, 0.1, t, figures="same")  # agreeing figures lower the bar
    assert not same_claim(0.85, 0.9, t, figures="disjoint")  # 1,500 troops is not 1,500 shells
    assert not same_claim(0.6, 1.0, t)


def test_events_repeat_update_and_an_old_figure_is_not_an_update():
    first = new_cluster(claim("c1", "About 1,500 troops were sent.", "wire"), NOW)
    assert claim_event(parse_figures("Some 1,500 troops were sent."), first) == "repeat"
    assert claim_event(parse_figures("Troops were sent."), first) == "repeat"
    assert claim_event(parse_figures("About 3,000 troops were sent."), first) == "update"
    updated = apply_claim(first, claim("c2", "About 3,000 troops were sent.", "wire"), "update", NOW)
    assert updated["updates"] == 1 and updated["figures"][0]["value"] == 3000
    assert updated["previous_figures"][0]["value"] == 1500
    assert claim_event(parse_figures("About 1,500 troops were sent."), updated) == "repeat"


def test_independent_and_syndicated_outlets():
    c = new_cluster(claim("c1", "About 1,500 troops were sent.", "wire", ["wire", "metro"]), NOW)
    assert c["independent_outlet_ids"] == ["wire"] and c["syndicated_outlets"] == ["metro"]
    c = apply_claim(c, claim("c2", "About 1,500 troops were sent.", "valley"), "repeat", NOW)  # verbatim
    assert c["syndicated_outlets"] == ["metro", "valley"]
    c = apply_claim(c, claim("c3", "Some 1,500 soldiers have been dispatched.", "herald"), "repeat", NOW)
    assert c["independent_outlet_ids"] == ["wire", "herald"] and c["independent_outlets"] == 2
    assert c["claim_count"] == 3 and set(c["outlets"]) == {"wire", "metro", "valley", "herald"}


def test_applying_the_same_claim_twice_changes_nothing():
    c = new_cluster(claim("c1", "About 1,500 troops were sent.", "wire"), NOW)
    twice = apply_claim(c, claim("c1", "About 1,500 troops were sent.", "wire"), "repeat", NOW)
    assert twice == c
