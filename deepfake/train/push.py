"""Validate a detector folder and upload it to the Hugging Face Hub (HfApi().upload_folder)."""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import ModelLoadError
from ..model import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE, Network, read_config

MAX_WEIGHTS_MB = 30
# Files that may be uploaded (the folder can hold logs or reports that must stay local).
ALLOW = [CONFIG_FILE, WEIGHTS_FILE, CARD_FILE, "*.png", "*.json"]


def validate_folder(folder: Path) -> list[str]:
    """Problems that make the folder unfit to publish (empty list when fine). Loads the config with
    read_config and the weights strictly into the architecture with Network.from_folder (CPU)."""
    folder = Path(folder)
    if not folder.is_dir():
        return [f"{folder} is not a folder"]
    problems = []
    try:
        read_config(folder)
        Network.from_folder(folder, device="cpu", backend="torch")  # validation needs no ONNX export
    except ModelLoadError as exc:
        problems.append(str(exc))
    card = folder / CARD_FILE
    if not card.is_file():
        problems.append(f"model card {CARD_FILE} is missing")
    elif not card.read_text(encoding="utf-8", errors="replace").strip():
        problems.append(f"model card {CARD_FILE} is empty")
    weights = folder / WEIGHTS_FILE
    if weights.is_file() and weights.stat().st_size > MAX_WEIGHTS_MB * 2 ** 20:
        problems.append(f"{WEIGHTS_FILE} is {weights.stat().st_size / 2 ** 20:.1f} MB (limit {MAX_WEIGHTS_MB} MB)")
    return problems


def files_to_upload(folder: Path) -> list[Path]:
    import fnmatch

    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and any(fnmatch.fnmatch(p.name, pat) for pat in ALLOW))


def run_push(args) -> int:
    folder = Path(args.model)
    problems = validate_folder(folder)
    if problems:
        print(f"push: {folder} is not ready to publish:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    files = files_to_upload(folder)
    where = f"{args.repo}" + (f"@{args.revision}" if args.revision else "")
    print(f"{folder}: valid ({read_config(folder).architecture}); {'would upload' if args.dry_run else 'uploading'} "
          f"to {where}:")
    for p in files:
        print(f"  {p.name}  {p.stat().st_size / 1024:.1f} KiB")
    if args.dry_run:
        print("dry run: nothing uploaded")
        return 0
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        api.create_repo(args.repo, repo_type="model", exist_ok=True, private=bool(getattr(args, "private", False)))
        info = api.upload_folder(folder_path=str(folder), repo_id=args.repo, repo_type="model",
                                 revision=args.revision, allow_patterns=ALLOW,
                                 commit_message=args.commit_message or f"Upload {folder.name}")
    except Exception as exc:  # noqa: BLE001 - network/auth errors: one clear line, no traceback
        print(f"push failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"uploaded: {getattr(info, 'commit_url', info)}")
    return 0
