"""``memstream serve``: the gateway in front of the actor runtime (or the in-process engine),
stopped gracefully by SIGINT/SIGTERM."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import anyio
import structlog

from gateway.auth import mint_token, token_secret
from gateway.server import Gateway
from gateway.siblings import Siblings
from runtime.config import Config, ConfigError

log = structlog.get_logger("memstream.gateway")


def open_backend(config: Config, runtime: str) -> Any:
    """The memory API the gateway serves: shard actors on Ray, or the engine in this process."""
    if runtime == "ray":
        from actors.client import ClusterMemory

        return ClusterMemory(config)
    from runtime.engine import AsyncMemory

    return AsyncMemory(config)


def _ray_address(runtime: str) -> str:
    if runtime != "ray":
        raise ConfigError("gateway.processes > 1 needs the Ray runtime: the embedded stores admit one process")
    import ray

    return ray.get_runtime_context().gcs_address


async def _terminate_on(stop: anyio.Event, siblings: Siblings) -> None:
    await stop.wait()
    siblings.terminate()


def development_token(config: Config, secret: str) -> str:
    """A token for every owner of the configured tenant, with every right (development only)."""
    return mint_token(secret, tenant=config.tenant, owners=["*"], rights=["read", "write", "subscribe", "admin"],
                      ttl_s=config.gateway.token_ttl_s, subject="development")


async def run_gateway(config: Config, *, runtime: str | None = None, stop: anyio.Event | None = None,
                      on_ready: Callable[[Gateway, str | None], None] | None = None) -> None:
    """Serve until ``stop`` is set or a signal arrives. ``on_ready`` gets the gateway and, when the
    signing secret is a development one, a development token."""
    runtime = runtime or config.gateway.runtime
    secret, is_dev_secret = token_secret(config.gateway.token_secret_env, config.data_dir)
    stop = stop or anyio.Event()
    async with open_backend(config, runtime) as memory:
        gateway = Gateway(config, memory, secret=secret)
        async with anyio.create_task_group() as tg:
            async def stop_on_signal() -> None:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for signum in signals:
                        log.info("signal", signal=signal.Signals(signum).name)
                        stop.set()
                        return

            siblings: Siblings | None = None

            async def serve_then_finish(*, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
                await gateway.serve(stop, task_status=task_status)
                if siblings is not None:
                    await siblings.wait(config.gateway.shutdown_grace_s)
                tg.cancel_scope.cancel()

            tg.start_soon(stop_on_signal)
            await tg.start(serve_then_finish)
            if config.gateway.processes > 1:
                assert gateway.port is not None
                siblings = Siblings(config, gateway.port, _ray_address(runtime))
                tg.start_soon(_terminate_on, stop, siblings)
                await siblings.start(tg, config.gateway.processes - 1)
            if on_ready is not None:
                on_ready(gateway, development_token(config, secret) if is_dev_secret else None)
