"""The README's table of how good the bundled model is, generated from the active bundle's card.

    .venv/bin/python bench/readme_table.py             # print the table (markdown)
    .venv/bin/python bench/readme_table.py --write     # replace it in README.md, between the markers
    .venv/bin/python bench/readme_table.py --bundle cnn-tess-v1   # another bundle's card

Reads ``models/active.json`` and that bundle's ``card.json`` as plain JSON (no ``ser`` import, no
TensorFlow), so the figures a reader meets are the ones the model carries. tests/test_readme.py
checks that README.md's block equals this script's output.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
START = "<!-- model-table:start -->"
END = "<!-- model-table:end -->"
WIDTH = 100  # the README's line length for the words above the table

# A protocol key of the card -> what it measures, in words.
PROTOCOLS = {
    "corpus": "Leave one corpus out (a corpus it never heard)",
    "speaker": "Speaker-grouped folds (speakers it never heard)",
    "words": "Held-out words (speaker-dependent: the test speakers are in training)",
    "random": "Random split (speaker-dependent: the test speakers are in training)",
}
METRICS = {"uar": "UAR", "macro_f1": "macro-F1", "accuracy": "accuracy"}
MODES = {"zero_shot": "zero-shot", "per_speaker": "per speaker"}
CORPORA = {
    "tess": "TESS", "ravdess": "RAVDESS", "emodb": "EmoDB", "emovo": "EMOVO", "crema-d": "CREMA-D", "savee": "SAVEE",
}  # fmt: skip
SPLIT = re.compile(r"^(?P<what>.*?): train (?P<train>.+), test (?P<test>.+)$")


def read_active(models_dir: Path, bundle: str | None = None) -> tuple[str, dict[str, Any]]:
    """The bundle's name (default: the one ``active.json`` names) and its card."""
    name = bundle or json.loads((models_dir / "active.json").read_text())["model"]
    return name, json.loads((models_dir / name / "card.json").read_text())


def corpus_names(text: str) -> str:
    """ "ravdess+tess" -> "RAVDESS + TESS"; anything else (speaker lists, counts) as it is."""
    parts = text.split("+")
    return " + ".join(CORPORA.get(p, p) for p in parts) if all(p in CORPORA for p in parts) else text


def fold_label(split: str) -> str:
    """A fold's split, as the card words it, made short: "test EmoDB, trained on RAVDESS + TESS"."""
    match = SPLIT.match(split)
    if match is None:
        return split
    fold = re.search(r"fold \d+ of \d+", match["what"])
    prefix = f"{fold[0]}: " if fold else ""
    return f"{prefix}test {corpus_names(match['test'])}, trained on {corpus_names(match['train'])}"


def columns(evaluation: dict[str, Any]) -> list[tuple[str, str]]:
    """(metric, mode) pairs the card has: UAR and macro-F1 (accuracy where UAR is not recorded),
    zero-shot and, for a model that takes voice profiles, per speaker."""
    protocols = list(evaluation.values())
    metrics = [m for m in ("uar", "macro_f1") if any(m in p for p in protocols)]
    if "uar" not in metrics:
        metrics.insert(0, "accuracy")
    modes = ["zero_shot"] + (["per_speaker"] if any("per_speaker" in p for p in protocols) else [])
    return [(metric, mode) for metric in metrics for mode in modes]


def score(scores: dict[str, Any] | None, metric: str) -> str:
    return f"{scores[metric]:.3f}" if scores and metric in scores else "–"


