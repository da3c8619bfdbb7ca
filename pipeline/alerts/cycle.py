"""One alert cycle, as the alerts DAG runs it: cluster the new claims and queue their events,
gather due events into bundles, deliver every due email.

The edge (a DAG task or a CLI command) builds the Elasticsearch client, the subscriptions and
the channel once and passes them in.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pipeline.alerts.bundles import make_bundles
from pipeline.alerts.channels import Channel
from pipeline.alerts.clustering import cluster_new_claims
from pipeline.alerts.delivery import send_pending
from pipeline.alerts.novelty import DEFAULT_THRESHOLDS, Thresholds
from pipeline.alerts.subscriptions import Subscription
from pipeline.settings import Settings

__all__ = ["process_new_claims", "bundle_and_send"]


def bundle_and_send(settings: Settings, es: Any, subscriptions: list[Subscription], *,
                    now: datetime | None = None, channel: Channel | None = None,
                    raise_on_unavailable: bool = True,
                    clock: Callable[[], datetime] | None = None) -> dict[str, Any]:
    """Bundle the queued events that are due, then deliver every due email (bundles made now,
    and earlier ones still pending). Returns the delivery report with ``bundles`` added."""
    now = now or datetime.now(UTC)
    bundles = make_bundles(settings, es, subscriptions, now=now, clock=clock)
    delivery = send_pending(settings, es, now=now, channel=channel, clock=clock,
                            raise_on_unavailable=raise_on_unavailable)
    return {**delivery, "bundles": bundles}


def process_new_claims(settings: Settings, es: Any, subscriptions: list[Subscription], *,
                       now: datetime | None = None, deliver: bool = True,
                       thresholds: Thresholds = DEFAULT_THRESHOLDS, batch_size: int = 200,
                       channel: Channel | None = None) -> dict[str, Any]:
    """Cluster every claim not yet checked, queue its events, bundle what is due, and (with
    ``deliver``) send every due email. Returns the clustering counts
    (``pipeline.alerts.clustering``), ``bundles`` (``make_bundles``) and ``delivery`` (SMTP being
    down is reported there, not raised: the emails stay pending for the next run)."""
    now = now or datetime.now(UTC)
    report = cluster_new_claims(settings, es, subscriptions, now=now, thresholds=thresholds,
                                batch_size=batch_size)
    report["bundles"] = make_bundles(settings, es, subscriptions, now=now)
    if deliver:
        report["delivery"] = send_pending(settings, es, now=now, channel=channel,
                                          raise_on_unavailable=False)
    return report
