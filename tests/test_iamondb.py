"""IAM-OnDB loader on the real files: parsing, pairing, splits, preprocessing, the cache.

The full dataset is loaded once per session (``full`` fixture, cache under pytest's tmp dir); the other
tests use a few real forms copied into ``tmp_path`` (derived data lives only there, never in the repo).
"""

from __future__ import annotations

import io
import re
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import require_data
from graves.data.iamondb import (
    PAPER_TRAIN,
    DataError,
    DataWarning,
    Line,
    count_line_files,
    default_cache_dir,
    expand_sets,
    iamondb_alphabet,
    load_iamondb,
    load_iamondb_sets,
    load_paper_split,
    parse_line_strokes,
    parse_transcription,
    read_split,
)
from graves.data.strokes import MAX_STEP, Normaliser, Preprocessing, preprocess, step_lengths

# Real forms used by the small tests: a lettered form, a letterless one (the id names the folder), the
# form whose line files and transcription disagree (9 files, 8 CSR lines), and a line with lost readings.
SAMPLE_FORMS = ("a01-000u", "d04-081", "a08-551z")
GAP_LINE = "a07-480z-01"


def _member_path(base: str) -> str:
    form = base.rsplit("-", 1)[0] if base.endswith(".xml") else base[:-4]
    top = "lineStrokes" if base.endswith(".xml") else "ascii"
    return f"{top}/{form[:3]}/{form[:7]}/{base}"


@pytest.fixture(scope="session")
def iam_root() -> Path:
    return require_data("iam-ondb")


@pytest.fixture(scope="session")
def samples(iam_root) -> dict[str, bytes]:
    """Raw bytes of the sample forms' files, read straight from the official archives."""
    out: dict[str, bytes] = {}
    line_re = re.compile(r"^([a-z]\d\d-\d\d\d[a-z]?)-\d\d\.xml$")
    with tarfile.open(iam_root / "lineStrokes-all.tar.gz", "r|gz") as tar:
        for m in tar:
            base = m.name.rsplit("/", 1)[-1]
            match = line_re.match(base)
            if m.isfile() and match and (match.group(1) in SAMPLE_FORMS or base == GAP_LINE + ".xml"):
                out[base] = tar.extractfile(m).read()
            if base.startswith("e"):  # the archive is in form order; every sample lies before 'e'
                break
    with tarfile.open(iam_root / "ascii-all.tar.gz", "r:gz") as tar:
        for form in SAMPLE_FORMS:
            out[f"{form}.txt"] = tar.extractfile(_member_path(f"{form}.txt")).read()
    return out


def make_root(tmp: Path, samples: dict[str, bytes], splits: dict[str, list[str]],
              archive: bool = False, replace: dict[str, bytes | None] | None = None) -> Path:
    """A small IAM-OnDB folder in ``tmp``: unpacked folders or tar.gz archives holding the sample files
    (``replace`` swaps or, with None, deletes files), and the given split lists."""
    files = dict(samples)
    for name, content in (replace or {}).items():
        if content is None:
            files.pop(name, None)
        else:
            files[name] = content
    files.pop(GAP_LINE + ".xml", None)
    tmp.mkdir(parents=True, exist_ok=True)
    if archive:
        for top, archive_name in (("lineStrokes", "lineStrokes-all.tar.gz"), ("ascii", "ascii-all.tar.gz")):
            with tarfile.open(tmp / archive_name, "w:gz") as tar:
                for base in sorted(files):
                    path = _member_path(base)
                    if path.startswith(top + "/"):
                        info = tarfile.TarInfo(path)
                        info.size = len(files[base])
                        tar.addfile(info, io.BytesIO(files[base]))
    else:
        for base, content in files.items():
            path = tmp / _member_path(base)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
    (tmp / "splits").mkdir(exist_ok=True)
    for name, forms in splits.items():
        (tmp / "splits" / f"{name}.txt").write_text("".join(f" {f}\n" for f in forms) + "\n")
    return tmp


