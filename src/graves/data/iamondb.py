"""IAM-OnDB from its official files (SPEC §3): line strokes, transcriptions, the IAM-OnDB-t1 splits.

Layout of ``root`` (the folder a user downloads into; see ``../shared/data/README.md``)::

    root/lineStrokes-all.tar.gz   or  root/lineStrokes/<a01>/<a01-000>/<a01-000u-01>.xml
    root/ascii-all.tar.gz         or  root/ascii/<a01>/<a01-000>/<a01-000u>.txt
    root/splits/{trainset,testset_v,testset_t,testset_f}.txt

Archives are read as streams (no extraction to disk); an unpacked folder is used when present. Each line
file ``<form>-<kk>.xml`` is paired with the k-th non-empty line after ``CSR:`` in ``<form>.txt``
(latin-1). A form whose line files and transcription lines disagree is reported and skipped (or, with
``require_text=False``, kept with ``text=None``); a malformed line file is reported and skipped. Nothing
in a damaged dataset crashes a load: problems come back as :class:`Problem` records.

Preprocessed lines are cached on disk (npz + JSON, never pickle), one file per split, keyed by the
archives' content, the split file and the preprocessing settings; see :func:`load_iamondb`.

A **pack** (:func:`write_pack`) is the cache of every split in one compressed npz (~21 MB for all four,
where the archives are 70 MB): the derived data a machine without the archives trains from (a GPU box
the working tree is copied to; ``docs/device.md``). Every loader takes it in place of the IAM-OnDB folder:
``root`` is the pack file itself, or a folder that holds ``iamondb.pack.npz`` and no ``lineStrokes``
source. Reading a pack needs neither the archives nor defusedxml.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator
from xml.sax import SAXParseException

import numpy as np

try:
    from defusedxml import DefusedXmlException
    from defusedxml.expatreader import DefusedExpatParser
except ImportError:  # a machine that only reads packs (a GPU box) may lack it; parsing XML then refuses
    DefusedExpatParser = object  # type: ignore[assignment,misc]

    class DefusedXmlException(ValueError):  # type: ignore[no-redef]
        pass

from graves.data.strokes import Normaliser, Preprocessing, preprocess

__all__ = [
    "SPLITS", "PAPER_TRAIN", "PAPER_VALID", "SET_ALIASES", "DataError", "DataWarning", "Problem", "Line",
    "Normaliser", "Preprocessing", "parse_line_strokes", "parse_transcription", "read_split", "expand_sets",
    "read_forms", "default_cache_dir", "load_iamondb", "load_iamondb_sets", "load_paper_split",
    "iamondb_alphabet", "count_line_files", "PACK_NAME", "find_pack", "pack_line", "write_pack",
]

SPLITS = ("trainset", "testset_v", "testset_t", "testset_f")
PAPER_TRAIN = ("trainset", "testset_f", "testset_t")  # SPEC §3: train + test + the larger validation set
PAPER_VALID = ("testset_v",)  # the smaller validation set, used for early stopping
SET_ALIASES = {"paper_train": PAPER_TRAIN, "paper_valid": PAPER_VALID, "all": SPLITS}
CACHE_VERSION = 1
PACK_NAME = "iamondb.pack.npz"  # the pack's name inside an IAM-OnDB folder
PACK_FORMAT = "graves-iamondb-pack"
PACK_VERSION = 1

_LINE_FILE = re.compile(r"^([a-z]\d\d-\d\d\d[a-z]?)-(\d\d)\.xml$")
_TEXT_FILE = re.compile(r"^([a-z]\d\d-\d\d\d[a-z]?)\.txt$")
_FORM_ID = re.compile(r"^[a-z]\d\d-\d\d\d[a-z]?$")


class DataError(ValueError):
    """A data file is missing, malformed or inconsistent; the message names the file."""


class DataWarning(UserWarning):
    """Problems were found (and skipped) while loading a dataset."""


@dataclass(frozen=True)
class Problem:
    """One thing skipped while loading: ``where`` names the form or file."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True, eq=False)
class Line:
    """One handwritten line: ``id`` like ``a01-000u-01``; ``text`` its transcription (None only when loaded
    with ``require_text=False`` from a form whose transcription does not pair up); ``offsets (T, 3)``
    float32 ``(dx, dy, eos)`` in raw whiteboard units, y pointing up, after interpolation and outlier
    removal (see :mod:`graves.data.strokes`)."""

    id: str
    text: str | None
    offsets: np.ndarray

    @property
    def form(self) -> str:
        return self.id.rsplit("-", 1)[0]

    def __repr__(self) -> str:
        return f"Line(id={self.id!r}, text={self.text!r}, offsets=<{self.offsets.shape[0]} points>)"


