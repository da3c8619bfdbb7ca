"""Novelty, claim clusters and their status, importance, bundles, the alert ledger and delivery.

Public API (the DAGs and the CLI code against these names; each takes the Elasticsearch client
and the subscriptions built once at the edge):
``process_new_claims(settings, es, subscriptions, *, now=None)``,
``bundle_and_send(settings, es, subscriptions, *, now=None)``,
``send_pending(settings, es, *, now=None)``,
``send_digests(settings, es, subscriptions, *, day, now=None)``,
``configured_subscriptions(settings)``, ``load_subscriptions(path)`` and ``Subscription``.
"""

from pipeline.alerts.cycle import bundle_and_send, process_new_claims
from pipeline.alerts.delivery import send_pending
from pipeline.alerts.digest import send_digests
from pipeline.alerts.subscriptions import (
    Subscription,
    configured_subscriptions,
    load_subscriptions,
    parse_subscriptions,
)

__all__ = ["Subscription", "bundle_and_send", "configured_subscriptions", "load_subscriptions",
           "parse_subscriptions", "process_new_claims", "send_digests", "send_pending"]
