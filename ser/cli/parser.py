"""Command line: ``python -m ser {train,evaluate,predict,models,adapt}``.

Each command is a thin layer over the library (``ser.cli.commands``); an ``SERError`` becomes a
one-line message on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
from pathlib import Path

from ser.cli import commands
from ser.config import STRATEGIES, TrainConfig
from ser.corpora.layouts import LAYOUTS
from ser.corpora.splits import PROTOCOLS
from ser.errors import ConfigError, SERError
from ser.models.archs import ARCHITECTURES, DEFAULT_ARCH

# Everything above is cheap (no TensorFlow, no librosa): --help, argument errors and `models`
# answer in well under a second. The commands that run a model import it when they need it.

DATA_HELP = f"corpus folders ({', '.join(LAYOUTS[:-1])}, or several side by side) or CSV manifests, pooled"
OUT_HELP = "models folder to write the bundle in (default: $SER_MODELS_DIR, else models/)"
MODEL_HELP = "bundle folder (default: the active model)"

Subparsers = argparse._SubParsersAction  # what add_subparsers returns


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ser", description="SER Studio: speech emotion recognition")
    sub = parser.add_subparsers(dest="command", required=True)
    for add_command in (_add_train, _add_evaluate, _add_predict, _add_models, _add_adapt):
        add_command(sub)
    return parser


def command_parser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The parser of command ``name`` (its usage is what an error in its arguments prints)."""
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return actions[0].choices[name]


def _add_train(sub: Subparsers) -> None:
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
    train.add_argument("--seed", type=int, default=0, help="one seed for splits, initialisation and augmentation")
    train.add_argument("--out", type=Path, default=None, help=OUT_HELP)
    train.add_argument("--name", default=None, help="bundle name (default: ARCH-DATE-TIME)")
    train.add_argument("--activate", action="store_true", help="make the new bundle the active model")
    train.add_argument(
        "--strategy", default=None, choices=STRATEGIES, help="tf.distribute strategy (default: one device)"
    )
    train.add_argument("--json", action="store_true", help="print the card as JSON")


def _add_evaluate(sub: Subparsers) -> None:
    evaluate = sub.add_parser("evaluate", help="score a model on every clip of a corpus whose emotion it knows")
    evaluate.add_argument("data", type=Path, nargs="+", help=DATA_HELP)
    evaluate.add_argument("--model", type=Path, default=None, help=MODEL_HELP)
    evaluate.add_argument("--json", action="store_true", help="one JSON object on stdout")
    evaluate.add_argument(
        "--per-speaker", action="store_true",
        help="normalise each speaker's clips by that speaker's own (unlabelled) clips: transductive",
    )  # fmt: skip


def _add_predict(sub: Subparsers) -> None:
    predict = sub.add_parser("predict", help="classify audio files")
    predict.add_argument(
        "files", nargs="+", type=Path, help="audio files in any format and sample rate (wav, flac, ogg, mp3, m4a, ...)"
    )
    predict.add_argument("--model", type=Path, default=None, help=MODEL_HELP)
    predict.add_argument("--json", action="store_true", help="one JSON object per line")
    predict.add_argument(
        "--same-speaker", action="store_true",
        help="the files are one speaker: their pooled speech (a voice profile) normalises each of them, and each "
        "answer is smoothed over the files that sound most like it (answers print once all are classified)",
    )  # fmt: skip
    predict.add_argument(
        "--profile",
        type=Path,
        help="a voice profile (JSON) to normalise by, e.g. from --save-profile; several files are then that "
        "speaker's, smoothed as with --same-speaker",
    )
    predict.add_argument("--save-profile", type=Path, help="with --same-speaker: write the files' voice profile here")
    predict.add_argument(
        "--timeline", action="store_true",
        help="also each window's emotion, for a clip longer than the model's window "
        "(\"no speech\": a pause, or sound without a voice)",
    )  # fmt: skip


def _add_models(sub: Subparsers) -> None:
    models = sub.add_parser("models", help="list model bundles and architectures")
    models.add_argument("--dir", type=Path, default=None, help="models folder (default: $SER_MODELS_DIR, else models/)")


def _add_adapt(sub: Subparsers) -> None:
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
        command_parser(parser, args.command).error(str(e))  # status 2 and the command's usage, as argparse's own
    args.command_line = "python -m ser " + shlex.join(argv)
    command = {
        "train": commands.cmd_train,
        "evaluate": commands.cmd_evaluate,
        "predict": commands.cmd_predict,
        "models": commands.cmd_models,
        "adapt": commands.cmd_adapt,
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