# --------------------------------------------------------------------------------------------------
# parsing single files


def _read_source(source: str | os.PathLike | bytes, name: str | None) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), name or "<bytes>"
    path = Path(source)
    try:
        return path.read_bytes(), name or str(path)
    except OSError as e:
        raise DataError(f"{name or path}: cannot read: {e}") from e


class _StrokeReader(DefusedExpatParser):
    """defusedxml's SAX parser (no DTD entities, no external references) with element callbacks that
    collect the points directly (2-3x faster than building an ElementTree for 7.7 M points)."""

    def __init__(self, name: str):
        super().__init__(forbid_dtd=False, forbid_entities=True, forbid_external=True)
        self.name = name
        self.values: list[str] = []  # x, y, time of every point, flat
        self.ends: list[int] = []  # len(values) at the end of each stroke
        self.path: list[str] = []  # open elements

    def reset(self) -> None:
        super().reset()
        self._parser.CharacterDataHandler = None  # whitespace between elements: ignore

    def start_element(self, name: str, attrs: dict[str, str]) -> None:  # replaces the SAX dispatch
        path = self.path
        if not path and name != "WhiteboardCaptureSession":
            raise DataError(f"{self.name}: expected a <WhiteboardCaptureSession> root, found <{name}>")
        parent = path[-1] if path else None
        path.append(name)
        if name == "Point" and parent == "Stroke" and len(path) >= 3 and path[-3] == "StrokeSet":
            try:
                self.values += (attrs["x"], attrs["y"], attrs.get("time", "nan"))
            except KeyError as e:
                raise DataError(f"{self.name}: stroke {len(self.ends)}: a <Point> lacks attribute {e}") from None

    def end_element(self, name: str) -> None:
        self.path.pop()
        if name == "Stroke" and self.path and self.path[-1] == "StrokeSet":
            self.ends.append(len(self.values))


def parse_line_strokes(source: str | os.PathLike | bytes, name: str | None = None) -> list[np.ndarray]:
    """Parse one IAM-OnDB line file (``WhiteboardCaptureSession`` → ``StrokeSet`` → ``Stroke`` → ``Point``).

    ``source``: a path or the file's bytes; ``name`` names it in errors (default: the path).
    Returns timed strokes ``list[(n_i, 3)]`` float64 of ``(x, y, time)`` with **y flipped to point up**
    (y = -y_file), time in seconds (NaN where a point has none). Empty strokes are dropped.
    Raises :class:`DataError` naming the file when it is not well-formed XML (truncated, say), declares
    entities or uses external references (refused by defusedxml, never expanded), has another root
    element, a point without x or y, a non-numeric or non-finite coordinate, or no points at all.
    """
    data, name = _read_source(source, name)
    if DefusedExpatParser is object:
        raise DataError(f"{name}: reading IAM-OnDB XML needs defusedxml (pip install defusedxml), or train "
                        "from a pack (graves data pack)")
    reader = _StrokeReader(name)
    try:
        reader.feed(data)
        reader.close()
    except SAXParseException as e:
        raise DataError(f"{name}: malformed XML: line {e.getLineNumber()}, column {e.getColumnNumber()}: "
                        f"{e.getMessage()}") from None
    except DefusedXmlException as e:
        raise DataError(f"{name}: refused unsafe XML: {e!r}") from None
    except DataError:
        raise
    except (LookupError, ValueError, UnicodeError) as e:  # e.g. an encoding= declaration expat cannot read
        raise DataError(f"{name}: unreadable XML: {e}") from None
    try:
        flat = np.array(reader.values, dtype=np.float64).reshape(-1, 3)  # (N, 3)
    except ValueError as e:
        raise DataError(f"{name}: non-numeric point attribute: {e}") from None
    if not np.all(np.isfinite(flat[:, :2])):
        raise DataError(f"{name}: non-finite coordinate")
    flat[:, 1] = -flat[:, 1]  # the whiteboard's y grows downwards; ours points up
    ends = np.asarray(reader.ends, dtype=np.int64) // 3
    strokes = [s for s in np.split(flat, ends[:-1]) if len(s)] if len(ends) else []
    if not strokes:
        raise DataError(f"{name}: no points")
    return strokes


