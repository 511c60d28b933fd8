"""Inputs the tests make themselves: videos written with OpenCV."""
from pathlib import Path

import cv2
import numpy as np


def write_video(path: Path, frames, fps: float = 10.0, fourcc: str = "mp4v") -> Path:
    frames = list(frames)
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} to {path.suffix}"
    for rgb in frames:
        writer.write(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def numbered_frames(n: int, height: int = 64):
    """Frame i is dark with a bright 4-pixel bar at x = 4i, so a decoded frame tells its index
    (robust to lossy codecs, unlike a grey level)."""
    width = max(64, 16 * ((4 * n + 15) // 16))
    out = []
    for i in range(n):
        f = np.full((height, width, 3), 30, np.uint8)
        f[:, 4 * i:4 * i + 4] = 230
        out.append(f)
    return out


def frame_number(rgb: np.ndarray) -> int:
    cols = rgb[:, :, 1].mean(axis=0)
    bright = np.flatnonzero(cols > 130)
    return int(round((bright.mean() - 1.5) / 4))


def set_avi_frame_count(path: Path, count: int) -> Path:
    """Overwrite the frame count in an AVI's headers (main and stream header; 0 = missing), as broken
    muxers and cut files leave it. The frames and their index stay as they are."""
    data = bytearray(path.read_bytes())
    for tag, offset in ((b"avih", 16), (b"strh", 32)):  # dwTotalFrames, dwLength
        at = data.find(tag) + 8 + offset
        data[at:at + 4] = int(count).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    return path


def long_video(path: Path, seconds: float, fps: float = 2.0) -> Path:
    """A tiny (32x32 MJPG) video of `seconds`: long durations cost little to write and to count."""
    frames = [np.full((32, 32, 3), 40 + i % 150, np.uint8) for i in range(int(round(seconds * fps)))]
    return write_video(path, frames, fps=fps, fourcc="MJPG")
