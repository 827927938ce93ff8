"""Fetching and checking the text datasets (PTB, enwik8), and checking every dataset's files.

The project ships no data (the datasets' terms forbid redistribution): users fetch them with
``graves data download ptb|enwik8`` or place the official files by hand, then ``graves data check``.

Layout under the data root (``$GRAVES_DATA``), the official file names throughout::

    ptb/ptb.{train,valid,test}.txt, ptb/ptb.char.{train,valid,test}.txt   (from simple-examples.tgz, data/)
    enwik8/enwik8.zip  or  enwik8/enwik8                                  (mattmahoney.net)
    iam-ondb/lineStrokes-all.tar.gz, iam-ondb/ascii-all.tar.gz, iam-ondb/splits/*.txt

Downloads are checked against known md5 sums and written atomically (a temporary file in the
destination folder, renamed into place only once verified), so an interrupted or corrupted download
never leaves a file under its final name. Without a network they fail after a short timeout with a
:class:`DataError` that says where to put the files by hand.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import os
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

PTB_URL = "http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz"
ENWIK8_URL = "http://mattmahoney.net/dc/enwik8.zip"

# md5 of each file of simple-examples.tgz's data/ folder that we use (shared/data/README.md).
PTB_MD5 = {
    "ptb.train.txt": "f26c4b92c5fdc7b3f8c7cdcb991d8420",
    "ptb.valid.txt": "aa0affc06ff7c36e977d7cd49e3839bf",
    "ptb.test.txt": "8b80168b89c18661a38ef683c0dc3721",
    "ptb.char.train.txt": "874909f99060142f6b88cc74c34baaa2",
    "ptb.char.valid.txt": "9e0fe5bec2a8bf43fd686dc23d5ab8bb",
    "ptb.char.test.txt": "1f9a2d1afe00f76e8bfbe09a65439681",
}
ENWIK8_SIZE = 100_000_000
ENWIK8_MD5 = "a1fa5ffddb56f4953e226637dabbb36a"  # of the unzipped file (the zip itself is not pinned)

# IAM-OnDB cannot be downloaded without registering: checked by presence and size only.
IAM_ONDB_SIZES = {"lineStrokes-all.tar.gz": 69_586_032, "ascii-all.tar.gz": 296_335}
IAM_ONDB_SPLITS = ("trainset.txt", "testset_v.txt", "testset_t.txt", "testset_f.txt")

DEFAULT_TIMEOUT = 10.0  # seconds to connect / between reads; offline machines fail fast
_CHUNK = 1 << 20


class DataError(Exception):
    """A dataset that is missing, corrupt, in an unexpected format, or cannot be fetched."""


# ---------------------------------------------------------------------------------------- checksums


def md5_stream(f: BinaryIO) -> tuple[int, str]:
    """(size in bytes, md5 hex digest) of everything readable from ``f``."""
    h = hashlib.md5()
    size = 0
    while chunk := f.read(_CHUNK):
        h.update(chunk)
        size += len(chunk)
    return size, h.hexdigest()


def md5_file(path: str | Path) -> str:
    """md5 hex digest of a file, read in chunks."""
    with open(path, "rb") as f:
        return md5_stream(f)[1]


def zip_member(zf: zipfile.ZipFile, member: str | None = None) -> zipfile.ZipInfo:
    """The named member of a zip archive, or its only file; DataError otherwise."""
    files = [i for i in zf.infolist() if not i.is_dir()]
    if member is not None:
        for info in files:
            if info.filename == member or Path(info.filename).name == member:
                return info
        raise DataError(f"{zf.filename}: no member {member!r} (it holds {[i.filename for i in files][:5]})")
    if len(files) != 1:
        raise DataError(f"{zf.filename}: expected one file inside, found {len(files)} "
                        f"({', '.join(i.filename for i in files[:5])}); unzip the one you want")
    return files[0]


#: What a damaged archive raises while it is read, beyond the zip module's own BadZipFile: a corrupt
#: deflate stream (zlib.error), an encrypted member (RuntimeError), an unsupported method
#: (NotImplementedError), a truncated stream (EOFError).
DECOMPRESS_ERRORS = (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, EOFError)


def enwik8_file(folder: str | Path) -> Path | None:
    """``folder/enwik8`` or ``folder/enwik8.zip``, or None: the raw file first, unless it has the wrong
    size and the zip is there (a half-copied raw file must not hide a good download)."""
    folder = Path(folder)
    raw, zipped = folder / "enwik8", folder / "enwik8.zip"
    if raw.is_file() and (raw.stat().st_size == ENWIK8_SIZE or not zipped.is_file()):
        return raw
    return zipped if zipped.is_file() else (raw if raw.is_file() else None)


def verify_enwik8(path: str | Path) -> None:
    """Check size (10^8 bytes) and md5 of ``enwik8`` or of the ``enwik8`` inside ``enwik8.zip``."""
    path = Path(path)
    if zipfile.is_zipfile(path):  # by content: a download in progress has no .zip suffix
        try:
            with zipfile.ZipFile(path) as zf:
                info = zip_member(zf, "enwik8")
                _check_size(path, info.file_size)
                with zf.open(info) as f:
                    size, md5 = md5_stream(f)
        except DECOMPRESS_ERRORS as exc:
            raise DataError(f"{path}: damaged archive ({type(exc).__name__}: {exc}); download it again with "
                            "`graves data download enwik8`") from None
    else:
        _check_size(path, path.stat().st_size)
        size, md5 = path.stat().st_size, md5_file(path)
    if md5 != ENWIK8_MD5:
        raise DataError(
            f"{path}: md5 of enwik8 is {md5}, expected {ENWIK8_MD5}: the file is corrupt or not enwik8 "
            f"(download it again with `graves data download enwik8`)"
        )
    _check_size(path, size)


def _check_size(path: Path, size: int) -> None:
    if size != ENWIK8_SIZE:
        raise DataError(
            f"{path}: enwik8 should be {ENWIK8_SIZE:,} bytes, found {size:,}: the file is truncated or not "
            f"enwik8 (download it again with `graves data download enwik8`)"
        )


# ---------------------------------------------------------------------------------------- download


def download(
    name: str,
    dest_dir: str | Path,
    progress: bool = True,
    *,
    url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Fetch a text dataset into ``dest_dir`` and verify it; returns the folder (ptb) or the file (enwik8).

    - ``"ptb"``: downloads ``simple-examples.tgz`` (Mikolov), extracts only ``data/ptb.*.txt`` (word and
      character level) into ``dest_dir``, checks each md5, then deletes the archive.
    - ``"enwik8"``: downloads ``enwik8.zip`` (Hutter Prize) as ``dest_dir/enwik8.zip`` and checks the
      size and md5 of the file inside (the loaders read the zip directly).

    Files already present and correct are not fetched again. ``url`` replaces the official address (a
    mirror, or a test server); ``timeout`` bounds the connection and each read.
    """
    dest = Path(dest_dir)
    try:
        if name == "ptb":
            return _download_ptb(dest, progress, url or PTB_URL, timeout)
        if name == "enwik8":
            return _download_enwik8(dest, progress, url or ENWIK8_URL, timeout)
    except OSError as exc:  # the folder cannot be made or written (a file in the way, no permission, full)
        raise DataError(f"cannot write the download into {dest}: {exc.strerror or exc}") from None
    raise DataError(f"unknown dataset {name!r}: can download 'ptb' or 'enwik8' (IAM-OnDB needs registration)")


