"""Text data (Section 3): PTB word/char, enwik8 checks, byte/char loaders, truncated-BPTT streams, downloads."""

from __future__ import annotations

import bz2
import hashlib
import io
import json
import shutil
import socket
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import require_data

from graves.data import download as dl
from graves.data.text import (
    DataError,
    StreamBatcher,
    TextCorpus,
    Vocab,
    load_bytes_corpus,
    load_char_corpus,
    load_corpus,
    load_enwik8,
    load_ptb_char,
    load_ptb_word,
    read_bytes,
)

WIKI = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


@pytest.fixture(scope="module")
def ptb_word() -> TextCorpus:
    return load_corpus("ptb-word", require_data("ptb").parent)


@pytest.fixture(scope="module")
def ptb_char() -> TextCorpus:
    return load_corpus("ptb-char", require_data("ptb").parent)


# ------------------------------------------------------------------------------------------ PTB


def test_ptb_word_counts(ptb_word):
    c = ptb_word
    assert c.unit == "word" and len(c.vocab) == 10_000
    assert "<unk>" in c.vocab and "<eos>" in c.vocab and c.vocab.unk == "<unk>"
    assert (len(c.train), len(c.valid), len(c.test)) == (929_589, 73_760, 82_430)
    assert c.word_counts == {"train": 929_589, "valid": 73_760, "test": 82_430}
    assert all(a.dtype == np.int64 for a in c.splits.values())
    eos = c.vocab.index["<eos>"]
    assert int((c.train == eos).sum()) == 42_068  # one per line
    # the first line of the training file, then <eos>
    first = c.vocab.decode(c.train[:25])
    assert first[:3] == ["aer", "banknote", "berlitz"] and first[24] == "<eos>"
    text = c.vocab.to_text(c.train[:26])
    assert text.startswith("aer banknote") and "wachter\npierre" in text


def test_ptb_char_counts(ptb_char, ptb_word):
    c = ptb_char
    assert c.unit == "char" and len(c.vocab) == 49  # the paper's 49 symbols, the line end included
    assert "\n" in c.vocab and "_" in c.vocab and "<unk>" in c.vocab
    assert "<" not in c.vocab and ">" not in c.vocab  # only ever part of <unk>
    # words (incl. one end of sentence per line) equal the word-level token counts exactly
    assert c.word_counts == ptb_word.word_counts == {"train": 929_589, "valid": 73_760, "test": 82_430}
    assert (len(c.train), len(c.valid), len(c.test)) == (4_837_402, 379_102, 423_247)
    # the same sentences as the word-level file
    words = ptb_word.vocab.to_text(ptb_word.test).split("\n")
    chars = c.vocab.to_text(c.test).split("\n")
    assert [w.split() for w in words] == [ch.split("_") if ch else [] for ch in chars]


def test_ptb_char_unk_spelled_out():
    c = load_ptb_char(require_data("ptb"), unk_as_symbol=False)  # root may be the ptb folder itself
    assert len(c.vocab) == 50 and "<" in c.vocab and "<unk>" not in c.vocab
    assert len(c.train) == 4_837_402 + 4 * 45_020
    assert c.word_counts["test"] == 82_430


def test_ptb_word_vocabulary_is_by_frequency_and_closed(ptb_word, tmp_path):
    from collections import Counter

    counts = Counter(ptb_word.vocab.decode(ptb_word.train))
    freq = [counts[w] for w in ptb_word.vocab.symbols]
    assert ptb_word.vocab.symbols[0] == "the" and freq == sorted(freq, reverse=True)
    # a valid or test word outside the training vocabulary is an error naming the file, not a silent <unk>
    (tmp_path / "ptb.train.txt").write_text(" the cat <unk> sat \n the dog \n")
    (tmp_path / "ptb.valid.txt").write_text(" the cat \n")
    (tmp_path / "ptb.test.txt").write_text(" the zebra sat \n")
    with pytest.raises(DataError, match=r"ptb\.test\.txt: .*zebra"):
        load_ptb_word(tmp_path)


def test_ptb_char_unknown_symbol_in_valid(tmp_path):
    src = require_data("ptb")
    for s in ("train", "test"):
        shutil.copy(src / f"ptb.char.{s}.txt", tmp_path)
    (tmp_path / "ptb.char.valid.txt").write_text("a b c \n Q @ _ x \n ", encoding="utf-8")
    with pytest.raises(DataError, match=r"ptb\.char\.valid\.txt.*'Q'.*'@'"):
        load_ptb_char(tmp_path)


