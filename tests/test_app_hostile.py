"""Odd and hostile inputs through the app's endpoints (gradio_client against one live in-process server):
the right answer or one clear message saying what is wrong and what is accepted; never a traceback, a
server path, an environment value or a verdict on garbage. A failed request (bad file, an exception inside
an explanation) leaves the next request correct; request files and Gradio's cache stay bounded."""
import io
import json
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from app_support import EXAMPLE_FAKE, EXAMPLE_REAL, pick_detector, running_demo
from conftest import ROOT
from webapp import files, gradio_compat, settings
from synth import write_video

pytestmark = pytest.mark.timeout(300)

FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg not installed (apt-get install ffmpeg)")
SENTINEL = "sentinel-hostile-3f9e1c27b4"
IMAGE_APIS = ("/predict_image", "/explain_image", "/grid_heatmap")


# ---------------------------------------------------------------------------------------------- server
@pytest.fixture(scope="module")
def served(random_model_dir, tmp_path_factory):
    """(detector, Blocks, URL) of the app with its request folders in a test folder and a sentinel in the
    server's environment."""
    det, folder = pick_detector(random_model_dir)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(files, "TMP_ROOT", tmp_path_factory.mktemp("app-tmp") / "deepfake-app")
        mp.setenv("DEEPFAKE_SECRET_SENTINEL", SENTINEL)
        with running_demo(det, folder) as (demo, url):
            yield det, demo, url


@pytest.fixture(scope="module")
def det(served):
    return served[0]


@pytest.fixture(scope="module")
def server(served):
    return served[2]


@pytest.fixture(scope="module")
def client(server, tmp_path_factory):
    from gradio_client import Client
    downloads = tmp_path_factory.mktemp("client-downloads")  # apart from the server's cache
    return Client(server, verbose=False, download_files=str(downloads))


def call(client, path, *extra, api_name="/predict_image"):
    from gradio_client import handle_file
    return client.predict(handle_file(str(path)), *extra, api_name=api_name)


def _is_download(value) -> bool:
    return isinstance(value, str) and len(value) < 4096 and value.startswith("/") and Path(value).is_file()


def served_text(out) -> str:
    """Everything an answer serves as text: markdown, result JSON and the report files' contents (the
    client's own download paths of pictures are left out: they are not what the server wrote)."""
    def text(item):
        if _is_download(item):
            return Path(item).read_text(encoding="utf-8", errors="replace") \
                if Path(item).suffix in (".json", ".html", ".csv") else ""
        if isinstance(item, dict):
            return "\n".join(f"{k}: {text(v)}" for k, v in item.items())
        if isinstance(item, (list, tuple)):
            return "\n".join(text(v) for v in item)
        return json.dumps(item)
    return "\n".join(text(item) for item in out)


def assert_clean(text: str):
    """No server path, environment value or traceback."""
    for needle in (str(ROOT), *map(str, files.upload_roots()), SENTINEL, "Traceback", 'File "'):
        assert needle not in text, needle


def refused(client, path, message, api_name="/predict_image", extra=()):
    from gradio_client.exceptions import AppError
    with pytest.raises(AppError) as err:
        call(client, path, *extra, api_name=api_name)
    text = str(err.value)
    assert message in text, text
    assert_clean(text)
    assert "FAKE" not in text and "REAL" not in text  # no verdict on garbage
    return text


def ffmpeg(*args):
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *args], check=True, timeout=120)


# ---------------------------------------------------------------------------------------------- inputs
@pytest.fixture(scope="module")
def face():
    """The astronaut's face and shoulders, 256 px: small, with one clear face."""
    from skimage import data
    return np.ascontiguousarray(cv2.resize(data.astronaut()[:320, 80:400], (256, 256), interpolation=cv2.INTER_AREA))


