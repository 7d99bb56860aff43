import pytest

from runtime.config import (
    OpenAIConfig,
    PostgresJournalConfig,
    QdrantEdgeConfig,
    SQLiteJournalConfig,
    VLLMConfig,
    load_config,
)
from runtime.errors import ConfigError


def test_defaults_are_the_embedded_stack():
    config = load_config(environ={})
    assert isinstance(config.llm, VLLMConfig)
    assert isinstance(config.vector_store, QdrantEdgeConfig) and isinstance(config.journal, SQLiteJournalConfig)


def test_layers_file_then_env_then_code(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("llm:\n  provider: openai\n  model: from-file\nmemory:\n  max_facts: 3\n")
    config = load_config(path, environ={"MEMSTREAM_LLM__MODEL": "from-env", "MEMSTREAM_MEMORY__LLM_RETRIES": "5"},
                         overrides={"memory": {"max_facts": 7}})
    assert isinstance(config.llm, OpenAIConfig)
    assert config.llm.model == "from-env"
    assert config.memory.llm_retries == 5 and config.memory.max_facts == 7


def test_presets_load_by_name():
    assert isinstance(load_config("cluster", environ={}).journal, PostgresJournalConfig)
    assert load_config("local", environ={}).memory.max_facts == 4


def test_switching_provider_drops_the_other_providers_fields():
    config = load_config(environ={}, overrides={"llm": {"provider": "openai", "base_url": "http://x/v1"}})
    assert isinstance(config.llm, OpenAIConfig) and config.llm.base_url == "http://x/v1"


@pytest.mark.parametrize("overrides,field", [
    ({"memory": {"max_factz": 3}}, "max_factz"),
    ({"llm": {"provider": "gpt5"}}, "provider"),
    ({"memory": {"max_facts": "many"}}, "max_facts"),
    ({"journal": {"provider": "sqlite", "dsn": "x"}}, "dsn"),
])
def test_a_bad_config_names_the_bad_field(overrides, field):
    with pytest.raises(ConfigError, match=field):
        load_config(environ={}, overrides=overrides)


def test_bad_file_and_bad_env_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml", environ={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad, environ={})
    with pytest.raises(ConfigError, match="max_facts"):
        load_config(environ={"MEMSTREAM_MEMORY__MAX_FACTS": "lots"})