def parse_transcription(source: str | os.PathLike | bytes, name: str | None = None) -> list[str]:
    """The lines of a form's ``CSR:`` section (latin-1; non-empty lines after the ``CSR:`` line, stripped).
    Raises :class:`DataError` when there is no ``CSR:`` section."""
    data, name = _read_source(source, name)
    lines = data.decode("latin-1").splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "CSR:":
            return [t.strip() for t in lines[i + 1 :] if t.strip()]
    raise DataError(f"{name}: no 'CSR:' section")


def read_split(path: str | os.PathLike) -> list[str]:
    """Form ids of a split file (one per line, leading space; blank lines ignored), in file order."""
    path = Path(path)
    try:
        text = path.read_text(encoding="latin-1")
    except OSError as e:
        raise DataError(f"{path}: cannot read split list: {e}") from e
    forms = []
    for n, raw in enumerate(text.splitlines(), 1):
        form = raw.strip()
        if not form:
            continue
        if not _FORM_ID.match(form):
            raise DataError(f"{path}:{n}: not a form id: {raw!r}")
        forms.append(form)
    return forms


def expand_sets(sets: str | Iterable[str]) -> tuple[str, ...]:
    """Split names (``trainset``, ``testset_v``, ``testset_t``, ``testset_f``) and aliases
    (``paper_train``, ``paper_valid``, ``all``) -> distinct split names in order."""
    if isinstance(sets, str):
        sets = (sets,)
    out: list[str] = []
    for name in sets:
        for s in SET_ALIASES.get(name, (name,)):
            if s not in SPLITS:
                raise DataError(f"unknown IAM-OnDB set {name!r}; choose from {SPLITS + tuple(SET_ALIASES)}")
            if s not in out:
                out.append(s)
    if not out:
        raise DataError("no IAM-OnDB sets given")
    return tuple(out)


# --------------------------------------------------------------------------------------------------
# reading the archives (a tar.gz stream or an unpacked folder)


def _source(root: Path, folder: str, archive: str) -> Path:
    if (root / folder).is_dir():
        return root / folder
    if (root / archive).is_file():
        return root / archive
    raise DataError(f"{root}: neither {folder}/ nor {archive} nor {PACK_NAME} found (is this the IAM-OnDB "
                    "folder?)")


class _CountingReader(io.RawIOBase):
    """A read-only file wrapper that reports the bytes read (for a byte-accurate progress bar)."""

    def __init__(self, f, callback: Callable[[int], None]):
        self._f, self._callback = f, callback

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = self._f.readinto(b)
        self._callback(n or 0)
        return n

    def read(self, size: int = -1) -> bytes:
        data = self._f.read(size)
        self._callback(len(data))
        return data


def _progress_bar(progress: bool, total: int, desc: str, unit: str):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, leave=False, mininterval=1.0)


def _iter_files(
    source: Path, wanted: Callable[[str], bool], progress: bool, desc: str
) -> Iterator[tuple[str, bytes | Exception]]:
    """(basename, content) of the files of ``source`` whose basename is ``wanted``; a file that cannot be
    read yields the exception instead of its bytes."""
    if source.is_dir():
        names = sorted(
            (d, f) for d, _, files in os.walk(source) for f in files if wanted(f)
        )
        bar = _progress_bar(progress, len(names), desc, "file")
        try:
            for d, f in names:
                try:
                    yield f, (Path(d) / f).read_bytes()
                except OSError as e:
                    yield f, e
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        return
    bar = _progress_bar(progress, source.stat().st_size, desc, "B")
    try:
        with open(source, "rb") as raw:
            stream = _CountingReader(raw, bar.update) if bar is not None else raw
            try:
                # gzip read by GzipFile, not by tarfile's "r|gz": that stream mode never checks the gzip
                # trailer, so a flipped bit would pass as different XML; read to the end, the CRC is checked
                with gzip.GzipFile(fileobj=stream) as gz, tarfile.open(fileobj=gz, mode="r|") as tar:
                    for member in tar:
                        base = member.name.rsplit("/", 1)[-1]
                        if not member.isfile() or not wanted(base):
                            continue
                        f = tar.extractfile(member)
                        yield base, f.read() if f is not None else DataError("unreadable member")
                    while gz.read(1 << 20):  # the tar's padding, then the gzip trailer (CRC, length)
                        pass
            except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error) as e:
                raise DataError(f"{source}: damaged archive: {e}") from e
    finally:
        if bar is not None:
            bar.close()


