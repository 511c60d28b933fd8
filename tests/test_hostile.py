"""Odd and hostile inputs through the package and the CLI: the right answer or one clear message,
never a traceback, a hang or a verdict on garbage."""
import json
import shutil
import subprocess

import cv2
import numpy as np
import pytest
from PIL import Image

from deepfake import InputError, media
from deepfake.cli import main
from toy import toy_detector

FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg not installed (apt-get install ffmpeg)")


def ffmpeg(*args):
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *args], check=True, timeout=120)


@pytest.fixture(scope="module")
def det():
    return toy_detector(size=64)


# ------------------------------------------------------------------------------------------------ images

def test_one_pixel_image_is_no_face(det, tmp_path):
    Image.new("RGB", (1, 1), (200, 10, 10)).save(tmp_path / "p.png")
    res = det.analyze_image(tmp_path / "p.png")
    assert res.label == "NO_FACE" and res.fake_probability is None


def test_animated_gif_uses_its_first_frame(det, tmp_path, astronaut):
    frames = [Image.fromarray(astronaut), Image.new("RGB", (512, 512), (0, 0, 0))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    res = det.analyze_image(tmp_path / "a.gif")
    assert len(res.faces) == 1  # the astronaut frame, not the black one


def test_a_garbage_heic_is_refused_clearly(det, tmp_path):
    (tmp_path / "photo.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 200)
    with pytest.raises(InputError, match="not an image this app can read. Accepted: JPEG, PNG"):
        det.analyze_image(tmp_path / "photo.heic")


@pytest.mark.parametrize("name", ["with space.png", "ünïcødé 顔.png", "semi;colon $(rm -rf x) `b` 'q\".png"])
def test_awkward_file_names(det, tmp_path, astronaut, name):
    Image.fromarray(astronaut).save(tmp_path / name)
    assert len(det.analyze_image(tmp_path / name).faces) == 1


# ------------------------------------------------------------------------------------------------ videos

@needs_ffmpeg
def test_rotated_phone_video_is_upright(tmp_path, astronaut):
    base = cv2.resize(astronaut, (120, 160))  # portrait, 120 wide
    landscape = np.rot90(base, -1).copy()  # stored sideways (160 wide), as phones do
    src = tmp_path / "src.mp4"
    ffmpeg_in = tmp_path / "f.png"
    Image.fromarray(landscape).save(ffmpeg_in)
    ffmpeg("-loop", "1", "-i", str(ffmpeg_in), "-t", "1", "-r", "10", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(src))
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-i", str(src), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rotated))
    info, frames = media.sample_frames(rotated, 2)
    assert (info.width, info.height) == (120, 160) and frames[0].rgb.shape == (160, 120, 3)
    # Displayed upright: the decoded frame is the original picture, not the stored or a flipped one.
    up = frames[0].rgb.astype(float)
    assert np.abs(up - base).mean() < 8 < np.abs(up - np.rot90(base, 2)).mean()


@needs_ffmpeg
def test_variable_frame_rate_timestamps_are_presentation_times(tmp_path):
    path = tmp_path / "vfr.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x96:rate=10", "-t", "3", "-vf",
           "setpts='if(lt(N,10),N*0.1,1.0+(N-10)*0.2)/TB'", "-fps_mode", "vfr", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", str(path))
    probe = subprocess.run([shutil.which("ffprobe"), "-v", "error", "-select_streams", "v", "-show_entries",
                            "frame=pts_time", "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True)
    pts = [float(v.strip(",")) for v in probe.stdout.split()]
    steps = np.diff(pts)
    assert steps.min() < 0.15 < steps.max()  # the clip really has a variable frame rate
    info, frames = media.sample_frames(path, 30)
    assert [f.timestamp_s for f in frames] == pytest.approx([pts[f.index] for f in frames], abs=0.002)


@needs_ffmpeg
@pytest.mark.parametrize("ext,codec", [(".mov", "libx264"), (".webm", "libvpx"), (".mkv", "libx264"),
                                       (".avi", "mjpeg")])
def test_containers(tmp_path, det, astronaut, ext, codec):
    Image.fromarray(cv2.resize(astronaut, (256, 256))).save(tmp_path / "f.png")
    path = tmp_path / f"clip{ext}"
    extra = ["-pix_fmt", "yuv420p"] if codec != "mjpeg" else ["-pix_fmt", "yuvj420p"]
    ffmpeg("-loop", "1", "-i", str(tmp_path / "f.png"), "-t", "1", "-r", "8", "-c:v", codec, *extra, str(path))
    res = det.analyze_video(path, frames=4)
    assert res.frames_sampled == 4 and res.frames_with_face == 4


@needs_ffmpeg
def test_audio_only_file(tmp_path, det):
    path = tmp_path / "voice.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", str(path))
    with pytest.raises(InputError, match="no video stream|not a video"):
        det.analyze_video(path)


@needs_ffmpeg
def test_zero_frame_video(tmp_path, det):
    path = tmp_path / "empty.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x64:rate=10", "-frames:v", "0", "-c:v", "libx264", str(path))
    with pytest.raises(InputError):
        det.analyze_video(path)


@needs_ffmpeg
def test_ten_minute_clip_is_sampled_not_decoded(tmp_path, det):
    path = tmp_path / "long.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=96x64:rate=5", "-t", "600", "-c:v", "libx264", "-g", "50",
           "-pix_fmt", "yuv420p", str(path))
    info, frames = media.sample_frames(path, 8)
    assert info.duration_s == pytest.approx(600, abs=1) and len(frames) == 8
    assert frames[-1].timestamp_s == pytest.approx(frames[-1].index / 5, abs=0.21)


@needs_ffmpeg
def test_video_duration_limit_edge(tmp_path, monkeypatch):
    path = tmp_path / "long.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x64:rate=1", "-t", "61", "-c:v", "libx264", "-pix_fmt",
           "yuv420p", str(path))
    monkeypatch.setattr(media, "MAX_VIDEO_SECONDS", 61)
    assert media.probe_video(path).frame_count == 61
    monkeypatch.setattr(media, "MAX_VIDEO_SECONDS", 59)
    with pytest.raises(InputError, match="longer than the limit"):
        media.probe_video(path)


@needs_ffmpeg
def test_4k_clip_at_and_past_the_limit(tmp_path):
    ok = tmp_path / "uhd.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=4096x2160:rate=5", "-t", "0.4", "-c:v", "libx264", "-preset",
           "ultrafast", "-pix_fmt", "yuv420p", str(ok))
    info, frames = media.sample_frames(ok, 2)
    assert frames[0].rgb.shape == (2160, 4096, 3)
    big = tmp_path / "big.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=4112x2160:rate=5", "-t", "0.2", "-c:v", "libx264", "-preset",
           "ultrafast", "-pix_fmt", "yuv420p", str(big))
    with pytest.raises(InputError, match="limit is 4K"):
        media.sample_frames(big, 2)


# ------------------------------------------------------------------------------------------------ CLI

def test_cli_reports_each_bad_file_and_goes_on(tmp_path, capsys, random_model_dir):
    (tmp_path / "zero.jpg").write_bytes(b"")
    (tmp_path / "text.png").write_text("just text")
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 100)
    code = main(["predict", str(tmp_path), "--model", str(random_model_dir), "--face-detector", "haar"])
    out = capsys.readouterr()
    rows = [json.loads(line) for line in out.out.splitlines()]
    assert code == 1 and len(rows) == 3 and all("error" in r and "label" not in r for r in rows)
    assert all(str(tmp_path) not in r["error"] for r in rows)  # messages name the file, not server paths
    assert "Traceback" not in out.err
