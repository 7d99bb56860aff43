from scripts.process_memory import group_of, role_of, summarize


def test_roles_from_command_lines():
    assert role_of(["python", "-m", "scripts.cli", "serve"], is_root=True) == "gateway"
    assert role_of(["/venv/ray/core/src/ray/gcs/gcs_server", "--log_dir=x"], is_root=False) == "ray GCS"
    assert role_of(["/venv/ray/core/src/ray/raylet/raylet", "--x"], is_root=False) == "ray raylet"
    assert role_of(["python", "/venv/ray/dashboard/dashboard.py", "--host=x"], is_root=False) == "ray dashboard head"
    assert role_of(["python", "-u", "/venv/ray/_private/log_monitor.py"], is_root=False) == "ray log monitor"
    assert role_of(["python", "-u", "/venv/ray/autoscaler/_private/monitor.py"], is_root=False) == \
        "ray autoscaler monitor"
    assert role_of(["ray::ShardActor"], is_root=False) == "shard actor"
    assert role_of(["ray::IDLE"], is_root=False) == "ray idle worker"
    assert role_of(["ray::DashboardAgent"], is_root=False) == "ray dashboard agent"
    assert role_of(["ray::SomethingNew"], is_root=False) == "ray worker (SomethingNew)"
    assert role_of(["VLLM::EngineCore"], is_root=False, parent_role="LLM extractor actor") == "LLM engine process"
    assert role_of(["/usr/bin/other"], is_root=False) == "other (other)"


def test_groups_and_totals():
    assert group_of("ray GCS") == "ray services" and group_of("ray idle worker") == "ray idle workers"
    assert group_of("shard actor") == group_of("LLM engine process") == "actors"
    summary = summarize([
        {"pid": 1, "role": "gateway", "pss_mb": 100.0, "rss_mb": 150.0, "uss_mb": 90.0},
        {"pid": 2, "role": "shard actor", "pss_mb": 80.0, "rss_mb": 120.0, "uss_mb": 70.0},
        {"pid": 3, "role": "shard actor", "pss_mb": 85.0, "rss_mb": 120.0, "uss_mb": 70.0},
        {"pid": 4, "role": "ray GCS", "pss_mb": 30.0, "rss_mb": 35.0, "uss_mb": 29.0},
    ])
    assert summary["total_pss_mb"] == 295.0 and summary["processes"] == 4
    assert summary["by_group_pss_mb"] == {"actors": 165.0, "gateway": 100.0, "ray services": 30.0}
    assert summary["by_role"]["shard actor"] == {"processes": 2, "pss_mb": 165.0}
    assert [p["pid"] for p in summary["per_process"]] == [1, 3, 2, 4]