def read_forms(
    root: str | os.PathLike,
    forms: Iterable[str],
    settings: Preprocessing = Preprocessing(),
    progress: bool = False,
) -> tuple[dict[str, list[Line]], list[Problem]]:
    """Read and preprocess the given forms (no cache). Returns ``{form: [Line, ...]}`` (lines in file
    order; ``text`` is None for every line of a form whose transcription does not pair up) and the
    problems found. Forms with no line files at all are reported and absent from the dict."""
    if DefusedExpatParser is object:  # every line would be "skipped": say it once, and cache nothing
        raise DataError("reading IAM-OnDB XML needs defusedxml (pip install defusedxml), or train from a pack "
                        "(graves data pack)")
    root = Path(root)
    forms = list(dict.fromkeys(forms))
    wanted_forms = set(forms)
    problems: list[Problem] = []

    texts: dict[str, list[str]] = {}
    ascii_src = _source(root, "ascii", "ascii-all.tar.gz")

    def want_text(base: str) -> bool:
        m = _TEXT_FILE.match(base)
        return bool(m) and m.group(1) in wanted_forms

    for base, content in _iter_files(ascii_src, want_text, False, "ascii"):
        form = base[:-4]
        if isinstance(content, Exception):
            problems.append(Problem(base, f"cannot read: {content}"))
            continue
        try:
            texts[form] = parse_transcription(content, base)
        except DataError as e:
            problems.append(Problem(base, str(e).split(": ", 1)[-1]))

    strokes_src = _source(root, "lineStrokes", "lineStrokes-all.tar.gz")
    parsed: dict[str, dict[int, np.ndarray]] = {f: {} for f in forms}
    numbers: dict[str, set[int]] = {f: set() for f in forms}

    def want_line(base: str) -> bool:
        m = _LINE_FILE.match(base)
        return bool(m) and m.group(1) in wanted_forms

    for base, content in _iter_files(strokes_src, want_line, progress, "IAM-OnDB lines"):
        m = _LINE_FILE.match(base)
        form, k = m.group(1), int(m.group(2))
        numbers[form].add(k)
        try:
            if isinstance(content, Exception):
                raise DataError(f"{base}: cannot read: {content}")
            offsets = preprocess(parse_line_strokes(content, base), settings)
            if not np.isfinite(offsets).all():  # finite float64 coordinates, too large for float32
                raise DataError(f"{base}: coordinates too large")
            parsed[form][k] = offsets
        except DataError as e:
            problems.append(Problem(base, str(e).split(": ", 1)[-1] + "; line skipped"))

    out: dict[str, list[Line]] = {}
    for form in forms:
        ks = sorted(numbers[form])
        if not ks:
            problems.append(Problem(form, "no line files; form skipped"))
            continue
        text = texts.get(form)
        paired = text is not None and ks == list(range(1, len(text) + 1))
        if text is None:
            problems.append(Problem(form, "no transcription file; form skipped"))
        elif not paired:
            problems.append(
                Problem(form, f"{len(ks)} line files (numbered {ks[0]}..{ks[-1]}) but "
                              f"{len(text)} transcription lines; form skipped")
            )
        out[form] = [
            Line(f"{form}-{k:02d}", text[k - 1] if paired else None, parsed[form][k])
            for k in ks
            if k in parsed[form]
        ]
    return out, problems


# --------------------------------------------------------------------------------------------------
# the cache


