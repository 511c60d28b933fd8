"""Where things are: the repo, its examples, the bundled model, ../shared (data and YuNet)."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
EXAMPLE_REAL = EXAMPLES / "astronaut.png"
EXAMPLE_FAKE = EXAMPLES / "astronaut_sbi_fake.png"
EXAMPLE_VIDEO = EXAMPLES / "astronaut_sbi.mp4"
BUNDLED = ROOT / "models" / "deepfake-lite0-sbi"
SHARED = ROOT.parent / "shared"
SHARED_DATA = SHARED / "data"
YUNET_ONNX = SHARED / "models" / "face_detection_yunet_2023mar.onnx"
