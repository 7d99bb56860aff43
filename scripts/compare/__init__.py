"""The scenarios of ``memstream bench`` (memstream next to mem0ai), one module each.

Every scenario module holds the work both systems get (pure functions), how memstream is
measured through the gateway, how the mem0ai driver's answer is shaped, and the scenario's rows
of the table and its plot. ``report`` holds what they share (ratios, cell formats, bar charts,
targets, notes); ``mem0`` sets up and runs the mem0ai side; ``scripts/bench_compare.py`` runs
the scenarios in order and writes the results.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