def default_cache_dir() -> Path:
    """``$GRAVES_CACHE`` if set, else ``~/.cache/graves``."""
    env = os.environ.get("GRAVES_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "graves"


def _umask() -> int:
    """The process's umask, read without changing it (os.umask would, for a moment, for every thread)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def _atomic_write(path: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with contextlib.suppress(OSError, AttributeError):  # mkstemp makes 0600: give the usual permissions
        os.fchmod(fd, 0o666 & ~_umask())
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _source_digest(source: Path, cache: Path) -> str:
    """Content digest of an archive, or a listing digest of an unpacked folder.

    An archive's sha256 is remembered in ``cache/digests.json`` under its path, size and mtime, so it is
    hashed again only when the file changes. A folder is fingerprinted by every file's relative path,
    size and mtime (hashing 14k files each load would be slow)."""
    st = source.stat()
    if source.is_dir():
        h = hashlib.sha256()
        for d, _, files in sorted(os.walk(source)):
            for f in sorted(files):
                p = Path(d) / f
                s = p.stat()
                h.update(f"{p.relative_to(source)}\0{s.st_size}\0{s.st_mtime_ns}\n".encode())
        return "dir:" + h.hexdigest()
    memo_path = cache / "digests.json"
    stamp = f"{st.st_size}:{st.st_mtime_ns}"
    key = str(source.resolve())
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    if not isinstance(memo, dict):  # damaged: start again
        memo = {}
    entry = memo.get(key)
    if isinstance(entry, dict) and entry.get("stamp") == stamp and isinstance(entry.get("sha256"), str):
        return entry["sha256"]
    digest = _sha256_file(source)
    memo[key] = {"stamp": stamp, "sha256": digest}
    try:
        _atomic_write(memo_path, lambda f: f.write(json.dumps(memo, indent=1).encode()))
    except OSError:
        pass  # a read-only cache only costs a re-hash
    return digest


def _split_digest(root: Path, name: str) -> str:
    path = root / "splits" / f"{name}.txt"
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:
        raise DataError(f"{path}: cannot read split list: {e}") from e


def _code_digest() -> str:
    """A digest of the code that turns the files into lines (this module and graves.data.strokes), so that
    a cache made by other code is never taken for this code's."""
    from graves.data import strokes

    h = hashlib.sha256()
    for f in (__file__, strokes.__file__):
        h.update(Path(f).read_bytes())
    return h.hexdigest()[:16]


def _cache_key(sources: dict[str, str], split_digest: str, name: str, settings: Preprocessing) -> tuple[str, dict]:
    material = {
        "version": CACHE_VERSION,
        "code": _code_digest(),
        "set": name,
        "settings": settings.to_dict(),
        **sources,
        "split": split_digest,
    }
    key = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:24]
    return key, material


def _save_cached(path: Path, lines: list[Line], problems: list[Problem], material: dict) -> None:
    lengths = np.array([len(line.offsets) for line in lines], dtype=np.int64)
    offsets = (np.concatenate([line.offsets for line in lines]) if lines
               else np.zeros((0, 3), np.float32)).astype(np.float32, copy=False)
    meta = {
        "key": material,
        "ids": [line.id for line in lines],
        "texts": [line.text for line in lines],
        "problems": [[p.where, p.message] for p in problems],
    }
    meta_bytes = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    _atomic_write(path, lambda f: np.savez(f, offsets=offsets, lengths=lengths, meta=meta_bytes))


