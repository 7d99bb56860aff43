"""Scenario (2) of ``memstream bench``: add throughput with LLM extraction at 1 / 10 / 100
concurrent users, next to each system's LLM-bound ceiling users ÷ (LLM calls per turn × latency).

Each user adds its turns in order (memstream: one WebSocket per user, ``infer=True``); the
stand-in LLM server counts each system's calls, so each ceiling uses that system's own count."""

from __future__ import annotations

import time
from typing import Any

import psutil

from scripts.compare.report import COLORS, fmt, plain_ticks, ratio, times

TOPICS = ["sailing", "chess", "opera", "baking", "tennis", "poetry", "cycling", "pottery", "jazz", "hiking"]


def add_round(users: int, turns: int, tag: str) -> dict[str, list[str]]:
    """Each user's turns, in order: two clauses each, so two facts per turn for both systems."""
    return {f"{tag}-{u}": [f"I started {TOPICS[(u + t) % len(TOPICS)]} lessons in week {t} and I practice "
                           f"{TOPICS[(u + t) % len(TOPICS)]} with friend {u}" for t in range(turns)]
            for u in range(users)}


def busy_seconds(times: Any) -> float:
    """CPU seconds the machine spent busy (every core, every process) in a ``psutil.cpu_times()`` reading."""
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def cpu_use(before: tuple[Any, Any], after: tuple[Any, Any], seconds: float, turns: int) -> dict[str, float]:
    """From (machine, this process) CPU readings around a round: cores busy on average, and the CPU
    milliseconds per turn of the whole machine and of this benchmark client alone (pure)."""
    machine = busy_seconds(after[0]) - busy_seconds(before[0])
    client = (after[1].user + after[1].system) - (before[1].user + before[1].system)
    return {"cores_busy": round(machine / seconds, 2), "cpu_ms_per_turn_machine": round(1000 * machine / turns, 2),
            "cpu_ms_per_turn_client": round(1000 * client / turns, 2), "cores": psutil.cpu_count()}


def ceiling(users: int, llm_calls_per_turn: float, latency_s: float) -> float | None:
    """Turns/s if the LLM were the only limit: each user waits calls × latency per turn."""
    if llm_calls_per_turn <= 0 or latency_s <= 0:
        return None
    return users / (llm_calls_per_turn * latency_s)


def with_ceiling(row: dict[str, Any], latency_s: float) -> dict[str, Any]:
    """A measured round with its LLM-bound ceiling and the share of it reached."""
    row["ceiling_turns_per_s"] = round(ceiling(row["users"], row["llm_calls_per_turn"], latency_s) or 0, 1)
    row["share_of_ceiling"] = ratio(row["turns_per_s"], row["ceiling_turns_per_s"])
    return row


async def llm_calls(stats_url: str, system: str) -> int:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(stats_url) as resp:
        return int((await resp.json()).get("by_system", {}).get(system, 0))


async def adds(url: str, token: str, per_user: dict[str, list[str]], desc: str) -> dict:
    """Each user on its own connection adds its turns in order (``infer=True``)."""
    import anyio
    from tqdm import tqdm

    from gateway.client import MemoryClient

    total = sum(len(t) for t in per_user.values())
    bar = tqdm(total=total, desc=f"memstream: {desc}", unit="turn")
    errors: list[str] = []

    async def user(uid: str, turns: list[str]) -> None:
        async with MemoryClient(url, token) as client:
            for turn in turns:
                try:
                    await client.add(turn, user_id=uid, infer=True)
                except Exception as exc:  # noqa: BLE001 - reported in the results
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                bar.update(1)

    me = psutil.Process()
    cpu_before = (psutil.cpu_times(), me.cpu_times())
    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for uid, turns in per_user.items():
            tg.start_soon(user, uid, turns)
    seconds = time.perf_counter() - started
    cpu = cpu_use(cpu_before, (psutil.cpu_times(), me.cpu_times()), seconds, total)
    bar.close()
    stored = 0
    async with MemoryClient(url, token) as client:
        for uid in list(per_user)[:3]:
            stored += len((await client.get_all(user_id=uid, limit=1000))["results"])
    return {"users": len(per_user), "turns": total, "seconds": round(seconds, 2),
            "turns_per_s": round(total / seconds, 2), "errors": len(errors), "first_errors": errors[:3],
            "memories_of_first_3_users": stored, "cpu": cpu}


async def memstream(url: str, token: str, stats_url: str, rounds: list[tuple[int, dict[str, list[str]]]],
                    latency_s: float) -> list[dict]:
    """One measured row per round, with the LLM calls the stand-in counted for memstream."""
    measured = []
    for users, per_user in rounds:
        before = await llm_calls(stats_url, "memstream")
        row = await adds(url, token, per_user, f"add x{users} users")
        row["llm_calls"] = await llm_calls(stats_url, "memstream") - before
        row["llm_calls_per_turn"] = round(row["llm_calls"] / row["turns"], 2)
        measured.append(with_ceiling(row, latency_s))
    return measured


def rows(results: dict[str, Any]) -> list[list[str]]:
    out = []
    m0_adds = {r["users"]: r for r in results["adds"].get("mem0") or []}
    for row in results["adds"]["memstream"]:
        other = m0_adds.get(row["users"], {})
        out.append([f"(2) add throughput, {row['users']} concurrent user{'s' * (row['users'] != 1)}",
                    f"{fmt(row['turns_per_s'], ' turns/s')} (ceiling {fmt(row['ceiling_turns_per_s'])}, "
                    f"{fmt(row['llm_calls_per_turn'])} LLM calls/turn)",
                    f"{fmt(other.get('turns_per_s'), ' turns/s')} (ceiling {fmt(other.get('ceiling_turns_per_s'))}, "
                    f"{fmt(other.get('llm_calls_per_turn'))} LLM calls/turn)" if other else "—",
                    times(ratio(row["turns_per_s"], other.get("turns_per_s")))])
    return out


def plot(ax, results: dict[str, Any]) -> None:
    from matplotlib.ticker import FuncFormatter

    for name, key in (("memstream", "memstream"), ("mem0ai", "mem0")):
        measured = results["adds"].get(key) or []
        if not measured:
            continue
        users = [r["users"] for r in measured]
        ax.plot(users, [r["turns_per_s"] for r in measured], "o-", color=COLORS[name], label=f"{name} measured")
        for r in measured:
            ax.annotate(f"{r['turns_per_s']:.1f}", (r["users"], r["turns_per_s"]), textcoords="offset points",
                        xytext=(6, -12) if key == "mem0" else (-24, 6), fontsize=8, color=COLORS[name])
        ax.plot(users, [r["ceiling_turns_per_s"] for r in measured], "--", color=COLORS[name], alpha=0.6,
                label=f"{name} LLM-bound ceiling")
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain_ticks(ax.yaxis)
    ax.set_xticks([r["users"] for r in results["adds"]["memstream"]],
                  [str(r["users"]) for r in results["adds"]["memstream"]])
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.margins(x=0.15, y=0.2)
    ax.set_xlabel("concurrent users")
    ax.set_ylabel("turns/s (log scale)")
    ax.set_title(f"(2) add throughput, {results['settings']['llm_latency_ms']:.0f} ms LLM, higher is better")
    ax.legend(fontsize=8, loc="upper left")
