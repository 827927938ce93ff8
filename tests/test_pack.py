"""The IAM-OnDB pack (one compressed file in place of the archives) and the GPU session's job script.

Packs are made from a few real forms (``make_root`` of ``test_iamondb``) in ``tmp_path``, and once from
the real testset_v through the cache; the job script runs in-process at toy size on the CPU.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, require_data
from graves.cli import main as cli_main
from graves.config import load_config
from graves.data.iamondb import (
    PACK_NAME,
    DataError,
    Preprocessing,
    find_pack,
    load_iamondb,
    load_iamondb_sets,
    load_paper_split,
    pack_line,
    write_pack,
)
from test_iamondb import MINI_SPLITS, iam_root, make_root, samples  # noqa: F401  (fixtures)

FOUR_SPLITS = {**MINI_SPLITS, "testset_t": [], "testset_f": ["a01-000u"]}


def _same(a, b) -> None:
    """Lines identical: ids, texts, offsets bit for bit."""
    assert [x.id for x in a] == [y.id for y in b]
    assert [x.text for x in a] == [y.text for y in b]
    for x, y in zip(a, b):
        assert x.offsets.dtype == y.offsets.dtype == np.float32 and x.offsets.shape == y.offsets.shape
        assert x.offsets.tobytes() == y.offsets.tobytes()


@pytest.fixture
def mini(samples, tmp_path):  # noqa: F811
    """A small archive root (four splits, one empty, one form whose text does not pair up) and its pack."""
    root = make_root(tmp_path / "iam", samples, FOUR_SPLITS, archive=True)
    pack = tmp_path / "data" / "iam-ondb" / PACK_NAME
    counts = write_pack(root, pack, cache_dir=tmp_path / "cache")
    assert counts == {"trainset": 15, "testset_v": 5, "testset_t": 0, "testset_f": 6}
    return root, pack


def test_pack_gives_the_lines_of_the_archives(mini):
    root, pack = mini
    for require_text in (False, True):
        want_problems: list = []
        want = load_iamondb_sets(root, "all", progress=False, use_cache=False, require_text=require_text,
                                 problems=want_problems)
        for where in (pack, pack.parent):  # the pack itself, or the folder holding it
            problems: list = []
            got = load_iamondb_sets(where, "all", progress=False, require_text=require_text, problems=problems)
            assert list(got) == list(want)
            for name in want:
                _same(got[name], want[name])
            assert [str(p) for p in problems] == [str(p) for p in want_problems]
    assert any(p.where == "a08-551z" for p in want_problems)  # the unpaired form travels with the pack
    assert len(load_iamondb(pack, "trainset", progress=False, require_text=False, problems=[])) == 15
    train, valid = load_paper_split(pack.parent, progress=False, problems=[])
    _same(valid, load_iamondb(root, "testset_v", progress=False, use_cache=False))


def test_a_line_by_id_from_the_pack(mini, tmp_path):
    from graves.data.primer import PrimerError, load_iam_line

    root, pack = mini
    want = {ln.id: ln for ln in load_iamondb(root, "all", progress=False, use_cache=False, problems=[])}
    some = sorted(want)[::5]
    for line_id in some:  # through the pack file, its folder, and the data root above it (--prime LINE_ID)
        for where in (pack, pack.parent, pack.parent.parent):
            offsets, text = load_iam_line(line_id, where)
            assert text == want[line_id].text and offsets.tobytes() == want[line_id].offsets.tobytes()
    assert pack_line(pack, "a01-000u-99") is None
    with pytest.raises(PrimerError, match="not found"):
        load_iam_line("a01-000u-99", pack.parent.parent)
    bad = tmp_path / "bad" / PACK_NAME
    bad.parent.mkdir()
    bad.write_bytes(pack.read_bytes()[:200])  # truncated
    with pytest.raises(DataError, match="bad.*pack"):
        pack_line(bad, some[0])


def test_find_pack_prefers_the_official_files(mini, tmp_path):
    root, pack = mini
    assert find_pack(pack) == pack and find_pack(pack.parent) == pack
    assert find_pack(root) is None and find_pack(tmp_path / "nowhere") is None
    (root / PACK_NAME).write_bytes(pack.read_bytes())
    assert find_pack(root) is None  # archives and a pack side by side: the archives are read


def test_pack_faults_are_one_line_data_errors_naming_the_file(mini, tmp_path):
    _, pack = mini
    with pytest.raises(DataError, match=rf"{pack}: .*other preprocessing settings: max_step=.*250"):
        load_iamondb(pack, "testset_v", progress=False, settings=Preprocessing(max_step=250.0))
    sub = tmp_path / "sub.npz"
    write_pack(pack, sub, sets="testset_v")  # re-pack a subset from a pack
    _same(load_iamondb(sub, "testset_v", progress=False), load_iamondb(pack, "testset_v", progress=False))
    with pytest.raises(DataError, match=rf"{sub}: the pack lacks split\(s\) trainset"):
        load_paper_split(sub, progress=False)
    data = pack.read_bytes()
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    for name, content in [("truncated", data[: len(data) // 2]), ("flipped", bytes(flipped)),
                          ("empty", b""), ("junk", b"not a zip at all")]:
        bad = tmp_path / f"{name}.npz"
        bad.write_bytes(content)
        with pytest.raises(DataError) as info:
            load_iamondb(bad, "all", progress=False)  # (members are read lazily: damage to a split not asked for goes unseen)
        message = str(info.value)
        assert message.startswith(f"{bad}: ") and "\n" not in message, message
    with pytest.raises(DataError, match=rf"{tmp_path / 'missing.npz'}: no such pack"):
        load_iamondb(tmp_path / "missing.npz", "testset_v", progress=False)
    other = tmp_path / "other.npz"
    np.savez_compressed(other, meta=np.frombuffer(b'{"hello": 1}', np.uint8))
    with pytest.raises(DataError, match=rf"{other}: not an IAM-OnDB pack"):
        load_iamondb(other, "testset_v", progress=False)


@pytest.mark.filterwarnings("ignore:IAM-OnDB. skipped")
def test_handwriting_task_reads_the_pack_with_unchanged_configs(mini, tmp_path):
    from graves.tasks.handwriting import HandwritingTask, load_lines

    root, pack = mini
    for max_lines in (4, 0):
        base = [f"data.max_lines={max_lines}", f"data.cache_dir={json.dumps(str(tmp_path / 'cache'))}"]
        from_files = load_config(REPO / "configs" / "toy-hw-synth.toml", base + [f"data.root={json.dumps(str(root))}"])
        from_pack = from_files.override([f"data.root={json.dumps(str(pack.parents[1]))}"])  # <root>/iam-ondb/pack
        for sets in (("trainset",), ("testset_v", "testset_f")):
            _same(load_lines(from_pack, sets), load_lines(from_files, sets))
        a, b = HandwritingTask(from_files), HandwritingTask(from_pack)
        assert a.normaliser.to_dict() == b.normaliser.to_dict() and a.alphabet.to_dict() == b.alphabet.to_dict()
        assert a.evaluate(a.model, "valid") == b.evaluate(a.model, "valid")


def test_real_testset_v_pack_equals_the_loader(tmp_path):
    root = require_data("iam-ondb")
    pack = tmp_path / "v.npz"
    write_pack(root, pack, sets="testset_v")  # through the default cache (filled if cold)
    _same(load_iamondb(pack, "testset_v", progress=False, require_text=False, problems=[]),
          load_iamondb(root, "testset_v", progress=False, require_text=False, problems=[]))


def test_cli_data_pack(samples, tmp_path, monkeypatch, capsys):  # noqa: F811
    root = make_root(tmp_path / "iam", samples, FOUR_SPLITS, archive=True)
    monkeypatch.setenv("GRAVES_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    assert cli_main(["data", "pack", "--data", str(root), "-q"]) == 0
    assert (tmp_path / PACK_NAME).is_file()
    out = tmp_path / "deep" / "p.npz"
    assert cli_main(["data", "pack", "--data", str(root), "-o", str(out), "-q"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out} (" in printed and "trainset 15 lines" in printed and "testset_t 0 lines" in printed
    _same(load_iamondb(out, "all", progress=False, problems=[]),
          load_iamondb(tmp_path / PACK_NAME, "all", progress=False, problems=[]))
    assert not list(out.parent.glob(".*tmp"))  # written atomically
    assert cli_main(["data", "pack", "--data", str(tmp_path / "nowhere"), "-o", str(out)]) == 2
    assert "graves: error:" in capsys.readouterr().err
    # an output that cannot be written fails before the parsing; a full disk while writing is one line too
    (tmp_path / "file").write_text("x")
    assert cli_main(["data", "pack", "--data", str(root), "-o", str(tmp_path / "file" / "p.npz"), "-q"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    import graves.data.iamondb as iam

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(iam.os, "replace", full_disk)
    before = out.read_bytes()
    assert cli_main(["data", "pack", "--data", str(root), "-o", str(out), "-q"]) == 2
    assert "cannot write the pack" in capsys.readouterr().err and out.read_bytes() == before


# ---------------------------------------------------------------------------------------------- device job


def _device_job(tmp_path: Path | None = None):
    """scripts/device_job.py as a module; its default run directories go under ``tmp_path``."""
    spec = importlib.util.spec_from_file_location("device_job", REPO / "scripts" / "device_job.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if tmp_path is not None:
        (tmp_path / "runs").mkdir()
        module._tmp_root = lambda: str(tmp_path / "runs")
    return module


def test_device_job_trains_times_and_chains_at_toy_size(mini, tmp_path):
    import shutil

    import torch

    job = _device_job(tmp_path)
    data = str(mini[1].parents[1])  # holds iam-ondb/iamondb.pack.npz, no archives
    toy = str(REPO / "configs" / "toy-hw-synth.toml")
    common = ["--data", data, "train.threads=1", "train.epochs=5"]
    out = tmp_path / "out"
    run = tmp_path / "run"
    assert job.main([toy, "--minutes", "0.5", "--out", str(out), "--samples", "--run-dir", str(run), *common,
                     "train.max_steps=3", "train.eval_every=2"]) == 0
    files = {p.name for p in out.iterdir()}
    assert files == {"model.safetensors", "checkpoint.json", "trainer.pt", "metrics.jsonl", "summary.json",
                     "samples.png"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["device"].startswith("cpu") and summary["torch"] and summary["steps_per_second"] > 0
    assert summary["train"]["step"] == summary["session_steps"] == 3
    assert summary["config"]["train"]["max_minutes"] == 0.5 and summary["config"]["data"]["root"] == data
    assert summary["returned_checkpoint"]["which"] == "best" and summary["returned_checkpoint"]["resumable"]
    assert json.loads((out / "checkpoint.json").read_text())["step"] == summary["returned_checkpoint"]["step"]
    assert (out / "model.safetensors").read_bytes() == (run / "best" / "model.safetensors").read_bytes()
    assert sum(1 for _ in (out / "metrics.jsonl").open()) >= 3
    # what comes back is the run's state less the optimiser moments
    full = torch.load(run / "last" / "trainer.pt", weights_only=True)
    light = torch.load(out / "trainer.pt", weights_only=True)
    assert full["optimizer"]["state"] and not light["optimizer"]["state"]
    assert {k: light[k] for k in ("step", "epoch", "position", "best")} == {k: full[k] for k in ("step", "epoch", "position", "best")}

    # resuming from what came back: step, epoch and data position go on
    out2 = tmp_path / "out2"
    assert job.main([toy, "--minutes", "0.5", "--out", str(out2), "--init-from", str(out), *common,
                     "train.max_steps=5"]) == 0
    s2 = json.loads((out2 / "summary.json").read_text())
    assert s2["init_from"]["mode"] == "resume" and s2["init_from"]["step"] == 3
    assert s2["train"]["step"] == 5 and s2["session_steps"] == 2 and s2["config"]["train"]["seed"] == 0
    assert len(json.loads((out2 / "checkpoint.json").read_text())["history"]) > len(
        json.loads((out / "checkpoint.json").read_text())["history"])

    # weights only (no trainer state): from step 0, with a new shuffle
    weights_only = tmp_path / "weights-only"
    shutil.copytree(out, weights_only)
    (weights_only / "trainer.pt").unlink()
    out3 = tmp_path / "out3"
    assert job.main([toy, "--minutes", "0.5", "--out", str(out3), "--init-from", str(weights_only), *common,
                     "train.max_steps=1"]) == 0
    s3 = json.loads((out3 / "summary.json").read_text())
    assert s3["init_from"]["mode"] == "weights" and s3["config"]["train"]["init_from"] == str(weights_only)
    assert s3["config"]["train"]["seed"] == 1 and s3["train"]["step"] == 1

    # --prepare-init: a local checkpoint (full optimiser state) made into an --init-from folder
    prepared = tmp_path / "prepared"
    assert job.main(["--prepare-init", str(run / "last"), "--out", str(prepared)]) == 0
    assert {p.name for p in prepared.iterdir()} == {"model.safetensors", "checkpoint.json", "trainer.pt"}
    assert not torch.load(prepared / "trainer.pt", weights_only=True)["optimizer"]["state"]

    # a warm start of another shape is refused in one line
    bad = load_config(toy).override(["model.hidden_size=9"])
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "checkpoint.json").write_text(json.dumps({"format": 1, "config": bad.to_dict()}))
    assert job.main([toy, "--minutes", "1", "--out", str(tmp_path / "o4"), "--init-from", str(tmp_path / "bad"),
                     "--data", data]) == 2

    timed = tmp_path / "timed"
    assert job.main([toy, "--time-steps", "2", "--out", str(timed), "--data", data, "train.threads=1"]) == 0
    t = json.loads((timed / "summary.json").read_text())
    assert {p.name for p in timed.iterdir()} == {"summary.json"}
    assert t["timed_steps"] == 2 and t["seconds_per_step"] > 0 and t["batches_per_epoch"] == 2
    assert t["estimated_seconds_per_epoch"] == pytest.approx(2 * t["seconds_per_step"])


def test_device_job_text_samples_and_resume(tmp_path):
    import torch

    require_data("ptb")
    job = _device_job(tmp_path)
    toy = str(REPO / "configs" / "toy-text.toml")
    common = ["--data", str(require_data()), "train.threads=1", "train.eval_every=0"]
    out = tmp_path / "out"
    assert job.main([toy, "--minutes", "0.5", "--out", str(out), "--samples", *common, "train.max_steps=4"]) == 0
    assert {p.name for p in out.iterdir()} == {"model.safetensors", "checkpoint.json", "trainer.pt", "metrics.jsonl",
                                               "summary.json", "samples.txt"}
    assert len((out / "samples.txt").read_text()) > 100
    # the next session goes on in the epoch (text: the stream position and the carried state), not from its start
    light = torch.load(out / "trainer.pt", weights_only=True)
    assert light["position"] == 4 and light["task"]["hidden"] is not None
    out2 = tmp_path / "out2"
    assert job.main([toy, "--minutes", "0.5", "--out", str(out2), "--init-from", str(out), *common,
                     "train.max_steps=6"]) == 0
    assert torch.load(out2 / "trainer.pt", weights_only=True)["position"] == 6


def test_device_job_cuts_weights_over_the_file_limit_and_joins_them(tmp_path, monkeypatch):
    job = _device_job()
    monkeypatch.setattr(job, "FILE_LIMIT", 4096)
    monkeypatch.setattr(job, "PART_BYTES", 4000)
    src = tmp_path / "model.safetensors"
    src.write_bytes(np.random.default_rng(0).bytes(10_000))
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"stale")
    assert job._copy_weights(src, out) == [f"model.safetensors.part{i}" for i in (1, 2, 3)]
    assert sorted(p.name for p in out.iterdir()) == [f"model.safetensors.part{i}" for i in (1, 2, 3)]
    job.join_parts(out)
    assert (out / "model.safetensors").read_bytes() == src.read_bytes()
    src.write_bytes(b"small")
    assert job._copy_weights(src, out) == ["model.safetensors"]
    assert [p.name for p in out.iterdir()] == ["model.safetensors"]


def test_device_job_watcher_reports_every_kind_of_metrics_record(tmp_path, capsys):
    """The job's log follows metrics.jsonl: validations, resumes, skipped steps and training losses (no
    record kind may stop the reports)."""
    job = _device_job(tmp_path)
    watcher = job.Watcher(tmp_path, exporter=None, every=0.0)
    watcher.report({"step": 3, "epoch": 0, "resumed": True, "changed": {"optim.lr": [0.001, 0.0003]}})
    watcher.report({"step": 4, "epoch": 0, "skipped": "non-finite loss or gradient", "in_a_row": 2})
    watcher.report({"step": 5, "epoch": 0, "train_loss": -12.5, "seconds": 90.0})
    watcher.report({"step": 6, "epoch": 0, "minutes": 2.0, "valid": {"loss": -20.0, "sse": 0.5}})
    out = capsys.readouterr().out.splitlines()
    assert out == ["resumed at step 3 epoch 0 with optim.lr 0.001 -> 0.0003",
                   "step 4: skipped (non-finite loss or gradient, 2 in a row)",
                   "[  1.50 min] step 5 epoch 0: train_loss -12.5",
                   "[  2.00 min] step 6 epoch 0: valid loss=-20 sse=0.5"]


# ----------------------------------------------------------------------------------- a GPU stand-in


class _MetaAsAccelerator:
    """Runs code on PyTorch's ``meta`` device as if it were a GPU: like CUDA, meta refuses to mix its
    tensors with (non-scalar) CPU tensors, so a tensor left on the CPU shows as an error here, on a machine
    without a GPU. Reads back to the host (``.item()``, ``float()``, ``.cpu()``) have no values on meta: a
    dispatch mode answers them with placeholders, and counts them by call site."""

    def __init__(self):
        import collections

        from torch.utils._python_dispatch import TorchDispatchMode

        reads = self.reads = collections.Counter()

        def site() -> str:
            import traceback

            for frame in reversed(traceback.extract_stack()[:-3]):
                if "/graves/" in frame.filename or "device_job" in frame.filename:
                    return f"{Path(frame.filename).name}:{frame.lineno}"
            return "?"

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                import torch

                kwargs = kwargs or {}
                a0 = args[0] if args else None
                if isinstance(a0, torch.Tensor) and a0.device.type == "meta":
                    if func is torch.ops.aten._local_scalar_dense.default:
                        reads[site()] += 1
                        return True if a0.dtype == torch.bool else (0.5 if a0.dtype.is_floating_point else 2)
                    if func is torch.ops.aten._to_copy.default and torch.device(
                            kwargs.get("device") or "meta").type == "cpu":
                        reads[site()] += 1
                        return torch.zeros(a0.shape, dtype=kwargs.get("dtype") or a0.dtype)
                return func(*args, **kwargs)

        self.mode = Mode()


@pytest.mark.parametrize("config,extra", [
    ("toy-hw-synth.toml", ['noise.kind="adaptive"', "train.ema_decay=0.5", "data.max_points=30"]),
    ("toy-hw-predict.toml", ['noise.kind="weight"', "data.max_points=30"]),
    ("toy-text.toml", ['noise.kind="weight"', "train.ema_decay=0.5"]),
])
def test_device_job_runs_whole_on_an_accelerator_stand_in(mini, tmp_path, config, extra):
    """The device job end to end (training with noise and weight averaging, validation, checkpoints,
    the returned folder) with every tensor of the net on the meta device: a CPU tensor mixed into the
    device's work fails here, as it would on the lent GPU, where a failed start costs most of the session.
    (Found this way before any GPU was lent: the adaptive-noise statistics built their quantiles on the CPU.)"""
    from conftest import require_data

    job = _device_job(tmp_path)
    data = str(require_data("ptb").parent) if "text" in config else str(mini[1].parents[1])
    stand_in = _MetaAsAccelerator()
    out = tmp_path / "out"
    with stand_in.mode:
        rc = job.main([str(REPO / "configs" / config), "--minutes", "3", "--out", str(out), "--data", data,
                       "train.device='meta'", "train.threads=1", "train.max_steps=3", "train.eval_every=2",
                       "train.log_every=1", *extra])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["train"]["device"] == "meta" and summary["train"]["step"] == 3
    # (which checkpoint comes back depends on validation losses, placeholders on meta)
    assert {"model.safetensors", "checkpoint.json", "metrics.jsonl"} <= {p.name for p in out.iterdir()}
    assert stand_in.reads  # the placeholders were used: the work did run on meta


def test_packs_and_cache_files_get_the_usual_permissions(mini, tmp_path):
    import os
    import stat

    umask = os.umask(0)
    os.umask(umask)
    _, pack = mini
    assert stat.S_IMODE(pack.stat().st_mode) == 0o666 & ~umask  # mkstemp's 0600 would hide it from others
    cached = list((tmp_path / "cache" / "iamondb").glob("*.npz"))
    assert cached and all(stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask for p in cached)


def test_an_export_during_a_stop_never_returns_a_stale_resumable_point(tmp_path, monkeypatch):
    """A stop saves `last` before its validation, then `best`, then `last` again. The watcher polling in
    between must not return the early `last` as the resumable point (found in session 15's review)."""
    import torch

    import graves.train as tr

    job = _device_job()
    run, out = tmp_path / "run", tmp_path / "out"
    out.mkdir()
    exporter = job.Exporter(run, out)
    real = tr.save_checkpoint
    seen = []

    def save(path, *args, **kwargs):
        result = real(path, *args, **kwargs)
        if Path(path).name == "best" and json.loads((Path(path) / "checkpoint.json").read_text())["step"] == 5:
            seen.append(exporter.export())  # the watcher polls while the stop's last is not yet saved
        return result

    monkeypatch.setattr(tr, "save_checkpoint", save)
    root = require_data("ptb").parent
    cfg = load_config(REPO / "configs" / "toy-text.toml",
                      [f'data.root="{root}"', "train.max_steps=5", "train.eval_every=2", "optim.lr=0.01"])
    tr.train(cfg, run, progress=False)
    assert seen and seen[0]["step"] == 5 and not seen[0]["resumable"]
    final = exporter.export()
    assert final["step"] == 5 and final["resumable"]
    returned = torch.load(out / "trainer.pt", weights_only=True)
    kept = torch.load(run / "last" / "trainer.pt", weights_only=True)
    assert [h["step"] for h in returned["history"]] == [h["step"] for h in kept["history"]] == [2, 4, 5]
    assert returned["best_saved"] == kept["best_saved"]


def test_a_last_saved_before_any_validation_is_returned_resumable_but_an_average_is_not(tmp_path, monkeypatch):
    """checkpoint_every's `last` before any validation is the chosen checkpoint itself, so it comes back
    resumable; a `best` that holds averaged weights (train.ema_decay) never does, since training goes
    on from the training weights (both found in session 15's reviews)."""
    import graves.train as tr

    job = _device_job()
    root = require_data("ptb").parent
    run, out = tmp_path / "run", tmp_path / "out"
    out.mkdir()
    exporter = job.Exporter(run, out)
    real, seen = tr.save_checkpoint, []

    def save(path, *args, **kwargs):
        result = real(path, *args, **kwargs)
        if Path(path).name == "last" and json.loads((Path(path) / "checkpoint.json").read_text())["step"] == 1:
            seen.append(exporter.export())
        return result

    monkeypatch.setattr(tr, "save_checkpoint", save)
    cfg = load_config(REPO / "configs" / "toy-text.toml", [f'data.root="{root}"', "train.max_steps=2",
                                                           "train.eval_every=0", "train.checkpoint_every=1"])
    tr.train(cfg, run, progress=False)
    assert seen and seen[0]["which"] == "last" and seen[0]["step"] == 1 and seen[0]["resumable"]
    monkeypatch.undo()
    ema = load_config(REPO / "configs" / "toy-text.toml", [f'data.root="{root}"', "train.max_steps=4",
                                                           "train.eval_every=2", "train.ema_decay=0.5"])
    tr.train(ema, tmp_path / "ema", progress=False)
    (tmp_path / "out2").mkdir()
    got = job.Exporter(tmp_path / "ema", tmp_path / "out2").export()
    assert got["which"] == "best" and not got["resumable"] and not (tmp_path / "out2" / "trainer.pt").exists()
