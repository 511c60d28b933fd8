"""The app's settings: limits, concurrency, cache ages, styling (environment variables where a host may
want another value)."""
from __future__ import annotations

import os
from pathlib import Path

from deepfake import media

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
MAX_FILE_SIZE_MB = int(os.environ.get("DEEPFAKE_MAX_FILE_MB", "64"))
QUEUE_MAX_SIZE = int(os.environ.get("DEEPFAKE_QUEUE_MAX", "24"))
# Concurrency per event group: cheap predictions run two at a time, gradient/occlusion/video one.
LIGHT_CONCURRENCY = 2
HEAVY_CONCURRENCY = 1
BUSY_MESSAGE = "The server is busy (the queue is full). Please retry in a minute."
PREVIEW_SECONDS = 60
# Gradio's own cache (uploads, files served to clients): every 30 minutes, files older than an hour go.
DELETE_CACHE = (30 * 60, 60 * 60)
VIDEO_TYPES = sorted(media.VIDEO_EXTENSIONS)
IMAGE_TYPES = sorted(media.IMAGE_EXTENSIONS)
GRID_DEFAULT = 8
RELIABILITY_FILE = "reliability.png"  # a model folder's calibration plot (deepfake/train/calibrate.py writes it)
# The verdict's colour is set on its heading too: the theme's prose rule for h2 would win over the div's colour.
# Amber UNCERTAIN as deepfake.render draws its boxes.
CSS = """
.verdict h2, .verdict h3 {margin: 0.2em 0;}
.verdict-FAKE, .verdict-FAKE h2 {color: #dc2626;} .verdict-REAL, .verdict-REAL h2 {color: #16a34a;}
.verdict-UNCERTAIN, .verdict-UNCERTAIN h2 {color: #d97706;} .verdict-NO_FACE, .verdict-NO_FACE h2 {color: #6b7280;}
"""
