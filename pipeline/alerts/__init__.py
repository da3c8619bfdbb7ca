"""Novelty, claim clusters, the alert ledger and email delivery.

Public API (other engineers and the DAGs code against these names):
``process_new_claims(settings, es=None, *, now=None)``, ``send_pending(settings, es=None, *, now=None)``,
``send_digests(settings, es=None, *, day, now=None)``, ``load_subscriptions(path)`` and ``Subscription``.
"""

from pipeline.alerts.digest import send_digests
from pipeline.alerts.process import configured_subscriptions, process_new_claims, send_pending
from pipeline.alerts.subscriptions import Subscription, load_subscriptions, parse_subscriptions

__all__ = ["Subscription", "configured_subscriptions", "load_subscriptions", "parse_subscriptions",
           "process_new_claims", "send_digests", "send_pending"]
