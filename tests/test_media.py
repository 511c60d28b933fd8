"""Reading images and videos: every pixel mode, orientation, limits, damaged files, frame sampling."""
import io
import warnings

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

from deepfake import media
from deepfake.errors import InputError
from synth import frame_number, long_video, numbered_frames, set_avi_frame_count, write_video


def _save(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return path


def test_modes_all_become_rgb_uint8(tmp_path, astronaut):
    base = Image.fromarray(astronaut)
    cases = {
        "gray.png": base.convert("L"),
        "rgba.png": base.convert("RGBA"),
        "cmyk.jpg": base.convert("CMYK"),
        "palette.png": base.convert("P"),
        "rgb.webp": base,
    }
    for name, img in cases.items():
        out = media.load_image(_save(img, tmp_path / name))
        assert out.dtype == np.uint8 and out.shape == (512, 512, 3), name
        # Same picture: close to the original's luminance everywhere.
        diff = np.abs(out.mean(axis=2) - astronaut.mean(axis=2)).mean()
        assert diff < 25, (name, diff)


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    arr = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16)  # 0..65520
    path = tmp_path / "deep.png"
    Image.fromarray(arr).save(path)
    out = media.load_image(path)
    assert out.shape == (64, 64, 3)
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 254  # 65520 // 257
    np.testing.assert_array_equal(media.load_image(arr), out)


def test_rgba_transparency_composited_over_white():
    arr = np.zeros((4, 4, 4), np.uint8)
    arr[..., 0] = 255  # red, fully transparent
    out = media.load_image(arr)
    assert (out == 255).all()


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (40, 20), (0, 0, 0))
    img.paste((255, 255, 255), (0, 0, 10, 20))  # white strip on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif.tobytes())
    out = media.load_image(path)
    assert out.shape[:2] == (40, 20)  # portrait after rotation
    assert out[:10].mean() > 200 and out[-10:].mean() < 50  # left strip is now on top


def test_float_and_gray_arrays():
    out = media.load_image(np.full((8, 8), 0.5, np.float32))
    assert out.shape == (8, 8, 3) and abs(int(out[0, 0, 0]) - 128) <= 1


@pytest.mark.parametrize("content,message", [
    (b"", "empty"),
    (b"hello, this is text", "not an image"),
])
def test_bad_files_get_clear_messages(tmp_path, content, message):
    path = tmp_path / "x.jpg"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        media.load_image(path)


def test_truncated_jpeg_and_png(tmp_path, astronaut):
    for ext in ("jpg", "png"):
        buf = io.BytesIO()
        Image.fromarray(astronaut).save(buf, format="JPEG" if ext == "jpg" else "PNG")
        path = tmp_path / f"cut.{ext}"
        path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
        with pytest.raises(InputError, match="damaged or truncated"):
            media.load_image(path)


def test_decompression_bomb_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (30000, 30000)).save(path)  # ~100 kB on disk, 900 megapixels
    assert path.stat().st_size < 2_000_000
    with pytest.raises(InputError, match="limit is 40 megapixels"):
        media.load_image(path)


PILLOW_DEFAULT_MAX_PIXELS = 1024 * 1024 * 1024 // 4 // 3  # PIL.Image.MAX_IMAGE_PIXELS as Pillow ships it


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow warns at 100 MP: expected
def test_bombs_are_refused_from_the_header_without_touching_global_state(tmp_path, monkeypatch, astronaut):
    """The server reads images in many threads: no process-wide warning filters (warnings.catch_warnings
    is not thread-safe) and Pillow's global limit left as it ships; bombs still refused before decoding."""
    assert Image.MAX_IMAGE_PIXELS == PILLOW_DEFAULT_MAX_PIXELS  # deepfake.media is imported by now

    def global_change(*args, **kwargs):
        raise AssertionError("changes the process-wide warning filters")

    for name in ("catch_warnings", "simplefilter", "filterwarnings", "resetwarnings"):
        monkeypatch.setattr(warnings, name, global_change)
    assert media.load_image(_save(Image.fromarray(astronaut), tmp_path / "ok.png")).shape == (512, 512, 3)
    bombs = {"48 MP, under Pillow's limit": (8000, 6000), "100 MP, Pillow warns": (10000, 10000),
             "900 MP, Pillow refuses": (30000, 30000)}
    paths = {k: _save(Image.new("1", size), tmp_path / f"{size[0]}.png") for k, size in bombs.items()}
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("decoded a bomb"))
    for kind, path in paths.items():
        with pytest.raises(InputError, match="the limit is 40 megapixels"):
            media.load_image(path)
    assert Image.MAX_IMAGE_PIXELS == PILLOW_DEFAULT_MAX_PIXELS


