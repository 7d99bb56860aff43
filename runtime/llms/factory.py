"""Config → LLM adapter (the vLLM engine starts here, so this is async)."""

from __future__ import annotations

from runtime.config import LLMConfig, OpenAIConfig, VLLMConfig
from runtime.llms.port import LLM


def make_http_llm(section: OpenAIConfig) -> LLM:
    """An OpenAI-compatible endpoint's client: nothing to start, so this one is synchronous."""
    from runtime.llms.openai import OpenAICompatibleLLM

    return OpenAICompatibleLLM(
        base_url=section.base_url, model=section.model, api_key_env=section.api_key_env,
        json_mode=section.json_mode, temperature=section.temperature, max_tokens=section.max_tokens,
        timeout_s=section.timeout_s, max_concurrency=section.max_concurrency,
    )


async def make_llm(section: LLMConfig) -> LLM:
    if isinstance(section, OpenAIConfig):
        return make_http_llm(section)
    assert isinstance(section, VLLMConfig)
    from runtime.llms.vllm_engine import VLLMEngineLLM

    llm = VLLMEngineLLM(section)
    await llm.start()
    return llm
