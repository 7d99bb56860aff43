"""Layered, typed configuration: defaults ← YAML file ← ``MEMSTREAM_*`` environment ← code.

Everything is decoded once into msgspec Structs with unknown fields forbidden, so a typo
fails at start with the path of the bad field instead of being silently ignored.
Providers are tagged unions on ``provider``.

Environment variables use ``__`` between levels:
``MEMSTREAM_LLM__PROVIDER=openai``, ``MEMSTREAM_LLM__BASE_URL=http://...``,
``MEMSTREAM_JOURNAL__DSN=postgresql://...``. ``MEMSTREAM_CONFIG`` names a YAML file or a
preset (``local``, ``test``, ``cluster``).

Over 400 lines on purpose: it is the catalogue of every setting, one Struct per section with its
defaults and units beside each field, read top to bottom, then ``load_config``. Where each layer
comes from (a YAML file or preset, the environment) and how layers merge: ``runtime.config_layers``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from runtime.config_layers import from_env, merge, read_yaml
from runtime.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


# --- LLM ---------------------------------------------------------------------------------
class VLLMConfig(_Section, tag="vllm", tag_field="provider"):
    """vLLM's engine in-process (CPU build here, GPU in production)."""

    model: str = "qwen2.5-coder-0.5b-instruct"  # a HF folder, or a packaged model (runtime/llms/packaged.py)
    dtype: str = "float32"  # the CPU build; use bfloat16 on GPUs
    max_model_len: int = 2048
    enforce_eager: bool = True
    tensor_parallel_size: Annotated[int, msgspec.Meta(ge=1)] = 1
    gpu_memory_utilization: float = 0.85
    enable_prefix_caching: bool = True
    max_num_seqs: int = 32
    kv_cache_mb: int = 512  # CPU only; on GPUs gpu_memory_utilization sizes the cache
    temperature: float = 0.0
    repetition_penalty: float = 1.15
    max_tokens: int = 192
    timeout_s: float = 120.0
    # "auto": GPUs when the Ray cluster has any; "cuda" fails at start if it has none
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # tensor_parallel_size > 1 only: "mp" runs the workers inside the extractor actor's node on the
    # GPUs Ray gave it; "ray" puts them in a placement group of one-GPU bundles (see actors/resources.py)
    distributed_executor_backend: Literal["mp", "ray"] = "mp"


class OpenAIConfig(_Section, tag="openai", tag_field="provider"):
    """Any OpenAI-compatible chat endpoint: vLLM serve, llama.cpp, Ollama, OpenAI."""

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "default"
    api_key_env: str = "OPENAI_API_KEY"
    json_mode: Literal["json_schema", "json_object"] = "json_schema"
    temperature: float = 0.0
    max_tokens: int = 512
    timeout_s: float = 60.0
    max_concurrency: int = 256  # calls in flight per process (each shard, or the extractor actor)


LLMConfig = VLLMConfig | OpenAIConfig


# --- embedder ----------------------------------------------------------------------------
class SentenceTransformersConfig(_Section, tag="sentence_transformers", tag_field="provider"):
    """A sentence-transformers model; on CPU run by onnxruntime (measured 2.4x faster for one query
    here, identical vectors), or by torch (``backend: torch``, and always on CUDA)."""

    model: str = "all-MiniLM-L6-v2"  # a folder, or the packaged model's name
    backend: Literal["onnx", "torch"] = "onnx"
    device: str = "cpu"
    threads: int = 1
    batch_size: int = 64
    precision: Literal["float32", "float16", "bfloat16"] = "float32"  # half precision only on CUDA
    # onnx only: int8 dynamic quantization of the transformer's MatMul weights (per channel). Measured here:
    # 1.9x the texts per CPU second; vectors at mean cosine 0.994 of float32 for LOCOMO questions (0.96 for
    # one-word texts); LOCOMO recall@1/5/10 within noise of float32 (0.153/0.355/0.448 vs 0.158/0.359/0.444
    # over 1,536 questions). "none": the exact float32 vectors of sentence-transformers
    quantize: Literal["none", "int8"] = "int8"


