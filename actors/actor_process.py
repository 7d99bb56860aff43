"""What every actor process of memstream does first, and how it ends.

``prepare_actor_process``: no model hub (the models come from PyPI packages), structured logs,
and the exit watcher below.

When Ray stops (``memstream serve`` ends, a benchmark's server is killed), each worker's main
loop returns and Python finalizes: it first waits for every non-daemon thread. AnyIO's worker
threads (``anyio.to_thread``: the SQLite journal, the ONNX model) are non-daemon and stop only
when the event loop's root task ends - which a Ray actor's loop never does - so the process
waited forever, an orphan holding its memory (seen: shard processes of finished benchmark runs,
~280 MB each, still alive tens of minutes later, their main thread in ``threading._shutdown``).

A daemon thread waits for the main thread to stop, gives the other threads a bounded grace to
finish, then ends the process. Nothing is lost by it: what a shard has accepted is in its journal
before it answers, and the stores re-apply from the journal when they open.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

from runtime.logs import configure_logging

GRACE_S = 5.0


def prepare_actor_process() -> None:
    """Called first in every actor's ``__init__``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    configure_logging()
    exit_when_main_thread_ends()


def exit_when_main_thread_ends(grace_s: float = GRACE_S) -> threading.Thread:
    """Start the watcher (once per process is enough; a second call starts a second watcher)."""
    watcher = threading.Thread(target=_watch, args=(grace_s,), name="memstream-exit-watcher", daemon=True)
    watcher.start()
    return watcher


def _watch(grace_s: float) -> None:
    threading.main_thread().join()  # returns once the interpreter has begun to shut down
    others = [t for t in threading.enumerate()
              if t is not threading.current_thread() and not t.daemon and t is not threading.main_thread()]
    per_thread = grace_s / max(len(others), 1)
    for thread in others:
        thread.join(per_thread)
    if any(t.is_alive() for t in others):
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(0)