def bomb_png(path: Path, side: int = 30000) -> Path:
    """A 30000x30000 1-bit PNG: ~110 KB on disk, 900 megapixels when decoded (written row by row)."""
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    z = zlib.compressobj(9)
    row = b"\x00" * (1 + (side + 7) // 8)
    idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def make_bad_image(kind: str, folder: Path, face: np.ndarray) -> Path:
    if kind == "zero-byte":
        (folder / "empty.jpg").write_bytes(b"")
        return folder / "empty.jpg"
    if kind == "truncated JPEG":
        buf = io.BytesIO()
        Image.fromarray(face).save(buf, "JPEG", quality=90)
        (folder / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
        return folder / "cut.jpg"
    if kind == "truncated PNG":
        buf = io.BytesIO()
        Image.fromarray(face).save(buf, "PNG")
        (folder / "cut.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
        return folder / "cut.png"
    if kind == "text named .jpg":
        (folder / "notes.jpg").write_text("Dear diary, this is not a picture.\n" * 20)
        return folder / "notes.jpg"
    if kind == "garbage named .heic":
        (folder / "photo.heic").write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 400)
        return folder / "photo.heic"
    if kind == "decompression bomb":
        return bomb_png(folder / "bomb.png")
    raise ValueError(kind)


BAD_IMAGES = [
    ("zero-byte", "empty (0 bytes)"),
    ("truncated JPEG", "damaged or truncated"),
    ("truncated PNG", "damaged or truncated"),
    ("text named .jpg", "not an image this app can read. Accepted: JPEG, PNG"),
    ("garbage named .heic", "not an image this app can read. Accepted: JPEG, PNG"),
    ("decompression bomb", "the limit is 40 megapixels"),
]


@pytest.mark.parametrize("kind,message", BAD_IMAGES, ids=[k for k, _ in BAD_IMAGES])
def test_bad_image_is_refused_clearly_by_every_image_endpoint(client, tmp_path, face, kind, message):
    path = make_bad_image(kind, tmp_path, face)
    for api in IMAGE_APIS:
        extra = {"/grid_heatmap": (2, "mean")}.get(api, ())
        refused(client, path, message, api_name=api, extra=extra)


def _exif_rotated(path: Path, face: np.ndarray) -> tuple[int, int]:
    """Stored sideways with EXIF Orientation 6 (rotate 90 degrees clockwise to display)."""
    upright = face[:, 32:224]  # 192 wide, 256 high
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(upright, 1)))  # 256 wide, 192 high
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(path, "JPEG", quality=92, exif=exif.tobytes())
    return upright.shape[1], upright.shape[0]


def make_good_image(kind: str, folder: Path, face: np.ndarray) -> tuple[Path, tuple[int, int]]:
    """(file, (width, height) the app must see)."""
    h, w = face.shape[:2]
    img = Image.fromarray(face)
    if kind == "animated GIF":
        frames = [img, Image.new("RGB", (w, h), (0, 0, 0))]
        frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
        return folder / "anim.gif", (w, h)
    if kind == "CMYK JPEG":
        img.convert("CMYK").save(folder / "cmyk.jpg", "JPEG", quality=92)
        return folder / "cmyk.jpg", (w, h)
    if kind == "16-bit PNG":
        cv2.imwrite(str(folder / "deep.png"), cv2.cvtColor(face, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257)
        return folder / "deep.png", (w, h)
    if kind == "grayscale":
        img.convert("L").save(folder / "grey.png")
        return folder / "grey.png", (w, h)
    if kind == "RGBA":
        rgba = img.convert("RGBA")
        rgba.putalpha(200)
        rgba.save(folder / "alpha.png")
        return folder / "alpha.png", (w, h)
    if kind == "EXIF-rotated":
        return folder / "phone.jpg", _exif_rotated(folder / "phone.jpg", face)
    if kind == "HEIC (iPhone)":  # written by pillow-heif, which deepfake.media registers with Pillow
        img.save(folder / "IMG_0001.HEIC", "HEIF", quality=90)
        return folder / "IMG_0001.HEIC", (w, h)
    if kind == "AVIF":
        img.save(folder / "pic.avif", "AVIF", quality=90)
        return folder / "pic.avif", (w, h)
    if kind == "WebP":
        img.save(folder / "pic.webp", "WEBP", quality=90)
        return folder / "pic.webp", (w, h)
    if kind.startswith("name: "):
        name = kind[len("name: "):]
        img.save(folder / name)
        return folder / name, (w, h)
    raise ValueError(kind)


GOOD_IMAGES = ["animated GIF", "CMYK JPEG", "16-bit PNG", "grayscale", "RGBA", "EXIF-rotated", "WebP", "HEIC (iPhone)", "AVIF",
               "name: with space.png", "name: ünïcødé 顔.png", "name: semi;colon $(rm -rf x) `b` 'q\" & | >.png"]


@pytest.mark.parametrize("kind", GOOD_IMAGES)
def test_odd_but_valid_image_gets_a_verdict_on_its_face(client, det, tmp_path, face, kind):
    path, (width, height) = make_good_image(kind, tmp_path, face)
    verdict, _, result, rep_json, rep_html = call(client, path)
    assert (result["width"], result["height"]) == (width, height)  # upright, first frame, full size
    # A verdict on its one face: the model's band label of its probability (UNCERTAIN is one, between the
    # bounds of a calibrated model), no quality gate failed, the package's probability.
    assert len(result["faces"]) == 1 and result["faces"][0]["reasons"] == [] and result["reasons"] == [], result
    assert result["label"] == det.band.label(result["fake_probability"]) != "NO_FACE", result
    assert result["fake_probability"] == pytest.approx(det.analyze_image(path).fake_probability, abs=1e-6)
    assert_clean(served_text([verdict, result, rep_json, rep_html]))


def test_one_pixel_image_is_no_face_and_no_verdict(client, tmp_path):
    Image.new("RGB", (1, 1), (200, 10, 10)).save(tmp_path / "p.png")
    verdict, _, result, *_ = call(client, tmp_path / "p.png")
    assert result["label"] == "NO_FACE" and result["fake_probability"] is None
    assert "no verdict" in verdict.lower()


# ---------------------------------------------------------------------------------------------- videos
def make_bad_video(kind: str, folder: Path) -> Path:
    if kind == "zero frames":
        ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x64:rate=10", "-frames:v", "0", "-c:v", "libx264",
               str(folder / "empty.mp4"))
        return folder / "empty.mp4"
    if kind == "audio only":
        ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", str(folder / "voice.mp4"))
        return folder / "voice.mp4"
    if kind == "corrupt header":
        (folder / "broken.mov").write_bytes(b"\x00\x00\x00\x14ftypqt  " + os.urandom(3000))
        return folder / "broken.mov"
    if kind == "text named .mp4":
        (folder / "clip.mp4").write_text("not a video\n" * 50)
        return folder / "clip.mp4"
    raise ValueError(kind)


