"""Write a Hugging Face Hub cache layout by hand, so tests run the real huggingface_hub code offline."""
import hashlib
from pathlib import Path


def write_hub_repo(cache: Path, repo_id: str, files: dict, commit: str = "0123456789abcdef0123456789abcdef01234567",
                   ref: str | None = "main") -> Path:
    """files: name -> bytes or Path. Returns the snapshot folder."""
    org, name = repo_id.split("/")
    repo = cache / f"models--{org}--{name}"
    blobs, snap = repo / "blobs", repo / "snapshots" / commit
    blobs.mkdir(parents=True, exist_ok=True)
    snap.mkdir(parents=True, exist_ok=True)
    for fname, content in files.items():
        data = Path(content).read_bytes() if isinstance(content, Path) else content
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        link = snap / fname
        if link.exists() or link.is_symlink():
            link.unlink()
        link.symlink_to(Path("../../blobs") / digest)
    if ref:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    return snap


def detector_files(folder: Path) -> dict:
    return {n: folder / n for n in ("config.json", "model.safetensors", "README.md")}
