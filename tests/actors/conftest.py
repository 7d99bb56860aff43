"""The session's Ray instance and actor runtime (``cluster``) and the stand-in LLM server
(``llm_server``) live in ``tests/conftest.py``, so that ``tests/reliability`` shares the same
single Ray instance; each test here uses owners of its own."""
