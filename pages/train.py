"""Train: retrain a model on the chosen corpus in the background, watch it learn, and serve it."""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd
import streamlit as st

from ser.archs import ARCHITECTURES
from ser.config import TrainConfig
from ser.errors import SERError
from ser.jobs import JOB, zip_bundle
from ser.plots import confusion_figure, history_figure
from ser.registry import ModelCard, active_name, compare_on_protocol, list_bundles, models_folder, read_card, set_active
from ser.splits import PROTOCOLS, applicable_protocols
from ser.ui import (
    active_bundle_path,
    active_model_path,
    load_manifest,
    md,
    through_app_navigation,
)


def activate(name: str) -> None:
    try:
        set_active(name, models_folder())
    except SERError as e:
        st.error(f"Cannot make {name} active: {e}")
        return
    st.rerun(scope="app")  # the sidebar shows the new model


def named_active(name: str) -> bool:
    """Whether active.json names ``name`` (a damaged one names none: the button to repair it stays)."""
    try:
        return active_name(models_folder()) == name
    except SERError:
        return False


def show_evaluation(card: ModelCard, split: str, key: str) -> None:
    """Test metrics of a finished run: accuracy, macro-F1, and per fold a confusion matrix and a table."""
    evaluation = card.evaluation.get(split)
    if not evaluation:
        st.info("No test set under this protocol: the run reports training and validation curves only.")
        return
    if card.adaptation is not None and split == "speaker-adapted":
        show_adaptation(card, key)
        return
    cols = st.columns(2)
    cols[0].metric(f"Accuracy ({PROTOCOLS[split]})", f"{evaluation['accuracy']:.1%}")
    cols[1].metric("Macro-F1", f"{evaluation['macro_f1']:.3f}")
    for i, fold in enumerate(evaluation["folds"]):
        st.markdown(f"**{fold['split']}**: accuracy {fold['accuracy']:.1%}, macro-F1 {fold['macro_f1']:.3f}")
        left, right = st.columns(2)
        left.plotly_chart(confusion_figure(fold), key=f"{key}-confusion-{i}")
        right.dataframe(pd.DataFrame(fold["per_class"]).T.round(3))


def show_adaptation(card: ModelCard, key: str) -> None:
    """An adapted model: its speaker's held-out clips scored before and after adapting."""
    adaptation = card.adaptation
    before, after = adaptation["before"], adaptation["after"]
    shots = f"{adaptation['shots']} labelled clips per emotion" if adaptation["shots"] else "no labels"
    st.markdown(
        f"Adapted **{md(adaptation['base_model'])}** to **{md(adaptation['speaker'])}** with "
        f"{shots} ({md(adaptation['method'])}). Scored on {after['n_clips']} clips: {md(adaptation['test'])}."
    )
    cols = st.columns(2)
    cols[0].metric(
        "Accuracy on the speaker's clips" if not adaptation["shots"] else "Accuracy on the speaker's held-out clips",
        f"{after['accuracy']:.1%}",
        delta=f"{after['accuracy'] - before['accuracy']:+.1%} (before: {before['accuracy']:.1%})",
    )  # fmt: skip
    cols[1].metric(
        "Macro-F1", f"{after['macro_f1']:.3f}",
        delta=f"{after['macro_f1'] - before['macro_f1']:+.3f} (before: {before['macro_f1']:.3f})",
    )  # fmt: skip
    left, right = st.columns(2)
    left.plotly_chart(confusion_figure(after), key=f"{key}-adapted-confusion")
    right.dataframe(pd.DataFrame(after["per_class"]).T.round(3))


def compare_with_active(name: str, card: ModelCard, split: str) -> None:
    """The finished run beside the active model, both as their cards score them under ``split``."""
    if split == "none":
        return
    try:
        active = active_model_path(models_folder())
        if active.name == name:
            st.caption(f"{name} is the active model.")
            return
        cards = {name: card, f"{active.name} (active)": read_card(active)}
    except SERError as e:
        st.caption(f"No active model to compare with: {e}")
        return
    rows = pd.DataFrame(compare_on_protocol(cards, split)).set_index("model")
    st.markdown(f"**Compared with the active model** ({PROTOCOLS[split]})")
    st.dataframe(rows, column_config={"accuracy": st.column_config.NumberColumn(format="percent")})
    if rows["accuracy"].isna().any():
        st.caption("The active model's card has no score under this protocol.")
    elif rows["corpus"].nunique() > 1:
        st.caption("Measured on different corpora: the scores are not directly comparable.")


