"""Load test of the live app: `python app.py` on 127.0.0.1 driven by concurrent gradio_client clients.

    python bench/load.py                      # 8 clients, 48 requests, then the queue-limit phase
    python bench/load.py --requests 16 --clients 4 --time-limit 300

Phase 1 (a server with the default queue): every distinct request is first made alone (reference
answers), then `--clients` threads, each with its own gradio_client.Client, share `--requests` requests
mixing /predict_image, /explain_image, /grid_heatmap and /analyze_video. Checked: no errors, every answer
equal to the same request made alone (probabilities, grids, peak points within 1e-6, pictures within one
grey level: no cross-talk through shared model state or Grad-CAM hooks), and no answer or report holding a
server path, an environment value (a sentinel variable set in the server's environment) or a traceback.
Recorded: requests/s, p50/p95 latency per endpoint and overall, the server's peak RSS (VmHWM).

Phase 2 (support/busy.py: the app in this process, queue limit --queue-max, over a detector whose occlusion
map waits at a gate this script opens): one /grid_heatmap request holds the only heavy worker at the gate,
--queue-max more fill the queue, so the queue is full for certain (not by timing) when the surplus requests are
sent. These are refused at once with the app's busy message (HTTP 503 carrying webapp.settings.BUSY_MESSAGE;
through gradio_client a QueueError), while the gate is still shut; once it opens, every accepted request is
answered.

Bounded: the requests are counted, every wait has a timeout, the whole run has --time-limit, and the
servers are always stopped. Writes bench/load_results.json; exit code 0 when every check passed.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import platform
import queue
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # app.py and support/ live at the top of the repo
    sys.path.insert(0, str(ROOT))

from support.busy import busy_ok, hold_queue_full  # noqa: E402,F401 (phase 2, shared with tests/test_load.py)
from support.compare import same  # noqa: E402
from support.paths import BUNDLED, EXAMPLE_FAKE, EXAMPLE_REAL, EXAMPLE_VIDEO, YUNET_ONNX  # noqa: E402
from support.server import free_port, make_client, peak_rss_mb  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "load_results.json"
SENTINEL_VAR = "DEEPFAKE_SECRET_SENTINEL"
ENDPOINTS = ("/predict_image", "/explain_image", "/grid_heatmap", "/analyze_video")
VOLATILE_KEYS = {"timings_ms"}  # wall-clock timings differ between runs by nature

# The mix: (endpoint, arguments after the file); cycled over the requests. Grid 4 and 4 video frames keep
# each request short on a small CPU while still running every code path (occlusion, CAM hooks, video).
MIX = (
    ("/predict_image", EXAMPLE_REAL, ()),
    ("/explain_image", EXAMPLE_FAKE, ("gradcam",)),
    ("/predict_image", EXAMPLE_FAKE, ()),
    ("/grid_heatmap", EXAMPLE_FAKE, (4, "mean")),
    ("/explain_image", EXAMPLE_REAL, ("gradcam++",)),
    ("/analyze_video", EXAMPLE_VIDEO, (4, "mean", "leave_one_out")),
)


# ---------------------------------------------------------------------------------------------- server
@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    tmp: Path  # the server's TMPDIR: its uploads, request folders and log
    sentinel: str
    log: Path

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def server_env(port: int, tmp: Path, *, sentinel: str, queue_max: int | None = None, **extra) -> dict:
    """Environment of `python app.py`: loopback, offline Hub, bundled model, YuNet when present, its own
    TMPDIR (so its files can be found and checked), and a sentinel value that must never be served."""
    env = dict(os.environ, GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port), HF_HUB_OFFLINE="1",
               HF_HUB_DISABLE_TELEMETRY="1", GRADIO_ANALYTICS_ENABLED="False", TMPDIR=str(tmp),
               PYTHONUNBUFFERED="1", **{SENTINEL_VAR: sentinel})
    env.pop("SPACE_ID", None)
    env.pop("GRADIO_TEMP_DIR", None)
    if (BUNDLED / "config.json").is_file():
        env.setdefault("DEEPFAKE_MODEL", str(BUNDLED))
    if YUNET_ONNX.is_file():
        env.setdefault("DEEPFAKE_FACE_DETECTOR", str(YUNET_ONNX))
    if queue_max is not None:
        env["DEEPFAKE_QUEUE_MAX"] = str(queue_max)
    env.update({k: str(v) for k, v in extra.items()})
    return env


@contextlib.contextmanager
def live_server(*, queue_max: int | None = None, start_timeout: float = 240.0, **extra):
    """`python app.py` in a subprocess on 127.0.0.1 and a free port; yields a Server once /config answers.
    Always stopped (SIGTERM, then SIGKILL) and its TMPDIR removed."""
    import httpx

    tmp = Path(tempfile.mkdtemp(prefix="deepfake-load-"))
    port = free_port()
    sentinel = f"sentinel-{secrets.token_hex(12)}"
    log = tmp / "server.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
                                env=server_env(port, tmp, sentinel=sentinel, queue_max=queue_max, **extra),
                                start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}/", proc, tmp, sentinel, log)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"app.py exited with code {proc.returncode}:\n{server.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"app.py did not answer within {start_timeout:.0f}s:\n{server.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{server.url}config", timeout=5).status_code == 200:
                    break
            time.sleep(0.5)
        yield server
    finally:
        stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(15)


# ---------------------------------------------------------------------------------------------- requests
@dataclass
class Outcome:
    job: int  # index into MIX
    endpoint: str
    latency_s: float
    answer: dict | None = None
    error: str | None = None
    texts: list[str] = field(default_factory=list)  # everything served as text, for the leak check


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _read_text(path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except (OSError, TypeError):
        return ""


def fingerprint(endpoint: str, out) -> tuple[dict, list[str]]:
    """(what must be equal between runs, the texts served) of one endpoint's answer."""
    import cv2

    picture = out[1]
    img = cv2.imread(picture, cv2.IMREAD_UNCHANGED) if isinstance(picture, str) else None
    result_index = {"/predict_image": 2, "/explain_image": 2, "/grid_heatmap": 2, "/analyze_video": 4}[endpoint]
    result = out[result_index]
    reports = [p for p in out[result_index + 1:] if isinstance(p, str)]
    texts = [out[0], json.dumps(result)] + [_read_text(p) for p in reports]
    answer = {"result": _strip(result), "picture": img, "report": _strip(json.loads(_read_text(out[-2]) or "{}").get("result"))}
    return answer, texts


