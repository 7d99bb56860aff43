"""Config -> graph store adapter."""

from __future__ import annotations

from runtime.config import Config, LadybugConfig, MemgraphConfig
from runtime.graphs.port import GraphStore


def make_graph_store(config: Config) -> GraphStore:
    section = config.graph_store
    if isinstance(section, LadybugConfig):
        from runtime.graphs.ladybug import LadybugGraphStore

        return LadybugGraphStore(config.data_path(section.path), buffer_pool_mb=section.buffer_pool_mb,
                                 threads=section.threads)
    assert isinstance(section, MemgraphConfig)
    from runtime.graphs.memgraph import MemgraphGraphStore

    return MemgraphGraphStore(section.url, username=section.username, password_env=section.password_env,
                              max_pool_size=section.max_pool_size, timeout_s=section.timeout_s,
                              max_retry_time_s=section.max_retry_time_s)