def _load_cached(path: Path, material: dict) -> tuple[list[Line], list[Problem]] | None:
    """The cached split at ``path`` if it was made from ``material``; None when it is missing, stale or
    damaged in any way (truncated, bit-flipped, not ours), so that the caller rebuilds it."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes().decode("utf-8"))
            offsets, lengths = z["offsets"], z["lengths"]
        if not isinstance(meta, dict) or meta.get("key") != material:
            return None
        if len(meta["ids"]) != len(lengths) or lengths.sum() != len(offsets) or not np.isfinite(offsets).all():
            return None
        parts = np.split(offsets, np.cumsum(lengths)[:-1]) if len(lengths) else []
        lines = [Line(i, t, o) for i, t, o in zip(meta["ids"], meta["texts"], parts)]
        return lines, [Problem(w, m) for w, m in meta["problems"]]
    except Exception:  # noqa: BLE001 - a damaged cache file (zip, zlib, EOF, JSON, shape ...) is a miss
        return None


# --------------------------------------------------------------------------------------------------
# public loaders


def _read_sets(
    root: Path, names: tuple[str, ...], cache_dir: str | os.PathLike | None, progress: bool,
    settings: Preprocessing, use_cache: bool,
) -> dict[str, tuple[list[Line], list[Problem], dict | None]]:
    """``{split: (every line, text or not; its problems; its cache material or None)}`` from a pack, the
    cache or the archives (all uncached splits in one pass over them)."""
    pack = find_pack(root)
    if pack is not None:
        return _load_pack(pack, names, settings)
    cache = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / "iamondb"
    found: dict[str, tuple[list[Line], list[Problem], dict | None]] = {}
    keys: dict[str, tuple[Path, dict]] = {}
    if use_cache:
        sources = {
            "strokes": _source_digest(_source(root, "lineStrokes", "lineStrokes-all.tar.gz"), cache),
            "ascii": _source_digest(_source(root, "ascii", "ascii-all.tar.gz"), cache),
        }
        for name in names:
            key, material = _cache_key(sources, _split_digest(root, name), name, settings)
            path = cache / f"{name}-{key}.npz"
            keys[name] = (path, material)
            hit = _load_cached(path, material)
            if hit is not None:
                found[name] = (*hit, material)
    missing = [n for n in names if n not in found]
    if missing:
        form_lists = {n: read_split(root / "splits" / f"{n}.txt") for n in missing}
        all_forms = [f for n in missing for f in form_lists[n]]
        by_form, read_problems = read_forms(root, all_forms, settings, progress)
        for n in missing:
            forms = set(form_lists[n])
            lines = [line for f in form_lists[n] for line in by_form.get(f, [])]
            mine = [p for p in read_problems if _problem_form(p) in forms]
            found[n] = (lines, mine, keys[n][1] if use_cache else None)
            if use_cache and not any("cannot read" in p.message for p in mine):
                # (a file that could not be read, e.g. for a permission since fixed, is not the data's fault:
                # such a split is not cached, so the next load reads it again)
                try:
                    _save_cached(keys[n][0], lines, mine, keys[n][1])
                except OSError as e:
                    warnings.warn(f"could not write the IAM-OnDB cache {keys[n][0]}: {e}", DataWarning,
                                  stacklevel=3)
    return found


def load_iamondb_sets(
    root: str | os.PathLike,
    sets: str | Iterable[str] = PAPER_TRAIN,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    settings: Preprocessing = Preprocessing(),
    require_text: bool = True,
    problems: list[Problem] | None = None,
    use_cache: bool = True,
) -> dict[str, list[Line]]:
    """Like :func:`load_iamondb`, but returns ``{split name: lines}``; all uncached splits are read in
    one pass over the archive."""
    names = expand_sets(sets)
    found = _read_sets(Path(root), names, cache_dir, progress, settings, use_cache)
    result, all_problems = {}, []
    for n in names:
        lines, probs, _ = found[n]
        result[n] = [line for line in lines if line.text is not None] if require_text else lines
        all_problems += probs
    if problems is not None:
        problems.extend(all_problems)
    elif all_problems:
        shown = "; ".join(str(p) for p in all_problems[:3])
        more = f" (and {len(all_problems) - 3} more)" if len(all_problems) > 3 else ""
        warnings.warn(f"IAM-OnDB: skipped {shown}{more}; pass problems=[] to collect them", DataWarning,
                      stacklevel=3)
    return result


# --------------------------------------------------------------------------------------------------
# the pack: every split's cache in one file


def find_pack(root: str | os.PathLike) -> Path | None:
    """The pack to read for ``root``: ``root`` itself when it is a file (or names a missing ``.npz``);
    ``root/iamondb.pack.npz`` when
    ``root`` holds it and no ``lineStrokes`` folder or archive (the official files win); else None."""
    root = Path(root)
    if root.is_file() or (root.suffix == ".npz" and not root.exists()):  # a missing pack is named as such
        return root
    pack = root / PACK_NAME
    if pack.is_file() and not (root / "lineStrokes").is_dir() and not (root / "lineStrokes-all.tar.gz").is_file():
        return pack
    return None


def write_pack(
    root: str | os.PathLike,
    path: str | os.PathLike,
    sets: str | Iterable[str] = SPLITS,
    settings: Preprocessing = Preprocessing(),
    cache_dir: str | os.PathLike | None = None,
    progress: bool = False,
) -> dict[str, int]:
    """Write the preprocessed lines of ``sets`` into one compressed npz at ``path`` (atomically).

    For each split the pack holds exactly what its cache file holds (:func:`load_iamondb`): the
    concatenated float32 offsets ``(ΣT, 3)``, the lengths, ids, texts (None where a form's transcription
    does not pair up) and the problems, plus the cache key's material (format version, ``settings``,
    the archives' and the split file's digests), so that a pack is only ever read with the settings it
    was made with. Lines come through the cache (filled on the way if cold). ``root`` may itself be a
    pack (to re-pack a subset). Returns ``{split: number of lines}`` (with or without text).
    """
    names = expand_sets(sets)
    found = _read_sets(Path(root), names, cache_dir, progress, settings, use_cache=True)
    arrays: dict[str, np.ndarray] = {}
    meta: dict = {"format": PACK_FORMAT, "version": PACK_VERSION, "sets": {}}
    for n in names:
        lines, probs, material = found[n]
        arrays[f"{n}.lengths"] = np.array([len(line.offsets) for line in lines], dtype=np.int64)
        arrays[f"{n}.offsets"] = (np.concatenate([line.offsets for line in lines]) if lines
                                  else np.zeros((0, 3), np.float32)).astype(np.float32, copy=False)
        meta["sets"][n] = {"key": material, "ids": [line.id for line in lines],
                           "texts": [line.text for line in lines],
                           "problems": [[p.where, p.message] for p in probs]}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    try:
        _atomic_write(Path(path), lambda f: np.savez_compressed(f, **arrays))
    except OSError as e:
        raise DataError(f"cannot write the pack {path}: {e.strerror or e} (nothing was written)") from e
    return {n: len(found[n][0]) for n in names}


def pack_sets(path: str | os.PathLike) -> list[str]:
    """The splits a pack holds, from its header alone (``graves data check``); DataError if it is not a
    pack this graves reads."""
    try:
        return sorted(_pack_meta(Path(path), "; rebuild it with `graves data pack`")["sets"])
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged zip, a missing member, bad JSON: all "damaged"
        raise DataError(f"{path}: a damaged IAM-OnDB pack ({type(exc).__name__}: {exc})") from None


def _pack_meta(path: Path, rebuild: str) -> dict:
    """A pack's header, checked for our format and version (DataError); other faults propagate."""
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":
            raise DataError(f"{path}: not an IAM-OnDB pack (not a zip/npz file){rebuild}")
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(z["meta"].tobytes().decode("utf-8"))
    if not isinstance(meta, dict) or meta.get("format") != PACK_FORMAT:
        raise DataError(f"{path}: not an IAM-OnDB pack (no '{PACK_FORMAT}' header){rebuild}")
    if meta.get("version") != PACK_VERSION:
        raise DataError(f"{path}: pack format version {meta.get('version')!r}, this graves reads "
                        f"{PACK_VERSION}{rebuild}")
    return meta