def test_pixel_limit_edge(tmp_path):
    side = int(media.MAX_IMAGE_PIXELS ** 0.5)
    media._check_size(side, side)  # at the limit: fine
    with pytest.raises(InputError):
        media._check_size(side + 1, side + 1)


def test_sampling_seeks_to_the_right_frames(tmp_path):
    path = write_video(tmp_path / "n.mp4", numbered_frames(60), fps=10)
    info, frames = media.sample_frames(path, 6)
    assert info.frame_count == 60 and info.fps == pytest.approx(10)
    assert [f.index for f in frames] == media.sample_indices(60, 6) == [5, 15, 25, 35, 45, 55]
    for f in frames:
        assert frame_number(f.rgb) == f.index
        assert f.timestamp_s == pytest.approx(f.index / 10, abs=0.051)


def test_sampling_dense_reads_sequentially_with_the_same_result(tmp_path):
    path = write_video(tmp_path / "n.avi", numbered_frames(40), fps=20, fourcc="MJPG")
    info, frames = media.sample_frames(path, 32)
    assert len(frames) == 32
    assert [frame_number(f.rgb) for f in frames] == [f.index for f in frames] == media.sample_indices(40, 32)


def test_wrong_frame_count_in_header_is_recounted(tmp_path):
    path = write_video(tmp_path / "cut.avi", numbered_frames(50), fps=10, fourcc="MJPG")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.5)])  # header still says 50 frames
    info, frames = media.sample_frames(path, 8)
    assert 0 < info.frame_count < 50
    assert frames and all(frame_number(f.rgb) == f.index for f in frames)


def test_one_frame_video(tmp_path):
    path = write_video(tmp_path / "one.mp4", numbered_frames(1), fps=25)
    info, frames = media.sample_frames(path, 32)
    assert info.frame_count == 1 and [f.index for f in frames] == [0]


@pytest.mark.parametrize("content", [b"", b"not a video at all" * 100, b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 500])
def test_bad_videos_get_clear_messages(tmp_path, content):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(InputError):
        media.sample_frames(path, 4)


def test_frames_to_sample_is_bounded(tmp_path):
    path = write_video(tmp_path / "n.mp4", numbered_frames(5))
    with pytest.raises(InputError, match="between 1 and 128"):
        media.sample_frames(path, 0)
    with pytest.raises(InputError, match="between 1 and 128"):
        media.sample_frames(path, media.MAX_SAMPLED_FRAMES + 1)


# Header counts: a missing or wrong count must not cut a long video to its first 30 minutes (issue 11, 2.1).
@pytest.mark.parametrize("header", [0, 100])  # missing, and far too few
def test_video_past_the_limit_is_refused_whatever_its_header_says(tmp_path, header):
    path = long_video(tmp_path / "long.avi", seconds=media.MAX_VIDEO_SECONDS + 50, fps=2)
    set_avi_frame_count(path, header)
    assert int(cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT)) == header
    with pytest.raises(InputError, match="long.avi is longer than the limit of 30 minutes"):
        media.probe_video(path)


