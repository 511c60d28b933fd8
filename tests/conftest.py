"""Shared test setup: offline Hub, no network beyond loopback, paths to ../shared, small models."""
import os

# Before anything imports huggingface_hub or gradio.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("MPLBACKEND", "Agg")
# ONNX exports of test models go to a throwaway folder, not the user's ~/.cache.
import tempfile  # noqa: E402

os.environ["DEEPFAKE_CACHE"] = tempfile.mkdtemp(prefix="deepfake-test-cache-")

import ipaddress
import socket
from pathlib import Path

import numpy as np
import pytest

# Shared with bench/ (support/ is neither's): re-exported here, where the tests have always found them.
from support.detectors import write_random_detector  # noqa: F401
from support.paths import BUNDLED, ROOT, SHARED, SHARED_DATA, YUNET_ONNX  # noqa: F401
from support.server import free_port  # noqa: F401


def _is_loopback(address) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, bytes):
        host = host.decode()
    if not isinstance(host, str):  # unix sockets
        return True
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name: would need DNS, i.e. the network


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _guard_connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
        raise AssertionError(f"test tried to reach the network: {address!r}")
    return _real_connect(self, address)


def _guard_connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
        raise AssertionError(f"test tried to reach the network: {address!r}")
    return _real_connect_ex(self, address)


def _guard_getaddrinfo(host, *args, **kwargs):
    if host is not None and not _is_loopback(host if not isinstance(host, bytes) else host.decode()):
        raise AssertionError(f"test tried to resolve a network host: {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True, scope="session")
def no_network():
    """Fail any test that reaches beyond loopback (the Hub must be served from the cache)."""
    socket.socket.connect = _guard_connect
    socket.socket.connect_ex = _guard_connect_ex
    socket.getaddrinfo = _guard_getaddrinfo
    yield
    socket.socket.connect = _real_connect
    socket.socket.connect_ex = _real_connect_ex
    socket.getaddrinfo = _real_getaddrinfo


def need(path: Path):
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared is not beside the repo)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return need(SHARED_DATA)


@pytest.fixture(scope="session")
def yunet_onnx() -> Path:
    return need(YUNET_ONNX)


@pytest.fixture(scope="session")
def random_model_dir(tmp_path_factory) -> Path:
    return write_random_detector(tmp_path_factory.mktemp("random_detector") / "random-lite0")


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's public-domain astronaut photo (RGB 512x512, one frontal face)."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut())
