"""More gateway processes on the same port, for fan-out past one Python process.

Writing an event to N sockets costs the gateway process a syscall and some Python per socket; one
process saturates one core. With ``gateway.processes: N`` (Ray runtime only) ``memstream serve``
starts N-1 *sibling* gateways that bind the same port with ``SO_REUSEPORT`` — the kernel spreads
new connections over the processes — and attach to the same Ray actors. Each gateway follows the
owners its own clients subscribe to through the shards' event streams, so the shards are the
shared fan-out hub and a sibling needs no state from the first process. The first process owns
the actors and stops its siblings (SIGTERM: they drain like any gateway) before it stops.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import msgspec
import structlog

from runtime.config import Config

log = structlog.get_logger("memstream.gateway")

READY_LINE = "listening on "  # what ``memstream serve`` prints once it accepts connections


def sibling_config(config: Config, port: int) -> dict[str, Any]:
    """A sibling's whole configuration (pure): the parent's, on the parent's port, one process."""
    settings = msgspec.to_builtins(config)
    settings["gateway"].update(port=port, processes=1, reuse_port=True, runtime="ray")
    return settings


def sibling_env(port: int) -> dict[str, str]:
    """The sibling settings again as environment variables (pure): those outrank the config file,
    so a ``MEMSTREAM_GATEWAY__PROCESSES`` the parent was started with cannot make a sibling start
    siblings of its own."""
    return {"MEMSTREAM_GATEWAY__PROCESSES": "1", "MEMSTREAM_GATEWAY__REUSE_PORT": "true",
            "MEMSTREAM_GATEWAY__PORT": str(port), "MEMSTREAM_GATEWAY__RUNTIME": "ray"}


def sibling_command(config_file: Path) -> list[str]:
    return [sys.executable, "-m", "scripts.cli", "--config", str(config_file), "serve", "--runtime", "ray"]


class Siblings:
    """The sibling processes of one gateway; ``start`` returns once each accepts connections."""

    def __init__(self, config: Config, port: int, ray_address: str):
        self.config = config
        self.port = port
        self.ray_address = ray_address
        self.processes: list[anyio.abc.Process] = []

    async def start(self, tg: anyio.abc.TaskGroup, count: int, timeout_s: float = 300) -> None:
        """Starts ``count`` siblings; ``tg`` hosts the tasks that pass their output on."""
        folder = Path(self.config.data_dir)
        folder.mkdir(parents=True, exist_ok=True)
        config_file = folder / "gateway-sibling.yaml"  # JSON is YAML
        config_file.write_bytes(msgspec.json.encode(sibling_config(self.config, self.port)))
        env = {**os.environ, **sibling_env(self.port), "RAY_ADDRESS": self.ray_address, "PYTHONUNBUFFERED": "1"}
        for index in range(count):
            process = await anyio.open_process(sibling_command(config_file), env=env, stdout=subprocess.PIPE,
                                               stderr=None, start_new_session=True)
            self.processes.append(process)
            with anyio.fail_after(timeout_s):
                await _wait_ready(process)
            tg.start_soon(_drain, process)
            log.info("gateway_sibling_ready", index=index + 1, pid=process.pid, port=self.port)

    def terminate(self) -> None:
        """Asks each sibling to drain and stop (as SIGTERM asks any gateway)."""
        for process in self.processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)

    async def wait(self, grace_s: float) -> None:
        """Until every sibling has stopped; one still running after the grace period is killed."""
        for process in self.processes:
            with anyio.move_on_after(grace_s + 10) as waited:
                await process.wait()
            if waited.cancelled_caught:
                process.kill()
                await process.wait()
        self.processes.clear()


async def _wait_ready(process: anyio.abc.Process) -> None:
    assert process.stdout is not None
    seen = b""
    async for chunk in process.stdout:
        seen += chunk
        if READY_LINE.encode() in seen:
            return
    raise RuntimeError(f"a sibling gateway exited before listening (exit code {await process.wait()}):\n"
                       f"{seen.decode(errors='replace')[-2000:]}")


async def _drain(process: anyio.abc.Process) -> None:
    """A sibling's stdout after its ready line: the same banner and token as ours, so dropped
    (its logs go to the shared stderr); read so that its pipe never fills."""
    assert process.stdout is not None
    async for _ in process.stdout:
        pass
