"""The engine arguments that depend on where vLLM runs (pure: no engine is started)."""

from runtime.llms.vllm_engine import engine_placement_args


def test_cpu_sizes_the_kv_cache_in_bytes_and_gpu_by_memory_share():
    assert engine_placement_args(1, "mp", True, 0.9, 512) == {"tensor_parallel_size": 1,
                                                             "kv_cache_memory_bytes": 512 * 2**20}
    assert engine_placement_args(1, "mp", False, 0.9, 512) == {"tensor_parallel_size": 1,
                                                              "gpu_memory_utilization": 0.9}


def test_tensor_parallel_names_the_executor():
    args = engine_placement_args(4, "ray", False, 0.85, 512)
    assert args["distributed_executor_backend"] == "ray" and args["tensor_parallel_size"] == 4
