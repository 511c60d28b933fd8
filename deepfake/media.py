"""Read images and videos safely: orientation, pixel modes, size limits, evenly spaced video frames.

Everything returns RGB uint8 arrays (H, W, 3). Anything unreadable raises InputError with a message
that says what is wrong and what is accepted.
"""
from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputError

# Limits (documented in README "Limits and guarantees").
MAX_IMAGE_PIXELS = 40_000_000  # 40 megapixels, e.g. 8000x5000; a decompression bomb is refused before decoding
MAX_VIDEO_PIXELS = 4096 * 2160  # DCI 4K; UHD 3840x2160 and portrait 4K fit too
MAX_VIDEO_SECONDS = 30 * 60
MAX_SAMPLED_FRAMES = 128
# PIL's own bomb check stays on as a second line of defence, just above our limit.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
VIDEO_EXTENSIONS = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"}
ACCEPTED_IMAGES = "JPEG, PNG, WebP, BMP, TIFF or GIF"
ACCEPTED_VIDEOS = "MP4, MOV, AVI, MKV or WebM"


def media_kind(path: str | os.PathLike) -> str | None:
    """'image', 'video' or None, by file extension."""
    ext = Path(path).suffix.lower()
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext in VIDEO_EXTENSIONS:
        return "video"
    return None


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.uint16:
        return (arr.astype(np.uint32) // 257).astype(np.uint8)
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise InputError("The image array contains NaN or infinite values.")
        scale = 255.0 if arr.max(initial=0.0) <= 1.0 else 1.0
        return np.clip(arr * scale + 0.5 * (scale == 1.0), 0, 255).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer):
        hi = 65535 if arr.max(initial=0) > 255 else 255
        return (np.clip(arr, 0, hi).astype(np.float64) * (255.0 / hi) + 0.5).astype(np.uint8)
    raise InputError(f"Unsupported image array type {arr.dtype}.")


def to_rgb_array(arr: np.ndarray) -> np.ndarray:
    """Any HxW, HxWx1, HxWx3 or HxWx4 array (uint8, uint16, float in [0,1], ...) -> RGB uint8."""
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise InputError(f"Expected an image array of shape HxW, HxWx3 or HxWx4, got {arr.shape}.")
    _check_size(arr.shape[1], arr.shape[0])
    arr = _to_uint8(arr)
    if arr.ndim == 2:
        return np.ascontiguousarray(np.repeat(arr[:, :, None], 3, axis=2))
    if arr.shape[2] == 4:  # composite over white: transparent pixels carry arbitrary colours
        alpha = arr[:, :, 3:4].astype(np.float32) / 255.0
        rgb = arr[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        return (rgb + 0.5).astype(np.uint8)
    return np.ascontiguousarray(arr)


def _check_size(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise InputError("The image is empty (0 pixels).")
    if width * height > MAX_IMAGE_PIXELS:
        raise InputError(
            f"The image is {width}x{height} pixels; the limit is {MAX_IMAGE_PIXELS // 1_000_000} megapixels."
        )


def pil_to_rgb(img: Image.Image) -> np.ndarray:
    """PIL image in any mode -> RGB uint8, with EXIF orientation applied."""
    _check_size(*img.size)
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block must not stop the analysis: use the pixels as stored
        pass
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return to_rgb_array(np.asarray(img))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        return to_rgb_array(np.asarray(img.convert("RGBA")))
    return np.ascontiguousarray(np.asarray(img.convert("RGB")))


def load_image(src) -> np.ndarray:
    """Path, bytes, PIL image or array -> RGB uint8 (H, W, 3). Raises InputError for anything else."""
    if isinstance(src, np.ndarray):
        return to_rgb_array(src)
    if isinstance(src, Image.Image):
        return pil_to_rgb(src)
    if isinstance(src, (bytes, bytearray)):
        return _open_pil(io.BytesIO(src), "the uploaded data")
    if isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if not path.is_file():
            raise InputError(f"File not found: {path.name}")
        if path.stat().st_size == 0:
            raise InputError(f"{path.name} is empty (0 bytes).")
        with open(path, "rb") as fh:
            return _open_pil(fh, path.name)
    raise InputError(f"Cannot read an image from a {type(src).__name__}.")


def _open_pil(fh, name: str) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(fh)
            _check_size(*img.size)  # header only: refuse bombs before decoding
            img.load()
            return pil_to_rgb(img)
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"{name} is too large; the limit is {MAX_IMAGE_PIXELS // 1_000_000} megapixels.")
    except UnidentifiedImageError:
        raise InputError(f"{name} is not an image this app can read. Accepted: {ACCEPTED_IMAGES}.")
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"{name} is damaged or truncated and cannot be decoded ({type(exc).__name__}).")


# ---------------------------------------------------------------------------------------------- video

