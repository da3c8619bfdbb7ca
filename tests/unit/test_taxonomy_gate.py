"""The on-topic gate (keywords from the taxonomy's topic section) on near-topic negatives.

All texts are SAMPLE DATA written for these tests, not news.
"""

from __future__ import annotations

import pytest

from pipeline.classify.gate import topic_gate
from pipeline.classify.sentences import split_sentences
from pipeline.taxonomy import load_taxonomy

TOPIC = load_taxonomy().topic


def gate(title: str, text: str):
    return topic_gate(title, split_sentences(text), TOPIC)


ON_TOPIC = [
    ("North Korean troops reach the Kursk front",
     "Thousands of North Korean soldiers have arrived in Russia's Kursk region. Officials in Seoul "
     "say Pyongyang sent them under its treaty with Moscow. They are expected to fight soon."),
    ("Nordkoreanische Soldaten in Russland",
     "Nordkorea hat nach Angaben aus Seoul Tausende Soldaten nach Russland geschickt. Die Truppen "
     "sollen in der Region Kursk an der Seite Moskaus kämpfen."),
    ("Binh sĩ Triều Tiên tại Nga",
     "Triều Tiên đã gửi hàng nghìn binh sĩ đến Nga. Các binh sĩ này có thể tham chiến ở Ukraine."),
]

NEAR_TOPIC = [
    ("Fighting continues near Kursk",
     "Ukrainian and Russian forces exchanged artillery fire in the Kursk region. Moscow said it "
     "had retaken two villages. Kyiv said its troops were holding their positions."),
    ("Pyongyang fires a ballistic missile",
     "North Korea launched a ballistic missile into the sea on Monday. Kim Jong Un watched the "
     "launch, state media said. Seoul and Tokyo condemned the test."),
    ("Foreign volunteers fight for Ukraine",
     "Volunteers from Colombia and Georgia are fighting for Ukraine. Russia has also recruited "
     "fighters from Nepal. Their numbers are unclear."),
    ("Moscow and Minsk sign a security treaty",
     "Russia and Belarus signed a treaty on security guarantees. The pact covers nuclear weapons "
     "stationed in Belarus. Putin called it a milestone."),
]


@pytest.mark.parametrize(("title", "text"), ON_TOPIC)
def test_on_topic_in_three_languages(title, text):
    result = gate(title, text)
    assert result.on_topic and result.score >= TOPIC.threshold and result.cooccurring >= 1


@pytest.mark.parametrize(("title", "text"), NEAR_TOPIC)
def test_near_topic_negatives_are_rejected(title, text):
    result = gate(title, text)
    assert not result.on_topic and result.score < TOPIC.threshold


def test_a_single_passing_mention_in_a_long_article_is_not_enough():
    filler = " ".join(f"Ukraine reported new drone strikes on day {i} of the month." for i in range(30))
    text = filler + " Some reports say North Korean soldiers fight alongside Russian troops."
    result = gate("Drone strikes continue", text)
    assert result.cooccurring == 1 and not result.on_topic


def test_empty_article_is_off_topic_with_zero_score():
    result = gate("", "")
    assert not result.on_topic and result.score == 0.0 and result.sentences == 0


def test_an_analysis_piece_that_names_russia_sparingly_is_on_topic():
    """SAMPLE DATA: the deployment is discussed over several sentences, the war named once or
    twice; a partner mention two sentences away still ties them to the topic."""
    title = "What a modern war teaches the Korean People's Army"
    text = (
        "The Korean People's Army has troops that have never fought a real war. "
        "Its drills still imagine a conflict that ended seventy years ago. "
        "The front around Kursk changes that. "
        "Drones, jamming and fast artillery are new to the men who arrive there. "
        "Pyongyang sees its soldiers learning lessons no exercise could teach. "
        "Officers who return will pass those lessons on at home. "
        "Analysts expect the experience to shape training for years. "
        "Some of it may be aimed at the South."
    )
    wide = gate(title, text)
    assert wide.on_topic, wide
    assert wide.cooccurring >= 2
