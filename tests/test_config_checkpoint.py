"""Configs: typed, frozen, overridable, round-tripping; checkpoints: atomic, validated, never pickles."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from graves.checkpoint import CheckpointError, load_meta, load_trainer_state, load_weights, save_checkpoint
from graves.config import Config, ConfigError, load_config

REPO = Path(__file__).resolve().parents[1]


def test_defaults_are_the_papers_synthesis_setup():
    cfg = Config()
    assert (cfg.model.num_layers, cfg.model.hidden_size, cfg.model.mixtures, cfg.model.window_mixtures) == (3, 400, 20, 10)
    assert (cfg.model.lstm_clip, cfg.model.output_clip) == (10.0, 100.0)
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.momentum, cfg.optim.alpha, cfg.optim.eps) == ("rmsprop", 1e-4, 0.9, 0.95, 1e-4)


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().model.hidden_size = 3  # type: ignore[misc]


def test_overrides_are_type_checked():
    cfg = Config().override(["model.hidden_size=64", "train.max_minutes=1.5", "model.lstm_clip=none",
                             "data.train_sets=['trainset']", "name=x"])
    assert cfg.model.hidden_size == 64 and cfg.train.max_minutes == 1.5 and cfg.model.lstm_clip is None
    assert cfg.data.train_sets == ("trainset",) and cfg.name == "x"
    with pytest.raises(ConfigError, match="model.hiden_size"):
        Config().override(["model.hiden_size=3"])
    with pytest.raises(ConfigError, match="model.hidden_size must be an integer"):
        Config().override(["model.hidden_size=3.5"])
    with pytest.raises(ConfigError, match="train.shuffle must be true or false"):
        Config().override(["train.shuffle=1"])
    with pytest.raises(ConfigError, match="not of the form"):
        Config().override(["model.hidden_size"])
    with pytest.raises(ConfigError, match="may not be none"):
        Config().override(["model.hidden_size=none"])


def test_overrides_keep_types_strict_and_read_the_usual_spellings():
    for bad, message in (("model.hidden_size=true", "model.hidden_size must be an integer"),
                         ("optim.lr=true", "optim.lr must be a number"),
                         ("train.batch_size=false", "train.batch_size must be an integer"),
                         ("name=3", "name must be a string")):
        with pytest.raises(ConfigError, match=message):
            Config().override([bad])
    cfg = Config().override(["model.lstm_clip=None", "model.output_clip=NULL", "data.train_sets=trainset",
                             "optim.lr=1"])
    assert cfg.model.lstm_clip is None and cfg.model.output_clip is None
    assert cfg.data.train_sets == ("trainset",)  # a bare name is a list of one on the command line
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)


@pytest.mark.parametrize("override,message", [
    ("model.hidden_size=0", "model.hidden_size must be at least 1"),
    ("model.num_layers=0", "model.num_layers must be at least 1"),
    ("model.mixtures=0", "model.mixtures must be at least 1"),
    ("model.window_mixtures=0", "model.window_mixtures must be at least 1"),
    ("model.output_clip=-1", "model.output_clip must be a number > 0"),
    ('data.name="ptb"', "data.name must be one of"),
    ('data.alphabet="latin"', "data.alphabet must be 'full' or 'paper57'"),
    ("data.max_lines=-1", "data.max_lines must be >= 0"),
    ("data.max_points=-1", "data.max_points must be >= 0"),
    ("optim.lr=-0.1", "optim.lr must be a number >= 0"),
    ("optim.lr=nan", "optim.lr must be a number >= 0"),
    ("optim.alpha=1", r"optim.alpha must be in \(0, 1\)"),
    ("optim.eps=0", "optim.eps must be a number > 0"),
    ("noise.std=-0.1", "noise.std must be > 0 for adaptive noise, >= 0 otherwise"),
    ("noise.lr_scale=0", "noise.lr_scale must be a positive number"),
    ('noise.s_gradient="exact"', "noise.s_gradient must be 'reparam'"),
    ("train.seq_len=0", "train.seq_len must be at least 1"),
    ("train.reset_every=-1", "train.reset_every must be >= 0"),
    ("train.epochs=-1", "train.epochs must be >= 0"),
    ("train.max_steps=-1", "train.max_steps must be >= 0"),
    ("train.checkpoint_every=-1", "train.checkpoint_every must be >= 0"),
    ("train.patience=-1", "train.patience must be >= 0"),
    ("train.threads=-1", "train.threads must be >= 0"),
    ("train.max_minutes=-1", "train.max_minutes must be >= 0"),
    ("train.ema_decay=-0.5", r"train.ema_decay must be in \[0, 1\)"),
    ('train.device="tpu"', "train.device must be a device torch can use here"),
])
def test_check_config_rejects_each_out_of_range_setting(override, message):
    from graves.config import check_config

    with pytest.raises(ConfigError, match=message):
        check_config(Config().override([override]))


def test_adaptive_noise_needs_a_positive_initial_std():
    from graves.config import check_config

    check_config(Config().override(["noise.kind='weight'", "noise.std=0"]))  # no noise, but allowed
    with pytest.raises(ConfigError, match="noise.std must be > 0 for adaptive noise"):
        check_config(Config().override(["noise.kind='adaptive'", "noise.std=0"]))


def test_dict_round_trip_and_json():
    cfg = Config().override(["model.kind='text'", "noise.kind='adaptive'"])
    again = Config.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


def test_every_shipped_config_loads():
    files = sorted((REPO / "configs").glob("*.toml"))
    assert files, "no configs found"
    for f in files:
        cfg = load_config(f)
        assert cfg.name == f.stem  # each shipped config is named after its file


def test_bad_toml_names_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nhidden_size = = 3\n")
    with pytest.raises(ConfigError, match="bad.toml"):
        load_config(bad)
    none = tmp_path / "none.toml"
    none.write_text('[model]\noutput_clip = "none"\n')
    assert load_config(none).model.output_clip is None
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[modle]\nhidden_size = 3\n")
    with pytest.raises(ConfigError, match=r"unknown\.toml: unknown config key 'modle'"):
        load_config(unknown)
    nameless = tmp_path / "my-run.toml"
    nameless.write_text("[model]\nhidden_size = 3\n")
    assert load_config(nameless).name == "my-run"  # a config without a name takes its file's


def _weights():
    return {"a": torch.randn(3, 4), "b": torch.arange(5)}


def test_checkpoint_round_trip(tmp_path):
    w = _weights()
    save_checkpoint(tmp_path / "ck", w, {"step": 7, "config": Config().to_dict()},
                    {"optimizer": {"state": {0: {"m": torch.ones(2)}}}, "step": 7})
    got = load_weights(tmp_path / "ck")
    assert torch.equal(got["a"], w["a"]) and torch.equal(got["b"], w["b"])
    assert load_meta(tmp_path / "ck")["step"] == 7
    assert torch.equal(load_trainer_state(tmp_path / "ck")["optimizer"]["state"][0]["m"], torch.ones(2))


def test_checkpoint_half_precision(tmp_path):
    w = _weights()
    save_checkpoint(tmp_path / "ck", w, {}, dtype=torch.float16)
    got = load_weights(tmp_path / "ck")
    assert got["a"].dtype == torch.float32 and got["b"].dtype == torch.int64
    assert torch.allclose(got["a"], w["a"], atol=1e-2)


def test_overwrite_is_atomic_and_a_failed_save_keeps_the_old(tmp_path, monkeypatch):
    save_checkpoint(tmp_path / "ck", {"a": torch.zeros(2)}, {"step": 1})
    import graves.checkpoint as ck

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ck, "save_file", full_disk)
    with pytest.raises(CheckpointError, match="No space left on device.*untouched"):
        save_checkpoint(tmp_path / "ck", {"a": torch.ones(2)}, {"step": 2})
    assert load_meta(tmp_path / "ck")["step"] == 1
    assert torch.equal(load_weights(tmp_path / "ck")["a"], torch.zeros(2))
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]  # no temporary left behind


def test_a_save_over_a_checkpoint_keeps_the_users_files_and_drops_its_own(tmp_path, monkeypatch):
    # e.g. `graves styles make --model runs/mine/best` wrote styles.json there, and training then saves a new best
    ck = tmp_path / "ck"
    save_checkpoint(ck, {"a": torch.zeros(2)}, {"step": 1}, {"step": 1})
    (ck / "styles.json").write_text('[{"text": "hi", "offsets": []}]')
    (ck / "notes").mkdir()
    (ck / "notes" / "n.txt").write_text("mine")
    save_checkpoint(ck, {"a": torch.ones(2)}, {"step": 2})  # no trainer state this time
    assert sorted(p.name for p in ck.iterdir()) == ["checkpoint.json", "model.safetensors", "notes", "styles.json"]
    assert (ck / "styles.json").read_text() == '[{"text": "hi", "offsets": []}]'
    assert (ck / "notes" / "n.txt").read_text() == "mine"
    assert load_meta(ck)["step"] == 2 and torch.equal(load_weights(ck)["a"], torch.ones(2))
    # a copy that fails (full disk) is a failed save: the old checkpoint and its files stay
    import graves.checkpoint as ckmod

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckmod.shutil, "copy2", full_disk)
    with pytest.raises(CheckpointError, match="No space left on device.*untouched"):
        save_checkpoint(ck, {"a": torch.full((2,), 3.0)}, {"step": 3})
    assert load_meta(ck)["step"] == 2 and (ck / "styles.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]


@pytest.mark.parametrize("damage", ["truncate-weights", "garbage-json", "missing-json", "garbage-trainer"])
def test_damaged_checkpoints_give_clear_errors(tmp_path, damage):
    save_checkpoint(tmp_path / "ck", _weights(), {"step": 1}, {"step": 1})
    ck = tmp_path / "ck"
    if damage == "truncate-weights":
        data = (ck / "model.safetensors").read_bytes()
        (ck / "model.safetensors").write_bytes(data[: len(data) // 2])
        with pytest.raises(CheckpointError, match="corrupt or truncated"):
            load_weights(ck)
    elif damage == "garbage-json":
        (ck / "checkpoint.json").write_text("{not json")
        with pytest.raises(CheckpointError, match="checkpoint.json is corrupt"):
            load_meta(ck)
    elif damage == "missing-json":
        (ck / "checkpoint.json").unlink()
        with pytest.raises(CheckpointError, match="not a checkpoint"):
            load_meta(ck)
    else:
        (ck / "trainer.pt").write_bytes(b"\x00garbage")
        with pytest.raises(CheckpointError, match="corrupt or truncated"):
            load_trainer_state(ck)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_meta(tmp_path / "nope")


def test_graves_info_describes_checkpoints_and_run_folders_without_loading_the_model(tmp_path, capsys):
    from graves.checkpoint import describe, load_meta, load_weights
    from graves.cli import main
    from graves.sample import shipped_model_dir

    shipped = shipped_model_dir()
    d = describe(shipped)
    weights = load_weights(shipped)
    history = [h for h in load_meta(shipped)["history"] if "valid" in h]
    assert (d["kind"], d["layers"], d["cells"], d["mixtures"], d["window_mixtures"]) == ("synthesis", 3, 200, 20, 10)
    assert d["weights"] == sum(v.numel() for v in weights.values()) and d["dtypes"] == ["F32"]
    assert d["best_validation"]["valid"]["loss"] == min(h["valid"]["loss"] for h in history)
    assert d["styles"] == 4 and d["resumable"] is False and d["characters"] == 80
    assert main(["info", str(shipped)]) == 0
    out = capsys.readouterr().out
    assert "handwriting synthesis net" in out and f"{d['weights']:,}" in out and "styles     4" in out
    # a run folder: its best and last, in JSON too
    run = tmp_path / "run"
    save_checkpoint(run / "best", {"w": torch.zeros(2, 3)}, {"config": Config().to_dict(), "step": 5, "epoch": 1,
                    "history": [{"step": 5, "valid": {"loss": -3.0}}]})
    save_checkpoint(run / "last", {"w": torch.zeros(2, 3)}, {"config": Config().to_dict(), "step": 7, "epoch": 1,
                    "history": [{"step": 5, "valid": {"loss": -3.0}}]}, {"step": 7})
    assert main(["info", str(run), "--json"]) == 0
    both = json.loads(capsys.readouterr().out)
    assert [(x["path"].split("/")[-1], x["step"], x["weights"], x["resumable"]) for x in both] == [
        ("best", 5, 6, False), ("last", 7, 6, True)]
    assert main(["info", str(run)]) == 0
    text = capsys.readouterr().out
    assert text.count("synthesis net") == 2 and "not resumable" in text and "resumable (trainer.pt)" in text
    # damage is a one-line error
    (run / "last" / "model.safetensors").write_bytes(b"not a safetensors file")
    assert main(["info", str(run / "last")]) == 2
    assert "corrupt or truncated" in capsys.readouterr().err
    assert main(["info", str(tmp_path)]) == 2
    assert "neither a checkpoint nor a run folder" in capsys.readouterr().err


@pytest.mark.parametrize("override,message", [
    ("noise.kind=bogus", "noise.kind must be 'none', 'weight' or 'adaptive'"),
    ("noise.per=line", "noise.per must be 'sequence'"),
    ("noise.group_size=0", "noise.group_size must be at least 1"),
    ("optim.name=foo", "optim.name must be 'rmsprop', 'sgd' or 'adam'"),
    ("optim.momentum=1.0", r"optim.momentum must be in \[0, 1\)"),
    ("train.ema_decay=1.5", r"train.ema_decay must be in \[0, 1\)"),
    ('train.matmul_dtype="float16"', "train.matmul_dtype must be 'float32' or 'bfloat16'"),
    ("train.batch_size=0", "train.batch_size must be at least 1"),
    ("train.log_every=0", "train.log_every must be at least 1"),
    ("train.eval_every=-1", "train.eval_every must be >= 0"),
    ("model.kind=foo", "model.kind must be 'text', 'handwriting' or 'synthesis'"),
    ("model.lstm_clip=0", "model.lstm_clip must be a number > 0, or none"),
    ("noise.max_std=0.01", r"noise.max_std must be 0 \(no bound\) or at least noise.std"),
])
def test_graves_train_rejects_an_out_of_range_setting_in_one_line_before_any_work(tmp_path, capsys, override,
                                                                                 message):
    import re

    from graves.cli import main

    assert main(["train", str(REPO / "configs" / "toy-text.toml"), override, "--run-dir", str(tmp_path / "r"),
                 "--data", str(tmp_path / "no-data")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("graves: error: ") and err.count("\n") == 1 and re.search(message, err), err
    assert not (tmp_path / "r").exists()  # checked before the run folder is made


def test_every_shipped_config_passes_the_range_checks():
    from graves.config import check_config

    for path in sorted((REPO / "configs").glob("*.toml")):
        check_config(load_config(path))


@pytest.mark.parametrize("stage,start", [("hw-synth-awn", "hw-synth"), ("hw-synth-medium-awn", "hw-synth-medium"),
                                         ("hw-predict-3x400-awn", "hw-predict-3x400"),
                                         ("ptb-char-fast-awn", "ptb-char-fast")])
def test_noise_stages_start_from_the_net_of_their_first_stage(stage, start):
    """A noise stage's [model] and [data] are its first stage's, so its init_from loads; it differs in noise."""
    after, before = load_config(REPO / "configs" / f"{stage}.toml"), load_config(REPO / "configs" / f"{start}.toml")
    assert after.model == before.model and after.data == before.data
    assert after.noise.kind == "adaptive" and before.noise.kind == "none"
    assert after.train.init_from == f"runs/{start}/best"


def test_init_from_refuses_weights_of_another_net_or_encoding(tmp_path, capsys):
    from graves.cli import main
    from conftest import require_data

    root = require_data("ptb").parent
    toy = str(REPO / "configs" / "toy-text.toml")
    base = ["--data", str(root), "-q"]
    assert main(["train", toy, "train.max_steps=1", "--run-dir", str(tmp_path / "a"), *base]) == 0
    capsys.readouterr()
    assert main(["train", toy, "train.max_steps=1", "model.hidden_size=7", f"train.init_from='{tmp_path / 'a' / 'last'}'",
                 "--run-dir", str(tmp_path / "b"), *base]) == 2
    err = capsys.readouterr().err
    assert "its weights do not fit this config's net" in err and err.count("\n") == 1
    assert main(["train", toy, "train.max_steps=1", "data.name='ptb-word'", f"train.init_from='{tmp_path / 'a' / 'last'}'",
                 "--run-dir", str(tmp_path / "c"), *base]) == 2
    assert "vocabulary is not this run's" in capsys.readouterr().err


@pytest.mark.parametrize("failure", ["safetensors", "torch"])
def test_a_full_disk_inside_the_libraries_is_a_one_line_error_and_keeps_the_old(tmp_path, monkeypatch, failure):
    # A real full disk reaches save_checkpoint as SafetensorError or as torch.save's RuntimeError, not OSError.
    import graves.checkpoint as ck
    from safetensors import SafetensorError

    save_checkpoint(tmp_path / "ck", {"a": torch.zeros(2)}, {"step": 1}, {"step": 1})

    def full(*args, **kwargs):
        if failure == "safetensors":
            raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull })")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0\nmore detail")

    monkeypatch.setattr(ck, "save_file" if failure == "safetensors" else "torch", type("T", (), {"save": full})()
                        if failure == "torch" else full)
    with pytest.raises(CheckpointError, match="could not write checkpoint .*untouched") as info:
        save_checkpoint(tmp_path / "ck", {"a": torch.ones(2)}, {"step": 2}, {"step": 2})
    assert "\n" not in str(info.value)
    monkeypatch.undo()
    assert load_meta(tmp_path / "ck")["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]


def test_a_save_that_fails_or_dies_between_its_renames_keeps_the_old(tmp_path, monkeypatch):
    import os

    import graves.checkpoint as ck

    save_checkpoint(tmp_path / "ck", {"a": torch.zeros(2)}, {"step": 1})
    real = os.replace
    calls = []

    def second_fails(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(5, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(ck.os, "replace", second_fails)
    with pytest.raises(CheckpointError, match="untouched"):
        save_checkpoint(tmp_path / "ck", {"a": torch.ones(2)}, {"step": 2})
    monkeypatch.undo()
    assert load_meta(tmp_path / "ck")["step"] == 1
    # a process killed between the two renames leaves only .ck.old: a load reads it where it is (a reader
    # must not rename under a running save), the next save puts it back first
    real(tmp_path / "ck", tmp_path / ".ck.old")
    assert load_meta(tmp_path / "ck")["step"] == 1 and (tmp_path / ".ck.old").is_dir()
    assert torch.equal(load_weights(tmp_path / "ck")["a"], torch.zeros(2))
    save_checkpoint(tmp_path / "ck", {"a": torch.ones(2)}, {"step": 3})
    assert load_meta(tmp_path / "ck")["step"] == 3 and sorted(p.name for p in tmp_path.iterdir()) == ["ck"]


@pytest.mark.parametrize("meta, message", [
    ([1, 2], "holds a list, not an object"),
    ({"format": 1, "alphabet": 5}, "its 'alphabet' is a int"),
    ({"format": 1, "config": {}, "normaliser": {"mean": [0, 0], "std": "x"}}, "'normaliser' is not"),
    ({"format": 1, "config": {}, "normaliser": {"mean": [0, 0], "std": [1, 0]}}, "'normaliser' is not"),
])
def test_a_checkpoint_json_of_the_wrong_shape_is_a_clear_error(tmp_path, meta, message):
    save_checkpoint(tmp_path / "ck", {"a": torch.zeros(2)}, {"step": 1})
    (tmp_path / "ck" / "checkpoint.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=message):
        load_meta(tmp_path / "ck")


def test_every_command_reports_a_damaged_checkpoint_in_one_line(tmp_path, capsys):
    import shutil

    from graves.cli import main
    from graves.sample import shipped_model_dir

    noconfig = tmp_path / "noconfig"
    shutil.copytree(shipped_model_dir(), noconfig)
    (noconfig / "checkpoint.json").write_text('{"format": 1}')
    truncated = tmp_path / "truncated"
    shutil.copytree(shipped_model_dir(), truncated)
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 3])
    out = str(tmp_path / "o.svg")
    for args, message in [
        (["sample", str(noconfig), "--text", "hi", "-o", out], "has no 'config'"),
        (["eval", str(noconfig)], "has no 'config'"),
        (["write", "hi", "--model", str(noconfig), "-o", out], "has no 'config'"),
        (["write", "hi", "--model", str(truncated), "-o", out], "corrupt or truncated"),
        (["info", str(noconfig)], "has no 'config'"),
    ]:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("graves: error: ") and err.count("\n") == 1 and message in err, (args, err)
        assert "do not fit" not in err


def test_train_refuses_to_start_over_an_existing_run(tmp_path, capsys):
    from graves.train import TrainingError, train

    cfg = load_config(REPO / "configs" / "toy-text.toml", ["train.max_steps=1"])
    (tmp_path / "run" / "last").mkdir(parents=True)
    with pytest.raises(TrainingError, match="already holds a run: continue it with --resume"):
        train(cfg, tmp_path / "run")
    with pytest.raises(CheckpointError, match="--resume: no checkpoint"):
        train(cfg, tmp_path / "elsewhere", resume=True)
    assert not (tmp_path / "elsewhere").exists()  # nothing made for a failed resume
    (tmp_path / "file").write_text("x")
    with pytest.raises(TrainingError, match="is a file"):
        train(cfg, tmp_path / "file")
    # a run whose last lacks its config, resumed: one line too
    save_checkpoint(tmp_path / "bad" / "last", {"a": torch.zeros(1)}, {"step": 1})
    with pytest.raises(CheckpointError, match="has no 'config'"):
        train(cfg, tmp_path / "bad", resume=True)
    # a folder with best but no last (killed between a validation's two saves) points at init_from
    (tmp_path / "halfrun" / "best").mkdir(parents=True)
    with pytest.raises(TrainingError, match="train.init_from="):
        train(cfg, tmp_path / "halfrun")


def test_unreadable_configs_and_devices_are_config_errors(tmp_path):
    (tmp_path / "bad.toml").write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(tmp_path / "bad.toml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path)
    from graves.config import check_config

    for device in ("foo", "cuda:99" if torch.cuda.is_available() else "cuda"):
        with pytest.raises(ConfigError, match="train.device must be"):
            check_config(load_config(REPO / "configs" / "toy-text.toml", [f"train.device='{device}'"]))


def test_a_path_too_long_is_one_line_but_other_os_errors_keep_their_traceback(tmp_path, capsys, monkeypatch):
    import argparse
    import errno

    from graves import cli

    assert cli.main(["info", str(tmp_path / ("a" * 300))]) == 2
    err = capsys.readouterr().err
    assert err.startswith("graves: error: ") and err.count("\n") == 1 and "too long" in err

    def failing(code):
        def func(a):
            raise OSError(code, os.strerror(code))

        return argparse.Namespace(func=func)

    monkeypatch.setattr(cli, "_parse", lambda argv: failing(errno.ENOSPC))
    assert cli.main([]) == 2 and "No space left" in capsys.readouterr().err
    monkeypatch.setattr(cli, "_parse", lambda argv: failing(errno.EMFILE))
    with pytest.raises(OSError, match="Too many open files"):  # not the input's fault: keeps its traceback
        cli.main([])


def test_info_shows_a_validation_record_without_a_step(tmp_path, capsys):
    """Found in review (session 16): a history record with no step was a ValueError from the format."""
    from graves.cli import main
    from graves.sample import shipped_model_dir

    for name in ("model.safetensors", "checkpoint.json"):
        shutil.copy(shipped_model_dir() / name, tmp_path / name)
    meta = json.loads((tmp_path / "checkpoint.json").read_text())
    for h in meta["history"]:
        h.pop("step", None)
    (tmp_path / "checkpoint.json").write_text(json.dumps(meta))
    assert main(["info", str(tmp_path)]) == 0
    assert "(step ?)" in capsys.readouterr().out


def test_checkpoint_of_another_format_version_is_refused(tmp_path):
    save_checkpoint(tmp_path / "ck", {"a": torch.zeros(2)}, {"step": 1})
    meta = json.loads((tmp_path / "ck" / "checkpoint.json").read_text())
    assert meta["format"] == 1
    (tmp_path / "ck" / "checkpoint.json").write_text(json.dumps({**meta, "format": 2}))
    with pytest.raises(CheckpointError, match="unknown checkpoint format 2"):
        load_meta(tmp_path / "ck")


UNPICKLED: list = []


class _Payload:
    """Records being unpickled: a trainer.pt must never run a pickle's code."""

    def __setstate__(self, state):
        UNPICKLED.append(state)


