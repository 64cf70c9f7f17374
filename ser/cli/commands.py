"""The commands of ``python -m ser``, each given the arguments ``ser.cli.parser`` parsed; each returns
the exit status. An ``SERError`` they raise is ``ser.cli.parser.main``'s to report.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import json
import sys
from pathlib import Path

from ser.audio.sources import check_path
from ser.cli.reports import format_report, prediction_json, prediction_text, terminal_progress
from ser.config import RunHooks
from ser.errors import SERError
from ser.models.archs import ARCHITECTURES
from ser.store.card import ModelCard
from ser.store.registry import active_name, list_bundles, models_folder, serving_bundle, set_active

# Everything above is cheap (no TensorFlow, no librosa), so that `models` answers in well under
# a second. The commands that run a model import it when they need it.


def cmd_train(args: argparse.Namespace) -> int:
    from ser.config import EpochLog
    from ser.corpora.datasets import discover
    from ser.training.train import train

    manifest = _leave_out(discover(*args.data), args.leave_out)
    models_dir = args.out or models_folder()

    def on_epoch(log: EpochLog) -> None:
        fold = f"fold {log.fold_index}/{log.n_folds} ({log.fold})  " if log.n_folds > 1 else ""
        print(
            f"{fold}epoch {log.epoch:3d}/{log.n_epochs}  loss {log.loss:.3f}  acc {log.accuracy:.3f}  "
            f"val_loss {log.val_loss:.3f}  val_acc {log.val_accuracy:.3f}  {log.elapsed_s:.0f}s",
            file=sys.stderr,
        )

    def on_fit(split: str, index: int, n_fits: int) -> None:
        print(f"fit {index}/{n_fits}: {split}", file=sys.stderr, flush=True)

    hooks = RunHooks(
        on_epoch=on_epoch, on_fit=on_fit, on_step=_terminal_steps("contour networks"),
        progress=terminal_progress("features"), strategy=args.strategy,
    )  # fmt: skip
    path, card = train(
        manifest, split=args.split, config=args.config, evaluate_protocols=args.evaluate, models_dir=models_dir,
        name=args.name, command=args.command_line, hooks=hooks,
    )  # fmt: skip
    if args.activate:
        set_active(path.name, models_dir)
    if args.json:
        print(json.dumps(card.to_dict(), indent=2))
    else:
        print(f"saved {path}" + (" (active)" if args.activate else ""))
        for protocol, result in card.evaluation.items():
            print(f"{protocol:>8}: accuracy {result['accuracy']:.3f}  macro-F1 {result['macro_f1']:.3f}")
    return 0


def _leave_out(manifest, speakers: list[str]):
    """``manifest`` without the clips of ``speakers`` (each must name a speaker it has)."""
    if not speakers:
        return manifest
    out = {manifest.speaker_id(name) for name in speakers}
    return manifest.filter(speakers=[s for s in {c.speaker_id for c in manifest.clips} if s not in out])


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ser.corpora.datasets import discover
    from ser.training.evaluation import evaluate_bundle

    manifest = discover(*args.data)
    hooks = RunHooks(progress=terminal_progress("features"))
    report = evaluate_bundle(_bundle(args.model), manifest, per_speaker=args.per_speaker, hooks=hooks)
    if args.json:
        print(json.dumps(report))
    else:
        print(format_report(report))
    return 0


def _bundle(path: Path | None):
    """The bundle at ``path``, or the one the models folder serves (with a warning for what was skipped)."""
    from ser.models.bundle import load_bundle

    if path is not None:
        return load_bundle(path)
    path, problems = serving_bundle(models_folder())
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    return load_bundle(path)


def cmd_predict(args: argparse.Namespace) -> int:
    unusable = _unusable_files(args.files)
    if len(unusable) == len(args.files):  # nothing to classify: said before any model loads
        for path, error in unusable.items():
            _print_prediction_error(path, error, as_json=args.json)
        return 1
    from ser.serving.predict import Predictor, classify

    predictor = Predictor(_bundle(args.model))
    profile = _profile(args, predictor)
    # With one speaker's profile, the files are that speaker's: their answers are smoothed over each
    # other, so every file is classified before any is printed.
    together = profile is not None
    failures, done = 0, []
    for path in args.files:
        release_freed_memory()  # the last file's buffers, before the next is decoded
        try:
            result = classify(path, predictor, profile=profile)
        except SERError as e:
            failures += 1
            done.append((path, e))
        else:
            done.append((path, result.without_audio() if together else result))
        if not together:
            _print_result(*done.pop(), args)
    if together:
        classified = [(i, result) for i, (_, result) in enumerate(done) if not isinstance(result, SERError)]
        smoothed = predictor.smooth([result.prediction for _, result in classified])
        for (i, result), prediction in zip(classified, smoothed, strict=True):
            done[i] = (done[i][0], dataclasses.replace(result, prediction=prediction))
        for path, result in done:
            _print_result(path, result, args)
    return 1 if failures else 0


def _unusable_files(paths: list[Path]) -> dict[Path, SERError]:
    """The files that cannot be audio, told without reading them (missing, folders, empty), and why."""
    unusable = {}
    for path in paths:
        try:
            check_path(path)
        except SERError as e:
            unusable[path] = e
    return unusable


def _print_result(path: Path, result, args: argparse.Namespace) -> None:
    """One file's answer (a Classification) or its error, on stdout (errors and warnings: stderr)."""
    if isinstance(result, SERError):
        _print_prediction_error(path, result, as_json=args.json)
        return
    if result.note:
        print(f"{path}: warning: {result.note}", file=sys.stderr)
    print(prediction_json(path, result, args.timeline) if args.json else prediction_text(path, result, args.timeline))