def test_ptb_char_bad_format(tmp_path):
    src = require_data("ptb")
    for s in ("train", "valid", "test"):
        shutil.copy(src / f"ptb.char.{s}.txt", tmp_path)
    for bad in ("ab c \n ", "abcd\n \n "):  # odd length; even length without the spaces
        (tmp_path / "ptb.char.test.txt").write_text(bad, encoding="utf-8")
        with pytest.raises(DataError, match=r"ptb\.char\.test\.txt: .*each character followed by one space"):
            load_ptb_char(tmp_path)


def test_ptb_missing_files_message(tmp_path):
    with pytest.raises(DataError, match="graves data download ptb"):
        load_corpus("ptb-word", tmp_path)
    with pytest.raises(DataError, match="fixed Mikolov split"):
        load_corpus("ptb-word", tmp_path, split="90-5-5")


# ------------------------------------------------------------------------------------------ Vocab


def test_vocab_unknown_symbols_error_and_unk():
    v = Vocab(["a", "b", "\n"], unit="char")
    assert v.encode("ab\nba").tolist() == [0, 1, 2, 1, 0]
    with pytest.raises(DataError, match=r"'x' ×2.*'Z' ×1"):
        v.encode("axbxZ")
    w = Vocab(["the", "<unk>", "<eos>", "cat"], unit="word", unk="<unk>")
    assert w.encode_text("the dog\ncat").tolist() == [0, 1, 2, 3]
    with pytest.raises(DataError, match="'dog'"):
        w.encode_text("the dog", allow_unk=False)
    assert w.to_text([0, 3, 2, 3]) == "the cat\ncat"


def test_vocab_multichar_symbol_and_round_trip(ptb_char):
    v = ptb_char.vocab
    ids = v.encode_text("a_<unk>_b\n")
    assert v.decode(ids) == ["a", "_", "<unk>", "_", "b", "\n"]
    with pytest.raises(DataError, match="'A'"):
        v.encode_text("A cat")  # PTB characters are lower case, words joined by '_'
    again = Vocab.from_dict(json.loads(json.dumps(v.to_dict())))
    assert again == v and again.encode_text("a_<unk>_b\n").tolist() == ids.tolist()


def test_vocab_bytes():
    v = Vocab([10, 65, 66, 200], unit="byte")
    assert v.encode(b"AB\n").tolist() == [1, 2, 0]
    with pytest.raises(DataError, match="67"):
        v.encode(b"ABC")
    assert Vocab.from_dict(json.loads(json.dumps(v.to_dict()))) == v
    assert v.to_text([1, 2, 0]) == "AB\n"


# ------------------------------------------------------------------------------------------ bytes, enwik8


def test_bytes_loader_on_wiki_sample():
    path = require_data("wiki-xml-sample", WIKI)
    c = load_bytes_corpus(path)
    total = len(c.train) + len(c.valid) + len(c.test)
    assert total == 6_089_746  # the sample decompressed (measured; the data README says the same)
    assert c.unit == "byte" and len(c.vocab) == 201  # distinct byte values in the sample (measured)
    assert (len(c.train), len(c.valid), len(c.test)) == (5_480_771, 304_488, 304_487)
    raw = bz2.decompress(path.read_bytes())
    assert hashlib.md5(raw).hexdigest() == "7daadc13d4b058a3ab976354a60cde19"
    assert bytes(c.vocab.decode(c.train[:10])) == raw[:10] == b"<mediawiki"
    assert bytes(c.vocab.decode(c.test[-5:])) == raw[-5:]
    paper = load_corpus("bytes", path.parent, path=WIKI, split="paper")
    assert (len(paper.train), len(paper.valid), paper.test) == (5_846_156, 243_590, None)
    with pytest.raises(DataError, match="summing to 1"):
        load_bytes_corpus(path, split=(0.5, 0.2))


