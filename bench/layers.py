"""Where a server's CPU goes, by layer: a py-spy raw profile's samples summed per package.

    .venv/bin/py-spy record --pid <crm2 serve's pid> --rate 500 --format raw -o run.txt
    python3 bench/layers.py run.txt [--under 'RequestResponseCycle.run_asgi']

Each sample is charged to the frame it was taken in (self time), and that frame's file
to a layer: crm2's own code (the core, the plugins), the web framework (FastAPI,
Starlette), the server (uvicorn), the database layer (SQLAlchemy, asyncpg), validation
and serialisation (pydantic), the event loop and the rest of the standard library.
Idle threads (a worker pool waiting on its queue) and the loop's wait for I/O are left
out: they are not CPU. ``--under NAME`` keeps only the samples whose stack passes
through a frame named ``NAME`` (one request's work, without the relay beside it).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# (layer, pattern of the frame's file): the first match wins.
LAYERS: tuple[tuple[str, str], ...] = (
    ("crm2 (core)", r"^crm2_core/|^crm2_hookspecs/"),
    ("crm2 (plugins)", r"^crm2_[a-z_]+/"),
    ("FastAPI", r"^fastapi/"),
    ("Starlette", r"^starlette/"),
    ("uvicorn / httptools", r"^uvicorn/|^httptools/"),
    ("SQLAlchemy", r"^sqlalchemy/|<sqlalchemy generated"),
    ("asyncpg", r"^asyncpg/"),
    ("pydantic", r"^pydantic/|^pydantic_core/"),
    ("PyJWT / cryptography", r"^jwt/|^cryptography/"),
    ("asyncio / uvloop", r"^asyncio/|^uvloop/"),
    ("standard library", r"^[a-z_]+\.py\)$|^[a-z_]+/|^<frozen|^<string>"),
)
IDLE = (
    "Condition.wait (threading.py",  # a pool thread waiting for work
    "select (selectors.py",
)
# Frames whose own samples are a call into the kernel (py-spy shows no C frames).
KERNEL = ("HeadWithBody.write (crm2_core/http/protocol.py:42)",)  # transport.write: send()
FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^:]*)(?::\d+)?\)$")


def layer_of(frame: str) -> str:
    if frame in KERNEL:
        return "socket writes (kernel)"
    match = FRAME.match(frame)
    where = match.group("file") if match else frame
    for layer, pattern in LAYERS:
        if re.search(pattern, where):
            return layer
    return "other"


def summarise(path: Path, under: str | None = None) -> tuple[Counter[str], int]:
    layers: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        leaf = frames[-1]
        if any(leaf.startswith(idle) for idle in IDLE) or leaf.startswith("Runner.run ("):
            continue  # not CPU: a thread waiting, or the loop polling for I/O
        if under is not None and not any(f.startswith(under + " (") for f in frames):
            continue
        layers[layer_of(leaf)] += int(count)
        total += int(count)
    return layers, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", type=Path, help="py-spy record --format raw output")
    parser.add_argument("--under", help="only samples whose stack passes through this frame")
    args = parser.parse_args()
    layers, total = summarise(args.profile, args.under)
    if not total:
        raise SystemExit("no samples")
    print(f"{'layer':24} {'share':>6}")
    for layer, count in layers.most_common():
        print(f"{layer:24} {100 * count / total:5.1f}%")
    print(f"{'(samples)':24} {total:6d}")


if __name__ == "__main__":
    main()
