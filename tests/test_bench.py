"""Smoke test of the benchmark's correctness checks on small sizes (no timing thresholds here)."""
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT

sys.path.insert(0, str(ROOT))

from bench import alternatives as alt  # noqa: E402
from bench import context, timing  # noqa: E402
from bench.sections import backends, cold  # noqa: E402
from deepfake import media  # noqa: E402
from deepfake.model import Network  # noqa: E402


@pytest.fixture(scope="module")
def network(random_model_dir) -> Network:
    net = Network.from_folder(random_model_dir, device="cpu", backend="torch")
    with torch.no_grad():  # random weights saturate the softmax: scale the head so occlusion changes show
        net.net.get_classifier().weight.mul_(0.02)
    return net


@pytest.fixture(scope="module")
def x(network, astronaut) -> torch.Tensor:
    return network.preprocess([astronaut[0:220, 140:360]])


def test_three_occlusion_maps_agree(network, x):
    diff, maps = alt.occlusion_three_ways(network.probabilities, x, 4, "mean")
    assert set(maps) == {"ours", "loop", "captum"}
    assert all(m.shape == (4, 4) for m in maps.values())
    assert np.abs(maps["ours"]).max() > 0  # the check is not vacuous
    assert diff <= 1e-4


def test_captum_needs_equal_cells(network, x):
    with pytest.raises(ValueError):
        alt.captum_occlusion(network.probabilities, x, 5)


def test_onnx_export_gives_the_same_probabilities(network, x, tmp_path):
    pytest.importorskip("onnxruntime")
    path = alt.export_onnx(network.net, tmp_path / "model.onnx", network.input_size)
    xb = torch.cat([x, x.flip(3), torch.zeros_like(x)])
    ort = alt.ort_probabilities(path, network.config.fake_index)(xb)
    np.testing.assert_allclose(ort, network.probabilities(xb), atol=1e-4)


def test_onnxruntime_backend_gives_the_same_probabilities(random_model_dir, network, x, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("DEEPFAKE_CACHE", str(tmp_path))
    fast = Network.from_folder(random_model_dir, device="cpu", backend="onnxruntime")
    assert fast.backend == "onnxruntime" and list((tmp_path / "onnx").glob("*.onnx"))
    with torch.no_grad():  # same head scaling as the torch network, so the probabilities are not saturated
        fast.net.get_classifier().weight.mul_(0.02)
    fast.use_onnxruntime()  # re-exported: the cache key is the weights
    xb = torch.cat([x, x.flip(3), torch.zeros_like(x)])
    np.testing.assert_allclose(fast.probabilities(xb), network.probabilities(xb), atol=1e-4)
    assert len(list((tmp_path / "onnx").glob("*.onnx"))) == 2
    with pytest.raises(Exception, match="Unknown backend"):
        Network.from_folder(random_model_dir, backend="tensorrt")


@pytest.mark.parametrize("length,n", [(40, 5), (150, 4)])  # forward decoding only; seeks tried and measured
def test_sampling_methods_return_the_same_frames(tmp_path, length, n):
    from synth import frame_number, numbered_frames, write_video

    path = write_video(tmp_path / "n.mp4", numbered_frames(length))
    info = media.probe_video(path)
    wanted = media.sample_indices(info.frame_count, n)
    ours = [frame_number(f.rgb) for f in media.sample_frames(path, n)[1]]
    assert ours == wanted
    assert [frame_number(f) for f in alt.decode_every_frame(path, wanted)] == wanted
    assert [frame_number(f) for f in alt.seek_every_sample(path, wanted)] == wanted


def test_report_statuses_and_table():
    rep = timing.Report()
    rep.row("s", "a", timing.Stat([0.010, 0.012, 0.011]), "note")
    rep.target("small is good", 2.0, 1.0, "<=", "x", "because")
    rep.target("big is good", 3.0, 2.0, ">=", "x", "unused")
    rep.target("absent", None, 1.0, "<=")
    assert [t["status"] for t in rep.targets] == ["missed by 2.00x", "met", "skipped"]
    assert rep.targets[0]["cause"] == "because" and rep.targets[1]["cause"] == ""
    table = rep.table()
    assert "11.0 ms" in table and "missed by 2.00x" in table
    json.dumps(rep.rows + rep.targets)


def test_a_wrong_header_count_is_caught_on_the_way_and_resampled(tmp_path):
    from synth import frame_number, numbered_frames, write_video

    path = write_video(tmp_path / "cut.avi", numbered_frames(50), fps=10, fourcc="MJPG")
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.5)])  # header still says 50 frames
    info, frames = media.sample_frames(path, 8)
    assert info == media.probe_video(path) and info.frame_count < 50
    wanted = media.sample_indices(info.frame_count, 8)
    assert [frame_number(f.rgb) for f in frames] == [f.index for f in frames] == wanted


