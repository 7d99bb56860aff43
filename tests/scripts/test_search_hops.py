from gateway.metrics import GatewayMetrics
from runtime import hops
from scripts.search_hops import breakdown, hop_means, parse_metrics, share, top_frames


def test_hop_means_from_two_scrapes_add_up_to_the_client_round_trip():
    totals = hops.HopTotals()
    metrics = GatewayMetrics(hop_totals=totals)
    before = parse_metrics(metrics.render().decode())
    for _ in range(2):
        totals.record("search", {"shard_call_ms": 3.0, "shard_ms": 2.5, "embed_coalesce_wait_ms": 0.1,
                                 "embed_coalesce_call_ms": 1.5, "embedder_wait_ms": 0.2, "embedder_call_ms": 1.0})
        metrics.latency.labels("search").observe(0.004)
    means = hop_means(before, parse_metrics(metrics.render().decode()))
    assert means["shard_call_ms"] == 3.0 and means["gateway_request_ms"] == 4.0
    parts = breakdown(means, client_ms=5.0)
    assert parts["gateway_to_shard_transport"] == 0.5 and parts["ray_shard_to_embedder"] == 0.3
    assert parts["shard_search_and_rest"] == 0.9 and parts["websocket_both_ends"] == 1.0
    assert parts["gateway_batching_wait"] == 0.0
    total = parts.pop("total_client_round_trip")
    assert abs(sum(parts.values()) - total) < 1e-9


def test_the_share_of_searches_that_took_the_read_socket():
    totals = hops.HopTotals()
    metrics = GatewayMetrics(hop_totals=totals)
    before = parse_metrics(metrics.render().decode())
    for over_socket in (True, True, True, False):
        totals.record("search", {"shard_search_call_ms": 1.0, **({"read_socket_ms": 1.0} if over_socket else {})})
        metrics.latency.labels("search").observe(0.002)
    assert share(before, parse_metrics(metrics.render().decode()), "read_socket_ms") == 0.75


def test_top_frames_from_collapsed_stacks():
    collapsed = "main (a.py);loop (b.py);search (c.py) 6\nmain (a.py);loop (b.py) 3\nmain (a.py);encode (d.py) 1\n"
    top = top_frames(collapsed)
    assert top["samples"] == 10
    assert top["self_pct"][0] == ["search (c.py)", 60.0]
    assert dict(map(tuple, top["inclusive_pct"]))["loop (b.py)"] == 90.0


def test_breakdown_when_the_shard_embeds_itself_has_no_ray_hop_to_an_embedder():
    means = {"gateway_request_ms": 4.0, "shard_search_call_ms": 3.0, "shard_ms": 2.5,
             "embedder_wait_ms": 0.2, "embedder_call_ms": 1.0}
    parts = breakdown(means, client_ms=5.0)
    assert parts["ray_shard_to_embedder"] == 0.0 and parts["embedding_model"] == 1.0
    assert parts["shard_search_and_rest"] == 1.3
    total = parts.pop("total_client_round_trip")
    assert abs(sum(parts.values()) - total) < 1e-9
