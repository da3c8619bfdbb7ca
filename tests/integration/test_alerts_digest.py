"""The daily digest against the real Elasticsearch node and a real SMTP server."""

from __future__ import annotations

from datetime import timedelta

from pipeline.alerts import process_new_claims, send_digests
from pipeline.alerts.subscriptions import Subscription
from tests.claims_support import DEPLOYED_1500, NOW, SATELLITES, claim_doc, ledger, store_claims

DIGEST = Subscription(id="daily", recipients=("daily@example.org",), mode="digest", name="Daily")
TECH_DIGEST = Subscription(id="tech-daily", recipients=("tech@example.org",), mode="digest",
                           motives=("military_technology",))
CASH_DIGEST = Subscription(id="cash-daily", recipients=("cash@example.org",), mode="digest",
                           motives=("hard_currency",))


def _store_week(es, settings):
    store_claims(es, settings, [
        claim_doc(DEPLOYED_1500, article_id="a1", outlet="northwire", motives=["combat_experience"]),
        claim_doc(SATELLITES, article_id="a2", outlet="eastern-observer",
                  motives=["military_technology", "military_technology.space"]),
        claim_doc("North Korea has shipped about 2,000 containers of artillery shells to Russia since "
                  "the summer, South Korea's defence ministry said.", article_id="a3",
                  outlet="capital-herald",
                  motives=["hard_currency"], when=NOW - timedelta(days=3)),
    ])
    process_new_claims(settings, es, now=NOW, subscriptions=[DIGEST], deliver=False)


def test_the_digest_has_text_html_and_an_inline_png_chart(es, mail_settings, smtp_server):
    _store_week(es, mail_settings)

    report = send_digests(mail_settings, es, day=NOW.date(), now=NOW, subscriptions=[DIGEST])

    assert report["delivery"]["sent"] == 1
    (msg,) = smtp_server.messages()
    assert msg["To"] == "daily@example.org"
    text = msg.get_body(preferencelist=("plain",)).get_content()
    assert "2 new or updated claim(s)" in text  # the third claim is from three days earlier
    assert "== combat_experience (1) ==" in text and "== military_technology (1) ==" in text
    assert "hard_currency: 1" in text  # but it is in the 7-day counts
    html = msg.get_body(preferencelist=("html",))
    images = [p for p in msg.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 1
    png = images[0].get_content()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
    cid = images[0]["Content-ID"].strip("<>")
    assert f'src="cid:{cid}"' in html.get_content()


def test_a_digest_rerun_for_the_same_day_sends_nothing_more(es, mail_settings, smtp_server):
    _store_week(es, mail_settings)
    send_digests(mail_settings, es, day=NOW.date(), now=NOW, subscriptions=[DIGEST])

    again = send_digests(mail_settings, es, day=NOW.date(), now=NOW + timedelta(hours=1),
                         subscriptions=[DIGEST])

    assert again["created"] == 0 and again["existing"] == 1 and again["delivery"]["sent"] == 0
    assert len(smtp_server.messages()) == 1
    assert [a["status"] for a in ledger(es, mail_settings)] == ["sent"]


def test_the_digest_honours_motive_filters_and_skips_empty_ones(es, mail_settings, smtp_server):
    _store_week(es, mail_settings)

    report = send_digests(mail_settings, es, day=NOW.date(), now=NOW,
                          subscriptions=[TECH_DIGEST, CASH_DIGEST])

    assert report["empty"] == 1  # nothing about hard currency on that day
    (msg,) = smtp_server.messages()
    assert msg["To"] == "tech@example.org"
    text = msg.get_body(preferencelist=("plain",)).get_content()
    assert "reconnaissance satellites" in text and "1,500" not in text