def _download_ptb(dest: Path, progress: bool, url: str, timeout: float) -> Path:
    if all((dest / f).is_file() and md5_file(dest / f) == md5 for f, md5 in PTB_MD5.items()):
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    archive = _fetch(url, dest, "simple-examples.tgz", timeout, progress, manual=list(PTB_MD5))
    try:
        found: set[str] = set()
        try:
            with tarfile.open(archive, "r:*") as tar:
                for member in tar:
                    base = Path(member.name).name
                    # only simple-examples/data/ptb.*.txt, read as streams (never tar.extract)
                    if base in PTB_MD5 and Path(member.name).parent.name == "data" and member.isfile():
                        src = tar.extractfile(member)
                        assert src is not None
                        _write_verified(src, dest / base, PTB_MD5[base], source=f"{url} ({member.name})")
                        found.add(base)
        except (tarfile.TarError, EOFError, OSError) as exc:
            if _local_write_error(exc):
                raise DataError(f"cannot write into {dest}: {exc.strerror}") from exc
            raise DataError(f"{url}: not a readable .tgz archive ({exc})") from exc
        missing = sorted(set(PTB_MD5) - found)
        if missing:
            raise DataError(f"{url}: the archive lacks data/{', data/'.join(missing)}")
    finally:
        archive.unlink(missing_ok=True)
    return dest


