"""Short English sentences stay English; the declared language is a prior that only strong
evidence overrides; real German, French and Polish text is still recognised.

Every sentence here was written by the team for this test (not news)."""

from __future__ import annotations

import pytest

from pipeline.language import SHORT_LETTERS, detect_language, detect_languages

SHORT_ENGLISH = [
    "Kim Jong Un met Putin.",
    "Putin visited Pyongyang in June.",
    "Trump and Kim met again.",
    "North Korea fired a missile.",
    "Seoul says troops moved.",
    "Officials deny the report.",
    "Kim Jong Un traf Putin.",  # names dominate; without strong evidence it is English
    "Moon Jae-in met Kim.",
]

NORMAL_LENGTH = {
    "de": "Nordkorea schickt weitere Soldaten nach Russland. Die Truppen kämpfen in der Region "
          "Kursk an der Seite Moskaus, berichten Beamte aus Seoul.",
    "fr": "La Corée du Nord envoie de nouveaux soldats en Russie. Selon des responsables à Séoul, "
          "les troupes combattent dans la région de Koursk aux côtés de Moscou.",
    "pl": "Korea Północna wysyła kolejnych żołnierzy do Rosji. Według urzędników w Seulu oddziały "
          "walczą w obwodzie kurskim po stronie Moskwy.",
    "en": "North Korea is sending more soldiers to Russia. Officials in Seoul say the troops are "
          "fighting in the Kursk region alongside Moscow.",
}


@pytest.mark.parametrize("text", SHORT_ENGLISH)
def test_short_english_sentences_stay_english(text):
    assert sum(ch.isalpha() for ch in text) < SHORT_LETTERS
    assert detect_language(text).code == "en"
    assert detect_language(text, "en").code == "en"


@pytest.mark.parametrize(("code", "text"), sorted(NORMAL_LENGTH.items()))
def test_sentences_of_normal_length_are_still_detected(code, text):
    guess = detect_language(text)
    assert guess.code == code and guess.confidence >= 0.9
    # a wrong declaration does not hide a language this clear
    assert detect_language(text, "en" if code != "en" else "de").code == code


def test_a_declared_language_is_kept_for_short_text_without_strong_evidence():
    # a short name-heavy headline in a German feed stays German, however py3langid guesses it
    guess = detect_language("Kim Jong Un traf Putin.", "de")
    assert guess.code == "de" and guess.declared == "de"
    assert detect_language("Kim Jong Un met Putin.", "nl-NL").code == "nl"


def test_strong_evidence_in_a_short_text_wins():
    assert detect_language("Polska wysyła pomoc.").code == "pl"   # diacritics and 0.99
    assert detect_language("Ich bin hier und du bist dort.").code == "de"
    assert detect_language("Ich bin hier und du bist dort.", "en").code == "de"


def test_other_scripts_and_texts_without_letters():
    assert detect_language("Ким Чен Ын встретился с Путиным.").code == "ru"
    assert detect_language("2024 - 12 - 01 / 17:45").code == "und"
    assert detect_language("", "fr").code == "fr"
    assert detect_language("Kim meets Putin").code == "und"  # under MIN_CHARS: never a silent "en"


def test_batched_guesses_equal_single_ones():
    items = [(t, None) for t in SHORT_ENGLISH] + [(t, c) for c, t in NORMAL_LENGTH.items()] + [("", None)]
    assert detect_languages(items) == [detect_language(t, d) for t, d in items]
