"""The wire protocol, as data: every frame is a msgspec Struct in a tagged union on ``type``.

These types are the single definition of the protocol. The server and ``MemoryClient``
decode and encode with them, and ``protocol.schema.json`` (the versioned document in the
repository) is generated from them, so the document cannot drift from the code.

Text frames carry JSON; a client that offers the ``memstream.msgpack`` subprotocol gets
MessagePack in binary frames (and may send either).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from runtime.model import MemoryEvent

PROTOCOL_VERSION = "1.0"
SUBPROTOCOL_MSGPACK = "memstream.msgpack"
SUBPROTOCOL_JSON = "memstream.json"

RequestId = Annotated[str, Meta(max_length=128)] | int
Id = Annotated[str, Meta(min_length=1, max_length=256)]
Text = Annotated[str, Meta(max_length=65536)]


class _Frame(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    pass


# ---- client → server --------------------------------------------------------------------
class _Request(_Frame, kw_only=True):
    id: RequestId


class _Scoped(_Request, kw_only=True):
    """Mem0's scope ids; the owner (user, else agent, else run) decides authorization and order."""

    user_id: Id | None = None
    agent_id: Id | None = None
    run_id: Id | None = None

    def scope_ids(self) -> dict[str, str | None]:
        return {"user_id": self.user_id, "agent_id": self.agent_id, "run_id": self.run_id}