def test_char_loader_on_wiki_sample():
    c = load_corpus("chars", require_data("wiki-xml-sample", WIKI))
    assert len(c.train) + len(c.valid) + len(c.test) == 6_071_068 and len(c.vocab) == 866
    assert c.vocab.to_text(c.train[:10]) == "<mediawiki"
    small = load_char_corpus(require_data("wiki-xml-sample", WIKI), split=(0.5, 0.5))
    assert small.vocab == c.vocab and len(small.train) == 3_035_534 and small.test is None


def test_read_bytes_zip(tmp_path):
    with zipfile.ZipFile(tmp_path / "x.zip", "w") as zf:
        zf.writestr("x", b"hello")
    assert read_bytes(tmp_path / "x.zip") == b"hello"
    assert load_bytes_corpus(tmp_path / "x.zip", split=(1.0,)).train.tolist() == [1, 0, 2, 2, 3]


def test_enwik8_rejects_wrong_size(tmp_path):
    (tmp_path / "enwik8").mkdir()
    with zipfile.ZipFile(tmp_path / "enwik8" / "enwik8.zip", "w") as zf:
        zf.writestr("enwik8", b"<mediawiki>" * 100)
    with pytest.raises(DataError, match=r"100,000,000 bytes, found 1,100"):
        load_corpus("enwik8", tmp_path)
    with pytest.raises(DataError, match=r"100,000,000 bytes, found 1,100"):
        dl.verify_enwik8(tmp_path / "enwik8" / "enwik8.zip")
    assert load_enwik8(tmp_path, verify=False, split=(1.0,)).train.size == 1_100
    with pytest.raises(DataError, match="graves data download enwik8"):
        load_enwik8(tmp_path / "nothing")


def test_enwik8_rejects_wrong_md5(tmp_path):
    fake = tmp_path / "enwik8"
    with open(fake, "wb") as f:
        f.truncate(100_000_000)  # right size (sparse), wrong content
    with pytest.raises(DataError, match="md5 of enwik8 is .*expected a1fa5ffddb56f4953e226637dabbb36a"):
        load_enwik8(tmp_path)


def test_enwik8_splits_of_the_right_size():
    from graves.data.text import _split_sizes

    assert _split_sizes(100_000_000, "paper") == [96_000_000, 4_000_000]
    assert _split_sizes(100_000_000, "90-5-5") == [90_000_000, 5_000_000, 5_000_000]


# ------------------------------------------------------------------------------------------ streams


def _collect(batcher):
    return [(x.clone(), y.clone(), r) for x, y, r in batcher]


