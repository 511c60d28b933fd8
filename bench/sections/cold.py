"""Section 5: cold start, `python app.py` to its first /predict_image answer, and import times."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from support.paths import ROOT
from support.server import free_port

from .. import inputs
from ..context import Ctx, backend_of
from ..timing import Stat

def bench_cold_start(c: Ctx, timeout: float = 120.0) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:  # removed even when a start fails
        cold_start(c, Path(scratch), timeout)


def cold_start(c: Ctx, scratch: Path, timeout: float) -> None:
    r = c.report
    app = ROOT / "app.py"
    if not app.is_file():
        r.row("5 cold", "cold start", None, "skipped: app.py is missing")
        r.target("cold start to first /predict_image answer", None, 10.0, "<=", "s", "app.py missing")
        return
    from gradio_client import Client, handle_file

    img = scratch / "astronaut.png"
    import cv2
    cv2.imwrite(str(img), cv2.cvtColor(inputs.astronaut(), cv2.COLOR_RGB2BGR))
    times, ready, first = [], [], None
    empty_cache = backend_of(c.det.network) == "onnxruntime"  # one more start that has to export the model
    for run in range(c.reps(3, 1) + empty_cache):
        port = free_port()
        env = dict(os.environ, GRADIO_SERVER_PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1",
                   DEEPFAKE_MODEL=str(c.model_dir), DEEPFAKE_FACE_DETECTOR=c.face_spec)
        cold_cache = run == c.reps(3, 1)  # the last start: DEEPFAKE_CACHE may also be set in the environment
        if cold_cache:
            env["DEEPFAKE_CACHE"] = str(scratch / "empty-cache")
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(app)], cwd=str(ROOT), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        answer, t_up = None, None
        try:
            while time.perf_counter() - t0 < timeout and proc.poll() is None:
                try:
                    client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                    t_up = t_up or time.perf_counter() - t0
                    answer = client.predict(handle_file(str(img)), api_name="/predict_image")
                    break
                except Exception:
                    time.sleep(0.1)
            elapsed = time.perf_counter() - t0
        finally:
            proc.terminate()
            try:
                _, err = proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
        if answer is None:
            r.row("5 cold", "cold start", None, "failed: " + (err or "")[-300:].replace("\n", " | "))
            r.target("cold start to first /predict_image answer", None, 10.0, "<=", "s", "app did not answer")
            return
        if cold_cache:
            first = elapsed
        else:
            times.append(elapsed)
            ready.append(t_up)
    st, up = Stat(times), Stat(ready)
    r.row("5 cold", "python app.py start -> first /predict_image answer", st,
          f"server answering the client after {up.median:.1f} s"
          + (f"; {first:.1f} s on the very first start (ONNX export, empty cache)" if first else ""))
    imports = import_times()
    r.row("5 cold", "imports in a fresh process", None, ", ".join(f"{k} {v:.1f} s" for k, v in imports.items()),
          **{f"import_{k}_s": v for k, v in imports.items()})
    r.target("cold start to first /predict_image answer", st.median, 10.0, "<=", "s",
             f"imports take {sum(imports.values()):.1f} s of it (" + ", ".join(f"{k} {v:.1f} s" for k, v in
             imports.items()) + "; timm pulls in torchvision and torch._dynamo); the rest is model load, "
             "Blocks construction and the server start")


def import_times() -> dict[str, float]:
    """Seconds to import torch, timm, gradio and deepfake (in this order) in a fresh interpreter."""
    code = ("import time, json; t = {}; s = time.perf_counter()\n"
            "for m in ('torch', 'timm', 'gradio', 'deepfake'):\n"
            "    __import__(m); e = time.perf_counter(); t[m] = round(e - s, 2); s = e\n"
            "print(json.dumps(t))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT))
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {}
