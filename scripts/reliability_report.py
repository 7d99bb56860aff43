"""Run the reliability suite and write what it measured to ``bench/results/reliability.json``.

    python -m scripts.reliability_report                       # the suite as CI runs it
    python -m scripts.reliability_report --fuzz-frames 100000 -k fuzz   # the nightly fuzz setting

Each test of ``tests/reliability`` records its figures (adds, kills by actor kind, faults
injected, frames fuzzed, lost, duplicates); the run merges them into the JSON file by area, so a
nightly fuzz run adds its ``fuzz_nightly`` area beside the others. ``--merge FILE`` folds the
areas of another such file (e.g. a run written elsewhere) into the output and exits.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "results" / "reliability.json"


def merge(source: Path, target: Path) -> None:
    incoming = json.loads(source.read_text())
    document = json.loads(target.read_text()) if target.is_file() else {}
    document.setdefault("areas", {}).update(incoming.get("areas", {}))
    for key in ("machine", "updated_at"):
        document.setdefault(key, incoming.get(key))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run tests/reliability and record its figures")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--fuzz-frames", type=int, default=None, help="MEMSTREAM_FUZZ_FRAMES (nightly: 100000)")
    parser.add_argument("-k", dest="select", default=None, help="pytest -k expression")
    parser.add_argument("--merge", type=Path, default=None, help="fold another figures file into --out and exit")
    args = parser.parse_args(argv)
    if args.merge is not None:
        merge(args.merge, args.out)
        print(f"merged {args.merge} into {args.out}")
        return 0
    env = {**os.environ, "MEMSTREAM_RELIABILITY_JSON": str(args.out.resolve())}
    if args.fuzz_frames is not None:
        env["MEMSTREAM_FUZZ_FRAMES"] = str(args.fuzz_frames)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-s", "tests/reliability"]
    if args.select:
        command += ["-k", args.select]
    code = subprocess.call(command, cwd=ROOT, env=env)
    if args.out.is_file():
        areas = json.loads(args.out.read_text()).get("areas", {})
        print(f"\nfigures in {args.out}:")
        for area, values in sorted(areas.items()):
            print(f"  {area}: {json.dumps(values, sort_keys=True)}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