def test_bench_scratch_folders_are_removed(tmp_path, monkeypatch, network, astronaut):
    """The cold-start and backend sections write into temporary folders: none is left behind (issue 11, 2.9).
    The server, the client and the exports are stand-ins: what the sections leave on disk is the question."""
    import tempfile
    from pathlib import Path
    from types import SimpleNamespace

    import gradio_client

    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_root))
    caches = []

    class Server:  # python app.py, answering at once
        def __init__(self, cmd, env, **kw):
            caches.append(env.get("DEEPFAKE_CACHE"))

        poll = terminate = kill = lambda self: None
        communicate = lambda self, timeout=None: ("", "")  # noqa: E731

    class Client:
        def __init__(self, *args, **kwargs):
            pass

        def predict(self, image, api_name):
            assert Path(image["path"]).is_file()  # the picture the section wrote into its scratch folder
            return "answered"

    monkeypatch.setattr(cold.subprocess, "Popen", Server)
    monkeypatch.setattr(gradio_client, "Client", Client)
    monkeypatch.setattr(cold, "import_times", dict)
    det = SimpleNamespace(network=network, config=network.config, threshold=0.5)
    monkeypatch.setattr(network, "backend", "onnxruntime")  # so the section also starts once with an empty cache
    c = context.Ctx(det, tmp_path / "model", "haar", True, timing.Report(), crop=astronaut[0:224, 140:364], best_batch=2)
    cold.bench_cold_start(c)
    assert [r["name"] for r in c.report.rows][0] == "python app.py start -> first /predict_image answer"
    assert caches[0] != caches[1] and Path(caches[1]).parent.parent == scratch_root  # the empty cache

    def export(net, path, size):
        path.write_bytes(b"onnx")
        return path

    monkeypatch.setattr(backends, "SHARED_DATA", tmp_path / "absent")
    monkeypatch.setattr(alt, "export_onnx", export)
    monkeypatch.setattr(alt, "quantize_int8", lambda src, dst: export(None, dst, 0))
    eager = alt.eager_probabilities(network.net, network.config.fake_index)
    monkeypatch.setattr(alt, "ort_probabilities", lambda path, fake_index: eager)
    backends.bench_backends(c, compile_=False)
    assert any(r["name"] == "onnxruntime int8, batch 2" for r in c.report.rows)
    assert list(scratch_root.iterdir()) == []


def test_client_download_folders_are_removed_when_the_process_exits(tmp_path):
    """make_client's download folders (bench/load.py, the queue test) live in one scratch folder per process that
    is removed at exit. gradio_client's Client is replaced by a stub: no server is needed to check the folders."""
    import subprocess
    import sys

    code = ("import gradio_client, json, os\n"
            "gradio_client.Client = lambda url, verbose, download_files: download_files\n"
            "from support.server import make_client\n"
            "a, b = make_client('http://x/'), make_client('http://x/')\n"
            "assert a != b and os.path.dirname(a) == os.path.dirname(b) and os.path.isdir(a)\n"
            "print(json.dumps([a, b]))\n")
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    folders = [Path(p) for p in json.loads(out.stdout)]
    assert all(str(p).startswith(str(tmp_path)) for p in folders)
    assert not folders[0].parent.exists()


def test_training_section_times_float32_and_bf16_steps_and_reports_their_ratio(network, astronaut):
    """Section 9 times the bundled architecture's training step both ways; its note is the ratio of the medians."""
    from types import SimpleNamespace

    from bench.sections import training

    det = SimpleNamespace(network=network, config=network.config, threshold=0.5)
    c = context.Ctx(det, Path("unused"), "haar", True, timing.Report(), crop=astronaut[0:224, 140:364], best_batch=2)
    training.bench_training(c)
    f32, bf16 = c.report.rows
    assert f32["name"].startswith(f"{network.config.architecture} at {network.input_size} px, batch 16, float32")
    assert f32["repeats"] == bf16["repeats"] == 2
    ratio = float(bf16["note"].split("x float32")[0])
    assert ratio == pytest.approx(f32["median_ms"] / bf16["median_ms"], abs=0.006)