MINI_SPLITS = {"trainset": ["a01-000u", "a08-551z"], "testset_v": ["d04-081"]}


# ---------------------------------------------------------------------------------------------- parsing


def test_parse_known_files_against_raw_counts(samples):
    for base in ("a01-000u-01.xml", "d04-081-03.xml", "a08-551z-09.xml", GAP_LINE + ".xml"):
        raw = samples[base]
        strokes = parse_line_strokes(raw, base)
        assert len(strokes) == raw.count(b"<Stroke ")
        assert sum(len(s) for s in strokes) == raw.count(b"<Point ")
        first = re.search(rb'<Point x="(\d+)" y="(\d+)" time="([\d.]+)"', raw)
        x, y, t = (float(v) for v in first.groups())
        np.testing.assert_array_equal(strokes[0][0], [x, -y, t])  # y flipped to point up
    # counted independently with grep on the unpacked files
    for base, n_strokes, n_points in (("a01-000u-01.xml", 31, 568), ("d04-081-03.xml", 39, 447)):
        strokes = parse_line_strokes(samples[base], base)
        assert (len(strokes), sum(len(s) for s in strokes)) == (n_strokes, n_points)


def test_parse_path_and_bytes_agree(samples, tmp_path):
    path = tmp_path / "a01-000u-02.xml"
    path.write_bytes(samples["a01-000u-02.xml"])
    a, b = parse_line_strokes(path), parse_line_strokes(samples["a01-000u-02.xml"], "x")
    assert len(a) == len(b) and all(np.array_equal(p, q) for p, q in zip(a, b))