def call(client, job: int, timeout: float) -> Outcome:
    from gradio_client import handle_file

    endpoint, file, extra = MIX[job]
    t0 = time.perf_counter()
    try:
        out = client.submit(handle_file(str(file)), *extra, api_name=endpoint).result(timeout=timeout)
        answer, texts = fingerprint(endpoint, out)
        return Outcome(job, endpoint, time.perf_counter() - t0, answer, texts=texts)
    except Exception as exc:  # every failure is recorded, none stops the run
        return Outcome(job, endpoint, time.perf_counter() - t0, error=f"{type(exc).__name__}: {exc}"[:500])


def alone(url: str, timeout: float = 300.0) -> list[Outcome]:
    """Each request of the mix once, alone, one after another: the reference answers."""
    client = make_client(url)
    return [call(client, job, timeout) for job in range(len(MIX))]


def concurrent(url: str, n_requests: int, clients: int, time_limit: float) -> tuple[list[Outcome], float]:
    """n_requests cycling over MIX shared by `clients` threads (one Client each); stops at time_limit."""
    work: queue.Queue[int] = queue.Queue()
    for i in range(n_requests):
        work.put(i % len(MIX))
    deadline = time.monotonic() + time_limit
    done: list[Outcome] = []
    lock = threading.Lock()
    ready = threading.Barrier(clients)

    def worker():
        client = make_client(url)
        ready.wait(timeout=120)
        while time.monotonic() < deadline:
            try:
                job = work.get_nowait()
            except queue.Empty:
                return
            out = call(client, job, max(1.0, deadline - time.monotonic()))
            with lock:
                done.append(out)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    for t in threads:
        t.join(max(1.0, deadline - time.monotonic() + 5))
    return done, time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------- checks
def mismatches(outcomes: list[Outcome], reference: list[Outcome]) -> list[str]:
    bad = []
    for o in outcomes:
        ref = reference[o.job]
        if o.answer is not None and ref.answer is not None and not same(o.answer, ref.answer):
            bad.append(f"{o.endpoint} on {MIX[o.job][1].name} {MIX[o.job][2]} differs from the same request alone")
    return bad


def leaks(outcomes: list[Outcome], server: Server) -> list[str]:
    """Served texts holding the sentinel environment value, a server path or a traceback."""
    needles = {"environment value": server.sentinel, "repo path": str(ROOT), "server temp path": str(server.tmp),
               "traceback": "Traceback (most recent call last)"}
    found = set()
    for o in outcomes:
        for text in o.texts + ([o.error] if o.error else []):
            found |= {f"{o.endpoint}: {what}" for what, needle in needles.items() if needle in text}
    return sorted(found)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(q / 100 * (len(v) - 1))))]


def latency_table(outcomes: list[Outcome], wall_s: float, reference: list[Outcome]) -> dict:
    rows = {}
    for name in ENDPOINTS + ("overall",):
        sel = [o for o in outcomes if name in ("overall", o.endpoint)]
        ok = [o.latency_s for o in sel if o.error is None]
        ref = [o.latency_s for o in reference if name in ("overall", o.endpoint) and o.error is None]
        rows[name] = {"requests": len(sel), "errors": sum(o.error is not None for o in sel),
                      "requests_per_s": round(len(ok) / wall_s, 3) if wall_s else None,
                      "p50_s": _r(percentile(ok, 50)), "p95_s": _r(percentile(ok, 95)),
                      "alone_s": _r(statistics.mean(ref)) if ref else None}
    return rows


