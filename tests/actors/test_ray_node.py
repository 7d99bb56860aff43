"""Starting Ray for memstream: what a local instance leaves out, and what joining a cluster leaves alone."""

from __future__ import annotations

import ray

from actors.client import ClusterMemory
from actors.ray_node import init_options, services_to_stop, system_config
from runtime.config import load_config


def _config(**ray_settings):
    return load_config(environ={}, overrides={"ray": ray_settings} if ray_settings else None)


def test_a_local_instance_leaves_out_what_one_machine_does_not_need():
    options = init_options(_config())
    assert options["address"] == "local" and options["include_dashboard"] is False
    assert options["log_to_driver"] is False  # no log monitor to forward the actors' lines
    assert options["_system_config"] == {"prestart_worker_first_driver": False, "num_workers_soft_limit": 0,
                                         "enable_metrics_collection": False, "task_events_report_interval_ms": 0,
                                         "enable_timeline": False}
    assert "object_store_memory" not in options  # Ray's own default unless configured
    assert services_to_stop(_config().ray) == ["kill_dashboard", "kill_log_monitor", "kill_monitor"]


def test_each_left_out_part_comes_back_by_config():
    config = _config(include_dashboard=True, log_monitor=True, autoscaler=True, prestart_workers=True,
                     idle_workers=None, metrics=True, task_events=True, object_store_mb=512)
    options = init_options(config)
    assert options["include_dashboard"] is True and options["log_to_driver"] is True
    assert options["_system_config"] == {} and options["object_store_memory"] == 512 * 2**20
    assert services_to_stop(config.ray) == []
    assert system_config(_config(idle_workers=-1).ray)["num_workers_soft_limit"] == -1


def test_joining_a_cluster_passes_no_instance_settings():
    options = init_options(_config(address="auto"))
    assert options["address"] == "auto"
    assert not {"include_dashboard", "_system_config", "object_store_memory"} & set(options)


async def test_the_started_instance_runs_without_the_services_left_out(cluster: ClusterMemory):
    node = ray._private.worker._global_node
    running = set(node.all_processes)
    assert not running & {ray._private.ray_constants.PROCESS_TYPE_DASHBOARD,
                          ray._private.ray_constants.PROCESS_TYPE_LOG_MONITOR,
                          ray._private.ray_constants.PROCESS_TYPE_MONITOR}
    assert ray._private.ray_constants.PROCESS_TYPE_RAYLET in running
