"""Command line: ``python -m ser {train,evaluate,predict,models,adapt}``.

Each command is a thin layer over the library; an ``SERError`` becomes a one-line message
on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import shlex
import signal
import sys
from pathlib import Path

from ser.archs import ARCHITECTURES, DEFAULT_ARCH
from ser.config import STRATEGIES, RunHooks, TrainConfig
from ser.errors import ConfigError, SERError
from ser.registry import ModelCard, active_name, list_bundles, models_folder, serving_bundle, set_active
from ser.reports import format_report, prediction_json, prediction_text
from ser.splits import PROTOCOLS

# Everything above is cheap (no TensorFlow, no librosa): --help, argument errors and `models`
# answer in well under a second. The commands that run a model import it when they need it.

DATA_HELP = "corpus folders (TESS, RAVDESS, EmoDB, EMOVO, CREMA-D, SAVEE, or several side by side) or CSVs, pooled"
OUT_HELP = "models folder to write the bundle in (default: $SER_MODELS_DIR, else models/)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ser", description="SER Studio: speech emotion recognition")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model on a corpus and save it as a new bundle")
    train.add_argument("data", type=Path, nargs="+", help=DATA_HELP)
    train.add_argument(
        "--leave-out", action="append", default=[], metavar="SPEAKER",
        help="a speaker to keep out of training (repeatable), e.g. the voice of the example clips",
    )  # fmt: skip
    train.add_argument(
        "--arch", default=DEFAULT_ARCH, choices=list(ARCHITECTURES), help=f"architecture (default: {DEFAULT_ARCH})"
    )
    train.add_argument("--split", choices=list(PROTOCOLS), default="none", help="evaluation protocol (default: none)")
    train.add_argument(
        "--evaluate", default="", type=_protocols, help="more protocols to measure for the card, e.g. speaker,random"
    )
    train.add_argument("--epochs", type=int, default=None, help="maximum epochs (early stopping may end sooner)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", type=Path, default=None, help=OUT_HELP)
    train.add_argument("--name", default=None, help="bundle name (default: ARCH-DATE-TIME)")
    train.add_argument("--activate", action="store_true", help="make the new bundle the active model")
    train.add_argument(
        "--strategy", default=None, choices=STRATEGIES, help="tf.distribute strategy (default: one device)"
    )
    train.add_argument("--json", action="store_true", help="print the card as JSON")

    evaluate = sub.add_parser("evaluate", help="score a model on every clip of a corpus whose emotion it knows")
    evaluate.add_argument("data", type=Path, nargs="+", help=DATA_HELP)
    evaluate.add_argument("--model", type=Path, default=None, help="bundle folder (default: the active model)")
    evaluate.add_argument("--json", action="store_true", help="one JSON object on stdout")
    evaluate.add_argument(
        "--per-speaker", action="store_true",
        help="normalise each speaker's clips by that speaker's own (unlabelled) clips: transductive",
    )  # fmt: skip

    predict = sub.add_parser("predict", help="classify audio files")
    predict.add_argument("files", nargs="+", type=Path)
    predict.add_argument("--model", type=Path, default=None, help="bundle folder (default: the active model)")
    predict.add_argument("--json", action="store_true", help="one JSON object per line")
    predict.add_argument(
        "--same-speaker", action="store_true",
        help="the files are one speaker: their pooled speech (a voice profile) normalises each of them",
    )  # fmt: skip
    predict.add_argument(
        "--profile", type=Path, help="a voice profile (JSON) to normalise by, e.g. from --save-profile"
    )
    predict.add_argument("--save-profile", type=Path, help="with --same-speaker: write the files' voice profile here")
    predict.add_argument(
        "--timeline", action="store_true",
        help="also each window's emotion, for a clip longer than the model's window (\"pause\": no speech)",
    )  # fmt: skip

    models = sub.add_parser("models", help="list model bundles and architectures")
    models.add_argument("--dir", type=Path, default=None, help="models folder (default: $SER_MODELS_DIR, else models/)")

    adapt = sub.add_parser("adapt", help="adapt a model to one speaker from a few labelled clips per emotion")
    adapt.add_argument("data", type=Path, help="corpus folder or CSV manifest with the speaker's labelled clips")
    adapt.add_argument("--speaker", required=True, help="the speaker to adapt to, as the corpus names it")
    adapt.add_argument(
        "--shots", type=int, default=5,
        help="labelled clips per emotion to adapt on (default: 5); 0: no labels, AdaBN on all the speaker's clips",
    )  # fmt: skip
    adapt.add_argument("--model", type=Path, default=None, help="bundle to adapt (default: the active model)")
    adapt.add_argument("--seed", type=int, default=0, help="picks the adaptation clips and drives augmentation")
    adapt.add_argument("--out", type=Path, default=None, help=OUT_HELP)
    adapt.add_argument("--name", default=None, help="bundle name (default: BASE-SPEAKER-DATE-TIME)")
    adapt.add_argument("--activate", action="store_true", help="make the adapted bundle the active model")
    adapt.add_argument("--json", action="store_true", help="print the card as JSON")
    return parser


def _protocols(text: str) -> list[str]:
    """--evaluate speaker,random -> ["speaker", "random"], each checked against PROTOCOLS."""
    names = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in names if p not in PROTOCOLS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown protocol {unknown[0]!r}; use one of {', '.join(PROTOCOLS)}")
    return names


def _train_config(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig the arguments ask for, checked before anything heavy loads (ConfigError)."""
    epochs = {} if args.epochs is None else {"epochs": args.epochs}
    return TrainConfig(arch=args.arch, seed=args.seed, **epochs)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            args.config = _train_config(args)
        if args.command == "adapt" and args.shots < 0:
            raise ConfigError(f"--shots must be 0 (no labels: AdaBN alone) or more, not {args.shots}")
    except ConfigError as e:
        parser.error(str(e))  # status 2, like every other argument error
    args.command_line = "python -m ser " + shlex.join(argv)
    command = {
        "train": cmd_train,
        "evaluate": cmd_evaluate,
        "predict": cmd_predict,
        "models": cmd_models,
        "adapt": cmd_adapt,
    }
    try:
        status = command[args.command](args)
        sys.stdout.flush()  # a closed pipe raises here, not at exit
        return status
    except SERError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`predict *.wav | head -1`): stop quietly, as a shell tool would.
        # Later writes, and the flush at exit, go to /dev/null rather than raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


