"""Scenario 13: upload and download a 10 MB file, crm2-documents vs bare Starlette to disk.

crm2: ``POST /api/v1/documents/documents/{id}/versions`` (streamed multipart: parsed,
sniffed, SHA-256, size limit, local backend's temp file + fsync + rename, the version
row and its event), then ``GET …/download``. Baseline (``bare_files.py``): the same
multipart body written to disk as it arrives, and ``FileResponse`` back. Each
round also samples the server's RSS during the upload: streaming must not hold
the file in memory, so the growth stays far below 10 MB.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from harness import Envs, Metric, Profile, Server, log, running, uvicorn_app
from harness import rounds as profile_rounds

SIZE = 10 * 1024 * 1024
API = "/api/v1/documents/documents"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakRss:
    """The highest RSS of ``pid`` while the block runs, sampled every 5 ms."""

    def __init__(self, pid: int) -> None:
        self.pid, self.before, self.peak = pid, rss_mb(pid), 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.005)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def growth(self) -> float:
        return max(self.peak - self.before, 0.0)


def _file(workdir: Path, round_number: int) -> Path:
    path = workdir / f"bench-upload-{round_number}.pdf"
    block = os.urandom(1024 * 1024)
    with path.open("wb") as out:
        out.write(b"%PDF-1.4\n")
        for i in range(SIZE // len(block)):
            out.write(bytes([i]) + block[1:])  # every round's file differs (no duplicates)
    return path


def _transfer(
    client: httpx.Client, server: Server, upload_url: str, path: Path, headers: dict[str, str]
) -> tuple[float, float, str]:
    with path.open("rb") as body, PeakRss(server.pid) as rss:
        started = time.perf_counter()
        answer = client.post(
            upload_url, files={"file": ("scan.pdf", body, "application/pdf")}, headers=headers
        )
        upload_s = time.perf_counter() - started
    answer.raise_for_status()
    return upload_s, rss.growth, str(answer.json().get("name", ""))


def _download(client: httpx.Client, url: str, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    size = 0
    with client.stream("GET", url, headers=headers) as answer:
        answer.raise_for_status()
        for chunk in answer.iter_bytes():
            size += len(chunk)
    if size < SIZE:
        raise RuntimeError(f"downloaded {size} bytes, expected {SIZE}+")
    return time.perf_counter() - started


def scenario_13(envs: Envs, profile: Profile) -> list[Metric]:
    """A 10 MB upload and download through crm2-documents vs bare Starlette streaming to disk."""
    env = envs.get("documents", CRM2_DOCUMENTS_LOCAL_ROOT="bench-documents")
    env.prepare()
    label = "13 upload + download a 10 MB file"
    up = Metric(label, "upload", "ms", False, target_ratio=2.0)
    down = Metric(label, "download", "ms", False, target_ratio=2.0)
    rss = Metric(label, "server RSS growth during upload", "MB", False, target_crm2_max=8.0)
    baseline = uvicorn_app("bare_files", env.workdir,
                           BENCH_FILES_ROOT=str(env.workdir / "bench-bare-files"))  # fmt: skip
    with (
        running(env.serve(), baseline) as (app, bare),
        httpx.Client(timeout=120) as client,
    ):
        app_url, bare_url = app.url, bare.url
        headers = env.bearer(app_url)
        for number, measured in profile_rounds(profile):
            path = _file(env.workdir, number)
            made = client.post(app_url + API, json={"title": f"bench {number}"}, headers=headers)
            made.raise_for_status()
            doc = made.json()["id"]
            got: dict[str, Any] = {}
            a_up, a_rss, _ = _transfer(client, app, f"{app_url}{API}/{doc}/versions", path, headers)
            a_down = _download(client, f"{app_url}{API}/{doc}/download", headers)
            b_up, b_rss, name = _transfer(client, bare, f"{bare_url}/upload", path, {})
            b_down = _download(client, f"{bare_url}/download/{name}", {})
            got = {"crm2": (a_up, a_down, a_rss), "baseline": (b_up, b_down, b_rss)}
            for variant, (u, d, r) in got.items():
                log(f"s13 round {number} {variant}: upload {u * 1000:.0f} ms, "
                    f"download {d * 1000:.0f} ms, RSS +{r:.1f} MB")  # fmt: skip
            path.unlink()
            if measured:
                up.add(a_up * 1000, b_up * 1000)
                down.add(a_down * 1000, b_down * 1000)
                rss.add(a_rss, max(b_rss, 0.1))
    return [up, down, rss]