BAD_VIDEOS = [("zero frames", ("no video stream", "no decodable video frames", "not a video", "no frame")),
              ("audio only", ("no video stream", "not a video")),
              ("corrupt header", ("not a video this app can read", "no video stream")),
              ("text named .mp4", ("not a video this app can read", "no video stream"))]


@needs_ffmpeg
@pytest.mark.parametrize("kind,messages", BAD_VIDEOS, ids=[k for k, _ in BAD_VIDEOS])
def test_bad_video_is_refused_clearly(client, tmp_path, kind, messages):
    from gradio_client.exceptions import AppError
    path = make_bad_video(kind, tmp_path)
    with pytest.raises(AppError) as err:
        call(client, path, 4, api_name="/analyze_video")
    text = str(err.value)
    assert any(m in text for m in messages), text
    assert path.name in text  # says which file
    assert_clean(text)


def test_one_frame_video_is_analysed(client, det, tmp_path, face):
    path = write_video(tmp_path / "one frame.mp4", [face])
    out = call(client, path, 4, "mean", "leave_one_out", api_name="/analyze_video")
    result = out[4]
    want = det.analyze_video(str(path), 4)
    assert result["frames_sampled"] == want.frames_sampled == 1
    assert result["label"] == want.label
    if want.fake_probability is not None:
        assert result["fake_probability"] == pytest.approx(want.fake_probability, abs=1e-6)
    assert_clean(served_text(out))


# ---------------------------------------------------------------------------------------------- recovery
def _strip(d):
    if isinstance(d, dict):
        return {k: _strip(v) for k, v in d.items() if k != "timings_ms"}
    return [_strip(v) for v in d] if isinstance(d, list) else d


def test_a_failed_request_leaves_the_next_correct(client, det, tmp_path, face):
    alone = det.analyze_image(EXAMPLE_REAL).fake_probability
    make_bad_image("truncated PNG", tmp_path, face)
    for api in IMAGE_APIS:
        refused(client, tmp_path / "cut.png", "damaged or truncated", api_name=api,
                extra={"/grid_heatmap": (2, "mean")}.get(api, ()))
        assert call(client, EXAMPLE_REAL)[2]["fake_probability"] == pytest.approx(alone, abs=1e-6)


def test_an_exception_inside_an_explanation_leaves_the_next_correct(client, det, monkeypatch):
    """The CAM target raises once, mid-explanation (forward hooks attached, gradients switched on):
    the user gets the generic message, and the same explanation then equals the one made before."""
    from gradio_client.exceptions import AppError

    from deepfake import explain
    before = call(client, EXAMPLE_FAKE, "gradcam", api_name="/explain_image")
    real_call = explain.FakeLogOdds.__call__
    calls = []

    def fail_once(self, output):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError(f"injected failure in {ROOT} with {SENTINEL}")
        return real_call(self, output)

    monkeypatch.setattr(explain.FakeLogOdds, "__call__", fail_once)
    with pytest.raises(AppError) as err:
        call(client, EXAMPLE_FAKE, "gradcam", api_name="/explain_image")
    assert "Something went wrong" in str(err.value)
    assert_clean(str(err.value))  # the exception's text (a path, an env value) stays on the server
    after = call(client, EXAMPLE_FAKE, "gradcam", api_name="/explain_image")
    assert len(calls) >= 2
    assert _same(after[2], before[2])
    a, b = cv2.imread(after[1]), cv2.imread(before[1])
    assert a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).max() <= 1
    # and the plain prediction is untouched
    assert call(client, EXAMPLE_FAKE)[2]["fake_probability"] == pytest.approx(
        det.analyze_image(EXAMPLE_FAKE).fake_probability, abs=1e-6)


