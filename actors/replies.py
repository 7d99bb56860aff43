"""Typed errors across the Ray boundary.

Actor methods return a ``Reply`` instead of raising: Ray re-raises remote exceptions as
dynamic subclasses that cannot always rebuild ours (``BackendUnavailable`` has keyword
fields), and a caller must be able to ``except NotFound`` wherever the work ran.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import msgspec

from runtime import errors
from runtime.events import ResyncRequired


class Reply(msgspec.Struct, frozen=True):
    value: Any = None
    error: str | None = None  # the error's code
    message: str = ""
    extra: dict[str, Any] = {}


_BY_CODE: dict[str, type[errors.MemstreamError]] = {
    cls.code: cls for cls in (
        errors.ConfigError, errors.InvalidRequest, errors.NotFound, errors.LLMOutputError,
        errors.BackendUnavailable, errors.Overloaded, errors.Forbidden, ResyncRequired,
    )
}


async def capture(work: Awaitable[Any]) -> Reply:
    try:
        return Reply(value=await work)
    except errors.BackendUnavailable as exc:
        return Reply(error=exc.code, message=str(exc),
                     extra={"backend": exc.backend, "committed_seq": exc.committed_seq})
    except ResyncRequired as exc:
        return Reply(error=exc.code, message=str(exc), extra={"from_seq": exc.from_seq})
    except errors.MemstreamError as exc:
        return Reply(error=exc.code, message=str(exc))


def rebuild(reply: Reply) -> errors.MemstreamError:
    cls = _BY_CODE.get(reply.error or "", errors.MemstreamError)
    if cls is errors.BackendUnavailable:
        return errors.BackendUnavailable(reply.message, **reply.extra)
    if cls is ResyncRequired:
        return ResyncRequired(reply.extra.get("from_seq", 0))
    return cls(reply.message)


def unwrap(reply: Reply) -> Any:
    if reply.error is not None:
        raise rebuild(reply)
    return reply.value