class VLLMEmbedderConfig(_Section, tag="vllm", tag_field="provider"):
    """An embedding model on vLLM's pooling runner, in-process (CPU build here, GPU in production)."""

    model: str = "all-MiniLM-L6-v2"  # a folder, or the packaged model's name
    dtype: str = "float32"
    max_model_len: int = 256  # longer texts are truncated, as sentence-transformers does for MiniLM
    enforce_eager: bool = True
    max_num_seqs: int = 256
    gpu_memory_utilization: float = 0.2  # a small encoder: leave the GPU to others
    kv_cache_mb: int = 64  # CPU only
    device: Literal["auto", "cpu", "cuda"] = "auto"
    timeout_s: float = 30.0


class OpenAIEmbedderConfig(_Section, tag="openai", tag_field="provider"):
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "all-MiniLM-L6-v2"
    dims: int = 384
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 30.0


EmbedderConfig = SentenceTransformersConfig | VLLMEmbedderConfig | OpenAIEmbedderConfig


# --- vector store ------------------------------------------------------------------------
class QdrantEdgeConfig(_Section, tag="qdrant_edge", tag_field="provider"):
    """Qdrant's engine in-process: one shard directory, owned by one process."""

    path: str = "vectors"  # relative to data_dir
    hnsw_m: int = 0  # tenant-only HNSW: per-owner graphs via payload_m
    hnsw_payload_m: int = 16
    optimize_every: int = 5000  # build the index after this many writes
    # Edge's search pool; None sizes it by CPU count. One thread per shard actor measured 0.04 ms of CPU
    # per filtered search against 0.2 ms for the default pool on 2 cores: shards are the parallelism
    search_threads: Annotated[int, msgspec.Meta(ge=1)] | None = 1
    # Edge's write-ahead log. Off: the journal already is one (index watermarks follow Edge's flushes,
    # so a crash re-applies what Edge had not flushed), and the WAL's mapped segment cost ~17 MB per
    # shard at 10,000 memories and a third more disk (README "Measured")
    wal: bool = False
    flush_every: Annotated[int, msgspec.Meta(ge=1)] = 1000  # journal entries applied between flushes (no WAL)


class QdrantConfig(_Section, tag="qdrant", tag_field="provider"):
    """A Qdrant server or cluster via AsyncQdrantClient (``location=":memory:"`` only for tests)."""

    url: str | None = None
    location: str | None = None
    api_key_env: str = "QDRANT_API_KEY"
    collection: str = "memstream"
    shard_number: int = 1
    replication_factor: int = 1
    write_consistency_factor: int = 1
    on_disk_payload: bool = True
    timeout_s: float = 10.0
    # very large tenants get shards of their own (Qdrant's user-defined sharding); set at creation
    dedicated_tenants: list[str] = []
    dedicated_shard_number: int = 1  # shards per dedicated tenant's key (the shared key uses shard_number)


VectorStoreConfig = QdrantEdgeConfig | QdrantConfig


# --- journal -----------------------------------------------------------------------------
class SQLiteJournalConfig(_Section, tag="sqlite", tag_field="provider"):
    path: str = "journal.sqlite3"  # relative to data_dir
    busy_timeout_ms: int = 5000


class PostgresJournalConfig(_Section, tag="postgres", tag_field="provider"):
    dsn: str = "postgresql://postgres@127.0.0.1:5432/test"
    schema: str = "memstream"
    pool_min: int = 1
    pool_max: int = 8
    timeout_s: float = 10.0


JournalConfig = SQLiteJournalConfig | PostgresJournalConfig


# --- graph store -------------------------------------------------------------------------
class LadybugConfig(_Section, tag="ladybug", tag_field="provider"):
    """LadybugDB (the Kuzu fork) in-process: one database directory, locked by one process."""

    path: str = "graph"  # relative to data_dir (per shard on Ray)
    buffer_pool_mb: int = 256
    threads: int = 1


class MemgraphConfig(_Section, tag="memgraph", tag_field="provider"):
    """Memgraph over Bolt (neo4j async driver); the URL falls back to MEMSTREAM_MEMGRAPH_URL."""

    url: str | None = None
    username: str = ""
    password_env: str = "MEMGRAPH_PASSWORD"
    max_pool_size: int = 32
    timeout_s: float = 10.0
    max_retry_time_s: float = 15.0  # managed write transactions are retried on transient errors this long


