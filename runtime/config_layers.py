"""The layers a configuration is built from, as plain trees: a YAML file or preset, the
``MEMSTREAM_*`` environment, and how a later layer overrides an earlier one.

Kept apart from ``runtime.config`` (the typed settings) because none of this knows the
settings: a layer is a nested dict until ``load_config`` decodes the merged tree once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from runtime.errors import ConfigError

PRESETS_DIR = Path(__file__).resolve().parent.parent / "configs"
ENV_PREFIX = "MEMSTREAM_"
# Environment variables that are settings of their own, not config-tree paths.
ENV_NOT_CONFIG = {"MEMSTREAM_CONFIG", "MEMSTREAM_QDRANT_URL", "MEMSTREAM_MEMGRAPH_URL", "MEMSTREAM_POSTGRES_DSN",
                  "MEMSTREAM_CACHE_DIR", "MEMSTREAM_TOKEN_SECRET",
                  "MEMSTREAM_FUZZ_FRAMES", "MEMSTREAM_RELIABILITY_JSON",
                  "MEMSTREAM_SCHEMATHESIS_EXAMPLES"}  # test-suite settings


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            # switching provider drops the other provider's fields
            if "provider" in value and value["provider"] != out[key].get("provider"):
                out[key] = dict(value)
            else:
                out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


MAX_CONFIG_BYTES = 1 << 20


def read_yaml(source: str) -> dict[str, Any]:
    path = Path(source)
    if not path.suffix and path.name == source and (PRESETS_DIR / f"{source}.yaml").is_file():
        path = PRESETS_DIR / f"{source}.yaml"  # a preset by bare name only
    try:
        if not path.is_file():  # a folder, a device (/dev/zero), a FIFO: not a config file
            raise FileNotFoundError(source) if not path.exists() else ConfigError(
                f"config file {source} is not a regular file")
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"config file {source} is larger than {MAX_CONFIG_BYTES} bytes")
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {source}") from None
    except (OSError, ValueError, RecursionError) as exc:  # unreadable, not UTF-8, nested too deep
        raise ConfigError(f"config file {source} cannot be read: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {source} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {source} must hold a mapping at the top level")
    return data


def from_env(environ: dict[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in ENV_NOT_CONFIG:
            continue
        path = name[len(ENV_PREFIX):].lower().split("__")
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment variable {name} conflicts with another MEMSTREAM_ variable")
        node[path[-1]] = value
    return tree
