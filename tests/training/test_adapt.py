"""Speaker adaptation on real audio (ser.training.adapt): the bundled TESS model adapted to a synthetic demo voice."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import subprocess
import sys

import numpy as np
import pytest

from ser.config import RunHooks
from ser.corpora.datasets import Manifest, discover
from ser.corpora.fewshot import choose_clips
from ser.models.bundle import load_bundle
from ser.models.network.adapt import AdaptConfig
from ser.store.card import read_card
from ser.store.registry import ACTIVE_FILE, MODELS_DIR, active_name, check_bundle
from ser.training.adapt import adapt
from ser.training.evaluation import evaluate_bundle
from tests.conftest import BUNDLED_SVM, DEMO_DIR, ROOT, TESS_DIR, requires_tess

LABELS = ["neutral", "happy", "sad", "angry", "fear", "disgust", "surprise"]
BASE = "cnn-tess-v1"  # the bundled network (the active model takes voice profiles instead of adapting)


def ser(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ser", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def demo():
    return discover(DEMO_DIR)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """A copy of the bundled model in a folder of its own, active, so the real models/ stays untouched."""
    folder = tmp_path_factory.mktemp("models")
    shutil.copytree(MODELS_DIR / BASE, folder / BASE)
    (folder / ACTIVE_FILE).write_text(json.dumps({"model": BASE}) + "\n")
    return folder


@pytest.fixture(scope="module")
def adapted(models_dir):
    """``python -m ser adapt`` of the bundled model to demo speaker EF1, 3 clips per emotion."""
    real_active = (MODELS_DIR / ACTIVE_FILE).read_bytes()
    real_bundles = sorted(p.name for p in MODELS_DIR.iterdir())
    done = ser(
        "adapt", str(DEMO_DIR), "--speaker", "EF1", "--shots", "3", "--seed", "1",
        "--model", str(models_dir / BASE), "--out", str(models_dir), "--name", "ef1", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (MODELS_DIR / ACTIVE_FILE).read_bytes() == real_active
    assert sorted(p.name for p in MODELS_DIR.iterdir()) == real_bundles
    return json.loads(done.stdout)


def test_adapting_makes_a_whole_bundle_with_an_honest_card(adapted, models_dir, demo):
    card = read_card(models_dir / "ef1")
    assert card.to_dict() == adapted
    check_bundle(models_dir / "ef1")  # complete zip, checksums match
    assert not [p for p in models_dir.iterdir() if p.name.startswith(".")]  # no temporary folder left
    adaptation = card.adaptation
    assert adaptation["base_model"] == BASE and adaptation["speaker"] == "EF1"
    assert adaptation["shots"] == 3 and adaptation["seed"] == 1 and "AdaBN" in adaptation["method"]
    assert len(adaptation["clips"]) == 21 and all((DEMO_DIR / c["path"]).is_file() for c in adaptation["clips"])
    assert {c["word"] for c in adaptation["clips"]} == set(adaptation["excluded_words"])
    assert card.command.startswith("python -m ser adapt ") and "--shots 3" in card.command
    assert card.labels == tuple(LABELS) and card.base_evaluation == read_card(models_dir / BASE).evaluation
    assert (models_dir / ACTIVE_FILE).read_text() == json.dumps({"model": BASE}) + "\n"  # not --activate


def test_adapted_bundle_scores_what_its_card_says_and_beats_the_base(adapted, models_dir, demo):
    """The synthetic voices are unlike TESS's (the base is near chance on them); 21 labelled clips
    must lift accuracy on the speaker's clips of the 17 other words, and the saved bundle must be
    the model that was scored."""
    before, after = adapted["adaptation"]["before"], adapted["adaptation"]["after"]
    held_out = demo.filter(speakers=["EF1"])
    held_out.clips = [c for c in held_out.clips if c.text not in adapted["adaptation"]["excluded_words"]]
    assert after["n_clips"] == before["n_clips"] == len(held_out) == 119
    assert after["accuracy"] > before["accuracy"] + 0.1
    assert after["macro_f1"] > before["macro_f1"]
    rescored = evaluate_bundle(load_bundle(models_dir / "ef1"), held_out)
    assert rescored["accuracy"] == pytest.approx(after["accuracy"], abs=1 / 119)
    base = evaluate_bundle(load_bundle(models_dir / BASE), held_out)
    assert base["accuracy"] == pytest.approx(before["accuracy"], abs=1 / 119)


def test_activate_switches_the_active_model_and_text_output_shows_both_scores(adapted, models_dir):
    done = ser(
        "adapt", str(DEMO_DIR), "--speaker", "EM1", "--shots", "1",
        "--model", str(models_dir / BASE), "--out", str(models_dir), "--name", "em1", "--activate",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "before: accuracy" in done.stdout and "after: accuracy" in done.stdout and "(active)" in done.stdout
    assert active_name(models_dir) == "em1"
    assert read_card(models_dir / "em1").adaptation["shots"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--speaker", "XYZ"], "unknown speaker 'XYZ'; the data has EF1, EF2, EM1, EM2"),
        (["--speaker", "EF1", "--shots", "20"], "needs more than 20 clips of each emotion of EF1"),
        (["--speaker", "EF1", "--shots", "-1"], "--shots must be 0 (no labels: AdaBN alone) or more"),
    ],
)
def test_cli_errors_are_one_line_messages(tmp_path, args, message):
    done = ser("adapt", str(DEMO_DIR), *args, "--model", str(MODELS_DIR / BASE), "--out", str(tmp_path))
    assert done.returncode == (2 if "--shots must" in message else 1)  # 2: an argument error, caught by the parser
    assert message in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_taken_or_unusable_name_is_refused_before_any_work(models_dir):
    before = sorted(p.name for p in models_dir.iterdir())
    for name, message in [(BASE, "already exists"), ("a/b", "cannot name a model bundle")]:
        done = ser(
            "adapt", str(DEMO_DIR), "--speaker", "EF1", "--shots", "1",
            "--model", str(models_dir / BASE), "--out", str(models_dir), "--name", name,
        )  # fmt: skip
        assert done.returncode == 1 and message in done.stderr and "Traceback" not in done.stderr
    assert sorted(p.name for p in models_dir.iterdir()) == before
    # Refused before any feature is computed, not after the adaptation has run.
    from ser.errors import ModelError

    progress = []
    with pytest.raises(ModelError, match="already exists"):
        adapt(
            load_bundle(models_dir / BASE), discover(DEMO_DIR), "EF1", AdaptConfig(shots=1), models_dir=models_dir,
            name=BASE, hooks=RunHooks(progress=lambda done, total: progress.append(done)),
        )  # fmt: skip
    assert progress == []


def test_a_speaker_name_that_is_no_folder_name_still_names_the_bundle():
    from ser.store.registry import adapted_name

    name = adapted_name("cnn-tess-v1", "clinic/room 2")
    assert name.startswith("cnn-tess-v1-clinic_room_2-") and "/" not in name


def test_cli_refuses_a_speaker_missing_an_emotion(tmp_path):
    rows = ["path,emotion,speaker"] + [
        f"{p},{p.stem.split('_')[2]},EF1" for p in sorted(DEMO_DIR.glob("EF1_*/*.ogg")) if "_sad" not in p.stem
    ]
    (tmp_path / "clips.csv").write_text("\n".join(rows) + "\n")
    done = ser(
        "adapt", str(tmp_path / "clips.csv"), "--speaker", "EF1", "--model", str(MODELS_DIR / BASE),
        "--out", str(tmp_path / "models"),
    )  # fmt: skip
    assert done.returncode == 1
    assert "speaker EF1 has no clips of sad" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "models").exists()


def test_unlabelled_adaptation_never_reads_a_label(demo, models_dir):
    """k = 0 is AdaBN on every clip of the speaker: the same audio under other labels must give the
    very same model (only the scores, which do read the labels, may differ)."""
    ef1 = demo.filter(speakers=["EF1"])
    rotate = dict(zip(LABELS, LABELS[1:] + LABELS[:1], strict=True))
    relabelled = Manifest([dataclasses.replace(c, emotion=rotate[c.emotion]) for c in ef1.clips], ef1.root, [])
    base = load_bundle(models_dir / BASE)
    runs = [adapt(base, m, "EF1", AdaptConfig(shots=0), save=False, command="pytest") for m in (ef1, relabelled)]
    (_, card, model), (_, relabelled_card, relabelled_model) = runs
    weights, relabelled_weights = model.network.get_weights(), relabelled_model.network.get_weights()
    for ours, theirs in zip(weights, relabelled_weights, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    moved = [not np.allclose(w, o) for w, o in zip(weights, base.model.network.get_weights(), strict=True)]
    assert 0 < sum(moved) < len(moved)  # BatchNorm statistics re-estimated, nothing else trained
    adaptation = card.adaptation
    assert adaptation["clips"] == [] and adaptation["method"] == "AdaBN" and adaptation["loss_per_pass"] == []
    assert adaptation["n_statistics_clips"] == adaptation["after"]["n_clips"] == len(ef1) == 140
    assert (
        "transductive" in adaptation["test"]
        and "without their labels" in card.evaluation["speaker-adapted"]["description"]
    )
    assert relabelled_card.adaptation["after"]["accuracy"] != adaptation["after"]["accuracy"]


def test_cli_adapts_without_labels(models_dir):
    done = ser(
        "adapt", str(DEMO_DIR), "--speaker", "EM2", "--shots", "0",
        "--model", str(models_dir / BASE), "--out", str(models_dir), "--name", "em2",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "on the audio of 140 clips, no labels; scored on those same clips (transductive)" in done.stdout
    card = read_card(models_dir / "em2")
    assert card.adaptation["shots"] == 0 and "--shots 0" in card.command
    rescored = evaluate_bundle(load_bundle(models_dir / "em2"), discover(DEMO_DIR).filter(speakers=["EM2"]))
    assert rescored["accuracy"] == pytest.approx(card.adaptation["after"]["accuracy"], abs=1 / 140)


@requires_tess
def test_tess_adaptation_clips_and_a_real_run(tmp_path):
    """On real TESS: k whole words per speaker in every emotion, the rest of the words for test;
    and an end-to-end run on a few of OAF's words (the bundled model was trained on OAF: it stays right)."""
    from ser.corpora.datasets import Manifest
    from ser.training.adapt import adapt

    tess = discover(TESS_DIR)
    clips = choose_clips(tess, "YAF", LABELS, shots=5, seed=2)
    assert len(clips.labelled) == 35 and len(clips.test) == 1120 - 35
    assert not {c.text for c in clips.test} & {c.text for c in clips.labelled}
    words = sorted({c.text for c in tess.clips})[:4]
    few = Manifest([c for c in tess.clips if c.speaker == "OAF" and c.text in words], tess.root, [])
    path, card, _model = adapt(
        load_bundle(MODELS_DIR / BASE), few, "OAF", AdaptConfig(shots=1), models_dir=tmp_path, command="pytest"
    )
    assert card.adaptation["after"]["n_clips"] == 21 and card.adaptation["after"]["accuracy"] >= 0.9
    assert load_bundle(path).labels == LABELS


@pytest.mark.parametrize("most", [1, 7, 32, 64])
def test_fine_tuning_batches_are_equal_not_a_full_one_and_a_scrap(most):
    from ser.models.network.adapt import equal_batch_size

    assert equal_batch_size(35, 32) == 18 and equal_batch_size(35, 64) == 35
    for n in range(1, 300):
        size = equal_batch_size(n, most)
        n_batches = math.ceil(n / size)
        assert size <= most and n_batches == math.ceil(n / most)  # as few steps a pass as the cap allows
        assert n - (n_batches - 1) * size >= size - n_batches + 1  # the last batch is (nearly) as big


def test_the_speaker_normalised_model_says_how_it_adapts_instead():
    from ser.errors import ModelError

    svm = BUNDLED_SVM
    if not svm.is_dir():
        pytest.skip("the bundled speaker-normalised model is absent")
    with pytest.raises(ModelError, match="voice profile"):
        adapt(load_bundle(svm), discover(DEMO_DIR), "EF1", AdaptConfig(shots=1), save=False)