GraphStoreConfig = LadybugConfig | MemgraphConfig


class GraphPolicy(_Section):
    """Graph memory: entities and relations extracted from each turn, next to the memories."""

    enabled: bool = False
    max_relations: int = 4  # bounded: a small model loops on an unbounded schema
    max_name_chars: int = 60
    # cosine of entity-name embeddings, among the owner's entities: MiniLM put "Acme Corp" at 0.98 of
    # "Acme Corporation" but "Acme Industries" at 0.91, "NYC" at 0.92 of "New York City"
    entity_match_threshold: float = 0.93
    candidates: int = 3  # similar entities fetched per new name
    search_limit: int = 10
    scan_limit: int = 20_000  # most relations one owner's graph read looks at
    # relationships that hold one value at a time: a new one invalidates the old ("moved to Paris")
    exclusive: list[str] = msgspec.field(default_factory=lambda: [
        "lives_in", "works_at", "works_as", "is_married_to", "is_named", "is_aged", "studies_at", "has_job",
        "drives", "is_dating"])


# --- engine ------------------------------------------------------------------------------
class MemoryPolicy(_Section):
    """How ``add`` decides: limits that keep a small model honest, retries, queue bounds."""

    max_facts: int = 4
    max_fact_chars: int = 80
    require_grounding: bool = True
    existing_top_k: int = 5
    # a fact is shown to the decision call only with stored memories at least this similar (cosine,
    # all-MiniLM-L6-v2); a fact with none is an ADD without a call. Tuned on `memstream eval-memory`
    decision_threshold: Annotated[float, msgspec.Meta(ge=-1.0, le=1.0)] = 0.3
    # the LLM's NONE ("already known") stands only for a memory at least this similar; below it the
    # fact is added: a small model says NONE for new facts that merely share a topic
    known_threshold: Annotated[float, msgspec.Meta(ge=-1.0, le=1.0)] = 0.7
    # and its UPDATE or DELETE only for a memory at least this similar; below it the fact is added and
    # the memory stays: a wrong change loses a fact, a wrong ADD at worst keeps a stale one
    change_threshold: Annotated[float, msgspec.Meta(ge=-1.0, le=1.0)] = 0.45
    # single-valued attributes of the user (runtime/attributes.py) a new fact replaces without asking
    # the LLM; [] leaves every change to the LLM. A fact belongs to one at this cosine to its examples
    single_valued: list[Literal["home", "diet"]] = msgspec.field(default_factory=lambda: ["home", "diet"])
    attribute_threshold: Annotated[float, msgspec.Meta(ge=-1.0, le=1.0)] = 0.4
    attribute_margin: Annotated[float, msgspec.Meta(ge=0.0, le=2.0)] = 0.05  # ... and this much closer than to the next
    # a clause of the user's words that says something ended ("I stopped playing the cello") deletes
    # the stored memories naming that thing at least this similar to it (runtime/endings.py); 1.0: off
    said_ending_threshold: Annotated[float, msgspec.Meta(ge=-1.0, le=1.0)] = 0.4
    llm_retries: int = 2
    mailbox_capacity: int = 64
    subscriber_queue: int = 1024  # live events buffered per subscriber before it is told to resync
    default_search_limit: int = 10
    max_page_size: int = 1000