@dataclass(frozen=True)
class VideoInfo:
    fps: float
    frame_count: int  # as counted, when the header was wrong or missing
    duration_s: float
    width: int
    height: int


@dataclass(frozen=True)
class Frame:
    index: int
    timestamp_s: float
    rgb: np.ndarray


def _open_capture(path: Path) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        raise InputError(f"{path.name} is not a video this app can read. Accepted: {ACCEPTED_VIDEOS}.")
    return cap


def _count_frames(cap: cv2.VideoCapture, limit: int) -> int:
    """Frame count by demuxing, for files whose header count is missing or wrong."""
    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
    n = 0
    while n < limit and cap.grab():
        n += 1
    return n


def probe_video(path: str | os.PathLike) -> VideoInfo:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"File not found: {path.name}")
    if path.stat().st_size == 0:
        raise InputError(f"{path.name} is empty (0 bytes).")
    cap = _open_capture(path)
    try:
        return _probe(cap, path)
    finally:
        cap.release()


def _probe(cap: cv2.VideoCapture, path: Path) -> VideoInfo:
    fps = cap.get(cv2.CAP_PROP_FPS)
    fps = fps if np.isfinite(fps) and 0.5 <= fps <= 1000 else 25.0
    width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    if width <= 0 or height <= 0:
        raise InputError(f"{path.name} has no video stream (audio only or corrupt header).")
    if width * height > MAX_VIDEO_PIXELS:
        raise InputError(f"{path.name} is {width}x{height}; the limit is 4K ({MAX_VIDEO_PIXELS / 1e6:.1f} megapixels "
                         "per frame, e.g. 3840x2160 or 4096x2160).")
    header_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    max_frames = int(MAX_VIDEO_SECONDS * fps) + 1
    count = header_count
    if header_count <= 0 or header_count > max_frames * 4:
        count = _count_frames(cap, max_frames + 1)
    else:
        # Check the header: the last frame it promises must be readable.
        cap.set(cv2.CAP_PROP_POS_FRAMES, header_count - 1)
        if not cap.grab():
            count = _count_frames(cap, max_frames + 1)
    if count <= 0:
        raise InputError(f"{path.name} contains no decodable video frames.")
    duration = count / fps
    if duration > MAX_VIDEO_SECONDS + 1:
        raise InputError(f"{path.name} is longer than the limit of {MAX_VIDEO_SECONDS // 60} minutes.")
    return VideoInfo(fps=float(fps), frame_count=count, duration_s=float(duration), width=width, height=height)


def sample_indices(frame_count: int, n: int) -> list[int]:
    """n evenly spaced frame indices (centres of n equal segments), fewer if the clip is shorter."""
    n = max(1, min(n, frame_count))
    return sorted({int((i + 0.5) * frame_count / n) for i in range(n)})


# Below this spacing, decoding forward is cheaper than a seek (which decodes from the previous keyframe).
_SEEK_MIN_STEP = 12


def sample_frames(path: str | os.PathLike, n: int = 32) -> tuple[VideoInfo, list[Frame]]:
    """Read n evenly spaced frames by seeking, never the whole file into memory."""
    if not 1 <= n <= MAX_SAMPLED_FRAMES:
        raise InputError(f"Frames to sample must be between 1 and {MAX_SAMPLED_FRAMES}, got {n}.")
    path = Path(path)
    info = probe_video(path)
    wanted = sample_indices(info.frame_count, n)
    cap = _open_capture(path)
    frames: list[Frame] = []
    try:
        step = info.frame_count / max(len(wanted), 1)
        if step < _SEEK_MIN_STEP:
            frames = _read_sequential(cap, wanted, info.fps)
        else:
            for idx in wanted:
                cap.set(cv2.CAP_PROP_POS_FRAMES, idx)
                frame = _read(cap, idx, info.fps)
                if frame is not None:
                    frames.append(frame)
    finally:
        cap.release()
    if not frames:
        raise InputError(f"{path.name}: no frame could be decoded.")
    return info, frames


def _read(cap: cv2.VideoCapture, idx: int, fps: float) -> Frame | None:
    ok, bgr = cap.read()
    if not ok or bgr is None:
        return None
    msec = cap.get(cv2.CAP_PROP_POS_MSEC)
    # POS_MSEC is the presentation time (right under variable frame rate); fall back to index / fps.
    ts = msec / 1000.0 if np.isfinite(msec) and msec > 0 else idx / fps
    return Frame(index=idx, timestamp_s=round(float(ts), 3), rgb=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def _read_sequential(cap: cv2.VideoCapture, wanted: list[int], fps: float) -> list[Frame]:
    frames, targets, pos = [], set(wanted), 0
    last = wanted[-1]
    while pos <= last:
        if pos in targets:
            frame = _read(cap, pos, fps)
            if frame is None:
                break
            frames.append(frame)
        elif not cap.grab():
            break
        pos += 1
    return frames
