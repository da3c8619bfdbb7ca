"""Claim extraction from classified articles in the real Elasticsearch node, with the real
classifier and embedder, then novelty and one email per new claim (end to end)."""

from __future__ import annotations

from pipeline.alerts import process_new_claims
from pipeline.claims import extract_pending_claims
from pipeline.es.bulk import bulk_write
from pipeline.es.schema import ensure_indices
from tests.claims_support import EVERYONE, NOW

# SAMPLE ARTICLE, written for this test.
SAMPLE_TEXT = (
    "South Korea's spy agency said on Tuesday that North Korea has sent about 1,500 special forces "
    "troops to Russia's Far East. Russia is expected to pay Pyongyang about $2,000 a month for each "
    "soldier, officials said. The weather in Seoul was mild and sunny for most of the week."
)


def article(aid: str, outlet: str, **extra) -> dict:
    return {"id": aid, "source_id": outlet, "outlets": [outlet], "url": f"http://127.0.0.1:9/{aid}.html",
            "title": "Sample: troops and pay", "text": SAMPLE_TEXT, "language": "en",
            "fetched": "2026-03-02T08:00:00Z", "status": "classified", "on_topic": True, "topic_score": 0.9,
            "language_supported": True, **extra}


def test_claims_are_extracted_once_with_figures_attribution_hedges_and_embeddings(es, mail_settings,
                                                                                  smtp_server):
    settings = mail_settings
    ensure_indices(es, settings)
    bulk_write(es, settings.index("articles"), [
        article("art-1", "northwire"),
        article("art-dup", "capital-herald", duplicate_of="art-1"),
        article("art-off", "capital-herald", on_topic=False),
        article("art-pending", "capital-herald", status="extracted"),
    ], refresh=True)

    report = extract_pending_claims(settings, es, now=NOW)

    assert report["articles"] == 1 and report["article_ids"] == ["art-1"] and report["failed"] == []
    es.indices.refresh(index=settings.index("claims"))
    resp = es.search(index=settings.index("claims"), size=20, source={"exclude_vectors": False})
    hits = resp["hits"]["hits"]
    claims = {h["_source"]["text"]: h["_source"] for h in hits}
    assert len(claims) == report["created"] >= 2
    assert not any("weather" in t for t in claims)
    troops = next(c for t, c in claims.items() if "1,500" in t)
    assert troops["attribution"]["kind"] == "intelligence" and troops["outlet"] == "northwire"
    assert [(f["kind"], f["value"], f["qualifier"]) for f in troops["figures"]] == [("troops", 1500, "about")]
    assert len(troops["embedding"]) == 384 and troops["novelty_checked"] is False
    pay = next(c for t, c in claims.items() if "$2,000" in t)
    assert pay["hedged"] and "is expected to" in pay["hedges"]
    assert (pay["figures"][0]["kind"], pay["figures"][0]["period"]) == ("usd", "month")
    marked = es.get(index=settings.index("articles"), id="art-1")["_source"]
    assert marked["claims_extracted"] is True

    again = extract_pending_claims(settings, es, now=NOW)
    assert again["articles"] == 0 and again["created"] == 0

    alerts = process_new_claims(settings, es, now=NOW, subscriptions=[EVERYONE])
    # one article's claims arrive in one email (an immediate subscription's bundle)
    assert alerts["new"] == len(claims) and alerts["events_created"] == len(claims)
    assert alerts["bundles"]["bundles"] == 1 and alerts["delivery"]["sent"] == 1
    (msg,) = smtp_server.messages()
    body = msg.get_body(preferencelist=("plain",)).get_content()
    assert all(" ".join(text.split()[:6]) in " ".join(body.split()) for text in claims)
    assert body.count("Why it is here:") == len(claims)
