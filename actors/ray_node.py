"""Starting Ray for memstream: a local instance with only the processes one machine needs, or
joining a cluster as it is.

A local ``ray.init`` starts more than memstream uses. Measured here (PSS, idle): the dashboard
head (~80 MB, running even with the dashboard off, for usage statistics), the autoscaler monitor
(~50 MB, nothing to scale on one machine), the log monitor (~47 MB, it forwards the actors' log
lines to the driver), and one prestarted idle worker per CPU (~45 MB each) for tasks memstream
never sends. Each is a ``ray.*`` setting (``configs/local.yaml``, README "Ray's processes"):
off by default for the local instance, and untouched when joining a cluster, whose ``ray
start`` flags decide (configs/DEPLOYMENT.md).
"""

from __future__ import annotations

import os
from typing import Any

import ray
import structlog

from runtime.config import Config, RayConfig

log = structlog.get_logger("memstream.ray")

WORKER_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    # one thread per worker unless an actor asks for more: on 2 busy cores torch's default pool
    # made a MiniLM embedding 10-25x slower than a single thread
    "OMP_NUM_THREADS": "1",
    "RAY_DEDUP_LOGS": "1",
}


def ray_address(config: Config) -> str:
    # "local" forces a new instance: with no address Ray joins whatever cluster it last noted on
    # this machine (/tmp/ray/ray_current_cluster), even a dead one
    return config.ray.address or os.environ.get("RAY_ADDRESS") or "local"


def system_config(settings: RayConfig) -> dict[str, Any]:
    """Ray's internal settings for a local instance (``_system_config``: fixed at start)."""
    options: dict[str, Any] = {}
    if not settings.prestart_workers:
        options["prestart_worker_first_driver"] = False
    if settings.idle_workers is not None:
        options["num_workers_soft_limit"] = settings.idle_workers
    if not settings.metrics:
        options["enable_metrics_collection"] = False
    if not settings.task_events:
        # every actor call would otherwise record state events and send them to the GCS each second
        options["task_events_report_interval_ms"] = 0
        options["enable_timeline"] = False
    return options


def init_options(config: Config) -> dict[str, Any]:
    """Keyword arguments of ``ray.init`` (pure). Instance-wide settings only when starting one."""
    settings = config.ray
    options: dict[str, Any] = {"address": ray_address(config), "namespace": settings.namespace,
                               "runtime_env": {"env_vars": WORKER_ENV}, "logging_level": "WARNING",
                               "log_to_driver": True}
    if options["address"] == "local":
        options["include_dashboard"] = settings.include_dashboard
        options["log_to_driver"] = settings.log_monitor
        options["_system_config"] = system_config(settings)
        if settings.object_store_mb is not None:
            options["object_store_memory"] = settings.object_store_mb * 2**20
    return options


def services_to_stop(settings: RayConfig) -> list[str]:
    """The local instance's services memstream does not use, by ``ray._private.node.Node``'s
    ``kill_*`` method names (pure). ``ray.init`` offers no switch for them (``ray start`` does:
    ``--no-monitor``, ``--include-log-monitor``), so they are stopped once Ray is up."""
    stop = []
    if not settings.include_dashboard:
        stop.append("kill_dashboard")  # with the dashboard off it serves usage statistics only
    if not settings.log_monitor:
        stop.append("kill_log_monitor")
    if not settings.autoscaler:
        stop.append("kill_monitor")
    return stop


def start_ray(config: Config) -> None:
    if ray.is_initialized():
        return
    options = init_options(config)
    ray.init(**options)
    node = ray._private.worker._global_node
    if options["address"] != "local" or node is None:
        return
    for method in services_to_stop(config.ray):
        getattr(node, method)(check_alive=False)
    log.info("ray_started", stopped=services_to_stop(config.ray), actor_logs=node.get_logs_dir_path())