def cmd_train(args: argparse.Namespace) -> int:
    from ser.datasets import discover
    from ser.features import terminal_progress
    from ser.train import EpochLog, train

    manifest = _leave_out(discover(*args.data), args.leave_out)
    models_dir = args.out or models_folder()

    def on_epoch(log: EpochLog) -> None:
        fold = f"fold {log.fold_index}/{log.n_folds} ({log.fold})  " if log.n_folds > 1 else ""
        print(
            f"{fold}epoch {log.epoch:3d}/{log.n_epochs}  loss {log.loss:.3f}  acc {log.accuracy:.3f}  "
            f"val_loss {log.val_loss:.3f}  val_acc {log.val_accuracy:.3f}  {log.elapsed_s:.0f}s",
            file=sys.stderr,
        )

    hooks = RunHooks(on_epoch=on_epoch, progress=terminal_progress("features"), strategy=args.strategy)
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
    from ser.datasets import discover
    from ser.evaluation import evaluate_bundle
    from ser.features import terminal_progress

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
    from ser.bundle import load_bundle

    if path is not None:
        return load_bundle(path)
    path, problems = serving_bundle(models_folder())
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    return load_bundle(path)


def cmd_predict(args: argparse.Namespace) -> int:
    from ser.predict import Predictor, classify

    predictor = Predictor(_bundle(args.model))
    profile = _profile(args, predictor)
    failures = 0
    for path in args.files:
        release_freed_memory()  # the last file's buffers, before the next is decoded
        try:
            result = classify(path, predictor, profile=profile)
        except SERError as e:
            failures += 1
            _print_prediction_error(path, e, as_json=args.json)
            continue
        if result.note:
            print(f"{path}: warning: {result.note}", file=sys.stderr)
        print(
            prediction_json(path, result, args.timeline) if args.json else prediction_text(path, result, args.timeline)
        )
    return 1 if failures else 0


def _profile(args: argparse.Namespace, predictor):
    """The voice profile --profile or --same-speaker asks for (None: each file on its own)."""
    from ser.audio import load_audio_head
    from ser.profile import VoiceProfile

    if (args.profile or args.same_speaker or args.save_profile) and not predictor.takes_profiles:
        raise SERError(f"{predictor.bundle.name} normalises each clip by itself and takes no voice profile")
    if args.profile:
        try:
            return VoiceProfile.from_json(args.profile.read_bytes(), space=predictor.normalisation.space)
        except OSError as e:
            raise SERError(f"cannot read the voice profile {args.profile}: {e.strerror or e}") from e
    if args.save_profile and not args.same_speaker:
        raise SERError("--save-profile needs --same-speaker: the profile is built from the files given")
    if not args.same_speaker:
        return None
    builder = predictor.profile_builder(f"{len(args.files)} files marked as one speaker")
    for path in args.files:
        with contextlib.suppress(SERError):  # a file that cannot be used is reported when it is classified
            builder.add_waveform(load_audio_head(path, config=predictor.audio_config).waveform)
    profile = builder.profile()
    if profile is None:
        raise SERError("--same-speaker: none of the files holds speech to learn the voice from")
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
    from ser.datasets import discover
    from ser.features import terminal_progress

    manifest = discover(args.data)
    bundle = _bundle(args.model)
    from ser.adapt import AdaptConfig, adapt  # after ser.model, which silences TensorFlow's native start-up logs

    models_dir = args.out or models_folder()
    path, card, _model = adapt(
        bundle,
        manifest,
        args.speaker,
        AdaptConfig(shots=args.shots, seed=args.seed),
        models_dir=models_dir,
        name=args.name,
        command=args.command_line,
        hooks=RunHooks(progress=terminal_progress("features"), on_step=_terminal_steps()),
    )
    if args.activate:
        set_active(path.name, models_dir)
    if args.json:
        print(json.dumps(card.to_dict(), indent=2))
        return 0
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
    return 0


def _terminal_steps():
    """An in-place "adapting: step i/n" line on stderr when it is a terminal, else None."""
    if not sys.stderr.isatty():
        return None

    def report(step: int, n_steps: int, loss: float) -> None:
        end = "\n" if step == n_steps else ""
        print(f"\radapting: step {step}/{n_steps}  loss {loss:.3f}", end=end, file=sys.stderr, flush=True)

    return report