def _download_enwik8(dest: Path, progress: bool, url: str, timeout: float) -> Path:
    final = dest / "enwik8.zip"
    existing = enwik8_file(dest)
    if existing is not None:
        try:
            verify_enwik8(existing)
            return existing
        except (DataError, *DECOMPRESS_ERRORS):  # fetch it again
            if existing.name == "enwik8":  # a damaged raw file of the right size would hide the new zip
                os.replace(existing, existing.with_name("enwik8.bad"))
                print(f"graves: {existing} is damaged; moved to enwik8.bad", file=sys.stderr)
    dest.mkdir(parents=True, exist_ok=True)
    part = _fetch(url, dest, "enwik8.zip", timeout, progress, manual=["enwik8.zip (or enwik8)"])
    try:
        try:
            verify_enwik8(part)
        except zipfile.BadZipFile as exc:
            raise DataError(f"{url}: not a zip archive ({exc})") from exc
        os.replace(part, final)
    finally:
        part.unlink(missing_ok=True)
    return final


def _fetch(url: str, dest: Path, filename: str, timeout: float, progress: bool, manual: list[str]) -> Path:
    """Download ``url`` to a temporary file in ``dest``; DataError (saying what to do by hand) on failure."""
    for stale in dest.glob(f".{filename}.*.part"):  # left by a download that was killed (not Ctrl-C)
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > 600:  # not one still being written
                stale.unlink()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=dest)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            req = urllib.request.Request(url, headers={"User-Agent": "graves-data-download"})
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                total = resp.headers.get("Content-Length")
                with tqdm(total=int(total) if total else None, unit="B", unit_scale=True,
                          unit_divisor=1024, desc=filename, disable=not progress) as bar:
                    while chunk := resp.read(_CHUNK):
                        out.write(chunk)
                        bar.update(len(chunk))
            if total and out.tell() != int(total):
                raise DataError(f"{url}: download interrupted ({out.tell():,} of {int(total):,} bytes)")
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        tmp.unlink(missing_ok=True)
        if _local_write_error(exc):
            raise DataError(f"cannot write into {dest}: {exc.strerror}; nothing was kept") from exc
        reason = getattr(exc, "reason", exc)
        raise DataError(
            f"could not download {url}: {reason}. If this machine is offline, fetch {filename} elsewhere "
            f"and put {', '.join(manual)} in {dest}, then run `graves data check`"
        ) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _local_write_error(exc: BaseException) -> bool:
    """Whether ``exc`` is this machine refusing a write (a full disk, a read-only folder), not the network's
    or the archive's fault."""
    return (isinstance(exc, OSError) and not isinstance(exc, urllib.error.URLError)
            and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM))