def protocol_rows(key: str, result: dict[str, Any], cols: list[tuple[str, str]]) -> list[str]:
    """The protocol's mean in bold, then each fold."""
    folds = result.get("folds", [])
    per_speaker = result.get("per_speaker") or {}
    modes = {"zero_shot": result, "per_speaker": per_speaker}
    mean = " | ".join(f"**{score(modes[mode], metric)}**" for metric, mode in cols)
    n = f", mean of {len(folds)} folds" if len(folds) > 1 else ""
    rows = [f"| **{PROTOCOLS.get(key, key)}{n}** | {mean} |"]
    speaker_folds = per_speaker.get("folds", [])
    for i, fold in enumerate(folds if len(folds) > 1 else []):
        fold_modes = {"zero_shot": fold, "per_speaker": speaker_folds[i] if i < len(speaker_folds) else None}
        cells = " | ".join(score(fold_modes[mode], metric) for metric, mode in cols)
        rows.append(f"| {fold_label(fold['split'])} ({fold['n_clips']:,} clips) | {cells} |")
    return rows


def describe(name: str, card: dict[str, Any], cols: list[tuple[str, str]]) -> str:
    """The words above the table: which model, on what, and what each column means."""
    data = card.get("data", {})
    corpora = ", ".join(CORPORA.get(c, c) for c in data.get("corpora", []))
    n_clips = data.get("n_modelled", data.get("n_clips", 0))
    n_labels = len(card["labels"])
    metrics = {metric for metric, _ in cols}
    words = [
        f"Scores of `{name}`, recorded in its card by its training command: {n_clips:,} clips of "
        f"{len(data.get('speakers', []))} speakers ({corpora}) in {n_labels} emotions; chance is "
        f"{1 / n_labels:.2f}.",
        "**Accuracy** is the share of clips answered right." if "accuracy" in metrics else "",
        "**UAR** is the mean recall over the emotions (unweighted average recall)." if "uar" in metrics else "",
        "**Macro-F1** is the mean F1 over the emotions present." if "macro_f1" in metrics else "",
        "**Zero-shot**: each clip alone, nothing known of its speaker.",
    ]
    if any(mode == "per_speaker" for _, mode in cols):
        words.append(
            "**Per speaker**: each test speaker's clips normalised by that speaker's own unlabelled clips (a "
            "voice profile) and answered together; no label is read, but the profile is made of the test "
            "clips (transductive)."
        )
    return textwrap.fill(" ".join(w for w in words if w), width=WIDTH, break_on_hyphens=False)


def model_table(models_dir: Path = ROOT / "models", bundle: str | None = None) -> str:
    """The README's block: a sentence naming the model and the metrics, then one markdown table."""
    name, card = read_active(models_dir, bundle)
    evaluation = card.get("evaluation", {})
    if not evaluation:
        return f"`{name}` records no evaluation in its card."
    cols = columns(evaluation)
    header = " | ".join(f"{METRICS[metric]}, {MODES[mode]}" for metric, mode in cols)
    lines = [
        f"<!-- generated from models/{name}/card.json by: python bench/readme_table.py --write -->",
        describe(name, card, cols),
        "",
        f"| protocol | {header} |",
        "|---" * (len(cols) + 1) + "|",
    ]
    for key, result in evaluation.items():
        lines += protocol_rows(key, result, cols)
    return "\n".join(lines)


def replace_block(text: str, table: str) -> str:
    """``text`` with what lies between the two markers replaced by ``table``."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"README.md needs the markers {START} and {END}, in that order")
    return f"{text[: start + len(START)]}\n{table}\n{text[end:]}"


def readme_block(text: str) -> str:
    """What lies between the markers, without the newlines that frame it."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"README.md needs the markers {START} and {END}, in that order")
    return text[start + len(START) : end].strip("\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="replace the table in README.md")
    parser.add_argument("--bundle", default=None, help="a bundle of models/ (default: the active one)")
    parser.add_argument("--models", type=Path, default=ROOT / "models", help="models folder (default: models/)")
    args = parser.parse_args()
    table = model_table(args.models, args.bundle)
    if args.write:
        README.write_text(replace_block(README.read_text(), table))
        print(f"README.md: the table of {args.bundle or 'the active model'} written", file=sys.stderr)
    else:
        print(table)


if __name__ == "__main__":
    main()
