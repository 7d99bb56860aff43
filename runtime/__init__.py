"""memstream's engine: the memory layer without Ray and without the network."""

from runtime.config import Config, load_config
from runtime.engine import AsyncMemory
from runtime.errors import (
    BackendUnavailable,
    ConfigError,
    Forbidden,
    InvalidRequest,
    LLMOutputError,
    MemstreamError,
    NotFound,
    Overloaded,
)
from runtime.events import ResyncRequired
from runtime.model import Scope
from runtime.sync import Memory

__all__ = [
    "AsyncMemory", "BackendUnavailable", "Config", "ConfigError", "Forbidden", "InvalidRequest", "LLMOutputError",
    "Memory", "MemstreamError", "NotFound", "Overloaded", "ResyncRequired", "Scope", "load_config",
]
