"""A short run of bench/load.py: 8 concurrent gradio_client clients x 2 requests mixing all four endpoints
against `python app.py`, then the queue held full on purpose (a test-only detector that waits at a gate)."""
import pytest

from bench import load
from conftest import BUNDLED
from support.busy import busy_ok, hold_queue_full
from support.compare import same

# Safety bounds only (a hang fails instead of blocking CI): no check depends on how fast the machine is.
pytestmark = [pytest.mark.timeout(900),
              pytest.mark.skipif(not (BUNDLED / "config.json").is_file(), reason="the bundled model is absent")]

CLIENTS = 8
REQUESTS = 16
MAX_RSS_MB = 2500


@pytest.fixture(scope="module")
def results():
    return load.run(REQUESTS, CLIENTS, time_limit=800, busy=False, log=lambda *a: None)


@pytest.fixture(scope="module")
def busy(random_model_dir):
    from app_support import pick_detector
    return hold_queue_full(pick_detector(random_model_dir)[0], queue_max=2, surplus=3)


def test_every_request_is_answered_without_error(results):
    assert results["server_alive"]
    assert results["completed"] == REQUESTS and not results["errors"], results["errors"]
    assert {e for e, *_ in load.MIX} == set(load.ENDPOINTS)  # the mix covers every endpoint
    assert all(results["latency"][e]["requests"] > 0 for e in load.ENDPOINTS)


def test_concurrent_answers_equal_the_same_request_alone(results):
    assert not results["mismatches"], results["mismatches"]


def test_nothing_served_holds_a_server_path_an_environment_value_or_a_traceback(results):
    assert not results["leaks"], results["leaks"]


def test_server_memory_stays_bounded(results):
    assert results["peak_rss_mb"] is not None and results["peak_rss_mb"] < MAX_RSS_MB, results["peak_rss_mb"]


def test_past_the_queue_limit_requests_get_the_busy_message_at_once(busy):
    """One request holds the heavy worker at the gate and two fill the queue (limit 2): the next three, and
    gradio_client's, are refused with the busy message while the gate is still shut, i.e. at once, not
    after a request finished or a timeout; once the gate opens, the three accepted are answered."""
    b = busy
    assert b["held"] and b["gate_shut_while_refused"], b
    assert b["accepted"] == 3 and b["completed"] == 3, b
    assert b["busy"] == 3 and b["busy_with_message"] == 3 and not b["other"], b
    assert b["gradio_client"].startswith("QueueError"), b
    assert busy_ok(b)


def test_the_comparison_would_see_cross_talk():
    """The equality check is not vacuous: a changed probability or picture is a mismatch."""
    import numpy as np
    a = {"result": {"fake_probability": 0.25, "faces": [{"box": [1, 2, 3, 4]}]}, "picture": np.zeros((4, 4, 3), np.uint8)}
    b = {"result": {"fake_probability": 0.25 + 1e-7, "faces": [{"box": [1, 2, 3, 4]}]}, "picture": a["picture"] + 1}
    assert same(a, b)
    assert not same(a, dict(b, result={"fake_probability": 0.2501, "faces": [{"box": [1, 2, 3, 4]}]}))
    assert not same(a, dict(b, picture=a["picture"] + 2))
    assert not same(a, dict(b, picture=None))
