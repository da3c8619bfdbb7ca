"""Bulk-load settings of a big run: the articles and feeds indices' refresh paused while it writes."""

from __future__ import annotations

import logging
import sys
from typing import Any

from pipeline.es.client import mapped_errors
from pipeline.settings import Settings

log = logging.getLogger(__name__)
BULK_LOAD_MIN_FEEDS = 200  # a run this big pauses the articles index's once-a-second refresh
BULK_LOAD_REFRESH = "30s"  # while it writes (not -1: a run killed midway leaves a working index)


class RefreshPause:
    """Pause the periodic refresh of the articles and feeds indices while a big run writes, and
    put it back after, even when the run fails. A refresh a second makes a new segment a second
    (the feeds index gets a state per feed), and merging them cost Elasticsearch a good share of a
    big run's CPU; the run ends with an explicit refresh of both anyway.

    A value found at BULK_LOAD_REFRESH is one a killed run left behind: the template's is restored.
    """

    KINDS = ("articles", "feeds")

    def __init__(self, es: Any, settings: Settings, *, enabled: bool) -> None:
        self.es, self.settings, self.enabled = es, settings, enabled
        self.active = False
        self.previous: dict[str, str | None] = {}  # alias -> the interval to put back

    def __enter__(self) -> RefreshPause:
        if not self.enabled:
            return self
        from pipeline.es.schema import INDEX_SPECS

        try:
            for kind in self.KINDS:
                alias = self.settings.index(kind)
                with mapped_errors(f"reading the refresh interval of {alias}"):
                    found = self.es.indices.get_settings(index=alias, name="index.refresh_interval")
                    current = [v["settings"]["index"].get("refresh_interval") for v in dict(found).values()]
                    previous = current[0] if current else None
                    if previous == BULK_LOAD_REFRESH:
                        template = INDEX_SPECS[kind].template_body(self.settings)["template"]
                        previous = template["settings"]["refresh_interval"]
                    self.es.indices.put_settings(
                        index=alias, settings={"index": {"refresh_interval": BULK_LOAD_REFRESH}}
                    )
                self.previous[alias] = previous
                self.active = True
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.active:
            return
        failed: list[Exception] = []
        for alias, previous in self.previous.items():  # every one is tried, whatever fails
            try:
                with mapped_errors(f"restoring the refresh interval of {alias}"):
                    self.es.indices.put_settings(
                        index=alias, settings={"index": {"refresh_interval": previous}}
                    )
            except Exception as error:
                failed.append(error)
                log.warning("could not restore the refresh interval of %s", alias, exc_info=True)
        if failed and exc[0] is None:
            raise failed[0]