def _same(a, b):
    from support.compare import same
    return same(_strip(a), _strip(b))


# ---------------------------------------------------------------------------------------------- files
def test_request_folders_stay_bounded_over_many_requests(client, tmp_path, face, monkeypatch):
    """50 requests with a zero keep time: each request's folder is swept by the next, so the temp folder
    holds at most a couple of folders, not 50."""
    monkeypatch.setattr(files, "KEEP_SECONDS", 0)
    small = tmp_path / "small.png"
    Image.fromarray(cv2.resize(face, (96, 96))).save(small)
    counts = []
    for _ in range(50):
        call(client, small)
        counts.append(sum(1 for _ in files.TMP_ROOT.iterdir()))
    assert max(counts[5:]) <= 2, counts


def test_gradio_cache_files_of_a_request_go_once_older_than_the_age(client, served, tmp_path, face, monkeypatch):
    """Files Gradio keeps for a request (the upload, the copies of the outputs it serves) are known to the
    cleanup pass the app runs on its schedule (started by launch), and go once older than its age. The age
    comes from a clock the test sets, not from waiting."""
    import datetime as dt
    import threading
    import uuid

    from gradio import route_utils
    from gradio.utils import get_upload_folder

    demo = served[1]
    assert any(t.name == "gradio-cache-cleaner" and t.is_alive() for t in threading.enumerate())
    path = tmp_path / f"scheduled-{uuid.uuid4().hex[:12]}.png"  # names this run's files in the cache
    Image.fromarray(cv2.resize(face, (80, 80))).save(path)
    out = call(client, path)
    assert out[2]["label"] in ("FAKE", "REAL", "UNCERTAIN", "NO_FACE")  # 80 px: the face may be too small to judge
    mine = [p for p in Path(get_upload_folder()).rglob(f"{path.stem}*") if p.is_file()]
    assert len(mine) >= 4, mine  # the upload, the faces picture and the two reports served
    made = [dt.datetime.fromtimestamp(p.lstat().st_ctime) for p in mine]
    age = settings.DELETE_CACHE[1]

    class Clock(dt.datetime):
        at = min(made) + dt.timedelta(seconds=age - 1)

        @classmethod
        def now(cls, tz=None):
            return cls.at

    monkeypatch.setattr(route_utils, "datetime", Clock)
    assert gradio_compat.clean_cache_once(demo, age) and all(p.exists() for p in mine)  # younger than the age: kept
    Clock.at = max(made) + dt.timedelta(seconds=age + 1)
    assert gradio_compat.clean_cache_once(demo, age)
    assert not any(p.exists() for p in mine), [str(p) for p in mine if p.exists()]


def test_results_and_reports_of_every_endpoint_hold_no_path_env_value_or_traceback(client, tmp_path, face):
    from app_support import EXAMPLE_VIDEO
    outs = [call(client, EXAMPLE_REAL),
            call(client, EXAMPLE_FAKE, "gradcam", api_name="/explain_image"),
            call(client, EXAMPLE_FAKE, 2, "mean", api_name="/grid_heatmap"),
            call(client, EXAMPLE_VIDEO, 2, "mean", "blank", api_name="/analyze_video")]
    for out in outs:
        assert_clean(served_text(out))


# ---------------------------------------------------------------------------------------------- band bounds
@pytest.mark.parametrize("api_name,extra", [("/predict_image", ()), ("/explain_image", ("gradcam",)),
                                            ("/grid_heatmap", (2, "mean"))])
@pytest.mark.parametrize("real_below,message", [
    (0.7, "The REAL bound (0.7) must not be above the FAKE threshold (0.5)."),
    (1.5, "Value 1.5 is greater than maximum value 1.0."),  # the slider's own range check
    (-0.25, "Value -0.25 is less than minimum value 0.0.")], ids=["above the threshold", "above 1", "below 0"])
def test_a_bad_real_bound_is_one_clear_message_and_no_verdict(client, det, api_name, extra, real_below, message):
    """And the next request with a good bound gets the package's verdict."""
    from gradio_client.exceptions import AppError
    with pytest.raises(AppError) as err:
        call(client, EXAMPLE_REAL, *extra, 0.5, real_below, api_name=api_name)
    assert str(err.value) == message
    result = call(client, EXAMPLE_REAL, 0.5, 0.25)[2]
    want = det.analyze_image(EXAMPLE_REAL, threshold=0.5, real_below=0.25)
    assert (result["label"], result["real_below"]) == (want.label, 0.25)
