"""The page-text strategy is chosen by configuration: the default is trafilatura first with the
feed's text as the fallback, ``feed`` keeps the feed's text, and an unknown name is a clear error."""

from __future__ import annotations

import pytest

from pipeline.errors import ConfigError
from pipeline.ingest.extract import (
    EXTRACTOR_ENV,
    FeedTextOnly,
    TrafilaturaFirst,
    choose_text,
    extractor_from_environment,
    extractor_named,
)
from tests.ingest_support import STORY, page

URL = "http://127.0.0.1/world/bridge"
TEASER = "Sample data: a teaser of the bridge story."


def test_the_default_is_trafilatura_first():
    assert isinstance(extractor_from_environment({}), TrafilaturaFirst)
    assert isinstance(extractor_from_environment({EXTRACTOR_ENV: ""}), TrafilaturaFirst)
    assert isinstance(extractor_named(None), TrafilaturaFirst) and TrafilaturaFirst.reads_pages


def test_the_environment_names_the_strategy_case_insensitively():
    chosen = extractor_from_environment({EXTRACTOR_ENV: " Feed "})
    assert isinstance(chosen, FeedTextOnly) and not chosen.reads_pages


def test_an_unknown_name_is_an_error_naming_the_setting_and_the_choices():
    with pytest.raises(ConfigError) as caught:
        extractor_from_environment({EXTRACTOR_ENV: "readability"})
    message = str(caught.value)
    assert EXTRACTOR_ENV in message and "'readability'" in message
    assert "feed" in message and "trafilatura" in message


def test_trafilatura_first_is_choose_text():
    html = page("Bridge repair", STORY)
    kwargs = dict(title="Bridge repair", summary=TEASER, content="", page_html=html, page_url=URL)
    got = TrafilaturaFirst().extract(**kwargs)
    assert got == choose_text(**kwargs)
    assert got.method == "page" and "temporary ferry" in got.text


def test_feed_text_only_never_takes_the_page_text():
    html = page("Bridge repair", STORY)
    got = FeedTextOnly().extract(title="Bridge repair", summary=TEASER, content="", page_html=html,
                                 page_url=URL)
    assert got.method == "feed_summary" and got.text == TEASER and got.error is None
    longer = FeedTextOnly().extract(title="T", summary="short", content="a longer content text",
                                    page_html=None, page_url=None)
    assert longer.method == "feed_content" and longer.text == "a longer content text"
    bare = FeedTextOnly().extract(title="Only a title", summary="", content="", page_html=None, page_url=None,
                                  page_error="article page: timeout")
    assert bare.method == "title_only" and bare.text == "Only a title"
    assert bare.error == "article page: timeout"