class RetrievalConfig(_Section):
    """How ``search`` ranks memories (``runtime/vectors/hybrid.py``): ``dense`` by the embedding's
    cosine similarity, ``sparse`` by BM25 over the text (Qdrant's tokenizer and stemmer, IDF kept by
    the store), ``hybrid`` by both, fused in the vector store. Hybrid is the default: on LOCOMO (all
    10 conversations) it found more evidence turns than dense alone and than mem0ai (README
    "Retrieval"). A search may name its own ``mode``."""

    mode: Literal["dense", "sparse", "hybrid"] = "hybrid"
    fusion: Literal["rrf", "dbsf"] = "rrf"  # Reciprocal Rank Fusion, or Distribution-Based Score Fusion
    rrf_k: Annotated[int, msgspec.Meta(ge=1)] = 2  # Qdrant's default; k 60 lost 9 points of recall@10 on LOCOMO
    # each leg of a hybrid search prefetches max(limit x prefetch_factor, min_prefetch) candidates
    prefetch_factor: Annotated[int, msgspec.Meta(ge=1)] = 2
    min_prefetch: Annotated[int, msgspec.Meta(ge=1)] = 20
    bm25_k: Annotated[float, msgspec.Meta(ge=0)] = 1.2  # term-frequency saturation
    bm25_b: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.75  # length normalisation
    bm25_avg_len: Annotated[float, msgspec.Meta(gt=0)] = 256.0  # tokens; fixed, so no corpus state is kept
    language: str = "english"  # stopwords and Snowball stemmer


class RayConfig(_Section):
    """The actor runtime: where Ray is, how many shard actors, how model work is batched."""

    address: str | None = None  # None: start a local Ray instance; "auto", "ray://host:10001" to connect
    namespace: str = "memstream"
    shards: int = 2
    # custom Ray resources every shard actor requires, e.g. {"memstream_shard": 1}: pins the shards
    # (and the embedded stores they own) to the nodes started with that resource; none: anywhere
    shard_resources: dict[str, float] = {}
    shard_max_concurrency: int = 256
    # texts per embedder call. On CPU a batch of 16 cost ~5% more per text than 64, and its texts got
    # their vectors 4x sooner: under bursts that latency, not the per-text cost, bounded throughput
    embedder_max_batch: int = 16
    # where the shards' texts are embedded. actor: by the embedder actor replicas (one model serves
    # every shard; how a cluster puts it on a GPU). shard: each shard runs the model in its own
    # process (a model copy per shard, and no Ray hop and no extra process per embedding)
    embed_in: Literal["actor", "shard"] = "actor"
    embedder_max_wait_ms: float = 2.0
    embedder_threads: int = 1
    # embed calls each shard keeps out at once; texts that arrive meanwhile go together in the next call
    embed_calls_per_shard: Annotated[int, msgspec.Meta(ge=1)] = 1
    # searches per Ray call from a gateway to a shard: a lone search goes at once; those that arrive
    # while a shard's calls are out go together in the next (0: one call per search)
    search_batch: Annotated[int, msgspec.Meta(ge=0)] = 64
    search_calls_per_shard: Annotated[int, msgspec.Meta(ge=1)] = 2  # search calls out at once per shard
    # searches from a process on a shard's own node go over a Unix socket the shard listens on, not
    # a Ray call (~3 ms of Ray transport saved per search); Ray stays the fallback (actors/read_server.py)
    direct_reads: bool = True
    extractor_max_concurrency: int = 128
    # where LLM calls are made. auto: in the extractor actors when the model runs in-process (vLLM),
    # straight from each shard actor when it is an HTTP endpoint (the server batches; a proxy actor
    # would add a hop per call and one process every call of the cluster must cross). extractor:
    # always through the extractor actors (e.g. to cap the calls in flight against a rate-limited API)
    llm_calls: Literal["auto", "extractor", "shard"] = "auto"
    # model actor replicas; callers send each call to the replica with the fewest calls in flight
    extractor_replicas: Annotated[int, msgspec.Meta(ge=1)] = 1
    embedder_replicas: Annotated[int, msgspec.Meta(ge=1)] = 1
    extractor_cpus: Annotated[float, msgspec.Meta(ge=0)] = 0.0  # Ray CPUs reserved per replica
    embedder_cpus: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    embedder_gpus: Annotated[float, msgspec.Meta(gt=0, le=1)] = 1.0  # per replica, when it runs on a GPU
    # ray executor only: how the tensor-parallel bundles of one replica are placed
    extractor_placement: Literal["STRICT_PACK", "PACK", "SPREAD", "STRICT_SPREAD"] = "STRICT_PACK"
    replica_cooldown_s: float = 10.0  # a replica that failed gets no new calls for this long
    call_timeout_s: float = 300.0
    restart_wait_s: float = 60.0
    event_batch: int = 256
    event_backpressure: int = 32
    # The local Ray instance memstream starts (no ``address``): Ray's processes and work that one
    # machine does not need are off; joining a cluster, its own ``ray start`` flags decide instead
    # (configs/DEPLOYMENT.md). README "Ray's processes" has what each costs.
    include_dashboard: bool = False  # Ray's web dashboard (off, its head process is stopped too)
    log_monitor: bool = False  # forward the actors' log lines to this process (else: Ray's session log folder)
    autoscaler: bool = False  # Ray's autoscaler monitor: nothing to add nodes to on one machine
    prestart_workers: bool = False  # one idle worker process per CPU at start, for tasks memstream never sends
    idle_workers: Annotated[int, msgspec.Meta(ge=-1)] | None = 0  # idle workers kept; -1: one per CPU (Ray's)
    metrics: bool = False  # Ray's own metrics (each process reports to its metrics agent every 10 s)
    task_events: bool = False  # Ray's per-call task events (state API, timeline): work on every actor call
    object_store_mb: Annotated[int, msgspec.Meta(ge=75)] | None = None  # None: Ray's default (30% of RAM)