def test_checkpoint_trainer_state_is_not_unpickled(tmp_path):
    save_checkpoint(tmp_path / "ck", {"a": torch.zeros(2)}, {"step": 1}, {"step": 1})
    payload = _Payload()
    payload.x = 1
    torch.save({"step": 1, "payload": payload}, tmp_path / "ck" / "trainer.pt")
    UNPICKLED.clear()
    with pytest.raises(CheckpointError, match="trainer.pt is corrupt or truncated"):
        load_trainer_state(tmp_path / "ck")
    assert UNPICKLED == []


def test_checkpoint_save_writes_beside_the_target_and_fsyncs_before_renaming(tmp_path, monkeypatch):
    """The temporary folder is a sibling of the checkpoint (same filesystem: the rename is atomic), and
    every file of the new checkpoint is fsynced before the first os.replace."""
    import graves.checkpoint as ckmod

    ck = tmp_path / "runs" / "ck"
    save_checkpoint(ck, {"a": torch.zeros(2)}, {"step": 1}, {"step": 1})
    (ck / "styles.json").write_text("[]")  # a user's file, carried over
    events: list = []
    real_mkdtemp, real_fsync, real_replace = ckmod.tempfile.mkdtemp, ckmod.os.fsync, ckmod.os.replace

    def mkdtemp(*args, **kwargs):
        made = real_mkdtemp(*args, **kwargs)
        events.append(("mkdtemp", Path(made)))
        return made

    def fsync(fd):
        events.append(("fsync", os.fstat(fd).st_ino))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", Path(src), Path(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(ckmod.tempfile, "mkdtemp", mkdtemp)
    monkeypatch.setattr(ckmod.os, "fsync", fsync)
    monkeypatch.setattr(ckmod.os, "replace", replace)
    save_checkpoint(ck, {"a": torch.ones(2)}, {"step": 2}, {"step": 2})
    monkeypatch.undo()
    made = [e[1] for e in events if e[0] == "mkdtemp"]
    assert len(made) == 1 and made[0].parent == ck.parent
    replaces = [i for i, e in enumerate(events) if e[0] == "replace"]
    assert [events[i][1:] for i in replaces] == [(ck, ck.with_name(".ck.old")), (made[0], ck)]
    synced = {e[1] for e in events[: replaces[0]] if e[0] == "fsync"}
    files = {f.name: f.stat().st_ino for f in ck.iterdir()}
    assert set(files) == {"model.safetensors", "checkpoint.json", "trainer.pt", "styles.json"}
    assert set(files.values()) <= synced, "a file was not fsynced before the swap"
    assert load_meta(ck)["step"] == 2


