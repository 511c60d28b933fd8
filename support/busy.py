"""The queue held full on purpose (bench/load.py phase 2, tests/test_load.py): the app in this process over a
GatedDetector. One /grid_heatmap request holds the only heavy worker at the gate, `queue_max` more fill the
queue, so the queue is full for certain (not by timing) when the surplus requests are sent."""
from __future__ import annotations

import contextlib
import json
import time

from .detectors import GatedDetector
from .paths import EXAMPLE_FAKE
from .server import free_port, make_client, upload


def hold_queue_full(detector, queue_max: int = 2, surplus: int = 3, timeout: float = 120.0) -> dict:
    """Returns counts, the busy answers, what gradio_client got, and the refusal times (recorded for the
    report; the checks need none: each refusal arrives while the gate is shut, so it cannot have waited for
    a request to finish)."""
    import httpx
    from gradio_client import handle_file

    import app
    from webapp.settings import BUSY_MESSAGE

    gated = GatedDetector(detector)
    demo = app.build_demo(gated, cache_examples=False, queue_max=queue_max)
    _, url, _ = app.launch(demo, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                           quiet=True)
    try:
        file = upload(url, EXAMPLE_FAKE)

        def post():
            t0 = time.perf_counter()
            r = httpx.post(f"{url}gradio_api/call/grid_heatmap", json={"data": [file, 4, "mean", 0.5, 0.5]},
                           timeout=timeout)
            return r.status_code, r.text, time.perf_counter() - t0

        first = post()
        held = gated.entered.wait(timeout)  # the first request is inside the handler: the queue is empty
        queued = [post() for _ in range(queue_max)]  # these wait behind it, filling the queue
        refused = [post() for _ in range(surplus)]
        try:
            make_client(url).submit(handle_file(str(EXAMPLE_FAKE)), 4, "mean", api_name="/grid_heatmap").result(
                timeout=timeout)
            client_answer = "answered"
        except Exception as exc:
            client_answer = f"{type(exc).__name__}: {exc}"
        shut_throughout = not gated.gate.is_set()
        gated.gate.set()
        accepted = [a for a in [first] + queued if a[0] == 200]
        completed = 0
        for _, text, _ in accepted:
            event = json.loads(text)["event_id"]
            with contextlib.suppress(httpx.HTTPError):
                stream = httpx.get(f"{url}gradio_api/call/grid_heatmap/{event}", timeout=timeout).text
                completed += "event: complete" in stream
    finally:
        gated.gate.set()
        demo.close()
    busy = [a for a in refused if a[0] == 503]
    slowest = max((s for *_, s in busy), default=None)
    return {"held": held, "gate_shut_while_refused": shut_throughout, "sent": 1 + queue_max + surplus,
            "accepted": len(accepted), "completed": completed, "busy": len(busy),
            "busy_with_message": sum(BUSY_MESSAGE in text for _, text, _ in busy),
            "other": [a[:2] for a in [first] + queued + refused if a[0] not in (200, 503)],
            "busy_answer_s_max": None if slowest is None else round(slowest, 3), "busy_message": BUSY_MESSAGE,
            "gradio_client": client_answer[:200], "queue_max": queue_max}


def busy_ok(b: dict) -> bool:
    """Every check of hold_queue_full's answer passed."""
    return (b["held"] and b["gate_shut_while_refused"] and b["accepted"] == b["queue_max"] + 1
            and b["completed"] == b["accepted"] and b["busy"] == b["sent"] - b["accepted"]
            and b["busy_with_message"] == b["busy"] and not b["other"] and b["gradio_client"].startswith("QueueError"))