class RestConfig(_Section):
    """The Mem0-compatible REST API on the gateway's port (``gateway/rest``)."""

    add_async: bool = True  # an add without ``async_mode`` is answered at once with an event_id (Mem0's default)
    max_pending_adds: Annotated[int, msgspec.Meta(ge=1)] = 1024  # background adds waiting or running; then 429
    keep_events: Annotated[int, msgspec.Meta(ge=1)] = 10000  # statuses of recent background adds, for polling


class GatewayConfig(_Section):
    """The WebSocket front door: where it listens and the limits that keep one client from hurting others."""

    host: str = "127.0.0.1"
    port: int = 8765
    runtime: Literal["ray", "local"] = "ray"  # shard actors on Ray, or the engine in the gateway's process
    # gateway processes sharing the port (SO_REUSEPORT; Ray runtime): fan-out past one process's core
    processes: Annotated[int, msgspec.Meta(ge=1)] = 1
    reuse_port: bool = False  # bind with SO_REUSEPORT (set for the siblings of ``processes`` > 1)
    token_secret_env: str = "MEMSTREAM_TOKEN_SECRET"  # HS256 secret; unset: a dev secret kept in data_dir
    token_ttl_s: int = 86400
    allowed_origins: list[str] | None = None  # browsers only; None admits any Origin
    max_frame_bytes: int = 1 << 20  # larger frames close the socket with 1009
    max_connections: int = 20000
    max_in_flight: int = 64  # requests per connection being worked on at once
    rate_per_s: float = 200.0  # requests per connection per second (token bucket)
    rate_burst: int = 400
    max_subscriptions: int = 64  # per connection (each has its own bounded queue: memory.subscriber_queue)
    outbound_queue: int = 4096  # frames buffered per connection before it is closed with 1013
    heartbeat_s: float = 15.0
    auth_timeout_s: float = 30.0
    request_timeout_s: float = 600.0
    shutdown_grace_s: float = 60.0
    # websockets' keepalive: a client that answers no ping within the timeout is disconnected
    # (None: no pings; e.g. a test that holds a reader still on purpose)
    ping_interval_s: Annotated[float, msgspec.Meta(gt=0)] | None = 20.0
    ping_timeout_s: Annotated[float, msgspec.Meta(gt=0)] | None = 20.0
    rest: RestConfig = msgspec.field(default_factory=RestConfig)


class WebhooksConfig(_Section):
    """Signed webhooks fed from the journal (``gateway/webhooks``): retries, dead-letter, pacing."""

    enabled: bool = True
    max_attempts: Annotated[int, msgspec.Meta(ge=1)] = 8  # failures of one delivery before its owner is dead-lettered
    backoff_base_s: Annotated[float, msgspec.Meta(gt=0)] = 1.0  # first retry after about this long, doubling
    backoff_max_s: Annotated[float, msgspec.Meta(gt=0)] = 300.0
    jitter: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.5  # this share of each wait is random
    timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 10.0  # per delivery POST
    concurrency: Annotated[int, msgspec.Meta(ge=1)] = 16  # deliveries in flight (each owner one at a time)
    poll_s: Annotated[float, msgspec.Meta(gt=0)] = 5.0  # catch-up scan of every owner's head (the safety net)
    # one gateway process delivers (a lease in the store); another takes over this long after it died
    lease_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    batch: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100  # events read from the journal per page
    path: str = "webhooks.sqlite3"  # registrations and cursors beside an SQLite journal (relative to data_dir)


