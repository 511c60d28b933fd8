"""Talking to a live app: a free loopback port, an upload through Gradio's route, a process's peak memory."""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def upload(url: str, path: Path) -> dict:
    """`path` uploaded to the app at `url`; the FileData dict an API call then takes."""
    import httpx

    with open(path, "rb") as fh:
        r = httpx.post(f"{url}gradio_api/upload", files={"files": (path.name, fh)}, timeout=60)
    r.raise_for_status()
    return {"path": r.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


def peak_rss_mb(pid: int | None = None) -> float | None:
    """A process's peak resident set size in MB (this one by default): VmHWM, which unlike ru_maxrss does not
    inherit the parent's peak through fork + exec. Elsewhere ru_maxrss for this process, psutil's current
    RSS for another; None when neither is available."""
    try:
        for line in Path(f"/proc/{pid or 'self'}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    if pid is None or pid == os.getpid():
        import resource  # not Linux: ru_maxrss (KB on Linux, bytes on macOS)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024
    try:
        import psutil
        return psutil.Process(pid).memory_info().rss / 2**20
    except Exception:
        return None


_DOWNLOADS: list[str] = []  # the one scratch folder of this process's clients, removed at exit


def make_client(url: str):
    """A gradio_client Client of the app at `url`, downloading into a folder of its own (inside one scratch
    folder per process that is removed when the process exits)."""
    import atexit
    import shutil
    import tempfile

    from gradio_client import Client
    if not _DOWNLOADS:
        _DOWNLOADS.append(tempfile.mkdtemp(prefix="deepfake-load-clients-"))
        atexit.register(shutil.rmtree, _DOWNLOADS[0], ignore_errors=True)
    return Client(url, verbose=False, download_files=tempfile.mkdtemp(prefix="client-", dir=_DOWNLOADS[0]))
