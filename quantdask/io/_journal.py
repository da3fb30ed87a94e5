"""The undo journal that makes ``append`` all-or-nothing on a local store.

Before an append modifies a store it copies every existing file the append may overwrite or
delete (all ``zarr.json`` metadata documents and the stored chunk files of the regions it will
write) into ``<store>/.quantdask-journal/files/``, together with the list of every file the
store held. The manifest (``manifest.json``) is written last, atomically (temporary file,
fsync, rename): its presence means "the store may be modified from here on; roll back with
this journal". After a successful append the manifest is removed first and the journal
directory next, so a journal without a manifest never means a half-written store.

Rolling back restores the copied files, deletes every file the append created, removes
directories the append created, and deletes the journal. Rollback is idempotent: a rollback
interrupted half-way can be run again.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from quantdask.io.store import JOURNAL_DIR

MANIFEST = "manifest.json"
_FILES = "files"


def journal_dir(store: Path) -> Path:
    """Return the journal directory of ``store``."""
    return Path(store) / JOURNAL_DIR


def list_store_files(store: Path) -> list[str]:
    """All files of ``store`` as sorted POSIX paths relative to it, journal excluded."""
    store = Path(store)
    out: list[str] = []
    for root, dirs, files in os.walk(store):
        if Path(root) == store and JOURNAL_DIR in dirs:
            dirs.remove(JOURNAL_DIR)
        rel_root = Path(root).relative_to(store)
        out.extend((rel_root / f).as_posix() for f in files)
    return sorted(out)


def list_store_dirs(store: Path) -> list[str]:
    """All directories of ``store`` (relative POSIX paths), journal excluded."""
    store = Path(store)
    out: list[str] = []
    for root, dirs, _ in os.walk(store):
        if Path(root) == store and JOURNAL_DIR in dirs:
            dirs.remove(JOURNAL_DIR)
        rel_root = Path(root).relative_to(store)
        out.extend((rel_root / d).as_posix() for d in dirs)
    return sorted(out)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _preserve(src: Path, dst: Path) -> None:
    """Keep a durable copy of the current content of ``src`` at ``dst``.

    A copy, not a hard link: a link is only safe while every writer replaces files by
    rename (zarr's local store does today), and the journal must not depend on that.
    """
    shutil.copy2(src, dst)
    with open(dst, "rb") as fh:
        os.fsync(fh.fileno())


def begin(store: Path, files_to_save: Iterable[str]) -> Path:
    """Save the undo journal of an append that will modify ``files_to_save``.

    Parameters
    ----------
    store : pathlib.Path
        The local store directory.
    files_to_save : iterable of str
        Store-relative paths of existing files the append may overwrite or delete (paths
        that do not exist are ignored: the append creates them and rollback deletes them).

    Returns
    -------
    pathlib.Path
        The journal directory. The manifest is written last, so the journal is only "armed"
        once every copy is on disk.
    """
    store = Path(store)
    jdir = journal_dir(store)
    jdir.mkdir()
    saved: list[str] = []
    new_dirs: list[Path] = []
    for rel in sorted(set(files_to_save)):
        src = store / rel
        if not src.is_file():
            continue
        dst = jdir / _FILES / rel
        if not dst.parent.is_dir():
            dst.parent.mkdir(parents=True, exist_ok=True)
            new_dirs.append(dst.parent)
        _preserve(src, dst)
        saved.append(rel)
    for d in new_dirs:
        _fsync_dir(d)
    manifest = {
        "version": 1,
        "files_before": list_store_files(store),
        "dirs_before": list_store_dirs(store),
        "saved": saved,
    }
    _atomic_write_text(jdir / MANIFEST, json.dumps(manifest))
    return jdir


def commit(store: Path) -> None:
    """Discard the journal after a successful append (manifest first, then the rest)."""
    jdir = journal_dir(Path(store))
    manifest = jdir / MANIFEST
    if manifest.exists():
        os.remove(manifest)
        _fsync_dir(jdir)
    shutil.rmtree(jdir, ignore_errors=True)


def has_journal(store: Path) -> bool:
    """True when ``store`` holds a journal directory (armed or not)."""
    return journal_dir(Path(store)).is_dir()


def rollback(store: Path) -> list[str]:
    """Undo an interrupted append from the journal of ``store``.

    Returns
    -------
    list of str
        What was done, one line per kind of action (for the verify report).
    """
    store = Path(store)
    jdir = journal_dir(store)
    if not jdir.is_dir():
        return []
    manifest_path = jdir / MANIFEST
    if not manifest_path.exists():
        # The journal was being written (store untouched) or being deleted after a
        # successful append (store complete): either way the store itself is consistent.
        shutil.rmtree(jdir)
        return ["removed an unarmed journal (the store had not been modified)"]
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    before = set(manifest["files_before"])
    created = [f for f in list_store_files(store) if f not in before]
    for rel in created:
        os.remove(store / rel)
    for rel in manifest["saved"]:
        src = jdir / _FILES / rel
        dst = store / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(dst.name + ".quantdask-restore")
        shutil.copy2(src, tmp)
        os.replace(tmp, dst)
    dirs_before = set(manifest["dirs_before"])
    for rel in sorted(list_store_dirs(store), key=lambda p: -p.count("/")):
        if rel not in dirs_before:
            shutil.rmtree(store / rel, ignore_errors=True)
    _fsync_dir(store)
    os.remove(manifest_path)
    shutil.rmtree(jdir)
    return [
        f"rolled back an interrupted append: restored {len(manifest['saved'])} file(s), "
        f"deleted {len(created)} file(s) it had created"
    ]