@pytest.mark.parametrize("drop_last", [False, True])
def test_stream_batcher_layout(drop_last):
    N, B, T, R = 1003, 4, 7, 5
    ids = np.arange(N)
    sb = StreamBatcher(ids, batch_size=B, seq_len=T, reset_every=R, drop_last=drop_last)
    L = (N - 1) // B  # 250 pairs per stream
    batches = _collect(sb)
    assert len(batches) == len(sb) == (L // T if drop_last else -(-L // T))
    for j, (x, y, reset) in enumerate(batches):
        assert x.dtype == torch.long and x.shape == y.shape and x.shape[1] == B
        assert torch.equal(y, x + 1)  # targets are the inputs shifted by one (ids = arange)
        for b in range(B):  # stream b only ever holds its own contiguous range
            assert x[:, b].min() >= b * L and y[:, b].max() <= b * L + L
        assert reset == (j % R == 0)
        if j:  # each stream continues exactly where the previous batch stopped
            assert torch.equal(x[0], batches[j - 1][0][-1] + 1)
    seen = torch.cat([x for x, _, _ in batches]).T  # (B, ·)
    assert torch.equal(seen, torch.arange(B * L).reshape(B, L)[:, : seen.shape[1]])
    assert not drop_last or sb.num_targets == B * len(sb) * T
    assert drop_last or batches[-1][0].shape[0] == L - (len(sb) - 1) * T  # the shorter last batch
    assert batches[0][0][0, 0] == 0 and batches[0][1][0, 0] == 1  # first target ids[1], input ids[0]


def test_stream_batcher_null_input_predicts_every_symbol():
    sb = StreamBatcher(np.arange(10) + 5, batch_size=1, seq_len=4, null_input=-1)
    x = torch.cat([b.inputs for b in sb])[:, 0]
    y = torch.cat([b.targets for b in sb])[:, 0]
    assert x.tolist() == [-1] + list(range(5, 14)) and y.tolist() == list(range(5, 15))


def test_stream_batcher_epochs_and_resume():
    ids = np.arange(5000)
    a = StreamBatcher(ids, 3, 11, reset_every=4, shuffle=True, seed=7)
    first = _collect(a) + _collect(a)  # two epochs
    b = StreamBatcher(ids, 3, 11, reset_every=4, shuffle=True, seed=7)
    it = iter(b)
    consumed = [next(it) for _ in range(10)]
    state = json.loads(json.dumps(b.state_dict()))
    assert state["epoch"] == 0 and state["batch"] == 10
    c = StreamBatcher(ids, 3, 11, reset_every=4, shuffle=True, seed=7)
    c.load_state_dict(state)
    rest = _collect(c)
    assert len(rest) == len(b) - 10
    for (x, y, r), (x2, y2, r2) in zip(rest, first[10:]):
        assert torch.equal(x, x2) and torch.equal(y, y2) and r == r2
    assert torch.equal(consumed[-1].inputs, first[9][0])
    # mid second epoch
    for _ in range(3):
        next(iter(c))
    d = StreamBatcher(ids, 3, 11, reset_every=4, shuffle=True, seed=7)
    d.load_state_dict(c.state_dict())
    assert torch.equal(next(iter(d)).inputs, first[len(b) + 3][0])
    with pytest.raises(DataError, match="seq_len"):
        StreamBatcher(ids, 3, 12, reset_every=4, shuffle=True, seed=7).load_state_dict(state)
    # a position saved for other data or another layout is refused, by name
    for other, key in ((StreamBatcher(np.arange(5001), 3, 11, reset_every=4, shuffle=True, seed=7), "num_symbols"),
                       (StreamBatcher(ids, 3, 11, reset_every=5, shuffle=True, seed=7), "reset_every"),
                       (StreamBatcher(ids, 3, 11, reset_every=4, shuffle=False, seed=7), "shuffle"),
                       (StreamBatcher(ids, 3, 11, reset_every=4, shuffle=True, seed=8), "seed"),
                       (StreamBatcher(ids, 4, 11, reset_every=4, shuffle=True, seed=7), "batch_size")):
        with pytest.raises(DataError, match=f"cannot resume the text stream: {key} was"):
            other.load_state_dict(state)
    for epoch, batch in ((0, len(b) + 1), (0, -1), (-1, 0)):
        with pytest.raises(DataError, match=f"at epoch {epoch}, batch {batch}"):
            StreamBatcher(ids, 3, 11, reset_every=4, shuffle=True, seed=7).load_state_dict(
                {**state, "epoch": epoch, "batch": batch})


def test_stream_batcher_shuffle_keeps_streams_and_carried_state():
    N, B, T, R = 4001, 3, 10, 4
    sb = StreamBatcher(np.arange(N), B, T, reset_every=R, shuffle=True, seed=1)
    epochs = [_collect(sb) for _ in range(3)]
    assert len({len(e) for e in epochs}) == 1
    offsets = set()
    for batches in epochs:
        offsets.add(int(batches[0][0][0, 0]) % T)
        assert sum(r for _, _, r in batches) == -(-len(sb) // R)
        for j, (x, y, reset) in enumerate(batches):
            assert torch.equal(y, x + 1)
            assert torch.all(x[1:] == x[:-1] + 1)  # contiguous in time within each stream
            starts = x[0]
            assert torch.all(starts[1:] - starts[:-1] == sb.stream_len)  # rows are the B streams, in order
            if not reset:  # the carried state is valid: the stream continues exactly
                assert torch.equal(x[0], batches[j - 1][0][-1] + 1)
        covered = torch.cat([x for x, _, _ in batches]).flatten()
        assert covered.unique().numel() == covered.numel() == sb.num_targets  # every pair once per epoch
    assert len(offsets) > 1  # the cut points move between epochs
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(epochs[1], epochs[2]))


def test_stream_batcher_no_reset_and_errors():
    sb = StreamBatcher(torch.arange(100), 2, 5, reset_every=0)
    assert [r for _, _, r in sb] == [True] + [False] * (len(sb) - 1)
    with pytest.raises(DataError, match="too few"):
        StreamBatcher(np.arange(3), 4, 5)


# ------------------------------------------------------------------------------------------ download / check


def test_md5_check_passes_on_shared_ptb_and_fails_on_modified_copy(tmp_path):
    root = require_data("ptb").parent
    rows = {name: (ok, msg) for name, ok, msg in dl.check(root)}
    for name in dl.PTB_MD5:
        assert rows[f"ptb/{name}"] == (True, "md5 ok")
    assert rows["iam-ondb/lineStrokes-all.tar.gz"][0] or not (root / "iam-ondb").exists()
    (tmp_path / "ptb").mkdir()
    for name in dl.PTB_MD5:
        shutil.copy(root / "ptb" / name, tmp_path / "ptb" / name)
    with open(tmp_path / "ptb" / "ptb.valid.txt", "ab") as f:
        f.write(b" extra \n")
    rows = {name: (ok, msg) for name, ok, msg in dl.check(tmp_path)}
    ok, msg = rows["ptb/ptb.valid.txt"]
    assert ok is False and "expected aa0affc06ff7c36e977d7cd49e3839bf" in msg
    assert rows["ptb/ptb.train.txt"][0] is True
    assert rows["enwik8/enwik8.zip"] == (False, "missing (graves data download enwik8)")
    assert rows["iam-ondb/ascii-all.tar.gz"][0] is False


def test_data_check_of_chosen_datasets_only_reports_and_fails_on_those(tmp_path, capsys):
    """`graves data check iam-ondb` for a handwriting-only user: no enwik8 row, exit 0 when IAM-OnDB is whole."""
    from graves.cli import main

    root = require_data("iam-ondb").parent
    rows = dl.check(root, ["iam-ondb"])
    assert rows and all(name.startswith("iam-ondb/") and ok for name, ok, _ in rows)
    assert {name.split("/")[0] for name, _, _ in dl.check(tmp_path, ["ptb", "enwik8"])} == {"ptb", "enwik8"}
    assert main(["data", "check", "iam-ondb", "--data", str(root)]) == 0
    out = capsys.readouterr().out
    assert "iam-ondb/splits/trainset.txt" in out and "enwik8" not in out
    assert main(["data", "check", "--data", str(tmp_path)]) == 1  # all three, none there
    with pytest.raises(dl.DataError, match="unknown dataset bogus"):
        dl.check(root, ["bogus"])
    assert main(["data", "check", "bogus", "--data", str(root)]) == 2
    assert "unknown dataset bogus" in capsys.readouterr().err


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_offline_fails_fast_with_instructions(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}/simple-examples.tgz"
    t0 = time.monotonic()
    with pytest.raises(dl.DataError, match=r"could not download .*offline.*ptb\.train\.txt.*graves data check") as e:
        dl.download("ptb", tmp_path / "ptb", progress=False, url=url, timeout=2)
    assert time.monotonic() - t0 < 10
    assert str(tmp_path / "ptb") in str(e.value)
    assert list((tmp_path / "ptb").iterdir()) == []  # no partial files left
    with pytest.raises(dl.DataError, match="enwik8.zip"):
        dl.download("enwik8", tmp_path / "e", progress=False, url=url.replace("simple-examples.tgz", "x"), timeout=2)
    with pytest.raises(dl.DataError, match="unknown dataset"):
        dl.download("mnist", tmp_path)


def _tgz(path: Path, files: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_download_ptb_from_local_archive(tmp_path):
    src = require_data("ptb")
    files = {f"./simple-examples/data/{n}": (src / n).read_bytes() for n in dl.PTB_MD5}
    files["./simple-examples/models/ptb.train.txt"] = b"not this one"
    _tgz(tmp_path / "simple-examples.tgz", files)
    dest = tmp_path / "data" / "ptb"
    out = dl.download("ptb", dest, progress=False, url=(tmp_path / "simple-examples.tgz").as_uri())
    assert out == dest and sorted(p.name for p in dest.iterdir()) == sorted(dl.PTB_MD5)
    assert all(ok for name, ok, _ in dl.check(tmp_path / "data") if name.startswith("ptb/"))

    # a corrupted archive: a DataError, and nothing written under the final name
    files["./simple-examples/data/ptb.test.txt"] = b"corrupt"
    _tgz(tmp_path / "bad.tgz", files)
    with pytest.raises(dl.DataError, match="md5 of ptb.test.txt"):
        dl.download("ptb", tmp_path / "bad", progress=False, url=(tmp_path / "bad.tgz").as_uri())
    assert not (tmp_path / "bad" / "ptb.test.txt").exists()
    assert not [p for p in (tmp_path / "bad").iterdir() if p.name.endswith(".part")]


def test_download_enwik8_rejects_a_wrong_file(tmp_path):
    with zipfile.ZipFile(tmp_path / "enwik8.zip", "w") as zf:
        zf.writestr("enwik8", b"abc")
    with pytest.raises(dl.DataError, match="100,000,000 bytes"):
        dl.download("enwik8", tmp_path / "out", progress=False, url=(tmp_path / "enwik8.zip").as_uri())
    assert list((tmp_path / "out").iterdir()) == []


def test_download_enwik8_from_local_zip(tmp_path, monkeypatch):
    data = b"<mediawiki>abc</mediawiki>\n"
    monkeypatch.setattr(dl, "ENWIK8_SIZE", len(data))
    monkeypatch.setattr(dl, "ENWIK8_MD5", hashlib.md5(data).hexdigest())
    with zipfile.ZipFile(tmp_path / "enwik8.zip", "w") as zf:
        zf.writestr("enwik8", data)
    out = dl.download("enwik8", tmp_path / "data" / "enwik8", progress=False, url=(tmp_path / "enwik8.zip").as_uri())
    assert out == tmp_path / "data" / "enwik8" / "enwik8.zip"
    c = load_corpus("enwik8", tmp_path / "data", split="90-5-5")
    assert len(c.train) + len(c.valid) + len(c.test) == len(data)
    assert bytes(c.vocab.decode(np.concatenate([c.train, c.valid, c.test]))) == data
    assert ("enwik8/enwik8.zip", True, "size and md5 ok") in dl.check(tmp_path / "data")


def test_review_damaged_corpora_and_downloads_are_one_line_errors(tmp_path, monkeypatch):
    """Found in a review of the data layer: each used to be a traceback or a silent wrong corpus."""
    import gzip
    import zipfile

    from graves.data.download import DataError, enwik8_file, verify_enwik8
    from graves.data.text import read_bytes

    from graves.data import download

    # a corrupt deflate stream inside a zip: zlib's own error, which the zip module does not wrap
    z = tmp_path / "c.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("enwik8", b"abcdefgh" * 4000)
    raw = bytearray(z.read_bytes())
    raw[30 + len("enwik8")] = 0xFF  # the first deflate block header: block type 3, which does not exist
    z.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"cannot decompress \(error: .*invalid block type"):
        read_bytes(z)
    monkeypatch.setattr(download, "ENWIK8_SIZE", 32_000)  # the size check passes; the member is then read
    with pytest.raises(DataError, match=r"damaged archive \(error: .*invalid block type"):
        verify_enwik8(z)
    monkeypatch.undo()
    # a tar archive is not a corpus (it used to become one: its headers and padding)
    tgz = tmp_path / "corpus.tar.gz"
    tgz.write_bytes(gzip.compress(b"x" * 1024))
    with pytest.raises(DataError, match="tar archive"):
        read_bytes(tgz)
    # a zip with several members names them
    several = tmp_path / "two.zip"
    with zipfile.ZipFile(several, "w") as zf:
        zf.writestr("a.txt", "a")
        zf.writestr("b.txt", "b")
    with pytest.raises(DataError, match=r"found 2 \(a.txt, b.txt\); unzip the one you want"):
        read_bytes(several)
    # a half-copied raw enwik8 does not hide a downloaded zip
    folder = tmp_path / "enwik8"
    folder.mkdir()
    (folder / "enwik8").write_bytes(b"half")
    assert enwik8_file(folder) == folder / "enwik8"  # alone, it is what there is (and check says it is wrong)
    (folder / "enwik8.zip").write_bytes(b"PK")
    assert enwik8_file(folder) == folder / "enwik8.zip"


def test_review_ptb_that_is_not_utf8_is_a_one_line_error(tmp_path, capsys):
    from graves.data.text import DataError, load_ptb_word

    (tmp_path / "ptb").mkdir()
    for split in ("train", "valid", "test"):
        (tmp_path / "ptb" / f"ptb.{split}.txt").write_bytes(b"a b\n\xae c\n")
    with pytest.raises(DataError, match=r"not UTF-8 text \(byte 0xae at offset 4\)"):
        load_ptb_word(tmp_path)


def test_download_moves_a_damaged_raw_enwik8_aside_and_reports_a_full_disk(tmp_path, monkeypatch):
    """Session 15's review: a damaged raw enwik8 of the right size hid every new download; a full disk read
    as 'offline'; a killed download's .part file stayed for ever."""
    import errno
    import os

    data = b"<mediawiki>abc</mediawiki>\n"
    monkeypatch.setattr(dl, "ENWIK8_SIZE", len(data))
    monkeypatch.setattr(dl, "ENWIK8_MD5", hashlib.md5(data).hexdigest())
    with zipfile.ZipFile(tmp_path / "enwik8.zip", "w") as zf:
        zf.writestr("enwik8", data)
    dest = tmp_path / "data" / "enwik8"
    dest.mkdir(parents=True)
    (dest / "enwik8").write_bytes(b"X" * len(data))  # the right size, the wrong bytes
    stale = dest / ".enwik8.zip.abc123.part"
    stale.write_bytes(b"half")
    os.utime(stale, (0, 0))
    out = dl.download("enwik8", dest, progress=False, url=(tmp_path / "enwik8.zip").as_uri())
    assert out == dest / "enwik8.zip" and dl.enwik8_file(dest) == out
    assert (dest / "enwik8.bad").is_file() and not stale.exists()
    assert ("enwik8/enwik8.zip", True, "size and md5 ok") in dl.check(tmp_path / "data")

    real_fdopen = os.fdopen

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

        def write(self, b):
            raise OSError(errno.ENOSPC, "No space left on device")

        def tell(self):
            return 0

    monkeypatch.setattr(dl.os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
    with pytest.raises(dl.DataError, match=r"cannot write into .*: No space left on device") as e:
        dl.download("enwik8", tmp_path / "full", progress=False, url=(tmp_path / "enwik8.zip").as_uri())
    assert "offline" not in str(e.value) and list((tmp_path / "full").iterdir()) == []


def test_data_check_accepts_the_unpacked_iam_ondb_folders_and_a_pack(tmp_path):
    iam = tmp_path / "iam-ondb"
    (iam / "lineStrokes" / "a01" / "a01-000").mkdir(parents=True)
    (iam / "lineStrokes" / "a01" / "a01-000" / "a01-000u-01.xml").write_text("<WhiteboardCaptureSession/>")
    (iam / "ascii" / "a01" / "a01-000").mkdir(parents=True)
    (iam / "ascii" / "a01" / "a01-000" / "a01-000u.txt").write_text("CSR:\n\nhi\n")
    rows = {name: (ok, msg) for name, ok, msg in dl.check(tmp_path)}
    assert rows["iam-ondb/lineStrokes/"] == (True, "unpacked folder, 1 files")
    assert rows["iam-ondb/ascii/"] == (True, "unpacked folder, 1 files")
    import json

    from graves.data.iamondb import PACK_FORMAT, PACK_VERSION

    packed = tmp_path / "packed" / "iam-ondb"
    packed.mkdir(parents=True)
    header = {"format": PACK_FORMAT, "version": PACK_VERSION, "sets": {"trainset": {}, "testset_v": {}}}
    np.savez(packed / "iamondb.pack.npz", meta=np.frombuffer(json.dumps(header).encode(), np.uint8))
    rows = {name: ok for name, ok, _ in dl.check(tmp_path / "packed")}
    assert rows["iam-ondb/iamondb.pack.npz"] and rows["iam-ondb/lineStrokes-all.tar.gz"]
    assert rows["iam-ondb/splits/trainset.txt"] and rows["iam-ondb/splits/testset_v.txt"]  # held by the pack
    assert not rows["iam-ondb/splits/testset_t.txt"]
    (packed / "iamondb.pack.npz").write_bytes(b"")  # an empty file is no pack
    rows = {name: ok for name, ok, _ in dl.check(tmp_path / "packed")}
    assert not rows["iam-ondb/iamondb.pack.npz"] and not rows["iam-ondb/lineStrokes-all.tar.gz"]
    assert {name: ok for name, ok, _ in dl.check(tmp_path / "none")}["iam-ondb/lineStrokes-all.tar.gz"] is False