def test_video_within_the_limit_with_a_missing_count_is_accepted_and_counted(tmp_path):
    path = set_avi_frame_count(long_video(tmp_path / "ok.avi", seconds=media.MAX_VIDEO_SECONDS - 50, fps=2), 0)
    info = media.probe_video(path)
    assert info.frame_count == 2 * (media.MAX_VIDEO_SECONDS - 50) and info.header_frames == 0


@pytest.mark.parametrize("fourcc,ext,header", [("mp4v", "mp4", None), ("MJPG", "avi", 0)])
def test_one_full_frame_is_read_again_on_demand(tmp_path, fourcc, ext, header):
    path = write_video(tmp_path / f"n.{ext}", numbered_frames(60), fps=10, fourcc=fourcc)
    if header is not None:
        set_avi_frame_count(path, header)
    _, sampled = media.sample_frames(path, 4)
    for f in sampled:
        again = media.read_frame(path, f.index)
        assert (again.index, again.timestamp_s) == (f.index, f.timestamp_s)
        np.testing.assert_array_equal(again.rgb, f.rgb)
    with pytest.raises(InputError, match="n.%s has no frame 60: it has 60 frames" % ext):
        media.read_frame(path, 60)


@pytest.mark.parametrize("header", [0, 10])  # missing; too few (OpenCV seeks no further than the header says)
def test_frames_past_a_wrong_header_count_are_counted_and_sampled(tmp_path, header):
    path = set_avi_frame_count(write_video(tmp_path / "n.avi", numbered_frames(60), fps=1, fourcc="MJPG"), header)
    info, frames = media.sample_frames(path, 4)  # one frame in 15: seeks, were the header right
    assert info.frame_count == 60
    assert [f.index for f in frames] == media.sample_indices(60, 4) == [7, 22, 37, 52]
    assert [frame_number(f.rgb) for f in frames] == [7, 22, 37, 52]


@pytest.mark.parametrize("fmt,ext,brand", [("HEIF", ".heic", b"ftypheic"), ("AVIF", ".avif", b"ftypavif")])
def test_heic_and_avif_photos_are_read(tmp_path, astronaut, fmt, ext, brand):
    path = _save(Image.fromarray(astronaut), tmp_path / f"photo{ext}", format=fmt, quality=100)
    assert path.read_bytes()[4:12] == brand and media.media_kind(path) == "image"
    out = media.load_image(path)
    assert out.shape == (512, 512, 3) and np.abs(out.astype(int) - astronaut).mean() < 3
    np.testing.assert_array_equal(media.load_image(path.read_bytes()), out)


def test_svg_is_refused_with_what_to_do(tmp_path):
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>'
    (tmp_path / "logo.svg").write_bytes(svg)
    message = "SVG is a vector format; not supported, convert to PNG/JPEG"
    with pytest.raises(InputError, match=f"logo.svg: {message}"):
        media.load_image(tmp_path / "logo.svg")
    with pytest.raises(InputError, match=message):
        media.load_image(svg)
    assert media.media_kind("logo.svg") is None and media.is_media_name("logo.svg")
    assert media.unsupported_reason("x/logo.SVG") == f"logo.SVG: {message}."


def test_every_image_or_video_name_is_recognised_and_only_readable_ones_accepted():
    readable = [".jpg", ".PNG", ".webp", ".heic", ".heif", ".avif", ".tiff", ".gif", ".mp4", ".MOV", ".mkv", ".webm"]
    assert all(media.media_kind("f" + e) and media.is_media_name("f" + e) for e in readable)
    for name in ("f.svg", "f.jxl", "f.dng", "f.3gp", "f.ico", "f.ppm", "f.qt"):
        assert media.is_media_name(name) and media.media_kind(name) is None, name
        assert "unsupported file type" in media.unsupported_reason(name) or "SVG" in media.unsupported_reason(name)
    for name in ("notes.txt", "data.csv", "archive.zip", "Makefile", "model.onnx", "clip.mp4.json"):
        assert not media.is_media_name(name), name
    assert {".heic", ".heif", ".avif"} <= media.IMAGE_EXTENSIONS and "HEIC" in media.ACCEPTED_IMAGES