def _load_pack(
    path: Path, names: tuple[str, ...], settings: Preprocessing
) -> dict[str, tuple[list[Line], list[Problem], dict]]:
    """The splits ``names`` from the pack at ``path``; any fault is a one-line :class:`DataError`."""
    rebuild = "; rebuild it with `graves data pack`"
    wanted = settings.to_dict()
    found: dict[str, tuple[list[Line], list[Problem], dict]] = {}
    try:
        meta = _pack_meta(path, rebuild)
        with np.load(path, allow_pickle=False) as z:
            held = meta["sets"]
            absent = [n for n in names if n not in held]
            if absent:
                raise DataError(f"{path}: the pack lacks split(s) {', '.join(absent)} (it holds "
                                f"{', '.join(held) or 'none'}){rebuild}")
            for n in names:
                entry = held[n]
                key = entry["key"]
                if key.get("version") != CACHE_VERSION:
                    raise DataError(f"{path}: {n} was preprocessed by cache format {key.get('version')!r}, "
                                    f"this graves expects {CACHE_VERSION}{rebuild}")
                if key.get("settings") != wanted:
                    made = key.get("settings") or {}
                    diff = ", ".join(f"{k}={made.get(k)!r} (asked {v!r})" for k, v in wanted.items()
                                     if made.get(k) != v) or repr(made)
                    raise DataError(f"{path}: {n} was made with other preprocessing settings: {diff}{rebuild} "
                                    "with these settings")
                offsets, lengths = z[f"{n}.offsets"], z[f"{n}.lengths"]
                ids, texts = entry["ids"], entry["texts"]
                if (offsets.dtype != np.float32 or offsets.ndim != 2 or offsets.shape[1] != 3
                        or lengths.ndim != 1 or len(ids) != len(lengths) or len(texts) != len(lengths)
                        or int(lengths.sum()) != len(offsets) or (len(lengths) and lengths.min() < 0)):
                    raise DataError(f"{path}: {n}: inconsistent arrays (the pack is damaged){rebuild}")
                parts = np.split(offsets, np.cumsum(lengths)[:-1]) if len(lengths) else []
                lines = [Line(i, t, o) for i, t, o in zip(ids, texts, parts)]
                found[n] = (lines, [Problem(w, m) for w, m in entry["problems"]], key)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: no such pack") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError, zipfile.BadZipFile,
            zlib.error) as e:  # a truncated or corrupted zip, a missing member, a mangled header
        raise DataError(f"{path}: not a readable IAM-OnDB pack ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else 'no detail'}){rebuild}") from None
    return found