class ChatMessage(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    role: Annotated[str, Meta(max_length=32)]
    content: Text
    name: Annotated[str, Meta(max_length=128)] | None = None


class Auth(_Request, tag="auth", kw_only=True):
    token: Annotated[str, Meta(max_length=8192)]


class Add(_Scoped, tag="add", kw_only=True):
    """Answered at once with ``accepted`` (carrying the request id to retry with), then ``result``."""

    messages: Text | Annotated[list[ChatMessage], Meta(max_length=256)]
    metadata: dict[str, Any] | None = None
    infer: bool = True
    request_id: Annotated[str, Meta(min_length=1, max_length=128)] | None = None


class Search(_Scoped, tag="search", kw_only=True):
    query: Annotated[str, Meta(min_length=1, max_length=4096)]
    filters: dict[str, Any] | None = None
    limit: Annotated[int, Meta(ge=1, le=1000)] | None = None
    threshold: float | None = None
    fallback: bool = False
    mode: Literal["dense", "sparse", "hybrid"] | None = None  # the server's retrieval.mode when absent


class Get(_Request, tag="get", kw_only=True):
    memory_id: Id


class GetAll(_Scoped, tag="get_all", kw_only=True):
    filters: dict[str, Any] | None = None
    limit: Annotated[int, Meta(ge=1, le=1000)] = 100
    offset: Annotated[int, Meta(ge=0)] = 0
    as_of: int | float | str | None = None


class Update(_Request, tag="update", kw_only=True):
    memory_id: Id
    data: Annotated[str, Meta(min_length=1, max_length=65536)]
    metadata: dict[str, Any] | None = None
    request_id: Annotated[str, Meta(min_length=1, max_length=128)] | None = None


class Delete(_Request, tag="delete", kw_only=True):
    memory_id: Id
    request_id: Annotated[str, Meta(min_length=1, max_length=128)] | None = None


class DeleteAll(_Scoped, tag="delete_all", kw_only=True):
    pass


class History(_Scoped, tag="history", kw_only=True):
    """The change log of one memory (``memory_id``) or of one owner after ``since_seq``."""

    memory_id: Id | None = None
    since_seq: Annotated[int, Meta(ge=0)] = 0
    limit: Annotated[int, Meta(ge=1, le=1000)] = 1000


class Head(_Scoped, tag="head", kw_only=True):
    """The owner's last committed seq."""


class Subscribe(_Scoped, tag="subscribe", kw_only=True):
    """Replay ``(after_seq, head]`` then live. ``tenant_wide`` (admin tokens) streams every owner
    of the tenant live, each event with its own owner and seq."""

    after_seq: Annotated[int, Meta(ge=0)] = 0
    tenant_wide: bool = False


class Unsubscribe(_Request, tag="unsubscribe", kw_only=True):
    subscription: RequestId


class Reset(_Request, tag="reset", kw_only=True):
    """Delete every memory of the token's tenant (admin tokens; journaled like any delete)."""


class Ping(_Request, tag="ping", kw_only=True):
    pass


ClientFrame = (Auth | Add | Search | Get | GetAll | Update | Delete | DeleteAll | History | Head | Reset
               | Subscribe | Unsubscribe | Ping)


# ---- server → client --------------------------------------------------------------------
class Welcome(_Frame, tag="welcome", kw_only=True):
    """First frame on every connection: what this server speaks."""

    protocol: str
    server: str
    encoding: str  # "json" or "msgpack"
    max_frame_bytes: int


class Accepted(_Frame, tag="accepted", kw_only=True):
    """The add is queued; the result follows. Retrying with ``request_id`` never applies it twice."""

    id: RequestId
    request_id: str


class Result(_Frame, tag="result", kw_only=True):
    id: RequestId
    data: Any = None


class Error(_Frame, tag="error", kw_only=True):
    """``code`` is stable (see ``runtime.errors``); ``id`` is absent when the frame had none."""

    code: str
    message: str
    id: RequestId | None = None
    retry_after_s: float | None = None
    committed_seq: int | None = None


class Event(_Frame, tag="event", kw_only=True):
    subscription: RequestId
    seq: int
    owner: str
    event: MemoryEvent


class ResyncRequired(_Frame, tag="resync_required", kw_only=True):
    """The subscription fell behind and was stopped; subscribe again with ``after_seq = from_seq``."""

    subscription: RequestId
    from_seq: int
    owner: str | None = None


class Heartbeat(_Frame, tag="heartbeat", kw_only=True):
    """Sent on a quiet subscription: ``head`` is the owner's last committed seq."""

    subscription: RequestId
    owner: str
    head: int


class Pong(_Frame, tag="pong", kw_only=True):
    id: RequestId
    ts: float


ServerFrame = Welcome | Accepted | Result | Error | Event | ResyncRequired | Heartbeat | Pong


class _PeekId(msgspec.Struct):
    """Just enough of a rejected frame to echo its id in the error."""

    id: Any = None


class FrameError(Exception):
    """A frame that cannot be decoded into a request; answered with an error frame."""

    def __init__(self, code: str, message: str, frame_id: Any = None):
        super().__init__(message)
        self.code = code
        self.frame_id = frame_id if isinstance(frame_id, (str, int)) and not isinstance(frame_id, bool) else None


class Codec:
    """Encodes server frames and decodes client frames for one connection."""

    def __init__(self, binary: bool):
        self.binary = binary
        self.encoding = "msgpack" if binary else "json"
        self._json_decoder = msgspec.json.Decoder(ClientFrame)
        self._msgpack_decoder = msgspec.msgpack.Decoder(ClientFrame)
        self._encoder = msgspec.msgpack.Encoder() if binary else msgspec.json.Encoder()

    def encode(self, frame: Any) -> bytes:
        return self._encoder.encode(frame)

    def decode(self, data: str | bytes) -> Any:
        """Text frames are JSON, binary frames MessagePack, whatever was negotiated."""
        is_text = isinstance(data, str)
        try:
            if is_text:
                return self._json_decoder.decode(data)
            return self._msgpack_decoder.decode(data)
        except msgspec.ValidationError as exc:
            raise FrameError("invalid_frame", _explain(str(exc)), _peek_id(data, is_text)) from None
        except RecursionError:
            raise FrameError("bad_frame", "frame is nested too deeply") from None
        except UnicodeDecodeError:  # a MessagePack string that is not UTF-8 (msgspec < 0.23)
            raise FrameError("bad_frame", "frame holds a string that is not valid UTF-8") from None
        except msgspec.DecodeError as exc:  # msgspec >= 0.23 reports bad UTF-8 here too: keep its reason
            kind = "JSON" if is_text else "MessagePack"
            raise FrameError("bad_frame", f"frame is not valid {kind}: {exc}") from None


def _peek_id(data: str | bytes, is_text: bool) -> Any:
    try:
        if is_text:
            return msgspec.json.decode(data, type=_PeekId).id
        return msgspec.msgpack.decode(data, type=_PeekId).id
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, UnicodeDecodeError):
        return None


def _explain(message: str) -> str:
    if "`$.type`" in message or "Missing required field `type`" in message:
        return f"unknown or missing frame type ({message})"
    return message


def protocol_schema() -> dict[str, Any]:
    """The protocol document: JSON Schema of both directions, with the version."""
    (client, server), components = msgspec.json.schema_components((ClientFrame, ServerFrame),
                                                                 ref_template="#/$defs/{name}")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "memstream WebSocket protocol",
        "version": PROTOCOL_VERSION,
        "subprotocols": {"json": SUBPROTOCOL_JSON, "msgpack": SUBPROTOCOL_MSGPACK},
        "client_to_server": client,
        "server_to_client": server,
        "$defs": components,
    }