class LogConfig(_Section):
    level: str = "info"
    json: bool = False


class Config(_Section):
    data_dir: str = ".memstream"
    tenant: str = "default"
    llm: LLMConfig = msgspec.field(default_factory=VLLMConfig)
    embedder: EmbedderConfig = msgspec.field(default_factory=SentenceTransformersConfig)
    vector_store: VectorStoreConfig = msgspec.field(default_factory=QdrantEdgeConfig)
    journal: JournalConfig = msgspec.field(default_factory=SQLiteJournalConfig)
    memory: MemoryPolicy = msgspec.field(default_factory=MemoryPolicy)
    retrieval: RetrievalConfig = msgspec.field(default_factory=RetrievalConfig)
    graph: GraphPolicy = msgspec.field(default_factory=GraphPolicy)
    graph_store: GraphStoreConfig = msgspec.field(default_factory=LadybugConfig)
    ray: RayConfig = msgspec.field(default_factory=RayConfig)
    gateway: GatewayConfig = msgspec.field(default_factory=GatewayConfig)
    webhooks: WebhooksConfig = msgspec.field(default_factory=WebhooksConfig)
    log: LogConfig = msgspec.field(default_factory=LogConfig)

    def data_path(self, relative: str) -> Path:
        """A store's file or folder: always inside ``data_dir`` (no absolute paths, no ``..``)."""
        return Path(self.data_dir) / _contained(relative, "path")


_DEFAULT_PROVIDERS = {"llm": "vllm", "embedder": "sentence_transformers", "vector_store": "qdrant_edge",
                      "journal": "sqlite",
                      "graph_store": "ladybug"}


def _contained(relative: str, field: str) -> Path:
    """A path relative to ``data_dir`` that cannot leave it; ConfigError naming the field otherwise."""
    path = Path(relative)
    if not relative or "\x00" in relative or path.is_absolute() or ".." in path.parts:
        raise ConfigError(f"invalid configuration: {field} must be a relative path inside data_dir "
                          f"(no absolute path, no '..'), got {relative!r}")
    return path


def _check_paths(config: Config) -> Config:
    """Store paths stay inside ``data_dir``; ``data_dir`` itself (the operator's choice, absolute or
    relative) must be a directory if it exists."""
    data_dir = config.data_dir
    if not data_dir or "\x00" in data_dir or (os.path.exists(data_dir) and not os.path.isdir(data_dir)):
        raise ConfigError(f"invalid configuration: data_dir must be a directory, got {data_dir!r} - at $.data_dir")
    for section in ("vector_store", "journal", "graph_store", "webhooks"):
        relative = getattr(getattr(config, section), "path", None)
        if relative is not None:
            _contained(relative, f"$.{section}.path")
    return config


def load_config(
    source: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Config:
    """Build the config from the layers; raise ConfigError naming the bad field."""
    environ = dict(os.environ if environ is None else environ)
    layers: dict[str, Any] = {}
    source = source or environ.get("MEMSTREAM_CONFIG")
    if source:
        layers = merge(layers, read_yaml(str(source)))
    layers = merge(layers, from_env(environ))
    if overrides:
        layers = merge(layers, overrides)
    for section, provider in _DEFAULT_PROVIDERS.items():
        if isinstance(layers.get(section), dict):
            layers[section].setdefault("provider", provider)
    try:
        config = msgspec.convert(layers, Config, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from None
    return _check_paths(config)


def cache_dir() -> Path:
    """Where converted models and vLLM's compile cache live: inside the project, outside git."""
    return Path(os.environ.get("MEMSTREAM_CACHE_DIR", PROJECT_ROOT / ".cache"))
