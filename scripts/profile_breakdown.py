"""Where a py-spy profile's time goes, by package: reads py-spy's raw (collapsed) stacks and
prints each package's share of the samples, self (the leaf frame is in it) and inclusive
(it is anywhere on the stack), then the hottest leaf functions.

    py-spy record --pid PID --format raw --rate 200 --duration 20 -o server.txt
    uv run python scripts/profile_breakdown.py server.txt [--top 25] [--match claim,submit]

Packages are the first directory of a frame's file (`sqlalchemy`, `asyncio`, `uvicorn`);
our own code is split one level deeper (`app/api`, `app/services`, `jobserver_sdk/worker`)
because that is where the question "which of our layers" is answered. `--match` adds the
inclusive share of every stack holding a frame whose name contains one of the words.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]+)(?::\d+)?\)$")
OURS = ("app", "jobserver_sdk", "scripts")


def package(file: str) -> str:
    """The package a frame's file belongs to (py-spy prints paths from site-packages)."""
    parts = [p for p in file.split("/") if p]
    if not parts:
        return "?"
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1 :]
    for root in OURS:
        if root in parts:
            rest = parts[parts.index(root) :]
            return "/".join(rest[:2]) if len(rest) > 2 else rest[0]
    head = parts[0]
    return head.removesuffix(".py") if len(parts) == 1 else head


def parse(path: Path) -> list[tuple[list[tuple[str, str]], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        body, _, count = line.rpartition(" ")
        if not body or not count.isdigit():
            continue
        frames = []
        for text in body.split(";"):
            match = FRAME.match(text)
            frames.append((match["func"], match["file"]) if match else (text, "?"))
        stacks.append((frames, int(count)))
    return stacks


def report(stacks: list[tuple[list[tuple[str, str]], int]], top: int, words: list[str]) -> None:
    total = sum(n for _, n in stacks) or 1
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    matched: Counter[str] = Counter()
    for frames, n in stacks:
        func, file = frames[-1]
        own[package(file)] += n
        leaves[f"{func} ({file})"] += n
        for pkg in {package(f) for _, f in frames}:
            anywhere[pkg] += n
        for word in words:
            if any(word in f for f, _ in frames):
                matched[word] += n
    out = sys.stdout.write
    out(f"{total} samples\n\n{'package':32s} {'self %':>7s} {'incl %':>7s}\n")
    for pkg, n in own.most_common():
        out(f"{pkg:32s} {100 * n / total:7.1f} {100 * anywhere[pkg] / total:7.1f}\n")
    out(f"\nhottest leaf functions (self %, top {top}):\n")
    for name, n in leaves.most_common(top):
        out(f"  {100 * n / total:5.1f}  {name}\n")
    if words:
        out("\nstacks holding a frame named like (inclusive %):\n")
        for word in words:
            out(f"  {100 * matched[word] / total:5.1f}  {word}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path, help="py-spy --format raw output")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", default="", help="comma-separated function name parts")
    args = parser.parse_args()
    words = [w for w in args.match.split(",") if w]
    report(parse(args.profile), args.top, words)


if __name__ == "__main__":
    main()