def pack_line(path: str | os.PathLike, line_id: str, settings: Preprocessing = Preprocessing()) -> Line | None:
    """The line ``line_id`` from the pack at ``path`` (only the split holding it is read), or None.

    Faults of the pack are one-line :class:`DataError` as in :func:`load_iamondb`.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            held = json.loads(z["meta"].tobytes().decode("utf-8")).get("sets", {})
        where = next((n for n, entry in held.items() if line_id in entry.get("ids", ())), None)
    except FileNotFoundError:
        raise DataError(f"{path}: no such pack") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError, zipfile.BadZipFile,
            zlib.error) as e:
        raise DataError(f"{path}: not a readable IAM-OnDB pack ({type(e).__name__}); rebuild it with "
                        "`graves data pack`") from None
    if where is None:
        return None
    lines, _, _ = _load_pack(path, (where,), settings)[where]
    return next(ln for ln in lines if ln.id == line_id)


def _problem_form(p: Problem) -> str:
    m = _LINE_FILE.match(p.where) or _TEXT_FILE.match(p.where)
    return m.group(1) if m else p.where


def load_iamondb(
    root: str | os.PathLike,
    sets: str | Iterable[str] = PAPER_TRAIN,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    settings: Preprocessing = Preprocessing(),
    require_text: bool = True,
    problems: list[Problem] | None = None,
    use_cache: bool = True,
) -> list[Line]:
    """Load the lines of the named splits (in the given order, forms in split-file order).

    ``root``: the IAM-OnDB folder (archives or unpacked folders, plus ``splits/``), or a pack
    (:func:`write_pack`): the pack file, or a folder holding ``iamondb.pack.npz`` and no ``lineStrokes``
    source. A pack is read as it is (no cache); one made with other ``settings``, lacking a split, or
    damaged raises :class:`DataError` naming it.
    ``sets``: split names or aliases (see :func:`expand_sets`); default the paper's training set.
    ``cache_dir``: where preprocessed lines are cached (default :func:`default_cache_dir`); the cache is
    keyed by the archives' sha256 (remembered by size and mtime), the split file, the ``settings``, a
    format version and a digest of the parsing code, and written atomically, so a second load takes seconds.
    ``require_text``: drop lines without a transcription (default); ``False`` keeps them with ``text=None``
    (enough for the unconditional prediction net).
    ``problems``: a list to which skipped forms/files are appended as :class:`Problem`; without it, any
    problems are summarised in one :class:`DataWarning`.
    ``use_cache``: False reads the archives and neither reads nor writes the cache.
    """
    by_set = load_iamondb_sets(root, sets, cache_dir=cache_dir, progress=progress, settings=settings,
                               require_text=require_text, problems=problems, use_cache=use_cache)
    return [line for lines in by_set.values() for line in lines]


def load_paper_split(
    root: str | os.PathLike,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    settings: Preprocessing = Preprocessing(),
    require_text: bool = True,
    problems: list[Problem] | None = None,
    use_cache: bool = True,
) -> tuple[list[Line], list[Line]]:
    """The paper's sets (SPEC §3): ``(train, valid)`` = (trainset + testset_f + testset_t, testset_v)."""
    by_set = load_iamondb_sets(root, PAPER_TRAIN + PAPER_VALID, cache_dir=cache_dir, progress=progress,
                               settings=settings, require_text=require_text, problems=problems,
                               use_cache=use_cache)
    train = [line for n in PAPER_TRAIN for line in by_set[n]]
    return train, by_set["testset_v"]


def iamondb_alphabet(lines: Iterable[Line]) -> str:
    """Every character that occurs in the transcriptions of ``lines``, sorted by code point."""
    chars: set[str] = set()
    for line in lines:
        if line.text:
            chars.update(line.text)
    return "".join(sorted(chars))


def count_line_files(root: str | os.PathLike, sets: str | Iterable[str]) -> dict[str, int]:
    """The number of line files (``<form>-<kk>.xml``) of each split's forms, paired or not (the counts
    the paper quotes). Lists archive members only; parses nothing."""
    root = Path(root)
    names = expand_sets(sets)
    form_set = {n: set(read_split(root / "splits" / f"{n}.txt")) for n in names}
    counts = dict.fromkeys(names, 0)
    source = _source(root, "lineStrokes", "lineStrokes-all.tar.gz")

    def wanted(base: str) -> bool:
        m = _LINE_FILE.match(base)
        if m:
            for n in names:
                if m.group(1) in form_set[n]:
                    counts[n] += 1
        return False  # never read the contents

    for _ in _iter_files(source, wanted, False, ""):
        pass
    return counts
