"""The detector network: face crops -> fake probabilities, with the preprocessing its config.json states.

config.json is timm's format plus this project's fields; weights are safetensors. Inference, training
validation and threshold selection all score crops through `Network.predict` (one resize, mean, std and
fake index: the config's).
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import timm
import torch
from timm.data import resolve_data_config

from .band import Band
from .crop import CropRecipe
# CARD_FILE is re-exported for deepfake/train/push.py, which imports it from here.
from .files import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE  # noqa: F401
from .errors import ModelLoadError
from .quality import DEFAULT_GATES, QualityGates

FORMAT_VERSION = 1
# Inference backends of Network.probabilities (Grad-CAM always runs on torch). "onnxruntime" exports the
# network to ONNX at load time (cached under DEEPFAKE_CACHE, default ~/.cache/deepfake/onnx) and needs the
# onnx and onnxruntime packages; choose it with Network.from_folder(..., backend=) or $DEEPFAKE_BACKEND.
BACKENDS = ("torch", "onnxruntime")
DEFAULT_BACKEND = "onnxruntime"
# Forward passes per call in probabilities(): on a 2-core CPU, 8 is as fast per image as 16 or 32 (bench/run.py
# section 1) and holds a quarter of their activations in memory.
DEFAULT_BATCH = 8
log = logging.getLogger(__name__)
_INTERP = {"bicubic": cv2.INTER_CUBIC, "bilinear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST,
           "area": cv2.INTER_AREA, "lanczos": cv2.INTER_LANCZOS4}


KINDS = ("face_swap", "generated")  # the manipulation kinds a network can be trained to find


@dataclass(frozen=True)
class NetworkRef:
    """A further network of a detector folder (config.json `deepfake.networks`): its name, the kind of fake it
    finds, its folder inside the detector folder (`path`) and the Hub repo that serves it (`repo`, used when the
    folder is not there). Each network's own config.json holds its preprocessing, temperature and band."""
    name: str
    kind: str
    path: str | None = None
    repo: str | None = None

    @classmethod
    def from_dict(cls, d, where: str = CONFIG_FILE) -> "NetworkRef":
        if not isinstance(d, dict) or not isinstance(d.get("name"), str) or not d["name"]:
            raise ModelLoadError(f"{where}: each entry of 'networks' needs a 'name'")
        kind = d.get("kind")
        if kind not in KINDS:
            raise ModelLoadError(f"{where}: network '{d['name']}' has kind {kind!r}; choose one of: {', '.join(KINDS)}")
        path, repo = d.get("path"), d.get("repo")
        if path is None and repo is None:
            raise ModelLoadError(f"{where}: network '{d['name']}' needs a 'path' (folder) or a 'repo' (Hub id)")
        if path is not None and (not isinstance(path, str) or Path(path).is_absolute() or ".." in Path(path).parts):
            raise ModelLoadError(f"{where}: network '{d['name']}': 'path' must be a folder inside the detector folder")
        return cls(d["name"], kind, path, repo)


