"""``memstream gpu-check`` on a machine without a GPU: a clear message, exit code 3, nothing written."""

import pytest

from scripts import gpu_check
from tests.conftest import cuda_available


@pytest.mark.skipif(cuda_available(), reason="this machine has a GPU: gpu-check would run for real")
def test_without_a_gpu_it_says_so_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "gpu_check.json"
    with pytest.raises(SystemExit) as exited:
        gpu_check.main(["--out", str(out)])
    assert exited.value.code == gpu_check.NO_GPU_EXIT
    assert "no CUDA GPU is present" in capsys.readouterr().err
    assert not out.exists()
