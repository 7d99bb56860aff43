"""Test doubles, injected through constructors (never patched onto dotted paths)."""

from __future__ import annotations

import json
import os
import signal
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from runtime.errors import BackendUnavailable


class ScriptedLLM:
    """Answers each call with the next scripted reply (a dict, a raw string, or a function of the
    messages). Records every call so tests can check prompts."""

    def __init__(self, *replies: Any):
        self.replies: deque[Any] = deque(replies)
        self.by_name: dict[str, deque[Any]] = {}
        self.calls: list[dict[str, Any]] = []

    def push(self, *replies: Any) -> None:
        self.replies.extend(replies)

    def push_for(self, name: str, *replies: Any) -> None:
        """Replies for calls of one name only (calls that run concurrently, e.g. graph extraction)."""
        self.by_name.setdefault(name, deque()).extend(replies)

    async def complete_json(self, messages: list[dict[str, str]], schema: dict[str, Any], *, name: str) -> str:
        self.calls.append({"name": name, "messages": messages, "schema": schema})
        queue = self.by_name.get(name) or self.replies
        if not queue:
            raise AssertionError(f"ScriptedLLM has no reply left for a {name!r} call")
        reply = queue.popleft()
        if callable(reply):
            reply = reply(messages)
        if isinstance(reply, BaseException):
            raise reply
        return reply if isinstance(reply, str) else json.dumps(reply)

    async def close(self) -> None:
        return None


class SwitchableStore:
    """Wraps a real vector store; ``down = True`` makes every call fail like an unreachable server."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.down = False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr) or name in ("open", "close"):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise BackendUnavailable("vector store is down (test)", backend="vector_store")
            return await attr(*args, **kwargs)

        return call


class KillAfterAppend:
    """Wraps a journal and SIGKILLs its own process right after an append commits: the crash
    between the journal append and the store apply that recovery must repair."""

    def __init__(self, inner: Any, when: Callable[[], bool] = lambda: True):
        self.inner = inner
        self.when = when

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def append(self, *args: Any, **kwargs: Any) -> Any:
        result = await self.inner.append(*args, **kwargs)
        if result.entries and self.when():
            os.kill(os.getpid(), signal.SIGKILL)
        return result


@asynccontextmanager
async def http_server(app: Any) -> AsyncIterator[str]:
    """A real aiohttp server for ``app`` on a free port of 127.0.0.1; yields its ``/v1`` base URL."""
    from aiohttp import web

    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    finally:
        await runner.cleanup()