def test_checkpoint_recover_leaves_a_checkpoint_and_its_old_copy_alone(tmp_path):
    from graves.checkpoint import recover

    ck, old = tmp_path / "ck", tmp_path / ".ck.old"
    save_checkpoint(ck, {"a": torch.ones(2)}, {"step": 2})
    save_checkpoint(old, {"a": torch.zeros(2)}, {"step": 1})
    assert recover(ck) is False
    assert load_meta(ck)["step"] == 2 and json.loads((old / "checkpoint.json").read_text())["step"] == 1
    assert torch.equal(load_weights(ck)["a"], torch.ones(2))
    # and with only the old copy it puts it back
    shutil.rmtree(ck)
    assert recover(ck) is True and load_meta(ck)["step"] == 1 and not old.exists()


def test_graves_train_data_option_sets_the_data_root(tmp_path, monkeypatch, capsys):
    import graves.train
    from graves.cli import main

    seen = {}

    def fake_train(cfg, run_dir, resume=False, progress=True):
        seen["root"] = cfg.data.root
        return {"stop": "test"}

    monkeypatch.setattr(graves.train, "train", fake_train)
    monkeypatch.setenv("GRAVES_DATA", str(tmp_path / "elsewhere"))
    mine = tmp_path / "my data"
    assert main(["train", str(REPO / "configs" / "toy-text.toml"), "--data", str(mine), "--quiet",
                 "--run-dir", str(tmp_path / "r")]) == 0
    assert seen["root"] == str(mine)
    capsys.readouterr()


def test_ctrl_c_outside_training_exits_130(monkeypatch, capsys):
    import graves.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_cmd_info", interrupted)
    assert cli.main(["info", "anything"]) == 130
    assert "Traceback" not in capsys.readouterr().err