def _write_verified(src: BinaryIO, path: Path, md5: str, source: str) -> None:
    """Copy ``src`` to ``path`` atomically if its md5 matches; DataError otherwise (nothing written)."""
    h = hashlib.md5()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := src.read(_CHUNK):
                h.update(chunk)
                out.write(chunk)
        if h.hexdigest() != md5:
            raise DataError(f"{source}: md5 of {path.name} is {h.hexdigest()}, expected {md5}")
        os.replace(tmp_name, path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------- check


#: The datasets `check` knows, by the folder each lives in under the data root.
DATASETS = ("ptb", "enwik8", "iam-ondb")


def check(root: str | Path, datasets: tuple[str, ...] | list[str] = DATASETS) -> list[tuple[str, bool, str]]:
    """Presence and integrity of every known file of ``datasets`` (default: all of them) under the data root.

    Returns ``(file, ok, message)`` rows: PTB files by md5, enwik8 by size and md5, IAM-OnDB tarballs by
    presence and size (their checksums are not published) and its split lists by presence.
    """
    unknown = sorted(set(datasets) - set(DATASETS))
    if unknown:
        raise DataError(f"unknown dataset {', '.join(unknown)}: graves data check knows {', '.join(DATASETS)}")
    root = Path(root)
    rows: list[tuple[str, bool, str]] = []
    if "ptb" in datasets:
        rows += _check_ptb(root)
    if "enwik8" in datasets:
        rows += _check_enwik8(root)
    if "iam-ondb" in datasets:
        rows += _check_iamondb(root)
    return rows


def _check_ptb(root: Path) -> list[tuple[str, bool, str]]:
    rows: list[tuple[str, bool, str]] = []
    for name, md5 in PTB_MD5.items():
        path = root / "ptb" / name
        if not path.is_file():
            rows.append((f"ptb/{name}", False, "missing (graves data download ptb)"))
            continue
        got = md5_file(path)
        rows.append((f"ptb/{name}", got == md5, "md5 ok" if got == md5 else f"md5 {got}, expected {md5}"))
    return rows


def _check_enwik8(root: Path) -> list[tuple[str, bool, str]]:
    path = enwik8_file(root / "enwik8")
    if path is None:
        return [("enwik8/enwik8.zip", False, "missing (graves data download enwik8)")]
    try:
        verify_enwik8(path)
        return [(f"enwik8/{path.name}", True, "size and md5 ok")]
    except (DataError, OSError, *DECOMPRESS_ERRORS) as exc:
        return [(f"enwik8/{path.name}", False, str(exc))]


def _check_iamondb(root: Path) -> list[tuple[str, bool, str]]:
    from graves.data.iamondb import DataError as IamDataError
    from graves.data.iamondb import find_pack, pack_sets

    rows: list[tuple[str, bool, str]] = []
    iam = root / "iam-ondb"
    pack = find_pack(iam) if iam.is_dir() else None
    held: list[str] = []
    if pack is not None:
        try:
            held = pack_sets(pack)
            rows.append((f"iam-ondb/{pack.name}", True, f"a pack of {', '.join(held) or 'no splits'}"))
        except IamDataError as exc:
            rows.append((f"iam-ondb/{pack.name}", False, str(exc)))
            pack = None
    for name, size in IAM_ONDB_SIZES.items():
        path = iam / name
        folder = iam / name.split("-")[0]  # lineStrokes-all.tar.gz unpacked: lineStrokes/
        if not path.is_file() and folder.is_dir():  # the loaders read the unpacked folder as well
            n = sum(1 for _ in folder.rglob("*.xml" if folder.name == "lineStrokes" else "*.txt"))
            rows.append((f"iam-ondb/{folder.name}/", n > 0, f"unpacked folder, {n:,} files" if n else "empty folder"))
        elif not path.is_file() and pack is not None:
            rows.append((f"iam-ondb/{name}", True, f"absent, but the pack {pack.name} is there (graves data pack)"))
        elif not path.is_file():
            rows.append((f"iam-ondb/{name}", False, "missing (register at the IAM-OnDB site and download it)"))
        elif path.stat().st_size != size:
            rows.append((f"iam-ondb/{name}", False, f"{path.stat().st_size:,} bytes, expected {size:,}"))
        else:
            rows.append((f"iam-ondb/{name}", True, f"present, {size:,} bytes"))
    for name in IAM_ONDB_SPLITS:
        path = root / "iam-ondb" / "splits" / name
        if path.is_file():
            rows.append((f"iam-ondb/splits/{name}", True, "present"))
        elif pack is not None and Path(name).stem in held:  # a pack holds its splits' lines
            rows.append((f"iam-ondb/splits/{name}", True, "not needed: the pack holds this split"))
        else:
            rows.append((f"iam-ondb/splits/{name}", False, "missing (the IAM-OnDB-t1 task lists)"))
    return rows
