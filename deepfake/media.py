"""Read images and videos safely: orientation, pixel modes, size limits, evenly spaced video frames.

Everything returns RGB uint8 arrays (H, W, 3). Anything unreadable raises InputError with a message
that says what is wrong and what is accepted. Nothing here changes Pillow's or Python's global settings
(the server reads images in several threads at once).
"""
from __future__ import annotations

import contextlib
import io
import logging
import mimetypes
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError, features

from .errors import InputError

log = logging.getLogger(__name__)

# Limits (documented in README "Limits and guarantees").
MAX_IMAGE_PIXELS = 40_000_000  # 40 megapixels, e.g. 8000x5000; checked from the header, before decoding
MAX_VIDEO_PIXELS = 4096 * 2160  # DCI 4K; UHD 3840x2160 and portrait 4K fit too
MAX_VIDEO_SECONDS = 30 * 60
MAX_SAMPLED_FRAMES = 128
PREVIEW_MAX_SIDE = 480  # longer side of the per-frame previews a video analysis keeps for galleries

try:  # HEIC/HEIF (iPhone photos) come from a Pillow plugin; AVIF is built into Pillow 12
    from pillow_heif import register_heif_opener
except ImportError:  # pragma: no cover - pillow-heif is in requirements.txt
    HEIF_SUPPORTED = False
    log.debug("pillow-heif is not installed: HEIC/HEIF photos are refused")
else:
    register_heif_opener()
    HEIF_SUPPORTED = True
AVIF_SUPPORTED = bool(features.check("avif"))

# What the package reads: the single source for the app's upload widgets, the CLI and the messages.
IMAGE_EXTENSIONS = ({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
                    | ({".heic", ".heif"} if HEIF_SUPPORTED else set())
                    | ({".avif"} if AVIF_SUPPORTED else set()))
VIDEO_EXTENSIONS = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"}
ACCEPTED_IMAGES = ("JPEG, PNG, WebP, " + ("HEIC, " if HEIF_SUPPORTED else "") + ("AVIF, " if AVIF_SUPPORTED else "")
                   + "BMP, TIFF or GIF")
ACCEPTED_VIDEOS = "MP4, MOV, AVI, MKV or WebM"
_SVG = "SVG is a vector format; not supported, convert to PNG/JPEG"
# Image and video files the package does not read, beyond those Python's built-in MIME table names.
_NOT_READ = {".svg": _SVG, ".svgz": _SVG, ".jxl": None, ".dng": None, ".cr2": None, ".cr3": None, ".nef": None,
             ".arw": None, ".raf": None, ".orf": None, ".rw2": None, ".psd": None, ".jp2": None, ".ico": None,
             ".heic": None, ".heif": None, ".avif": None, ".3gp": None, ".ts": None, ".mts": None, ".m2ts": None,
             ".ogv": None, ".vob": None, ".asf": None}
_MIME = mimetypes.MimeTypes()  # Python's built-in table only, not the system's: the same answer everywhere


def media_kind(path: str | os.PathLike) -> str | None:
    """'image', 'video' or None, by file extension: the files the package reads."""
    ext = Path(path).suffix.lower()
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext in VIDEO_EXTENSIONS:
        return "video"
    return None


def is_media_name(path: str | os.PathLike) -> bool:
    """True for any image or video file name, read by the package or not (a folder scan answers all of them)."""
    ext = Path(path).suffix.lower()
    if media_kind(path) or ext in _NOT_READ:
        return True
    kind = _MIME.guess_type("x" + ext, strict=False)[0] if ext else None
    return bool(kind) and kind.split("/")[0] in ("image", "video")


def unsupported_reason(path: str | os.PathLike) -> str:
    """Why a file the package does not read is refused, and what is accepted."""
    ext = Path(path).suffix.lower()
    if _NOT_READ.get(ext):
        return f"{Path(path).name}: {_NOT_READ[ext]}."
    if ext in (".heic", ".heif") and not HEIF_SUPPORTED:
        return f"{Path(path).name}: HEIC photos need the pillow-heif package (pip install -r requirements.txt)."
    return (f"{Path(path).name}: unsupported file type '{ext or '(none)'}'. Accepted images: {ACCEPTED_IMAGES}; "
            f"videos: {ACCEPTED_VIDEOS}.")


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
        img = Image.open(fh)  # reads the header only
        _check_size(*img.size)  # refuse bombs before decoding
        img.load()
        return pil_to_rgb(img)
    except InputError:
        raise
    # Pillow's own bomb check, at its default limit (above ours): the Warning only where warnings are errors.
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"{name} is too large; the limit is {MAX_IMAGE_PIXELS // 1_000_000} megapixels.")
    except UnidentifiedImageError:
        if _looks_like_svg(fh, name):
            raise InputError(f"{name}: {_SVG}.")
        raise InputError(f"{name} is not an image this app can read. Accepted: {ACCEPTED_IMAGES}.")
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"{name} is damaged or truncated and cannot be decoded ({type(exc).__name__}).")


def _looks_like_svg(fh, name: str) -> bool:
    if Path(name).suffix.lower() in (".svg", ".svgz"):
        return True
    fh.seek(0)
    head = fh.read(4096).lstrip()
    return head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head)


# ---------------------------------------------------------------------------------------------- video

