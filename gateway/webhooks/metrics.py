"""Webhook delivery metrics, in the gateway's registry (served at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry):
        r = registry
        self.deliveries = Counter("memstream_webhook_deliveries_total",
                                  "Delivery attempts by webhook and outcome (ok, failed, dead_lettered)",
                                  ["webhook", "outcome"], registry=r)
        self.post_seconds = Histogram("memstream_webhook_post_seconds", "One delivery POST, sent to answered",
                                      ["webhook"], registry=r, buckets=_SECONDS)
        self.lag_seconds = Histogram("memstream_webhook_lag_seconds",
                                     "Journal commit to delivered (2xx), per event", ["webhook"], registry=r,
                                     buckets=_SECONDS)
        self.lag_events = Gauge("memstream_webhook_lag_events",
                                "Events committed but not yet delivered, summed over owners (at the last scan)",
                                ["webhook"], registry=r)
        self.dead_lanes = Gauge("memstream_webhook_dead_lanes",
                                "Owners whose deliveries stopped after too many failures (replay to resume)",
                                ["webhook"], registry=r)

    def forget(self, webhook_id: str) -> None:
        """A deleted webhook's series go too."""
        for metric in (self.lag_events, self.dead_lanes, self.post_seconds, self.lag_seconds):
            try:
                metric.remove(webhook_id)
            except KeyError:
                pass
        for outcome in ("ok", "failed", "dead_lettered"):
            try:
                self.deliveries.remove(webhook_id, outcome)
            except KeyError:
                pass
