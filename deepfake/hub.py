"""Resolve a detector source (Hub repo id[@revision], local folder, or the bundled default) to a local folder.

Downloads go through huggingface_hub (so its cache, offline mode and revisions all apply). When the Hub
cannot be reached, a cached copy of the repo is used and a warning says so. A Hub repo that cannot be had
(not found, revision not found, not cached while offline, ...) is a ModelLoadError saying what failed: the
detector the user named is never swapped for the bundled one.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from .errors import ModelLoadError
from .files import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE

log = logging.getLogger(__name__)

BUNDLED_MODEL = Path(__file__).resolve().parent.parent / "models" / "deepfake-lite0-sbi"
# The Hub repo the bundled model is published as (README front matter `models:` names it too).
BUNDLED_REPO_ID = "deepfake-explained/deepfake-lite0-sbi"
# A detector repo's further networks may live in its own folders (config.json `deepfake.networks`, `path`).
NETWORK_FILES = [f"networks/*/{name}" for name in (CONFIG_FILE, WEIGHTS_FILE, CARD_FILE)]
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w./-]+)?$")


@dataclass(frozen=True)
class ResolvedSource:
    folder: Path
    model_id: str  # Hub repo id, or "local:<folder name>" / "bundled:<folder name>"
    revision: str  # Hub commit hash, or "sha256:<12 hex>" of the weights for folders
    warnings: tuple[str, ...] = field(default_factory=tuple)


def weights_digest(folder: Path) -> str:
    path = folder / WEIGHTS_FILE
    if not path.is_file():
        return "unknown"
    with open(path, "rb") as fh:
        return "sha256:" + hashlib.file_digest(fh, "sha256").hexdigest()[:12]


def _offline() -> bool:
    import huggingface_hub.constants as hf_constants

    env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    return env or bool(hf_constants.HF_HUB_OFFLINE)


_reachable: bool | None = None
_reachable_lock = threading.Lock()


def hub_reachable(timeout: float = 2.0) -> bool:
    """Can the Hub endpoint be reached? Asked once per process, answered within `timeout` seconds.

    huggingface_hub retries a failed download for half a minute; when this says no, callers ask it
    for the local cache only, so start-up falls back to the cache or the bundled model at once.
    """
    global _reachable
    if _offline():
        return False
    with _reachable_lock:
        if _reachable is None:
            import huggingface_hub.constants as hf_constants

            url = urlparse(hf_constants.ENDPOINT)
            done = threading.Event()
            ok = []

            def probe():
                try:
                    socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
                    ok.append(True)
                except OSError:
                    pass
                finally:
                    done.set()

            threading.Thread(target=probe, daemon=True).start()  # getaddrinfo has no timeout of its own
            done.wait(timeout)
            _reachable = bool(ok)
            if not _reachable:
                log.warning("The Hugging Face Hub is unreachable: using the local cache and the bundled model.")
        return _reachable


def hub_error(exc: Exception, repo_id: str, revision: str | None = None) -> str:
    """What went wrong getting a file of a Hub repo, in words. Library messages are not quoted: they may name
    server paths."""
    from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, HfHubHTTPError,
                                        IncompleteSnapshotError, LocalEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    name = f"Hub repo '{repo_id}'"
    if isinstance(exc, GatedRepoError):
        return f"{name} is gated: accept its conditions on the Hub and log in (HF_TOKEN)"
    if isinstance(exc, RepositoryNotFoundError):
        return f"{name} not found (or private: log in with HF_TOKEN)"
    if isinstance(exc, RevisionNotFoundError):
        return f"revision '{revision or 'main'}' of {name} not found"
    if isinstance(exc, IncompleteSnapshotError):
        return f"the cached copy of {name} is incomplete and the Hub cannot be reached"
    if isinstance(exc, LocalEntryNotFoundError):
        why = ("offline mode is on" if _offline() else
               "the Hub is unreachable" if not hub_reachable() else "the Hub did not answer")
        return f"{name} is not in the local cache and {why}"
    if isinstance(exc, EntryNotFoundError):
        return f"a file is missing from {name}"
    if isinstance(exc, HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        return f"the Hub answered HTTP {status} for {name}"
    if isinstance(exc, ValueError):
        return f"'{repo_id}' is not a valid Hub repo id or revision ({type(exc).__name__})"
    return f"{name} could not be read from the cache or downloaded ({type(exc).__name__})"


def _bundled() -> ResolvedSource:
    if not (BUNDLED_MODEL / CONFIG_FILE).is_file():
        raise ModelLoadError("No detector given and the bundled model folder is missing; pass a folder or Hub repo id.")
    return ResolvedSource(BUNDLED_MODEL, f"bundled:{BUNDLED_MODEL.name}", weights_digest(BUNDLED_MODEL))


def resolve_source(source: str | os.PathLike | None = None) -> ResolvedSource:
    """Where to load a detector from. source=None: $DEEPFAKE_MODEL, else the bundled model."""
    if source is None:
        source = os.environ.get("DEEPFAKE_MODEL") or None
    if source is None:
        return _bundled()
    path = Path(source).expanduser()
    if path.is_dir():
        if path.resolve() == BUNDLED_MODEL:
            return _bundled()
        return ResolvedSource(path, f"local:{path.name}", weights_digest(path))
    text = str(source)
    if not _REPO_ID.match(text) or text.startswith((".", "/", "~")):
        raise ModelLoadError(f"'{path.name}' is neither a detector folder nor a Hub repo id (ORG/NAME[@REVISION])")
    repo_id, _, revision = text.partition("@")
    return _from_hub(repo_id, revision or None)


def _from_hub(repo_id: str, revision: str | None) -> ResolvedSource:
    from huggingface_hub import snapshot_download

    offline = not hub_reachable()
    try:
        folder = Path(snapshot_download(
            repo_id, revision=revision, allow_patterns=[CONFIG_FILE, WEIGHTS_FILE, CARD_FILE, *NETWORK_FILES],
            etag_timeout=2, local_files_only=offline))
    except Exception as exc:  # the user named this detector: say what failed rather than analyse with another
        raise ModelLoadError(f"Cannot load detector '{repo_id}': {hub_error(exc, repo_id, revision)}.") from None
    warnings = (f"Loaded '{repo_id}' from the local Hub cache (Hub offline or unreachable).",) if offline else ()
    return ResolvedSource(folder, repo_id, folder.name, warnings)