@dataclass(frozen=True)
class VideoInfo:
    fps: float
    frame_count: int  # as counted, when the header was wrong or missing
    duration_s: float
    width: int
    height: int
    # Frames the header promises and seeking reaches (OpenCV seeks no further); 0 when the header was wrong.
    header_frames: int = 0


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


def _grab(cap: cv2.VideoCapture, limit: int) -> int:
    """Frames read on from the current position, up to `limit` (demuxed and decoded, not converted)."""
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
    # The most frames a video within the limit has (one second of slack for rounding in headers). Counting
    # stops one frame past it: enough to refuse the video, never a read of the whole of a long file.
    max_frames = int((MAX_VIDEO_SECONDS + 1) * fps)
    header_frames = 0
    if 0 < header_count <= max_frames * 4:
        cap.set(cv2.CAP_PROP_POS_FRAMES, header_count - 1)
        if cap.grab():  # the last frame the header promises is there
            header_frames = header_count
    if header_frames:  # read on, in case the header says too few
        count = header_count + _grab(cap, max_frames + 1 - header_count)
    else:  # no count, an absurd one, or one past the end of the file: count from the start
        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        count = _grab(cap, max_frames + 1)
    if count <= 0:
        raise InputError(f"{path.name} contains no decodable video frames.")
    if count > max_frames:
        raise InputError(f"{path.name} is longer than the limit of {MAX_VIDEO_SECONDS // 60} minutes.")
    return VideoInfo(fps=float(fps), frame_count=count, duration_s=float(count / fps), width=width, height=height,
                     header_frames=header_frames)


def sample_indices(frame_count: int, n: int) -> list[int]:
    """n evenly spaced frame indices (centres of n equal segments), fewer if the clip is shorter."""
    n = max(1, min(n, frame_count))
    return sorted({int((i + 0.5) * frame_count / n) for i in range(n)})


# Below this spacing, decoding forward is cheaper than a seek (which decodes from the previous keyframe).
_SEEK_MIN_STEP = 12


def iter_frames(path: str | os.PathLike, n: int = 32) -> tuple[VideoInfo, list[int], Iterator[Frame]]:
    """(info, wanted frame indices, frames): n evenly spaced frames, decoded one at a time as the iterator
    is consumed, so a caller that keeps only what it needs of each frame holds one full frame at a time.
    The probe (and its InputErrors) runs at once; close the iterator to stop early."""
    if not 1 <= n <= MAX_SAMPLED_FRAMES:
        raise InputError(f"Frames to sample must be between 1 and {MAX_SAMPLED_FRAMES}, got {n}.")
    path = Path(path)
    info = probe_video(path)
    wanted = sample_indices(info.frame_count, n)
    return info, wanted, _decode(path, info, wanted)


def sample_frames(path: str | os.PathLike, n: int = 32) -> tuple[VideoInfo, list[Frame]]:
    """Read n evenly spaced frames by seeking, never the whole file into memory (all n frames are returned:
    use iter_frames to hold one at a time)."""
    info, _, frames = iter_frames(path, n)
    return info, list(frames)


def read_frame(path: str | os.PathLike, index: int) -> Frame:
    """One full-size frame by its index (a FrameResult.index), decoded again on demand: a video analysis
    keeps previews only."""
    path = Path(path)
    info = probe_video(path)
    if not 0 <= index < info.frame_count:
        raise InputError(f"{path.name} has no frame {index}: it has {info.frame_count} frames.")
    with contextlib.closing(_decode(path, info, [index])) as frames:
        return next(frames)


def _decode(path: Path, info: VideoInfo, wanted: list[int]) -> Iterator[Frame]:
    cap = _open_capture(path)
    got = 0
    try:
        step = info.frame_count / max(len(wanted), 1)
        seekable = wanted[-1] < info.header_frames
        read = _read_seeking if seekable and step >= _SEEK_MIN_STEP else _read_sequential
        for frame in read(cap, wanted, info.fps):
            got += 1
            yield frame
    finally:
        cap.release()
    if not got:
        raise InputError(f"{path.name}: no frame could be decoded.")


def _read(cap: cv2.VideoCapture, idx: int, fps: float) -> Frame | None:
    ok, bgr = cap.read()
    if not ok or bgr is None:
        return None
    msec = cap.get(cv2.CAP_PROP_POS_MSEC)
    # POS_MSEC is the presentation time (right under variable frame rate); fall back to index / fps.
    ts = msec / 1000.0 if np.isfinite(msec) and msec > 0 else idx / fps
    return Frame(index=idx, timestamp_s=round(float(ts), 3), rgb=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def _read_seeking(cap: cv2.VideoCapture, wanted: list[int], fps: float) -> Iterator[Frame]:
    for idx in wanted:
        cap.set(cv2.CAP_PROP_POS_FRAMES, idx)
        frame = _read(cap, idx, fps)
        if frame is not None:
            yield frame


def _read_sequential(cap: cv2.VideoCapture, wanted: list[int], fps: float) -> Iterator[Frame]:
    targets, pos = set(wanted), 0
    last = wanted[-1]
    while pos <= last:
        if pos in targets:
            frame = _read(cap, pos, fps)
            if frame is None:
                return
            yield frame
        elif not cap.grab():
            return
        pos += 1


def preview(rgb: np.ndarray, max_side: int = PREVIEW_MAX_SIDE) -> np.ndarray:
    """A copy whose longer side is at most max_side (never upscaled): what a video analysis keeps of a frame."""
    h, w = rgb.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1.0:
        return rgb.copy()
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
