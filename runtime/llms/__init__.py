"""LLM backends: chat messages + JSON schema → JSON text."""

from runtime.llms.factory import make_llm
from runtime.llms.port import LLM

__all__ = ["LLM", "make_llm"]