@pytest.mark.parametrize("damage", ["truncated", "garbage", "root", "entity", "attribute", "number", "empty"])
def test_malformed_xml_gives_a_clear_error_naming_the_file(samples, tmp_path, damage):
    good = samples["a01-000u-01.xml"]
    bad = {
        "truncated": good[: len(good) // 2],
        "garbage": b"\x00\x01 not xml",
        "root": b"<?xml version='1.0'?><Foo><StrokeSet/></Foo>",
        "entity": b'<?xml version="1.0"?><!DOCTYPE W [<!ENTITY a "aaaa">]>'
                  b"<WhiteboardCaptureSession>&a;</WhiteboardCaptureSession>",
        "attribute": good.replace(b' x="1073"', b"", 1),
        "number": good.replace(b'x="1073"', b'x="abc"', 1),
        "empty": b"<WhiteboardCaptureSession><StrokeSet><Stroke/></StrokeSet></WhiteboardCaptureSession>",
    }[damage]
    with pytest.raises(DataError, match=r"^bad-01\.xml: "):
        parse_line_strokes(bad, "bad-01.xml")
    path = tmp_path / "broken-02.xml"
    path.write_bytes(bad)
    with pytest.raises(DataError, match=re.escape(str(path))):
        parse_line_strokes(path)
    assert issubclass(DataError, ValueError)


def test_transcription_and_split_files(samples, iam_root):
    csr = parse_transcription(samples["a01-000u.txt"], "a01-000u.txt")
    assert len(csr) == 6 and csr[0] == "A MOVE to stop Mr . Gaitskell" and csr[-1] == "resolution on the subject"
    assert len(parse_transcription(samples["a08-551z.txt"])) == 8  # CRLF file
    with pytest.raises(DataError, match="no.txt"):
        parse_transcription(b"OCR:\n\nfoo\n", "no.txt")
    train = read_split(iam_root / "splits" / "trainset.txt")
    assert len(train) == 775 and train[:2] == ["a01-020x", "d04-081"]
    assert [len(read_split(iam_root / "splits" / f"{n}.txt")) for n in ("testset_v", "testset_t", "testset_f")] \
        == [192, 216, 544]


def test_set_names():
    assert expand_sets("paper_train") == PAPER_TRAIN
    assert expand_sets(["testset_v", "all"]) == ("testset_v", "trainset", "testset_t", "testset_f")
    with pytest.raises(ValueError, match="unknown IAM-OnDB set"):
        expand_sets("testset_x")


def test_interpolation_fills_the_gaps_of_a_real_line(samples):
    strokes = parse_line_strokes(samples[GAP_LINE + ".xml"], GAP_LINE)
    raw = preprocess(strokes, Preprocessing(fill_gaps=False, remove_outliers=False))
    filled = preprocess(strokes, Preprocessing(remove_outliers=False))
    assert len(raw) == samples[GAP_LINE + ".xml"].count(b"<Point ") == 506
    assert len(filled) == 519  # 13 readings restored
    assert step_lengths(raw).max() > 690 and step_lengths(filled).max() < 110  # the 'f' descender
    assert raw[:, 2].sum() == filled[:, 2].sum()  # no stroke added or lost


# ---------------------------------------------------------------------------------------------- small roots


def test_mismatched_form_is_reported_and_skipped(samples, tmp_path):
    root = make_root(tmp_path / "iam", samples, MINI_SPLITS)
    problems: list = []
    lines = load_iamondb(root, "trainset", cache_dir=tmp_path / "cache", progress=False, problems=problems)
    assert [line.id for line in lines] == [f"a01-000u-{k:02d}" for k in range(1, 7)]
    assert lines[1].text == "from nomnating any more Labour"  # (sic) the transcription as published
    assert len(problems) == 1 and problems[0].where == "a08-551z"
    assert "9 line files" in problems[0].message and "8 transcription lines" in problems[0].message
    # without a problems list the same is reported as one warning
    with pytest.warns(DataWarning, match="a08-551z"):
        load_iamondb(root, "trainset", cache_dir=tmp_path / "cache", progress=False)
    # for the unconditional net the unpaired lines can be kept, without text
    kept = load_iamondb(root, "trainset", cache_dir=tmp_path / "cache", progress=False,
                        require_text=False, problems=[])
    assert len(kept) == 15 and [line.text for line in kept[6:]] == [None] * 9


def test_broken_files_are_reported_not_fatal(samples, tmp_path):
    truncated = samples["a01-000u-03.xml"][:500]
    root = make_root(tmp_path / "iam", samples, {**MINI_SPLITS, "testset_t": ["a01-000u", "z99-999"]},
                     replace={"a01-000u-03.xml": truncated, "d04-081.txt": None})
    problems: list = []
    by_set = load_iamondb_sets(root, ["testset_t", "testset_v"], cache_dir=tmp_path / "c", progress=False,
                               problems=problems)
    # the truncated line is skipped, the rest of the form keeps its pairing (line k <-> CSR line k)
    assert [line.id[-2:] for line in by_set["testset_t"]] == ["01", "02", "04", "05", "06"]
    assert by_set["testset_t"][2].text == "meeting of Labour M Ps tomorrow"
    assert by_set["testset_v"] == []  # its transcription file is missing
    where = {p.where: p.message for p in problems}
    assert "malformed XML" in where["a01-000u-03.xml"]
    assert "no transcription" in where["d04-081"] and "no line files" in where["z99-999"]
    # as a primer, the truncated line says why it cannot be used; a line that is not there says so
    from graves.data.primer import PrimerError, load_primer

    with pytest.raises(PrimerError, match="a01-000u-03' cannot be used: a01-000u-03.xml: malformed XML"):
        load_primer("a01-000u-03", data_root=root)
    with pytest.raises(PrimerError, match="a01-000u-77' not found"):
        load_primer("a01-000u-77", data_root=root)
    assert load_primer("a01-000u-04", data_root=root).text == "meeting of Labour M Ps tomorrow"


def test_without_defusedxml_nothing_is_read_or_cached(samples, tmp_path, monkeypatch):
    # session 15's review: every line used to be "skipped" and the empty split was cached, and then kept
    # being loaded after defusedxml was installed
    import graves.data.iamondb as iam

    root = make_root(tmp_path / "iam", samples, MINI_SPLITS)
    monkeypatch.setattr(iam, "DefusedExpatParser", object)
    with pytest.raises(DataError, match="needs defusedxml"):
        load_iamondb(root, ["testset_v"], cache_dir=tmp_path / "c", progress=False, problems=[])
    assert not list(tmp_path.rglob("*.npz"))  # nothing cached
    monkeypatch.undo()
    assert len(load_iamondb(root, ["testset_v"], cache_dir=tmp_path / "c", progress=False, problems=[])) > 0


def test_archives_and_folders_give_identical_lines(samples, tmp_path):
    a = load_iamondb(make_root(tmp_path / "dir", samples, MINI_SPLITS), ["trainset", "testset_v"],
                     cache_dir=tmp_path / "c1", progress=False, problems=[])
    b = load_iamondb(make_root(tmp_path / "tar", samples, MINI_SPLITS, archive=True), ["trainset", "testset_v"],
                     cache_dir=tmp_path / "c2", progress=True, problems=[])
    assert len(a) == 11 and [x.id for x in a] == [y.id for y in b]
    assert all(x.text == y.text and np.array_equal(x.offsets, y.offsets) for x, y in zip(a, b))


def test_damaged_archive_names_the_archive(samples, tmp_path):
    root = make_root(tmp_path / "iam", samples, MINI_SPLITS, archive=True)
    data = (root / "lineStrokes-all.tar.gz").read_bytes()
    (root / "lineStrokes-all.tar.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="lineStrokes-all.tar.gz"):
        load_iamondb(root, "trainset", cache_dir=tmp_path / "c", progress=False, use_cache=False)
    with pytest.raises(DataError, match="testset_f.txt"):
        load_iamondb(root, "testset_f", cache_dir=tmp_path / "c", progress=False)
    (root / "lineStrokes-all.tar.gz").unlink()
    with pytest.raises(DataError, match="neither lineStrokes/"):
        load_iamondb(root, "trainset", cache_dir=tmp_path / "c", progress=False)


def _cache_files(cache: Path) -> set[str]:
    return {p.name for p in (cache / "iamondb").glob("*.npz")}


def test_cache_hits_and_misses(samples, tmp_path):
    root = make_root(tmp_path / "iam", samples, MINI_SPLITS, archive=True)
    cache = tmp_path / "cache"
    first = load_iamondb(root, "testset_v", cache_dir=cache, progress=False)
    files = _cache_files(cache)
    assert len(files) == 1 and not list((cache / "iamondb").glob("*.tmp"))
    second = load_iamondb(root, "testset_v", cache_dir=cache, progress=False)
    assert _cache_files(cache) == files
    assert all(np.array_equal(x.offsets, y.offsets) and x.text == y.text for x, y in zip(first, second))
    # a changed preprocessing setting misses
    load_iamondb(root, "testset_v", cache_dir=cache, progress=False, settings=Preprocessing(max_step=250.0))
    assert len(_cache_files(cache)) == 2
    # a changed split list misses
    (root / "splits" / "testset_v.txt").write_text(" d04-081\n a01-000u\n")
    assert len(load_iamondb(root, "testset_v", cache_dir=cache, progress=False)) == 11
    assert len(_cache_files(cache)) == 3
    # a changed archive misses (content digest; size and mtime only decide when to re-hash)
    make_root(root, samples, {}, archive=True, replace={"d04-081-01.xml": samples["d04-081-02.xml"]})
    changed = load_iamondb(root, "testset_v", cache_dir=cache, progress=False)
    assert len(_cache_files(cache)) == 4
    assert np.array_equal(changed[0].offsets, changed[1].offsets)
    # the cache holds no pickles
    for name in _cache_files(cache):
        np.load(cache / "iamondb" / name, allow_pickle=False).close()
    # a damaged cache file is rebuilt, not trusted
    for name in _cache_files(cache):
        (cache / "iamondb" / name).write_bytes(b"junk")
    again = load_iamondb(root, "testset_v", cache_dir=cache, progress=False)
    assert all(np.array_equal(x.offsets, y.offsets) for x, y in zip(changed, again))
    assert sum((cache / "iamondb" / name).read_bytes() != b"junk" for name in _cache_files(cache)) == 1


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GRAVES_CACHE", str(tmp_path / "elsewhere"))
    assert default_cache_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("GRAVES_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "graves"


# ---------------------------------------------------------------------------------------------- full data


def test_line_file_counts_match_the_paper(iam_root):
    counts = count_line_files(iam_root, "all")
    assert counts == {"trainset": 5364, "testset_v": 1438, "testset_t": 1518, "testset_f": 3859}
    assert sum(counts[n] for n in PAPER_TRAIN) == 10741


@pytest.fixture(scope="session")
def full(iam_root, tmp_path_factory):
    """Every split loaded once (timed), with its cache in a session tmp dir."""
    cache = tmp_path_factory.mktemp("iam-cache")
    problems: list = []
    t0 = time.perf_counter()
    by_set = load_iamondb_sets(iam_root, "all", cache_dir=cache, progress=False, problems=problems)
    seconds = time.perf_counter() - t0
    print(f"\nIAM-OnDB first load (all splits): {seconds:.1f} s")
    return {"by_set": by_set, "problems": problems, "cache": cache, "seconds": seconds}


def test_paired_split_sizes(full):
    sizes = {n: len(v) for n, v in full["by_set"].items()}
    # the paper's counts, less the 9 lines of a08-551z (trainset), whose transcription does not pair up
    assert sizes == {"trainset": 5355, "testset_v": 1438, "testset_t": 1518, "testset_f": 3859}
    assert [str(p) for p in full["problems"]] == [
        "a08-551z: 9 line files (numbered 1..9) but 8 transcription lines; form skipped"]


def test_second_load_is_fast_and_equal(full, iam_root):
    t0 = time.perf_counter()
    train, valid = load_paper_split(iam_root, cache_dir=full["cache"], progress=False, problems=[])
    seconds = time.perf_counter() - t0
    print(f"\nIAM-OnDB second load (paper split, cached): {seconds:.2f} s")
    assert seconds < 10
    assert len(train) == 10732 and len(valid) == 1438
    expected = [line for n in PAPER_TRAIN for line in full["by_set"][n]]
    assert [x.id for x in train] == [y.id for y in expected]
    assert all(x.text == y.text and np.array_equal(x.offsets, y.offsets) for x, y in zip(train, expected))
    everything, _ = load_paper_split(iam_root, cache_dir=full["cache"], progress=False, require_text=False,
                                     problems=[])
    assert len(everything) == 10741  # the paper's training-set size


def test_every_line_is_well_formed(full):
    lines: list[Line] = [line for v in full["by_set"].values() for line in v]
    assert len({line.id for line in lines}) == len(lines)
    total = 0
    for line in lines:
        o = line.offsets
        assert o.dtype == np.float32 and o.ndim == 2 and o.shape[1] == 3 and len(o) >= 20
        assert o[0, 0] == 0 and o[0, 1] == 0 and o[-1, 2] == 1 and set(np.unique(o[:, 2])) <= {0.0, 1.0}
        assert step_lengths(o).max() <= MAX_STEP  # outlier removal leaves no long pen-down step
        assert line.text and line.text == line.text.strip()
        total += len(o)
    assert 7_600_000 < total < 7_750_000  # 7.66 M points in the files, ~0.6 % restored, 0 dropped


def test_normaliser_on_the_training_set(full):
    train = [line.offsets for n in PAPER_TRAIN for line in full["by_set"][n]]
    norm = Normaliser.fit(train)
    n, s1, s2 = 0, np.zeros(2), np.zeros(2)
    for o in train:  # moments of the normalised data, line by line (a 6.8 M-row copy is slow here)
        z = norm.normalise(o)[:, :2].astype(np.float64)
        n, s1, s2 = n + len(z), s1 + z.sum(axis=0), s2 + (z * z).sum(axis=0)
    np.testing.assert_allclose(s1 / n, 0, atol=1e-6)
    np.testing.assert_allclose(np.sqrt(s2 / n - (s1 / n) ** 2), 1, atol=1e-6)
    assert 30 < norm.std[0] < 60 and 30 < norm.std[1] < 60  # whiteboard units per step


def test_alphabet(full):
    alphabet = iamondb_alphabet(line for v in full["by_set"].values() for line in v)
    assert alphabet == "".join(sorted(set(alphabet)))
    assert set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,'\"") <= set(alphabet)
    assert "\n" not in alphabet and "\r" not in alphabet


def test_review_damage_cases_are_one_line_errors_or_rebuilt(samples, tmp_path):
    """Found in a review of the data layer; each used to be a traceback, a stale cache or silent damage."""
    from graves.data.iamondb import DataError, parse_line_strokes

    root = make_root(tmp_path / "iam", samples, MINI_SPLITS, archive=True)
    cache = tmp_path / "cache"
    good = load_iamondb(root, "testset_v", cache_dir=cache, progress=False)
    # a cache file damaged inside (a zip member bit-flipped, or truncated) is a miss, rebuilt
    for name in _cache_files(cache):
        data = bytearray((cache / "iamondb" / name).read_bytes())
        (cache / "iamondb" / name).write_bytes(bytes(data[: len(data) // 2]))
    (cache / "iamondb" / "digests.json").write_text("[]")  # valid JSON, not ours
    again = load_iamondb(root, "testset_v", cache_dir=cache, progress=False)
    assert [x.id for x in again] == [x.id for x in good]
    assert all(np.array_equal(x.offsets, y.offsets) for x, y in zip(good, again))
    # an encoding declaration expat cannot read is a malformed file (skipped), not a crash of the load
    bad = b'<?xml version="1.0" encoding="x-nonexistent"?>' + samples["d04-081-01.xml"].split(b"?>", 1)[1]
    with pytest.raises(DataError, match="unreadable XML"):
        parse_line_strokes(bad, "x.xml")
    # coordinates finite as float64 but not as float32 offsets: a one-line error, not inf in the data
    parts = samples["d04-081-01.xml"].split(b"<Stroke ")  # the second stroke far away: a pen-up jump of 1e39
    parts[2] = re.sub(rb'x="[0-9.]+"', b'x="1e39"', parts[2])
    huge = b"<Stroke ".join(parts)
    root2 = make_root(tmp_path / "iam2", samples, MINI_SPLITS, archive=True, replace={"d04-081-01.xml": huge})
    problems: list = []
    lines = load_iamondb(root2, "testset_v", cache_dir=tmp_path / "c2", progress=False, problems=problems)
    assert all(np.isfinite(x.offsets).all() for x in lines)
    assert any("coordinates too large" in p.message for p in problems)
    # a gzip whose check fails is a damaged archive: tarfile's stream mode never read the trailer, so a
    # flipped bit in the data passed as other XML; here the trailer's CRC itself is flipped
    archive = root / "lineStrokes-all.tar.gz"
    trial = bytearray(archive.read_bytes())
    trial[-8] ^= 0x01  # the CRC-32 of the uncompressed data (then 4 bytes of length)
    archive.write_bytes(bytes(trial))
    with pytest.raises(DataError, match="damaged archive"):
        load_iamondb(root, "testset_v", cache_dir=tmp_path / "c3", progress=False)


def test_lines_pair_with_transcription_lines_by_their_numbers(samples, tmp_path):
    # a form whose line files are numbered 1, 2, 4..7 has as many files as transcription lines (6), but
    # line 3's text has no pen trace: skipped, not mis-paired
    root = make_root(tmp_path / "iam", samples, {"trainset": ["a01-000u"]},
                     replace={"a01-000u-03.xml": None, "a01-000u-07.xml": samples["a01-000u-06.xml"]})
    problems: list = []
    assert load_iamondb(root, "trainset", cache_dir=tmp_path / "c", progress=False, problems=problems) == []
    assert len(problems) == 1 and "6 line files (numbered 1..7) but 6 transcription lines" in problems[0].message
    # without text, the lines keep their own numbers
    kept = load_iamondb(root, "trainset", cache_dir=tmp_path / "c", progress=False, require_text=False,
                        problems=[])
    assert [line.id[-2:] for line in kept] == ["01", "02", "04", "05", "06", "07"]


def test_split_lists_and_roots_are_checked(samples, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text(" a01-000u\n notaform\n")
    with pytest.raises(DataError, match=r"bad\.txt:2: not a form id: ' notaform'"):
        read_split(bad)
    wrong_root = (b"<?xml version='1.0'?><Foo><StrokeSet><Stroke>"
                  b'<Point x="1" y="2" time="0.1"/><Point x="3" y="4" time="0.2"/></Stroke></StrokeSet></Foo>')
    with pytest.raises(DataError, match=r"^w-01\.xml: expected a <WhiteboardCaptureSession> root, found <Foo>"):
        parse_line_strokes(wrong_root, "w-01.xml")


def test_problems_go_to_their_own_split_and_unreadable_splits_are_not_cached(samples, tmp_path, monkeypatch):
    import graves.data.iamondb as iam

    truncated = samples["a01-000u-03.xml"][:500]
    root = make_root(tmp_path / "iam", samples, MINI_SPLITS, replace={"a01-000u-03.xml": truncated})
    cache = tmp_path / "c"
    problems: list = []
    by_set = load_iamondb_sets(root, ["trainset", "testset_v"], cache_dir=cache, progress=False, problems=problems)
    assert len(by_set["trainset"]) == 5 and len(by_set["testset_v"]) > 0
    assert sorted(p.where for p in problems) == ["a01-000u-03.xml", "a08-551z"]  # each once
    own: list = []
    load_iamondb(root, "testset_v", cache_dir=cache, progress=False, problems=own)  # from the cache
    assert own == []
    cached: list = []
    load_iamondb(root, "trainset", cache_dir=cache, progress=False, problems=cached)
    assert sorted(p.where for p in cached) == ["a01-000u-03.xml", "a08-551z"]
    # a line file that cannot be read (a permission, a flaky disk) is reported and its split not cached
    real = iam._iter_files

    def flaky(source, wanted, progress, desc):
        for base, content in real(source, wanted, progress, desc):
            yield base, (OSError("Permission denied") if base == "d04-081-02.xml" else content)

    monkeypatch.setattr(iam, "_iter_files", flaky)
    fresh = tmp_path / "c2"
    unread: list = []
    load_iamondb(root, "testset_v", cache_dir=fresh, progress=False, problems=unread)
    assert [(p.where, "cannot read" in p.message) for p in unread] == [("d04-081-02.xml", True)]
    assert not list(fresh.rglob("*.npz"))
    monkeypatch.undo()
    load_iamondb(root, "testset_v", cache_dir=fresh, progress=False, problems=[])
    assert len(list(fresh.rglob("*.npz"))) == 1


def test_a_change_in_the_parsing_code_misses_the_cache(samples, tmp_path, monkeypatch):
    import graves.data.iamondb as iam

    root = make_root(tmp_path / "iam", samples, MINI_SPLITS)
    cache = tmp_path / "cache"
    load_iamondb(root, "testset_v", cache_dir=cache, progress=False)
    monkeypatch.setattr(iam, "_code_digest", lambda: "another-version")
    load_iamondb(root, "testset_v", cache_dir=cache, progress=False)
    assert len(_cache_files(cache)) == 2
