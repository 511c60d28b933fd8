"""Request files: the process's private folder, which inputs count as uploads, and the output files
(pictures, reports, previews) written for one request."""
from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import gradio as gr
import numpy as np

from deepfake import render, report

from . import gradio_compat
from .settings import PREVIEW_SECONDS

# Request files (reports, pictures, frames) go to a folder private to this process: made at start by mkdtemp
# (mode 0700, an unpredictable name), removed at exit. A fixed path such as /tmp/deepfake-app could be made
# first, or filled with symlinks, by another local user.
TMP_ROOT = Path(tempfile.mkdtemp(prefix="deepfake-app-"))
atexit.register(shutil.rmtree, TMP_ROOT, True)
KEEP_SECONDS = 15 * 60  # request files (reports, frames) live this long, then the next request sweeps them


def sweep() -> None:
    """Remove request folders older than KEEP_SECONDS (bounded temp usage)."""
    if not TMP_ROOT.is_dir():
        return
    cutoff = time.time() - KEEP_SECONDS
    for d in TMP_ROOT.iterdir():
        try:
            if d.stat().st_mtime < cutoff:
                shutil.rmtree(d, ignore_errors=True)
        except OSError:
            pass


def workdir() -> Path:
    """A new folder for one request's files (old ones swept first)."""
    sweep()
    TMP_ROOT.mkdir(mode=0o700, parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="req-", dir=TMP_ROOT))


def stem(name: str) -> str:
    """A safe file-name stem from an input's name (output files are named after it)."""
    base = Path(report.safe_name(name)).stem
    return re.sub(r"[^\w.-]+", "_", base)[:60].strip("._") or "input"


def upload_roots() -> list[Path]:
    """Where an input file may be: Gradio's upload folder (uploads, and the examples Gradio copies there)
    and this process's private folder (frames sent from the Video tab). Nothing else."""
    return [gradio_compat.upload_folder(), TMP_ROOT.resolve()]


def uploaded(value) -> Path | None:
    """The real path (symlinks resolved) of a file under an upload root; None for anything else."""
    if isinstance(value, dict):  # FileData as a dict
        value = value.get("path")
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        return None
    try:
        real = Path(value).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    return real if real.is_file() and any(real.is_relative_to(root) for root in upload_roots()) else None


def input_path(value, what: str) -> Path:
    """The uploaded file's path, refused unless it is an upload of this app."""
    if value is None or value == "":
        raise gr.Error(f"Please upload {what} first.")
    real = uploaded(value)
    if real is None:
        raise gr.Error(f"Only files uploaded to this app can be analysed; please upload {what}.")
    return real


def write_text(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def write_png(folder: Path, name: str, image) -> str:
    """An output picture as a PNG file in the request folder. Gradio copies a returned file into its cache
    by write-and-rename (save_file_to_cache); a returned array would go through save_pil_to_cache, which
    rewrites a content-addressed file in place while another client may be downloading it (0-byte files)."""
    path = folder / name
    path.write_bytes(render.png_bytes(image))
    return str(path)


def write_reports(folder: Path, result, name: str, sha: str, images: dict, settings: dict,
                  title: str) -> tuple[str, str]:
    """(JSON report file, HTML report file) of one result; pictures shrunk to at most 1024 px."""
    created = report._now()
    images = {k: (render.fit(v, 1024) if isinstance(v, np.ndarray) else v) for k, v in images.items()}
    rep = report.report_json(result, input_name=name, input_sha256=sha, created=created, settings=settings)
    page = report.report_html(result, input_name=name, input_sha256=sha, images=images, created=created,
                              settings=settings, title=title)
    base = stem(name)
    return (write_text(folder, f"{base}_report.json", json.dumps(rep, indent=2)),
            write_text(folder, f"{base}_report.html", page))


def browser_preview(path: Path, folder: Path) -> str | None:
    """H.264/yuv420p MP4 (first PREVIEW_SECONDS, at most 640 px wide) that any browser plays, whatever
    the upload's codec. None when ffmpeg is missing or fails: the analysis does not depend on it."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return None
    out = folder / f"{stem(path.name)}_preview.mp4"
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(path), "-t", str(PREVIEW_SECONDS),
           "-an", "-vf", "scale='min(640,iw)':-2:flags=area,format=yuv420p", "-c:v", "libx264",
           "-preset", "veryfast", "-crf", "28", "-movflags", "+faststart", str(out)]
    try:
        subprocess.run(cmd, check=True, timeout=120, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (subprocess.SubprocessError, OSError):
        return None
    return str(out) if out.is_file() and out.stat().st_size > 0 else None