def _r(v):
    return None if v is None else round(v, 3)


def format_table(rows: dict) -> str:
    head = f"{'endpoint':<16}{'requests':>9}{'errors':>7}{'req/s':>8}{'p50 s':>8}{'p95 s':>8}{'alone s':>9}"
    lines = [head, "-" * len(head)]
    for name, r in rows.items():
        cells = [f"{r['requests']:>9}", f"{r['errors']:>7}"] + [
            f"{'-' if r[k] is None else format(r[k], '.2f'):>{w}}"
            for k, w in (("requests_per_s", 8), ("p50_s", 8), ("p95_s", 8), ("alone_s", 9))]
        lines.append(f"{name:<16}" + "".join(cells))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- busy
def load_detector_in_process():
    """The detector python app.py would serve here: the bundled model, YuNet when present (as server_env)."""
    from deepfake import load_detector
    return load_detector(str(BUNDLED), face_detector=str(YUNET_ONNX) if YUNET_ONNX.is_file() else None)


# ---------------------------------------------------------------------------------------------- main
def run(n_requests: int = 48, clients: int = 8, time_limit: float = 900.0, queue_max: int = 2,
        busy: bool = True, log=print) -> dict:
    """Both phases; returns the results dict (also what is written to JSON)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    started = time.monotonic()
    out: dict = {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                 "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
                 "load_average_at_start": [round(v, 2) for v in os.getloadavg()], "clients": clients, "requests": n_requests, "mix": [f"{e} {f.name} {list(x)}" for e, f, x in MIX]}
    with live_server() as server:
        log(f"phase 1: {server.url} (pid {server.proc.pid}); reference answers, each request alone")
        reference = alone(server.url)
        log(f"phase 1: {n_requests} requests from {clients} concurrent clients")
        remaining = max(30.0, time_limit - (time.monotonic() - started) - 120)
        outcomes, wall = concurrent(server.url, n_requests, clients, remaining)
        out["peak_rss_mb"] = _r(peak_rss_mb(server.proc.pid))
        out["wall_s"] = _r(wall)
        out["completed"] = len(outcomes)
        out["errors"] = sorted({o.error for o in reference + outcomes if o.error})
        out["mismatches"] = mismatches(outcomes, reference)
        out["leaks"] = leaks(reference + outcomes, server)
        out["latency"] = latency_table(outcomes, wall, reference)
        out["server_alive"] = server.proc.poll() is None
    if busy:
        log(f"phase 2: queue limit {queue_max}, the heavy worker held at a gate, then 3 requests past the limit")
        out["busy"] = hold_queue_full(load_detector_in_process(), queue_max)
    out["ok"] = (out["completed"] == n_requests and not out["errors"] and not out["mismatches"]
                 and not out["leaks"] and out["server_alive"] and (not busy or busy_ok(out["busy"])))
    out["total_s"] = _r(time.monotonic() - started)
    return out


def report(out: dict) -> str:
    lines = [f"{out['requests']} requests from {out['clients']} concurrent gradio_client clients in "
             f"{out['wall_s']:.1f}s on {out['machine']} (load average at start {out['load_average_at_start'][0]})",
             "(req/s per endpoint: its completed requests over the whole run's wall time)", format_table(out["latency"]),
             f"peak server RSS {out['peak_rss_mb']:.0f} MB; errors {len(out['errors'])}; answers differing from "
             f"the same request alone {len(out['mismatches'])}; leaks {len(out['leaks'])}"]
    if "busy" in out:
        b = out["busy"]
        lines.append(f"queue limit {b['queue_max']}: {b['sent']} requests while the worker was held -> {b['accepted']} "
                     f"accepted ({b['completed']} answered once released), {b['busy']} refused at once (max "
                     f"{b['busy_answer_s_max']}s) with \"{b['busy_message']}\"; gradio_client got {b['gradio_client']!r}")
    lines.append("PASS" if out["ok"] else "FAIL: " + json.dumps({k: out.get(k) for k in ("errors", "mismatches", "leaks")}))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=48, help="requests in the concurrent phase (default 48)")
    ap.add_argument("--clients", type=int, default=8, help="concurrent gradio_client clients (default 8)")
    ap.add_argument("--time-limit", type=float, default=900, help="stop after this many seconds (default 900)")
    ap.add_argument("--queue-max", type=int, default=2, help="DEEPFAKE_QUEUE_MAX of the busy phase (default 2)")
    ap.add_argument("--no-busy", action="store_true", help="skip the queue-limit phase")
    ap.add_argument("--out", type=Path, default=RESULTS, help=f"results JSON (default {RESULTS.relative_to(ROOT)})")
    args = ap.parse_args(argv)
    out = run(args.requests, args.clients, args.time_limit, args.queue_max, not args.no_busy)
    out["command"] = "python bench/load.py " + " ".join(argv if argv is not None else sys.argv[1:])
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(report(out))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
