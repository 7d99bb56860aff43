"""A sibling gateway's configuration: the parent's, on its port, and never more siblings."""

from gateway.siblings import sibling_config, sibling_env
from runtime.config import load_config


def test_a_sibling_never_starts_siblings_even_when_the_parent_was_told_by_environment():
    parent_env = {"MEMSTREAM_GATEWAY__PROCESSES": "3", "MEMSTREAM_GATEWAY__PORT": "0"}
    parent = load_config("test", environ=parent_env)
    assert parent.gateway.processes == 3
    config_file = sibling_config(parent, 41234)
    sibling = load_config(overrides=config_file, environ={**parent_env, **sibling_env(41234)})
    assert sibling.gateway.processes == 1 and sibling.gateway.reuse_port and sibling.gateway.port == 41234
    assert sibling.gateway.runtime == "ray" and sibling.ray == parent.ray and sibling.memory == parent.memory