def _profile(args: argparse.Namespace, predictor):
    """The voice profile --profile or --same-speaker asks for (None: each file on its own)."""
    from ser.serving.predict import one_speaker_profile
    from ser.voice.profile import VoiceProfile

    if (args.profile or args.same_speaker or args.save_profile) and not predictor.takes_profiles:
        raise SERError(f"{predictor.bundle.name} normalises each clip by itself and takes no voice profile")
    if args.profile:
        try:
            return VoiceProfile.from_json(args.profile.read_bytes(), space=predictor.profile_space)
        except OSError as e:
            raise SERError(f"cannot read the voice profile {args.profile}: {e.strerror or e}") from e
    if args.save_profile and not args.same_speaker:
        raise SERError("--save-profile needs --same-speaker: the profile is built from the files given")
    if not args.same_speaker:
        return None
    try:
        profile, _ = one_speaker_profile(args.files, predictor)  # the files it could not use: below, one by one
    except SERError as e:
        raise SERError(f"--same-speaker: {e}") from e
    if args.save_profile:
        args.save_profile.write_text(profile.to_json() + "\n")
        print(f"saved the voice profile ({profile.speech_s:.0f} s of speech) to {args.save_profile}", file=sys.stderr)
    return profile


def release_freed_memory() -> None:
    """Hand memory freed by the previous file back to the system (glibc keeps it otherwise, and
    a batch of long recordings would add up: 1.3-1.5 GB peak for 41 files, 1.1 GB for the hour)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _print_prediction_error(path: Path, error: SERError, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"file": str(path), "error": str(error), "kind": type(error).__name__}))
    else:
        print(f"{path}: error: {error}", file=sys.stderr)


def cmd_models(args: argparse.Namespace) -> int:
    models_dir = args.dir or models_folder()
    if not models_dir.is_dir():
        raise SERError(f"models folder not found: {models_dir}")
    try:
        active = active_name(models_dir)
    except SERError:
        active = None
    bundles = list_bundles(models_dir, check=True)
    if not bundles:
        print(f"no model bundles in {models_dir}; make one with `python -m ser train`")
    for path, card in bundles:
        if not isinstance(card, ModelCard):
            print(f"  {path.name}: unusable ({card})")
            continue
        mark = "*" if path.name == active else " "
        scores = ", ".join(f"{k} {v.get('accuracy', float('nan')):.3f}" for k, v in card.evaluation.items())
        print(f"{mark} {path.name}  [{card.architecture}]  {scores}")
    print("\narchitectures: " + ", ".join(ARCHITECTURES))
    return 0


def cmd_adapt(args: argparse.Namespace) -> int:
    from ser.corpora.datasets import discover

    manifest = discover(args.data)
    bundle = _bundle(args.model)
    from ser.models.network.adapt import AdaptConfig
    from ser.training.adapt import (
        adapt,  # after ser.models.network.layers, which silences TensorFlow's native start-up logs
    )

    models_dir = args.out or models_folder()
    path, card, _model = adapt(
        bundle,
        manifest,
        args.speaker,
        AdaptConfig(shots=args.shots, seed=args.seed),
        models_dir=models_dir,
        name=args.name,
        command=args.command_line,
        hooks=RunHooks(progress=terminal_progress("features"), on_step=_terminal_steps("adapting")),
    )
    if args.activate:
        set_active(path.name, models_dir)
    if args.json:
        print(json.dumps(card.to_dict(), indent=2))
    else:
        _print_adaptation(path, card, args)
    return 0


def _print_adaptation(path: Path, card: ModelCard, args: argparse.Namespace) -> None:
    """What ``adapt`` did, in a few lines: the method, the clips, the scores before and after."""
    adaptation = card.adaptation
    before, after = adaptation["before"], adaptation["after"]
    print(f"adapted {adaptation['base_model']} to {adaptation['speaker']}: {adaptation['method']}")
    n_clips, n_test = len(adaptation["clips"]), after["n_clips"]
    if args.shots:
        print(f"on {n_clips} clips ({args.shots} per emotion); tested on {n_test} held-out clips of other words")
    else:
        print(f"on the audio of {n_test} clips, no labels; scored on those same clips (transductive)")
    print(f"  before: accuracy {before['accuracy']:.3f}  macro-F1 {before['macro_f1']:.3f}")
    print(f"   after: accuracy {after['accuracy']:.3f}  macro-F1 {after['macro_f1']:.3f}")
    print(f"saved {path}" + (" (active)" if args.activate else ""))


def _terminal_steps(label: str):
    """An in-place "``label``: step i/n" line on stderr when it is a terminal, else None."""
    if not sys.stderr.isatty():
        return None

    def report(step: int, n_steps: int, loss: float) -> None:
        end = "\n" if step == n_steps else ""
        print(f"\r{label}: step {step}/{n_steps}  loss {loss:.3f}", end=end, file=sys.stderr, flush=True)

    return report
