"""The command-line side of memstream: ``cli`` (the ``memstream`` command) and what it runs —
set-up, serving, ingestion, evaluations and benchmarks, each of which writes its JSON under
``bench/results/``."""
