"""Explainable deepfake detection: the public API (load_detector, Detector, typed results, errors).

Faces -> crops -> timm detector -> verdicts, Grad-CAM, occlusion maps, per-frame video analysis.

    from deepfake import load_detector
    det = load_detector()                 # bundled model, or $DEEPFAKE_MODEL, or load_detector("ORG/NAME@rev")
    det.analyze_image("face.jpg")         # ImageResult (label, fake_probability, faces, ...)
    det.analyze_video("clip.mp4")         # VideoResult (per-frame scores, frame importance)
    det.grad_cam("face.jpg", "gradcam")   # CamResult (maps of the fake output per face)
    det.occlusion_map("face.jpg", grid=8) # OcclusionResult (G x G signed probability changes)
"""
from .detector import Detector, load_detector
from .errors import DeepfakeError, InputError, ModelLoadError
from .results import (FAKE, NO_FACE, REAL, CamResult, FaceResult, FrameResult, ImageResult, OcclusionResult,
                      VideoResult)

__version__ = "0.1.0"
__all__ = ["load_detector", "Detector", "DeepfakeError", "InputError", "ModelLoadError", "ImageResult",
           "VideoResult", "FrameResult", "FaceResult", "CamResult", "OcclusionResult", "FAKE", "REAL", "NO_FACE"]