@dataclass(frozen=True)
class DetectorConfig:
    """Everything the code needs to know about a detector; read from its config.json."""
    architecture: str
    num_classes: int
    pretrained_cfg: dict
    label_names: tuple[str, ...]
    fake_index: int
    threshold: float
    crop: CropRecipe
    cam_layer: str | None = None
    threshold_rule: str = ""
    data_summary: str = ""
    # Test-time flip: a crop's probability is the mean over the crop and its mirror image. Part of the model
    # (its threshold was chosen with it), so it lives in config.json, not in a call argument.
    test_time_flip: bool = False
    # Temperature scaling of the logits (deepfake/train/calibrate.py fits it on validation): 1 = as trained.
    temperature: float = 1.0
    # FAKE from band.fake_from, REAL below band.real_below, UNCERTAIN between; a config without a band has the
    # single cut at `threshold` (no UNCERTAIN).
    band: Band | None = None
    # Faces too small, blurred, dark or turned to judge get UNCERTAIN (deepfake/quality.py).
    gates: QualityGates = DEFAULT_GATES
    # The network's name and the kind of fake it finds, and the detector folder's further networks (each face
    # gets a probability and label from each; deepfake/verdict.py combines them).
    name: str = "face_swap"
    kind: str = "face_swap"
    networks: tuple[NetworkRef, ...] = ()
    format_version: int = FORMAT_VERSION
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def bands(self) -> Band:
        """The band of the config, or the single cut at `threshold` of a config without one."""
        return self.band if self.band is not None else Band.single(self.threshold)

    @property
    def data_config(self) -> dict:
        """timm's preprocessing settings of pretrained_cfg: input_size, crop_pct, interpolation, mean, std."""
        return resolve_data_config(pretrained_cfg=self.pretrained_cfg)

    @classmethod
    def from_dict(cls, cfg: dict, where: str = CONFIG_FILE) -> "DetectorConfig":
        def need(d, key, kind):
            if key not in d:
                raise ModelLoadError(f"{where}: missing field '{key}'")
            if not isinstance(d[key], kind):
                raise ModelLoadError(f"{where}: field '{key}' has the wrong type")
            return d[key]

        own = need(cfg, "deepfake", dict)
        version = need(own, "format_version", int)
        if version > FORMAT_VERSION:
            raise ModelLoadError(f"{where}: format_version {version} is newer than this code supports ({FORMAT_VERSION})")
        labels = tuple(need(cfg, "label_names", list))
        num_classes = need(cfg, "num_classes", int)
        fake_index = need(own, "fake_index", int)
        if len(labels) != num_classes or not 0 <= fake_index < num_classes:
            raise ModelLoadError(f"{where}: label_names, num_classes and fake_index disagree")
        threshold = float(need(own, "threshold", (int, float)))
        if not 0.0 < threshold < 1.0:
            raise ModelLoadError(f"{where}: threshold must be between 0 and 1, got {threshold}")
        crop = need(own, "face_crop", dict)
        flip = own.get("test_time_flip", False)
        if not isinstance(flip, bool):
            raise ModelLoadError(f"{where}: field 'test_time_flip' must be true or false")
        pcfg = need(cfg, "pretrained_cfg", dict)
        for key in ("input_size", "mean", "std"):
            need(pcfg, key, list)
        temperature = own.get("temperature", 1.0)
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
            raise ModelLoadError(f"{where}: field 'temperature' must be a positive number, got {temperature!r}")
        band = Band.from_dict(own["band"]) if own.get("band") is not None else None
        if band is not None and abs(band.fake_from - threshold) > 1e-6:
            raise ModelLoadError(f"{where}: band.fake_from ({band.fake_from}) and threshold ({threshold}) disagree")
        gates = QualityGates.from_dict(own["quality_gates"]) if own.get("quality_gates") is not None else DEFAULT_GATES
        kind = own.get("kind", "face_swap")
        if kind not in KINDS:
            raise ModelLoadError(f"{where}: field 'kind' is {kind!r}; choose one of: {', '.join(KINDS)}")
        refs = own.get("networks") or []
        if not isinstance(refs, list):
            raise ModelLoadError(f"{where}: field 'networks' must be a list")
        networks = tuple(NetworkRef.from_dict(d, where) for d in refs)
        name = str(own.get("name") or kind)
        names = [name] + [n.name for n in networks]
        if len(set(names)) != len(names):
            raise ModelLoadError(f"{where}: network names must differ, got {', '.join(names)}")
        return cls(
            architecture=need(cfg, "architecture", str),
            num_classes=num_classes,
            pretrained_cfg=pcfg,
            label_names=labels,
            fake_index=fake_index,
            threshold=threshold,
            crop=CropRecipe(margin=float(need(crop, "margin", (int, float))), size=int(need(crop, "size", int))),
            cam_layer=own.get("cam_layer"),
            threshold_rule=str(own.get("threshold_rule", "")),
            data_summary=str(own.get("data", "")),
            test_time_flip=flip,
            temperature=float(temperature),
            band=band,
            gates=gates,
            name=name,
            kind=kind,
            networks=networks,
            format_version=version,
            raw=cfg,
        )


def make_config_dict(architecture: str, pretrained_cfg: dict, *, threshold: float, crop: CropRecipe,
                     label_names=("real", "fake"), fake_index: int = 1, cam_layer: str | None = None,
                     threshold_rule: str = "", data: str = "", test_time_flip: bool = False,
                     extra: dict | None = None) -> dict:
    """config.json content: timm's hub format plus a 'deepfake' section of this project."""
    pcfg = {k: (list(v) if isinstance(v, tuple) else v) for k, v in pretrained_cfg.items()
            if k not in ("url", "hf_hub_id", "file", "source", "state_dict", "label_names")}
    pcfg["num_classes"] = len(label_names)
    own = {"format_version": FORMAT_VERSION, "fake_index": fake_index, "threshold": round(float(threshold), 6),
           "threshold_rule": threshold_rule, "face_crop": {"margin": crop.margin, "size": crop.size},
           "cam_layer": cam_layer, "test_time_flip": bool(test_time_flip), "data": data}
    own.update(extra or {})
    return {"architecture": architecture, "num_classes": len(label_names), "label_names": list(label_names),
            "pretrained_cfg": pcfg, "deepfake": own}


