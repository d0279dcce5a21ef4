"""Copy a model folder between local disk and storage (models are folders: config JSON + safetensors)."""

from __future__ import annotations

from pathlib import Path

from causalprint.storage.store import Storage


def upload_folder(storage: Storage, local: str | Path, prefix: str, last: str | None = None) -> list[str]:
    """Write every file under ``local`` below ``prefix``; ``last`` (a relative name) is written after the rest,
    so its presence marks the folder complete."""
    local = Path(local)
    files = sorted(p for p in local.rglob("*") if p.is_file())
    files.sort(key=lambda p: str(p.relative_to(local)) == last)
    written = []
    for path in files:
        uri = f"{storage.resolve(prefix)}/{path.relative_to(local).as_posix()}"
        storage.write_bytes(uri, path.read_bytes())
        written.append(uri)
    return written


def download_folder(storage: Storage, prefix: str, local: str | Path) -> Path:
    """Copy every file below ``prefix`` into ``local``, keeping relative paths."""
    local = Path(local)
    root = storage.resolve(prefix)
    infos = storage.list_files(root)
    if not infos:
        raise FileNotFoundError(f"no files under {root}")
    for info in infos:
        target = local / info.uri[len(root) :].lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(storage.read_bytes(info.uri))
    return local
