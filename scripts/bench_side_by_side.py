"""Side-by-side benchmark: two servers started here, loaded alternately in one sitting.

Starts each target as a subprocess on a free port and a fresh database (PostgreSQL
`bench_<random>`, dropped afterwards; SQLite in a temporary directory), runs
/work/shared/bench/joblib_bench.py A against B, then floor.py (the cost of the bare HTTP
stacks), writes one JSON with everything and prints a short summary. Everything it started
is stopped by PID; databases, Redis indexes and worktrees it made are removed.

    uv run python scripts/bench_side_by_side.py --a ours --b ref \\
        --scenario steady --workers 8 --submitters 8 --duration 20 --rounds 3

Targets: `ours` (this checkout), `ref` (scripts/reference_host.py: zndraw-joblib 0.1.7),
`rev:<git-rev>` (our server at that commit, from a temporary git worktree). Each takes an
optional `:pg` or `:sqlite` suffix (default --db): ours on pg = PostgreSQL + Redis, ours on
sqlite = the embedded mode. Options this script does not know go to joblib_bench.py as they
are (--scenario, --tasks, --workers, --submitters, --duration, --rounds, --rate, ...).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from bench_targets import (
    ADMIN_EMAIL,
    DATABASES,
    Sitting,
    Target,
    child_env,
    parse_target,
    plain_dsn,
    say,
    start,
)

BENCH_DIR = Path(os.environ.get("JOBLIB_BENCH_DIR", "/work/shared/bench"))


# --- measuring -------------------------------------------------------------------------


class LoadSampler:
    """Samples the 1-minute load average every few seconds while a phase runs."""

    def __init__(self, period: float = 5.0) -> None:
        self.period = period
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadSampler:
        self.before = os.getloadavg()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.after = os.getloadavg()

    def summary(self) -> dict[str, Any]:
        during = self.samples or [self.after[0]]
        return {
            "before": list(self.before),
            "after": list(self.after),
            "during_1min": {
                "min": min(during),
                "median": statistics.median(during),
                "max": max(during),
                "samples": during,
            },
        }


def run_joblib_bench(sitting: Sitting, a: Target, b: Target, extra: list[str]) -> dict[str, Any]:
    out = sitting.tmp / "joblib_bench.json"
    # Our options come last, so they win over any in EXTRA.
    ours = {"--url": a.url, "--vs": b.url, "--email": ADMIN_EMAIL, "--json": str(out)}
    cmd = [sys.executable, str(BENCH_DIR / "joblib_bench.py"), *extra, *flatten(ours)]
    env = child_env(BENCH_PASSWORD=sitting.password)
    say(f"\n$ {' '.join(cmd[1:])}")
    with LoadSampler() as load:
        code = subprocess.run(cmd, env=env).returncode
    doc: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    return {"exit_status": code, "command": cmd[1:], "load": load.summary(), "result": doc}


def flatten(options: dict[str, Any]) -> list[str]:
    return [str(part) for pair in options.items() for part in pair]


FLOOR_LINE = re.compile(r"^(\S+)\s+(\d+) requests/s\s+\(runs: ([\d, ]+)\)")


def run_floor(sitting: Sitting) -> dict[str, Any]:
    dsn = plain_dsn(sitting.database())
    options = {"--seconds": sitting.args.floor_seconds, "--rounds": sitting.args.floor_rounds}
    cmd = [sys.executable, str(BENCH_DIR / "floor.py"), "--db", dsn, *flatten(options)]
    say(f"\n$ floor.py {' '.join(flatten(options))}")
    with LoadSampler() as load:
        done = subprocess.run(cmd, env=child_env(), capture_output=True, text=True)
    say(done.stdout.rstrip())
    stacks = {}
    for line in done.stdout.splitlines():
        if match := FLOOR_LINE.match(line):
            runs = [float(x) for x in match.group(3).split(",")]
            stacks[match.group(1)] = {"median_rps": float(match.group(2)), "runs_rps": runs}
    if done.returncode != 0:
        say(done.stderr[-3000:])
    return {"exit_status": done.returncode, "stacks": stacks, "load": load.summary()}


# --- reporting -------------------------------------------------------------------------


def describe(t: Target) -> str:
    what = {"ours": "ours", "ref": "reference (zndraw-joblib 0.1.7)", "rev": f"ours at {t.rev}"}
    db = {"pg": "PostgreSQL" + (" + Redis" if t.kind != "ref" else ""), "sqlite": "SQLite"}
    text = f"{what[t.kind]} on {db[t.db]}"
    if t.commit:
        text += f", {t.commit[:10]}" + (" + uncommitted changes" if t.details.get("dirty") else "")
    return text


def fmt_load(load: dict[str, Any]) -> str:
    during = load["during_1min"]
    before = " ".join(f"{x:.2f}" for x in load["before"])
    return f"before {before}; during (1-min) {during['min']:.2f}-{during['max']:.2f}"


def figure(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.1f}"


def print_summary(report: dict[str, Any]) -> None:
    say("\n=== side by side ===")
    for label, t in report["targets"].items():
        say(f"{label} = {t['description']}")
    bench = report["bench"]
    start = " ".join(f"{x:.2f}" for x in report["machine"]["load_at_start"])
    say(f"load average ({os.cpu_count()} cores): at start {start}; bench {fmt_load(bench['load'])}")
    for scenario, metrics in bench["result"].get("summary", {}).items():
        say(f"{scenario}:")
        for name, entry in metrics.items():
            ratio = entry.get("speedup_a_over_b") or {}
            rounds = " ".join(f"{r:.2f}x" for r in ratio.get("per_round", []) if r)
            med = entry["median"]
            say(
                f"  {name:24s} A {figure(med['A'])}  B {figure(med['B'])}  "
                f"A/B {ratio.get('median') or 0:.2f}x  (rounds {rounds})"
            )
    say("exactly-once: " + ("all runs passed" if bench["result"].get("ok") else "FAILED"))
    if floor := report.get("floor"):
        say(f"floor (requests/s, median; load {fmt_load(floor['load'])}):")
        for name, stack in floor["stacks"].items():
            say(f"  {name:28s} {stack['median_rps']:8.0f}")
    if share := report.get("floor_share"):
        rounds = ", ".join(f"{r:,.0f}" for r in share["rounds_rps"])
        say(
            f"A's steady request rate (4 per completed task + empty claims): median "
            f"{share['median_rps']:,.0f}/s (rounds {rounds})"
            f" = {100 * share['share']:.0f}% of the {share['stack']} floor"
        )


FLOOR_STACK = "fastapi+asyncpg"
REQUESTS_PER_TASK = 4  # submit, claim, running, completed


def floor_share(report: dict[str, Any]) -> dict[str, Any] | None:
    """A's request rate in the steady scenario as a share of the FastAPI + asyncpg floor."""
    stack = report.get("floor", {}).get("stacks", {}).get(FLOOR_STACK)
    runs = [
        run
        for run in report["bench"]["result"].get("runs", [])
        if run.get("scenario") == "steady" and run.get("target") == "A"
    ]
    if not stack or not runs:
        return None
    rates = [
        REQUESTS_PER_TASK * run["headline"]["completed tasks/s"]
        + run["empty_claims"] / run["elapsed_s"]
        for run in runs
    ]
    median = statistics.median(rates)
    return {
        "stack": FLOOR_STACK,
        "floor_rps": stack["median_rps"],
        "rounds_rps": rates,
        "median_rps": median,
        "share": median / stack["median_rps"],
    }


