"""Reading images and videos: every pixel mode, orientation, limits, damaged files, frame sampling."""
import io

import cv2
import numpy as np
import pytest
from PIL import Image

from deepfake import media
from deepfake.errors import InputError
from synth import frame_number, numbered_frames, write_video


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
