"""The page's downloads, written when asked for: the per-position and top-K tables as CSV, the JSON contract."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import time
from functools import cache
from pathlib import Path

from ..analysis.one_pass import Analysis
from ..errors import InputError
from ..views import tables

EXPORTS = {"positions": "positions.csv", "top_k": "top_k.csv", "analysis": "analysis.json"}
"""The page's downloads: the per-position table, the top-K table (CSV) and the JSON contract."""


EXPORT_MAX_AGE_S = 600
"""How long a written download stays on disk (Gradio serves its own copy of it)."""


def export_files(analysis: Analysis, directory: str | None = None) -> tuple[str, str, str]:
    """Write every download into `directory` (a fresh folder when None); return their paths."""
    folder = Path(directory) if directory else _fresh_export_folder()
    positions, top_k, whole = (_write_export(analysis, kind, folder) for kind in EXPORTS)
    return positions, top_k, whole


def export_file(analysis: Analysis, kind: str) -> str:
    """Write one download, when the user asks for it, into a fresh folder; folders older than
    EXPORT_MAX_AGE_S are removed first, so a long-running server does not fill its disk."""
    if kind not in EXPORTS:
        raise InputError(f"Unknown download '{kind}'; choose one of: {', '.join(EXPORTS)}.")
    return _write_export(analysis, kind, _fresh_export_folder())


def _write_export(analysis: Analysis, kind: str, folder: Path) -> str:
    """One download file in `folder`: a table as CSV, or the JSON contract."""
    path = folder / EXPORTS[kind]
    if kind == "positions":
        tables.position_table(analysis).to_csv(path, index=False)
    elif kind == "top_k":
        tables.top_k_table(analysis).to_csv(path, index=False)
    else:
        path.write_bytes(analysis.to_json())
    return str(path)


@cache
def _export_root() -> Path:
    """This process's folder of downloads, removed when the process exits."""
    root = Path(tempfile.mkdtemp(prefix="visualizer-exports-"))
    atexit.register(shutil.rmtree, root, True)
    return root


def _fresh_export_folder() -> Path:
    """A new folder under the export root, after removing the folders older than EXPORT_MAX_AGE_S."""
    root, now = _export_root(), time.time()
    root.mkdir(parents=True, exist_ok=True)  # again, should a /tmp cleaner have removed it
    for old in root.iterdir():
        try:
            if now - old.stat().st_mtime > EXPORT_MAX_AGE_S:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:  # removed by a concurrent request meanwhile
            pass
    return Path(tempfile.mkdtemp(dir=root))
