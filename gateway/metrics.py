"""Prometheus metrics of one gateway process (prometheus_client, a private registry so tests and
several gateways in one process do not collide). Served as text at ``/metrics``."""

from __future__ import annotations

from collections.abc import Callable

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from runtime import hops

CONTENT_TYPE = CONTENT_TYPE_LATEST


class HopCollector:
    """This process's request hops (``runtime.hops.TOTALS``), read when scraped: per operation and hop,
    the milliseconds and requests so far (a run's mean is the difference of two scrapes) and the
    median of the recent ones."""

    def __init__(self, totals: hops.HopTotals = hops.TOTALS):
        self.totals = totals

    def collect(self) -> Iterator[Metric]:
        labels = ["operation", "hop"]
        ms = CounterMetricFamily("memstream_hop_milliseconds", "Time spent in each hop of requests", labels=labels)
        count = CounterMetricFamily("memstream_hop_requests", "Requests that went through each hop", labels=labels)
        median = GaugeMetricFamily("memstream_hop_median_milliseconds", "Median of each hop over recent requests",
                                   labels=labels)
        for operation, hop, n, total_ms, median_ms in self.totals.snapshot():
            ms.add_metric([operation, hop], total_ms)
            count.add_metric([operation, hop], n)
            median.add_metric([operation, hop], median_ms)
        yield from (ms, count, median)


class GatewayMetrics:
    def __init__(self, hop_totals: hops.HopTotals = hops.TOTALS) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections = Gauge("memstream_gateway_connections", "Open WebSocket connections", registry=r)
        self.connections_total = Counter("memstream_gateway_connections_opened", "Accepted WebSocket connections",
                                         registry=r)
        self.requests = Counter("memstream_gateway_requests_total", "Requests by type and outcome (error code)",
                                ["type", "outcome"], registry=r)
        self.latency = Histogram("memstream_gateway_request_seconds", "Request latency, frame in to result out",
                                 ["type"], registry=r,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
                                          30, 60, 120))
        self.rejected = Counter("memstream_gateway_frames_rejected_total",
                                "Frames refused before reaching the engine, by reason", ["reason"], registry=r)
        self.subscriptions = Gauge("memstream_gateway_subscriptions", "Live subscriptions", registry=r)
        self.events = Counter("memstream_gateway_events_total", "Events sent to subscribers", registry=r)
        fanout_buckets = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
        self.event_arrival = Histogram("memstream_gateway_event_arrival_seconds",
                                       "From an event's commit (created_at) to its arrival at the gateway",
                                       registry=r, buckets=fanout_buckets)
        self.fanout_write = Histogram("memstream_gateway_fanout_seconds",
                                      "Writing one event to every live subscriber of its owner", registry=r,
                                      buckets=fanout_buckets)
        self.resyncs = Counter("memstream_gateway_resyncs_total", "Subscriptions cut off for falling behind",
                               registry=r)
        self.outbound_depth = Gauge("memstream_gateway_outbound_queue_frames",
                                    "Frames waiting to be written, summed over connections", registry=r)
        self.subscriber_depth = Gauge("memstream_gateway_subscriber_queue_events",
                                      "Live events waiting in subscribers' bounded queues, summed", registry=r)
        r.register(HopCollector(hop_totals))

    def track_queues(self, outbound: Callable[[], float], subscribers: Callable[[], float]) -> None:
        """Queue depths are read when scraped, not pushed on every frame."""
        self.outbound_depth.set_function(outbound)
        self.subscriber_depth.set_function(subscribers)

    def observe_fanout(self, written: int, arrival_s: float, write_s: float) -> None:
        self.events.inc(written)
        self.event_arrival.observe(arrival_s)
        self.fanout_write.observe(write_s)

    def render(self) -> bytes:
        return generate_latest(self.registry)