def parse_args() -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    p.add_argument("--a", default="ours", help="target A (ours, ref, rev:<git-rev>)[:pg|:sqlite]")
    p.add_argument("--b", default="ref", help="target B, same form")
    p.add_argument("--db", choices=DATABASES, default="pg", help="database without a suffix")
    p.add_argument(
        "--pg",
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres",
        help="PostgreSQL server (any database: used to create/drop bench_*)",
    )
    p.add_argument("--redis", default="redis://127.0.0.1:6379", help="Redis server")
    p.add_argument("--redis-db", type=int, default=12, help="first Redis db index to use")
    p.add_argument("--no-floor", action="store_true", help="skip floor.py")
    p.add_argument("--floor-seconds", type=float, default=8.0)
    p.add_argument("--floor-rounds", type=int, default=2)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    p.add_argument("--json", default=f"bench-side-by-side-{stamp}.json", help="output file")
    return p.parse_known_args()


def run(sitting: Sitting, targets: list[Target], extra: list[str]) -> dict[str, Any]:
    report: dict[str, Any] = {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "argv": sys.argv[1:],
        "machine": {"cpus": os.cpu_count(), "load_at_start": list(os.getloadavg())},
    }
    # The servers stop before floor.py, so its stacks do not share the cores with them.
    with sitting.scope():
        for target in targets:
            start(sitting, target)
        a, b = targets
        report["bench"] = run_joblib_bench(sitting, a, b, extra)
        say("stopping the servers")
    if not sitting.args.no_floor:
        report["floor"] = run_floor(sitting)
    report["targets"] = {
        t.label: {
            "spec": t.spec,
            "kind": t.kind,
            "db": t.db,
            "url": t.url,
            "commit": t.commit,
            "description": describe(t),
            **t.details,
        }
        for t in targets
    }
    report["floor_share"] = floor_share(report)
    report["finished"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return report


def main() -> int:
    args, extra = parse_args()
    targets = [parse_target("A", args.a, args.db), parse_target("B", args.b, args.db)]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sitting = Sitting(args)
    try:
        report = run(sitting, targets, extra)
    finally:
        sitting.close()
    Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    print_summary(report)
    say(f"wrote {args.json}")
    ok = report["bench"]["exit_status"] == 0 and report.get("floor", {}).get("exit_status", 0) == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
