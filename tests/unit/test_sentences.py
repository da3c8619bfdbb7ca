"""split_sentences on the kinds of mess real captures contain (written fresh, not copied)."""

from __future__ import annotations

import json

import pytest

from pipeline.classify.sentences import clean_text, is_heading, split_sentences


@pytest.mark.parametrize(("text", "expected"), [
    ("Talks ended on Thursday.The envoy flew home.", ["Talks ended on Thursday.", "The envoy flew home."]),
    ("(Yonhap)A major shift is under way.", ["A major shift is under way."]),
    ("Caption of a photo. (Korea Herald DB)North Korea said so.",
     ["Caption of a photo.", "North Korea said so."]),
    ("U.S. officials met Gen. Park on Dec. 3. They agreed.",
     ["U.S. officials met Gen. Park on Dec. 3.", "They agreed."]),
    ("The U.N. panel wrote to Dr. Lee. It was late.", ["The U.N. panel wrote to Dr. Lee.", "It was late."]),
    ("An analyst, John Q. Public, disagreed. Others did not.",
     ["An analyst, John Q. Public, disagreed.", "Others did not."]),
    ("He said it was &#x27;a good deal&#x27; for both. Then he left.",
     ["He said it was 'a good deal' for both.", "Then he left."]),
    ("It is over.”The next day came.", ["It is over.”", "The next day came."]),
    ("“We will win,” he said. “Maybe.”", ["“We will win,” he said.", "“Maybe.”"]),
    ("[LEAD]Pyongyang held a rally.[REPORT]Crowds filled the square.",
     ["Pyongyang held a rally.", "Crowds filled the square."]),
    ("Etwa 10.000 Soldaten sind dort. Das sagte Seoul.",
     ["Etwa 10.000 Soldaten sind dort.", "Das sagte Seoul."]),
    ("Khoảng 10.000 binh sĩ. Đây là thông tin mới.", ["Khoảng 10.000 binh sĩ.", "Đây là thông tin mới."]),
    ("It costs $2,000 a month. The total is 1.2 million.",
     ["It costs $2,000 a month.", "The total is 1.2 million."]),
    ("It started at 8 a.m. on Sunday and ended late.", ["It started at 8 a.m. on Sunday and ended late."]),
    ("N. Korea's leader spoke. S. Korea answered.", ["N. Korea's leader spoke.", "S. Korea answered."]),
    ("Who pays? Nobody knows! It is unclear.", ["Who pays?", "Nobody knows!", "It is unclear."]),
])
def test_splits_real_world_patterns(text, expected):
    assert split_sentences(text) == expected


def test_line_breaks_are_boundaries_and_headlines_survive():
    text = "A headline without a period\n\nFirst paragraph here. Second sentence here.\nNext line"
    assert split_sentences(text) == ["A headline without a period", "First paragraph here.",
                                     "Second sentence here.", "Next line"]


def test_page_debris_is_dropped():
    text = ("close\nclose\n\nThe story begins here.\nLink kopiert\n12\n"
            "reporter@example.com(END)\n■ tip line : 02-000-0000 ▷ email\n![img](https://x/y.png)\n"
            "### Section title\n<excerpt/>\nThe story ends here.")
    assert split_sentences(text) == ["The story begins here.", "Section title", "The story ends here."]


def test_glued_byline_and_caption_are_separated():
    out = split_sentences("Kim Jong-un / North Korean leaderRegional plans matter.")
    assert out == ["Kim Jong-un / North Korean leader", "Regional plans matter."]


def test_double_escaped_entities_are_unescaped():
    assert clean_text("N. Korea&amp;#x27;s leader") == "N. Korea's leader"


def test_empty_and_whitespace_input():
    assert split_sentences("") == []
    assert split_sentences("   \n\n ") == []


def test_every_corpus_article_splits_into_clean_sentences(shared_dir):
    """On the real captures: no entity left, no glued `word.Word`, nothing empty."""
    import re

    glued = re.compile(r"[a-z]{3}\.[A-Z][a-z]")
    lines = (shared_dir / "corpus" / "articles.jsonl").read_text(encoding="utf-8").splitlines()
    for line in lines:
        article = json.loads(line)
        sentences = split_sentences(article["text"])
        assert len(sentences) >= 3, article["id"]
        for sentence in sentences:
            assert sentence.strip() == sentence and sentence
            assert "&#x27;" not in sentence and "&quot;" not in sentence, (article["id"], sentence)
            assert not glued.search(sentence), (article["id"], sentence)


def test_seed_dateline_and_quotes_split(shared_dir):
    seed = (shared_dir / "seeds" / "000_fd0447f87cd5aaab.txt").read_text(encoding="utf-8")
    sentences = split_sentences(seed)
    assert "close" not in sentences
    # Quoted speech keeps its attribution in the same sentence.
    assert any(s.startswith("“") and "Gabuev" in s for s in sentences)
    assert 30 <= len(sentences) <= 60


@pytest.mark.parametrize("line", [
    "Outlook and Challenges",
    "Impact on Security in the Region and Beyond",
    "Table 2: Estimated deliveries by year",
    "Jane Doe / Senior Fellow, Sample Institute",
    "The Numbers",
    "Figure 3. Shells fired per day",
])
def test_headings_captions_and_labels_are_not_sentences(line):
    assert is_heading(line)


@pytest.mark.parametrize("line", [
    "Officials say the soldiers are paid about two thousand dollars a month.",
    "Why did Pyongyang agree to send its soldiers?",
    # a feed's bullet point in sentence case, without a full stop, still states a claim
    "North Korea received air-defence systems from Russia, Seoul's spy agency says",
    "The Sample Institute's Report on North Korean Troops in Russia Says They Are Paid in Cash, "
    "Food and Fuel Every Single Month of Their Deployment",
    "",
])
def test_sentences_are_not_headings(line):
    assert not is_heading(line)
