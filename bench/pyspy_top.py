"""Summarise a py-spy ``--format raw`` profile (collapsed stacks): samples per thread, top functions.

    .venv/bin/python bench/pyspy_top.py /tmp/prof/spy-sqlite-1.txt [--top 25] [--thread NAME]

Self time is where the sampled thread was; inclusive time counts a function once per sample when it
is anywhere on the stack. Idle samples are only present when py-spy ran with ``--idle``.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
from pathlib import Path

_LINE_NO = re.compile(r":\d+\)$")


def _frame_key(frame: str) -> str:
    """``func (path/to/file.py:123)`` -> ``func (file.py)``: lines of one function add up."""
    frame = _LINE_NO.sub(")", frame.strip())
    if "(" in frame:
        name, where = frame.split(" (", 1)
        return f"{name} ({where.rsplit('/', 1)[-1]}"
    return frame


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--thread", help="only threads whose name contains this")
    args = parser.parse_args(argv)

    threads: collections.Counter[str] = collections.Counter()
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in args.profile.read_text("utf-8", "replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0]
        threads[thread] += count
        if args.thread and args.thread not in thread:
            continue
        total += count
        keys = [_frame_key(f) for f in frames[1:]]
        if keys:
            self_time[keys[-1]] += count
        for key in set(keys):
            inclusive[key] += count
    print("samples per thread:")
    for thread, count in threads.most_common():
        print(f"  {count:8d}  {thread}")
    if not total:
        return 0
    print(f"\ntop {args.top} by self time ({total} samples):")
    for key, count in self_time.most_common(args.top):
        print(f"  {100 * count / total:5.1f}%  {key}")
    print(f"\ntop {args.top} by inclusive time:")
    for key, count in inclusive.most_common(args.top):
        print(f"  {100 * count / total:5.1f}%  {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
