"""Flame graphs of services under the send-path load.

    .venv/bin/python -m bench.profile --out bench/results/profiles/NAME \\
        [--processes msgsvc,gateway] [--delay 35] [--seconds 10] -- SEND_PATH_ARGS...

Runs ``bench.send_path`` with the given arguments, waits ``--delay`` seconds
(the cluster starts and the load begins), then samples each named service
process of that run with py-spy for ``--seconds``: a flame graph
(``NAME-<process>.svg``) and the collapsed stacks it is drawn from
(``NAME-<process>.txt``), next to the send path's own result
(``NAME-send-path.json``). Prints one JSON object: per process, the
functions with the most samples of their own, and the files written.
Sampling costs the sampled process little (py-spy reads its memory from
outside), but the figures of a profiled run are not the ones to quote.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from chatmesh.devcluster import REPO_ROOT

PY_SPY = Path(sys.executable).parent / "py-spy"
_FRAME = re.compile(r"(?P<function>.*) \((?P<file>.*?):\d+\)$")


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        children[parent].append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for child in children[stack.pop()]:
            found.append(child)
            stack.append(child)
    return found


def _service_pid(root: int, service: str) -> int | None:
    """The first process of the run started as ``python -m <service>``."""
    for pid in sorted(_descendants(root)):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            continue
        if b"-m" in argv and argv[argv.index(b"-m") + 1 :][:1] == [service.encode()]:
            return pid
    return None


def _speak_of_the_project(path: Path) -> None:
    """py-spy titles a flame graph with its own command line: absolute paths
    of this checkout, which mean nothing to anyone reading the result."""
    text = path.read_text()
    text = text.replace(str(PY_SPY), "py-spy").replace(f"{REPO_ROOT}/", "")
    path.write_text(text)


def _top_own_samples(collapsed: Path, count: int = 15) -> list[dict[str, object]]:
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack:
            continue
        total += int(samples)
        leaf = stack.split(";")[-1]
        match = _FRAME.match(leaf)
        name = leaf
        if match:
            where = match["file"].split("site-packages/")[-1].split(f"{REPO_ROOT}/")[-1]
            name = f"{match['function']} ({where})"
        own[name] += int(samples)
    return [
        {"function": name, "share": round(samples / max(total, 1), 3)}
        for name, samples in own.most_common(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("--out", required=True, help="path prefix of the files written")
    parser.add_argument("--processes", default="msgsvc,gateway")
    parser.add_argument("--delay", type=float, default=35.0)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("send_path_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    forwarded = [a for a in args.send_path_args if a != "--"]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result_file = out.with_name(f"{out.name}-send-path.json")
    with result_file.open("w") as result:
        run = subprocess.Popen(
            [sys.executable, "-m", "bench.send_path", *forwarded], stdout=result, cwd=REPO_ROOT
        )
        time.sleep(args.delay)
        samplers = {}
        for service in args.processes.split(","):
            pid = _service_pid(run.pid, service)
            if pid is None:
                continue
            stem = out.with_name(f"{out.name}-{service}")
            samplers[service] = (
                stem,
                [
                    subprocess.Popen(
                        [
                            *(PY_SPY, "record", "-p", str(pid), "-d", str(args.seconds)),
                            *("-r", str(args.rate), "--nonblocking", "-f", fmt, "-o", str(path)),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    for fmt, path in (
                        ("raw", stem.with_suffix(".txt")),
                        ("flamegraph", stem.with_suffix(".svg")),
                    )
                ],
            )
        for stem, sampling in samplers.values():
            for sampler in sampling:
                sampler.wait()
            for written in (stem.with_suffix(".txt"), stem.with_suffix(".svg")):
                if written.exists():
                    _speak_of_the_project(written)
        run.wait()
    report = {
        "benchmark": "profile",
        "send_path_args": forwarded,
        "send_path_result": str(result_file),
        "processes": {
            service: {
                "collapsed": str(stem.with_suffix(".txt")),
                "flame_graph": str(stem.with_suffix(".svg")),
                "top_own_samples": _top_own_samples(stem.with_suffix(".txt")),
            }
            for service, (stem, _) in samplers.items()
            if stem.with_suffix(".txt").exists()
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