def read_config(folder: Path) -> DetectorConfig:
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise ModelLoadError(f"{CONFIG_FILE} is missing from the detector folder '{folder.name}'")
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{CONFIG_FILE} is not valid JSON ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(cfg, dict):
        raise ModelLoadError(f"{CONFIG_FILE} must hold a JSON object")
    return DetectorConfig.from_dict(cfg)


def create_network(cfg: DetectorConfig) -> torch.nn.Module:
    """The timm network of the config, randomly initialised (weights are loaded separately)."""
    if cfg.architecture not in timm.list_models():
        raise ModelLoadError(f"{CONFIG_FILE}: unknown architecture '{cfg.architecture}' (not a timm model)")
    pcfg = {k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg.pretrained_cfg.items()}
    return timm.create_model(cfg.architecture, pretrained=False, num_classes=cfg.num_classes, pretrained_cfg=pcfg)


def load_weights(net: torch.nn.Module, folder: Path) -> None:
    """Load model.safetensors strictly. Pickle checkpoints are refused: they can run code when loaded."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = folder / WEIGHTS_FILE
    if not path.is_file():
        pickles = [p.name for p in folder.glob("*") if p.suffix in (".bin", ".pth", ".pt", ".ckpt", ".pkl")]
        hint = f" (found {', '.join(sorted(pickles))}: pickle checkpoints are refused, convert to safetensors)" if pickles else ""
        raise ModelLoadError(f"{WEIGHTS_FILE} is missing from the detector folder '{folder.name}'{hint}")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelLoadError(f"{WEIGHTS_FILE} is corrupt or not a safetensors file ({exc})") from None
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} tensors missing (e.g. '{missing[0]}')")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensors (e.g. '{unexpected[0]}')")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} tensors with the wrong shape (e.g. '{k}': file {tuple(state[k].shape)}, "
                         f"model {tuple(expected[k].shape)})")
        raise ModelLoadError(f"{WEIGHTS_FILE} does not match architecture in {CONFIG_FILE}: " + "; ".join(parts))
    net.load_state_dict(state, strict=True)


def mirror_mean(probs_of, x: torch.Tensor) -> torch.Tensor:
    """Test-time flip: probs_of (a batch of inputs -> a probability each) on x and its mirror image in one
    batch, averaged per input."""
    return probs_of(torch.cat([x, x.flip(-1)])).view(2, -1).mean(0)


def preprocess(crops: list[np.ndarray] | np.ndarray, data_config: dict,
               device: torch.device = torch.device("cpu")) -> torch.Tensor:
    """RGB uint8 crops -> normalised NCHW float tensor, per timm's data config (size, crop_pct, interpolation,
    mean, std). Crops of another size are resized (and centre-cropped for crop_pct < 1) first."""
    size = int(data_config["input_size"][-1])
    crop_pct = float(data_config.get("crop_pct", 1.0) or 1.0)
    scale = int(round(size / crop_pct))
    interp = _INTERP.get(data_config.get("interpolation", "bilinear"), cv2.INTER_LINEAR)
    batch = np.empty((len(crops), size, size, 3), dtype=np.uint8)
    for i, c in enumerate(crops):
        if c.shape[0] != scale or c.shape[1] != scale:
            c = cv2.resize(c, (scale, scale), interpolation=interp)
        off = (scale - size) // 2
        batch[i] = c[off:off + size, off:off + size]
    x = torch.from_numpy(batch).to(device).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(data_config["mean"], device=device).view(1, 3, 1, 1)
    std = torch.tensor(data_config["std"], device=device).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous(memory_format=torch.channels_last)


@dataclass
class Network:
    """A loaded network with its preprocessing. predict() is thread-safe (no hooks ever attach here)."""
    config: DetectorConfig
    net: torch.nn.Module
    device: torch.device
    data_config: dict
    _cam_net: torch.nn.Module | None = field(default=None, repr=False)
    _cam_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    backend: str = "torch"
    _ort: object = field(default=None, repr=False)

    @classmethod
    def of(cls, config: DetectorConfig, net: torch.nn.Module, device=None) -> "Network":
        """A network whose weights are set (loaded, or being trained), with its config's preprocessing, in eval
        mode on `device` (default: CUDA when available)."""
        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        return cls(config, net.to(dev, memory_format=torch.channels_last).eval(), dev, config.data_config)

    @classmethod
    def from_folder(cls, folder: Path, device: str | None = None, backend: str | None = None) -> "Network":
        cfg = read_config(folder)
        net = create_network(cfg)
        load_weights(net, folder)
        network = cls.of(cfg, net, device)
        backend = backend or os.environ.get("DEEPFAKE_BACKEND") or DEFAULT_BACKEND
        if backend not in BACKENDS:
            raise ModelLoadError(f"Unknown backend '{backend}'. Choose one of: {', '.join(BACKENDS)}")
        if backend == "onnxruntime" and network.device.type == "cpu":
            network.use_onnxruntime()
        return network

    def use_onnxruntime(self) -> bool:
        """Run probabilities() through ONNX Runtime (exported once, cached by weights digest). Falls back to
        torch with a logged warning when onnx/onnxruntime are missing or the export fails; returns success."""
        try:
            import onnxruntime as ort

            path = _onnx_file(self)
            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            # No busy-waiting between runs: spinning threads would slow torch (Grad-CAM) and OpenCV (faces,
            # decoding) that run right after a prediction on the same 2 cores.
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._ort = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            self.backend = "onnxruntime"
            return True
        except Exception as exc:  # an optional speed-up must never stop the detector from loading
            log.warning("ONNX Runtime backend unavailable (%s: %s); using torch", type(exc).__name__, exc)
            self._ort, self.backend = None, "torch"
            return False

    @property
    def input_size(self) -> int:
        return int(self.data_config["input_size"][-1])

    def preprocess(self, crops: list[np.ndarray] | np.ndarray) -> torch.Tensor:
        """RGB uint8 crops -> normalised NCHW float tensor, per the config (size, crop_pct, mean, std)."""
        return preprocess(crops, self.data_config, self.device)

    def probabilities(self, x: torch.Tensor, batch_size: int = DEFAULT_BATCH, flip: bool | None = None) -> np.ndarray:
        """Fake probability for each preprocessed input, batched, under inference_mode. With test-time flip
        (flip, default the config's test_time_flip): the mean of the input's and its mirror image's
        probabilities, in one batch."""
        flip = self.config.test_time_flip if flip is None else flip

        def probs_of(chunk: torch.Tensor) -> torch.Tensor:
            if self._ort is not None:
                arr = np.ascontiguousarray(chunk.detach().cpu().numpy(), dtype=np.float32)
                logits = torch.from_numpy(self._ort.run(None, {"input": arr})[0])
            else:
                logits = self.net(chunk.to(self.device, memory_format=torch.channels_last))
            return torch.softmax(logits.float() / self.config.temperature, dim=1)[:, self.config.fake_index].cpu()

        out = []
        with torch.inference_mode():
            for i in range(0, x.shape[0], batch_size):
                chunk = x[i:i + batch_size]
                out.append(mirror_mean(probs_of, chunk) if flip else probs_of(chunk))
        return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)

    def predict(self, crops, batch_size: int = DEFAULT_BATCH, flip: bool | None = None) -> np.ndarray:
        """Fake probability of each RGB uint8 face crop. Crops are preprocessed a batch at a time, so memory
        stays one batch of tensors however many crops there are (a validation split has thousands)."""
        out = [self.probabilities(self.preprocess(crops[i:i + batch_size]), batch_size, flip)
               for i in range(0, len(crops), batch_size)]
        return np.concatenate(out) if out else np.zeros(0)

    def cam_network(self) -> tuple[torch.nn.Module, threading.Lock]:
        """A private copy of the network for gradient methods, so their hooks never touch predict()."""
        with self._cam_lock:
            if self._cam_net is None:
                self._cam_net = copy.deepcopy(self.net).eval()
        return self._cam_net, self._cam_lock

    def cam_layer_name(self) -> str:
        if self.config.cam_layer:
            return self.config.cam_layer
        return self.net.feature_info[-1]["module"]


def _onnx_file(network: Network) -> Path:
    """The network exported to ONNX (fp32, dynamic batch), cached by a digest of its weights and config."""
    h = hashlib.sha256(json.dumps(network.config.raw, sort_keys=True).encode())
    for t in network.net.state_dict().values():
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    h.update(torch.__version__.encode())
    root = Path(os.environ.get("DEEPFAKE_CACHE") or Path.home() / ".cache" / "deepfake") / "onnx"
    path = root / f"{network.config.architecture}-{h.hexdigest()[:16]}.onnx"
    if path.is_file():
        return path
    root.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        export_onnx(network.net, tmp, network.input_size)
        os.replace(tmp, path)
    finally:  # a failed export leaves no partial file behind
        tmp.unlink(missing_ok=True)
    return path


def export_onnx(net: torch.nn.Module, path: Path, size: int) -> Path:
    """fp32 ONNX export with a dynamic batch axis (TorchScript exporter: needs onnx, not onnxscript)."""
    x = torch.zeros(1, 3, size, size)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(net.eval(), (x,), str(path), input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17,
                          dynamo=False)
    return path
