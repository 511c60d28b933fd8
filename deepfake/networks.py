"""The networks of a detector folder: its own network first, then those config.json lists under `networks`.

Each further network lives in a folder of its own inside the detector folder, or in a Hub repo of its own."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import hub
from .band import Band
from .errors import ModelLoadError
from .files import CONFIG_FILE
from .model import Network, NetworkRef


@dataclass
class Member:
    """One network of a detector with its name, the kind of fake it finds and where it came from."""
    name: str
    kind: str
    network: Network
    model_id: str
    revision: str

    @property
    def band(self) -> Band:
        return self.network.config.bands


def primary(network: Network, model_id: str, revision: str) -> Member:
    return Member(network.config.name, network.config.kind, network, model_id, revision)


def _source(folder: Path, ref: NetworkRef) -> hub.ResolvedSource:
    sub = folder / ref.path if ref.path else None
    if sub is not None and (sub / CONFIG_FILE).is_file():
        return hub.ResolvedSource(sub, f"{ref.path}", hub.weights_digest(sub))
    if ref.repo:
        return hub.resolve_source(ref.repo)
    raise ModelLoadError(f"Network '{ref.name}': its folder '{ref.path}' is missing from the detector folder "
                         "and no Hub repo is given for it.")


def load_members(folder: Path, refs: tuple[NetworkRef, ...], device: str | None = None
                 ) -> tuple[tuple[Member, ...], tuple[str, ...]]:
    """(the further networks, load warnings) of a detector folder whose config lists `refs`."""
    members, warnings = [], []
    for ref in refs:
        src = _source(folder, ref)
        network = Network.from_folder(src.folder, device=device)
        if network.config.networks:
            raise ModelLoadError(f"Network '{ref.name}' lists networks of its own; only the detector folder may.")
        members.append(Member(ref.name, ref.kind, network, src.model_id, src.revision))
        warnings.extend(src.warnings)
    return tuple(members), tuple(warnings)