@st.fragment(run_every=1)
def job_panel() -> None:
    job = JOB.snapshot()
    last = st.session_state.get("train_last_status")
    st.session_state["train_last_status"] = job.status
    if last in ("running", "stopping") and not job.running:
        st.rerun(scope="app")  # the run ended: refresh the model list below
    if job.status == "idle":
        st.info("No training run in this server process yet.")
        return
    st.subheader(f"{job.name} — {job.status}")
    if job.kind == "adapt":
        shots = f"{job.config['shots']} labelled clips per emotion" if job.config["shots"] else "no labels"
        st.caption(f"{job.base} adapted to {job.speaker} of {job.data}, {shots}")
    else:
        st.caption(f"{job.config.get('arch')} on {job.data}, protocol {job.split}, up to {job.n_epochs} epochs")
    if job.running and job.kind == "adapt":
        if job.steps_total:
            text = f"fine-tuning step {job.steps_done} of {job.steps_total}"
            st.progress(job.steps_done / job.steps_total, text=text)
        elif job.features_total:
            st.progress(job.features_done / job.features_total, text="Computing features…")
        else:
            st.progress(0.0, text="Preparing…")
    elif job.running:
        if job.logs:
            last = job.logs[-1]
            done = (last.fold_index - 1 + min(1.0, last.epoch / max(1, job.n_epochs))) / last.n_folds
            fold = f"fit {last.fold_index} of {last.n_folds} ({last.fold}), " if last.n_folds > 1 else ""
            st.progress(done, text=f"{fold}epoch {last.epoch} of at most {job.n_epochs}")
        elif job.features_total:
            st.progress(job.features_done / job.features_total, text="Computing features…")
        else:
            st.progress(0.0, text="Preparing…")
        if st.button("Stop", disabled=job.status == "stopping"):
            JOB.stop()
    if job.logs:
        left, right = st.columns(2)
        left.plotly_chart(history_figure(job.logs, "loss"), key="curve-loss")
        right.plotly_chart(history_figure(job.logs, "accuracy"), key="curve-accuracy")
    if job.status == "failed":
        what = "Adaptation" if job.kind == "adapt" else "Training"
        st.error(f"{what} failed: {md(job.error)}. The active model is unchanged.")
    elif job.status == "stopped":
        st.warning(f"{job.error}")
    elif job.status == "interrupted":  # by a server restart: ser.jobs.TrainingJob.recover
        st.warning(md(job.error))
        if st.button("Dismiss", key="dismiss-interrupted"):
            JOB.dismiss()
            st.rerun()
    elif job.status == "done":
        st.success(f"Saved {job.path}")
        show_evaluation(job.card, job.split, key="job")
        if job.kind == "train":  # an adaptation is compared with its base, before and after, above
            compare_with_active(job.name, job.card, job.split)
        if not named_active(job.name) and st.button(f"Make {job.name} the active model", type="primary"):
            activate(job.name)


def show_versions() -> None:
    folder = models_folder()
    try:
        active = active_model_path(folder).name
    except SERError:
        active = None
    bundles = list_bundles(folder, check=True)
    if not bundles:
        st.info(f"No model bundles in {folder}.")
    for path, card in bundles:
        if not isinstance(card, ModelCard):
            st.error(f"{md(path.name)}: {md(card)}")
            continue
        title = f"{path.name}{'  (active)' if path.name == active else ''} — {card.architecture}"
        headline = card.headline()
        if headline is not None:
            protocol, scores = headline
            if card.adaptation is not None:
                speaker = card.adaptation.get("speaker", "?")
                title += f", adapted to {speaker}: {scores['accuracy']:.1%} on their held-out clips"
            else:
                title += f", {PROTOCOLS.get(protocol, protocol)} {scores['accuracy']:.1%}"
        with st.expander(title):
            st.caption(f"{card.description}; created {card.created_at or '?'}")
            st.write(f"Trained on {card.data.get('root', '?')}: {card.data.get('trained_on', '?')}")
            for split in card.evaluation:
                show_evaluation(card, split, key=f"{path.name}-{split}")
            cols = st.columns(2)
            cols[0].download_button(
                "Download (zip)", functools.partial(zip_bundle, Path(path)), f"{path.name}.zip",
                mime="application/zip", key=f"zip-{path.name}",
            )  # fmt: skip
            if path.name != active and cols[1].button("Make active", key=f"activate-{path.name}"):
                activate(path.name)


through_app_navigation()
st.title("Train")
manifest = load_manifest()
if manifest is not None:
    st.caption(f"Corpus: {md(manifest.root)} ({len(manifest)} clips, speakers {', '.join(manifest.speakers)})")
    cols = st.columns(3)
    arch = cols[0].selectbox("Architecture", list(ARCHITECTURES), format_func=lambda a: f"{a}")
    split = cols[1].selectbox("Evaluation protocol", applicable_protocols(manifest), format_func=PROTOCOLS.get)
    epochs = cols[2].number_input("Epochs (at most)", min_value=1, max_value=500, value=TrainConfig.epochs)
    st.caption(ARCHITECTURES[arch].description)
    if st.button("Start training", type="primary"):
        try:
            JOB.start(manifest, split=split, config=TrainConfig(arch=arch, epochs=int(epochs)))
        except SERError as e:
            st.error(str(e))

    st.header("Adapt to one speaker")
    st.caption(
        "A few labelled clips of one speaker adapt the active model to that voice (its BatchNorm statistics "
        "re-estimated, then a short fine-tune). It is scored on the speaker's other clips, minus every word of "
        "the adaptation clips, before and after, and saved as a new model version."
    )
    cols = st.columns(3)
    speaker = cols[0].selectbox("Speaker", manifest.speakers, key="adapt_speaker")
    shots = cols[1].number_input(
        "Labelled clips per emotion", min_value=0, max_value=50, value=5, key="adapt_shots",
        help="0: no labels, only the BatchNorm statistics from all the speaker's clips, scored on those same clips",
    )  # fmt: skip
    base = active_bundle_path()
    if base is not None:
        cols[2].markdown(f"Base model  \n`{md(Path(base).name)}`")
        if st.button(f"Adapt to {speaker}", key="adapt"):
            try:
                JOB.start_adaptation(Path(base), manifest, speaker, shots=int(shots))
            except SERError as e:
                st.error(str(e))
job_panel()
st.header("Model versions")
show_versions()
