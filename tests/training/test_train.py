"""ser.training.train: a run on the demo corpus writes a complete bundle and card, refuses a name it
cannot save before it starts, and stops when asked; and the metrics and evaluation of its bundles."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from ser.config import RunHooks, TrainConfig
from ser.corpora.splits import make_splits
from ser.errors import ModelError, TrainingError
from ser.models.bundle import load_bundle
from ser.store.card import read_card
from ser.training.evaluation import compute_metrics, evaluate_bundle
from ser.training.train import train
from tests.conftest import ROOT, tiny_manifest


def test_metrics_by_hand():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 1, 0])
    m = compute_metrics(y_true, y_pred, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["per_class"]["a"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["a"]["recall"] == pytest.approx(2 / 3)
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["b"]["recall"] == pytest.approx(1.0)
    assert m["per_class"]["c"]["f1"] == 0.0
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 0) / 3)
    assert m["confusion"] == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]


def test_tiny_training_writes_a_complete_card(tiny_bundle):
    card = read_card(tiny_bundle)
    assert card.architecture == "cnn" and card.labels[0] == "neutral" and len(card.labels) == 7
    assert card.data["speakers"] == ["EF1", "EM1"] and card.data["split"] == "speaker"
    assert card.data["n_train"] > 0 and card.data["n_val"] > 0
    assert card.data["clips_per_speaker"] == {"EF1": 28, "EM1": 28}
    assert [e["epoch"] for e in card.history] == [1, 2]
    folds = card.evaluation["speaker"]["folds"]
    assert len(folds) == 2 and all(f["n_clips"] == 28 for f in folds)
    assert card.evaluation["speaker"]["accuracy"] == pytest.approx(np.mean([f["accuracy"] for f in folds]))
    assert {"tensorflow", "keras", "librosa", "numpy", "python"} <= set(card.versions)
    assert card.command == "pytest tiny_bundle" and card.created_at


def test_validation_is_never_the_test_set():
    for kind in ("speaker", "random", "words"):
        for split in make_splits(tiny_manifest(), kind):
            assert not {c.path for c in split.val} & {c.path for c in split.test}


def test_a_stopped_run_raises_and_writes_nothing(tmp_path):
    with pytest.raises(TrainingError, match="stopped"):
        train(
            tiny_manifest(n_words=2),
            config=TrainConfig(epochs=5, batch_size=8),
            models_dir=tmp_path,
            hooks=RunHooks(should_stop=lambda: True),
        )
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("name", "message"), [("taken", "already exists"), ("a/b", "plain folder name"), (".hidden", "plain folder name")]
)
def test_a_name_that_cannot_be_saved_is_refused_before_training(tmp_path, name, message):
    """`train --name` of an existing bundle trained to the end and only then refused to save;
    "a/b" ended in a traceback after training, ".hidden" saved a bundle no listing shows."""
    (tmp_path / "taken").mkdir()
    epochs = []
    with pytest.raises(ModelError, match=message):
        train(
            tiny_manifest(n_words=2), config=TrainConfig(epochs=2, batch_size=8), models_dir=tmp_path, name=name,
            hooks=RunHooks(on_epoch=epochs.append),
        )  # fmt: skip
    assert epochs == []  # refused up front, not after the run
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]


def test_evaluate_reports_skipped_clips(tiny_bundle, tmp_path):
    manifest = tiny_manifest(n_words=1)
    broken = tmp_path / "EF1_gone_sad.wav"
    broken.write_bytes(b"RIFF....WAVEfmt ")
    first = manifest.clips[0]
    manifest.clips += [
        dataclasses.replace(first, path=broken, emotion="sad"),
        dataclasses.replace(first, emotion="calm"),
    ]
    report = evaluate_bundle(load_bundle(tiny_bundle), manifest)
    assert report["n_clips"] == 14 and sum(map(sum, report["confusion"])) == 14
    assert report["skipped"]["n"] == 2
    assert report["skipped"]["reasons"] == {
        "emotion 'calm' is not one the model knows": 1,
        "could not be decoded or used": 1,
    }
    assert "EF1_gone_sad.wav" in report["skipped"]["examples"][0]


def test_evaluate_with_nothing_to_score_says_why(tiny_bundle, tmp_path):
    first = tiny_manifest(n_words=1).clips[0]
    empty = tmp_path / "EF1_gone_sad.wav"
    empty.touch()
    manifest = dataclasses.replace(
        tiny_manifest(n_words=1),
        clips=[dataclasses.replace(first, path=empty), dataclasses.replace(first, emotion="calm")],
    )
    with pytest.raises(
        TrainingError, match=r"none of the 2 clips .*: 1 emotion 'calm' .*; 1 could not be decoded"
    ) as e:
        evaluate_bundle(load_bundle(tiny_bundle), manifest)
    assert "EF1_gone_sad.wav" in str(e.value) and "empty (0 bytes)" in str(e.value)


def test_mirrored_strategy_over_two_logical_cpus(tmp_path):
    script = textwrap.dedent(
        f"""
        from tests.conftest import tiny_manifest  # first: it loads pylibsrtp, which must precede TensorFlow
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from ser.config import RunHooks, TrainConfig
        from ser.models.network.fit import make_strategy
        from ser.training.train import train
        assert make_strategy("mirrored").num_replicas_in_sync == 2
        path, card = train(tiny_manifest(n_words=2), config=TrainConfig(epochs=1, batch_size=8),
                           models_dir=__import__("pathlib").Path({str(tmp_path)!r}),
                           hooks=RunHooks(strategy="mirrored"))
        print("OK", path.name, len(card.history))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "OK cnn-" in done.stdout


def test_a_stop_during_an_epoch_ends_the_run_within_that_epoch(tmp_path):
    """Stop was looked at only when an epoch ended (seconds on TESS, after Stop was pressed); now
    after every batch. Stop is pressed at the third batch of the first of three 12-batch epochs:
    the run ends in that epoch (looked at per epoch, all three epochs would have run)."""
    features_ready, calls = threading.Event(), []

    def progress(done: int, total: int) -> None:
        if done == total:
            features_ready.set()

    def should_stop() -> bool:
        if features_ready.is_set():
            calls.append(1)
        return len(calls) >= 3

    epochs = []
    with pytest.raises(TrainingError, match="stopped"):
        train(
            tiny_manifest(n_words=4), config=TrainConfig(epochs=3, batch_size=4), models_dir=tmp_path,
            hooks=RunHooks(on_epoch=epochs.append, should_stop=should_stop, progress=progress),
        )  # fmt: skip
    assert [e.epoch for e in epochs] == [1]
    assert not list(tmp_path.iterdir())


def test_training_imports_tensorflow_only_for_a_network():
    """An SVM run (the bundled model's) never loads TensorFlow: ser.training.train imports
    ser.models.network.fit, and with it Keras, only inside a network's fold."""
    code = "import sys, ser.training.train, ser.cli.commands; print(sorted({'tensorflow', 'keras'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr[-2000:]
