"""Train: retrain a model on the chosen corpus in the background, watch it learn, and serve it."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path

import pandas as pd
import streamlit as st

from ser.archs import ARCHITECTURES
from ser.config import TrainConfig
from ser.errors import SERError
from ser.jobs import JOB, JobState, zip_bundle
from ser.plots import confusion_figure, history_figure
from ser.registry import (
    ModelCard,
    active_name,
    compare_on_protocol,
    delete_bundle,
    list_bundles,
    models_folder,
    read_card,
    set_active,
)
from ser.splits import PROTOCOLS, applicable_protocols
from ser.ui import (
    active_bundle_path,
    active_model_path,
    load_manifest,
    md,
    through_app_navigation,
)

SHOWN_JOB = "train_shown_job"  # session key: (running, started_at) of the job this page run showed
START_ERROR = "train_start_error"  # session key: ("train" or "adapt", why that button's click started nothing)
NOTICE = "train_versions_notice"  # session key: (st function, text) of what a Delete click did
CONFIRM = "train_confirm_delete"  # session key: the active bundle a Delete click asks to confirm
OPEN = "train_open_versions"  # session key: the bundles whose sections are open


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


# --- the background job -------------------------------------------------------------------------------


def job_signature(job: JobState) -> tuple[bool, float]:
    return job.running, job.started_at


@st.fragment(run_every=1)
def job_panel() -> None:
    """Progress, curves and the outcome of the server's one job, refreshed every second."""
    job = JOB.snapshot()
    if job_signature(job) != st.session_state.get(SHOWN_JOB, job_signature(job)):
        st.rerun(scope="app")  # a run started (here or in another tab) or ended: the buttons and the list change
    if job.status == "idle":
        st.info("No training run in this server process yet.")
        return
    st.subheader(f"{job.name} — {job.status}")
    if job.kind == "adapt":
        shots = f"{job.config['shots']} labelled clips per emotion" if job.config["shots"] else "no labels"
        st.caption(f"{job.base} adapted to {job.speaker} of {job.data}, {shots}")
    else:
        st.caption(f"{job.config.get('arch')} on {job.data}, protocol {job.split}, up to {job.n_epochs} epochs")
    if job.running:
        show_progress(job)
        if st.button("Stop", disabled=job.status == "stopping"):
            JOB.stop()
    if job.logs:
        left, right = st.columns(2)
        left.plotly_chart(history_figure(job.logs, "loss"), key="curve-loss")
        right.plotly_chart(history_figure(job.logs, "accuracy"), key="curve-accuracy")
    show_outcome(job)


def show_progress(job: JobState) -> None:
    if job.kind == "adapt" and job.steps_total:
        st.progress(job.steps_done / job.steps_total, text=f"fine-tuning step {job.steps_done} of {job.steps_total}")
    elif job.kind == "train" and job.logs:
        last = job.logs[-1]
        done = (last.fold_index - 1 + min(1.0, last.epoch / max(1, job.n_epochs))) / last.n_folds
        fold = f"fit {last.fold_index} of {last.n_folds} ({last.fold}), " if last.n_folds > 1 else ""
        st.progress(done, text=f"{fold}epoch {last.epoch} of at most {job.n_epochs}")
    elif job.features_total:
        st.progress(job.features_done / job.features_total, text="Computing features…")
    else:
        st.progress(0.0, text="Preparing…")


def show_outcome(job: JobState) -> None:
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


def start_training(manifest) -> None:
    """The Start button's callback: runs before the page, so the page it reruns already shows the job."""
    config = TrainConfig(arch=st.session_state["train_arch"], epochs=int(st.session_state["train_epochs"]))
    try:
        JOB.start(manifest, split=st.session_state["train_split"], config=config)
    except SERError as e:
        st.session_state[START_ERROR] = ("train", str(e))


def start_adaptation(base: str, manifest) -> None:
    speaker, shots = st.session_state["adapt_speaker"], int(st.session_state["adapt_shots"])
    try:
        JOB.start_adaptation(Path(base), manifest, speaker, shots=shots)
    except SERError as e:
        st.session_state[START_ERROR] = ("adapt", str(e))


def start_error(kind: str) -> None:
    """Why the last click on this kind's button started nothing (another run, a taken name)."""
    if st.session_state.get(START_ERROR, ("",))[0] == kind:
        st.error(md(st.session_state.pop(START_ERROR)[1]))


def keep_job_settings(job: JobState) -> None:
    """The fields show the settings of the run below them: a page left and opened again (Streamlit
    forgets the fields of a page it leaves) shows the running job's epochs, not the default."""
    train = job.kind == "train" and job.status != "idle"
    defaults = {
        "train_arch": job.config.get("arch", TrainConfig.arch) if train else TrainConfig.arch,
        "train_split": job.split if train and job.split in PROTOCOLS else "speaker",
        "train_epochs": job.n_epochs if train else TrainConfig.epochs,
        "adapt_shots": int(job.config.get("shots", 5)) if job.kind == "adapt" else 5,
    }
    if job.kind == "adapt":
        defaults["adapt_speaker"] = job.speaker
    for key, value in defaults.items():
        st.session_state.setdefault(key, value)


def training_form(manifest, job: JobState) -> None:
    st.caption(f"Corpus: {md(manifest.root)} ({len(manifest)} clips, speakers {', '.join(manifest.speakers)})")
    protocols = applicable_protocols(manifest)
    if st.session_state.get("train_split") not in protocols:  # another corpus: its protocols
        st.session_state["train_split"] = protocols[0]
    cols = st.columns(3)
    arch = cols[0].selectbox("Architecture", list(ARCHITECTURES), key="train_arch")
    cols[1].selectbox("Evaluation protocol", protocols, format_func=PROTOCOLS.get, key="train_split")
    cols[2].number_input("Epochs (at most)", min_value=1, max_value=500, key="train_epochs")
    st.caption(ARCHITECTURES[arch].description)
    st.button(
        "Start training", type="primary", disabled=job.running, on_click=start_training, args=(manifest,),
        help="One run at a time per server: wait for the current one, or stop it." if job.running else None,
    )  # fmt: skip
    start_error("train")


def adaptation_form(manifest, job: JobState) -> None:
    st.header("Adapt to one speaker")
    st.caption(
        "A few labelled clips of one speaker adapt the active model to that voice (its BatchNorm statistics "
        "re-estimated, then a short fine-tune). It is scored on the speaker's other clips, minus every word of "
        "the adaptation clips, before and after, and saved as a new model version."
    )
    if st.session_state.get("adapt_speaker") not in manifest.speakers:
        st.session_state["adapt_speaker"] = manifest.speakers[0]
    cols = st.columns(3)
    speaker = cols[0].selectbox("Speaker", manifest.speakers, key="adapt_speaker")
    cols[1].number_input(
        "Labelled clips per emotion", min_value=0, max_value=50, key="adapt_shots",
        help="0: no labels, only the BatchNorm statistics from all the speaker's clips, scored on those same clips",
    )  # fmt: skip
    base = active_bundle_path()
    if base is not None and ARCHITECTURES[read_card(Path(base)).architecture].family != "keras":
        st.info(
            f"The active model, {md(Path(base).name)}, is not fine-tuned to a speaker: it takes the speaker's voice "
            "profile instead (Classify: 'My voice' or 'These clips are one speaker'); make a network active to adapt."
        )
    elif base is not None:
        cols[2].markdown(f"Base model  \n`{md(Path(base).name)}`")
        st.button(
            f"Adapt to {speaker}", key="adapt", disabled=job.running, on_click=start_adaptation, args=(base, manifest)
        )
        start_error("adapt")


# --- model versions -----------------------------------------------------------------------------------


def created(card: ModelCard) -> dt.datetime:
    """A card's creation time (its "created_at"), for sorting; the oldest possible when it has none."""
    try:
        when = dt.datetime.fromisoformat(card.created_at)
    except (TypeError, ValueError):
        return dt.datetime.min.replace(tzinfo=dt.UTC)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def version_title(name: str, card: ModelCard, active: str | None) -> str:
    title = f"{name}{'  (active)' if name == active else ''} — {card.architecture}"
    headline = card.headline()
    if headline is not None:
        protocol, scores = headline
        if card.adaptation is not None:
            speaker = card.adaptation.get("speaker", "?")
            title += f", adapted to {speaker}: {scores['accuracy']:.1%} on their held-out clips"
        else:
            title += f", {PROTOCOLS.get(protocol, protocol)} {scores['accuracy']:.1%}"
    if card.created_at:
        title += f", created {created(card):%Y-%m-%d %H:%M}"
    return title


def delete_version(name: str, was_active: bool) -> None:
    """The Delete buttons' callback; the active bundle's successor is the newest one left."""
    folder = models_folder()
    st.session_state.pop(CONFIRM, None)
    try:
        delete_bundle(name, folder)
    except SERError as e:
        st.session_state[NOTICE] = ("error", str(e))
        return
    text = f"Deleted {name}."
    if was_active:
        left = sorted(
            ((path, card) for path, card in list_bundles(folder, check=True) if isinstance(card, ModelCard)),
            key=lambda item: created(item[1]),
        )
        if left:
            set_active(left[-1][0].name, folder)
            text += f" {left[-1][0].name}, the newest model left, is now the active one."
        else:
            text += " No model is left to serve: train one."
    st.session_state[NOTICE] = ("success", text)


def version_actions(path: Path, active: str | None, job: JobState) -> None:
    name = path.name
    cols = st.columns(3)
    cols[0].download_button(
        "Download (zip)", functools.partial(zip_bundle, Path(path)), f"{name}.zip",
        mime="application/zip", key=f"zip-{name}",
    )  # fmt: skip
    if name != active and cols[1].button("Make active", key=f"activate-{name}"):
        activate(name)
    busy = "Wait for the current run to end." if job.running else None
    if name != active:
        cols[2].button("Delete", key=f"delete-{name}", disabled=job.running, help=busy, on_click=delete_version,
                       args=(name, False))  # fmt: skip
    elif st.session_state.get(CONFIRM) != name:
        cols[2].button("Delete…", key=f"delete-{name}", disabled=job.running, help=busy,
                       on_click=lambda: st.session_state.update({CONFIRM: name}))  # fmt: skip
    else:
        st.warning(f"{md(name)} is the active model, the one the app serves. Delete it? The newest model left "
                   "becomes the active one.")  # fmt: skip
        yes, no = st.columns(2)
        yes.button("Delete the active model", key=f"confirm-{name}", type="primary", disabled=job.running,
                   on_click=delete_version, args=(name, True))  # fmt: skip
        no.button("Cancel", key=f"cancel-{name}", on_click=lambda: st.session_state.pop(CONFIRM, None))


def remember_open(name: str) -> None:
    opened = st.session_state.setdefault(OPEN, set())
    (opened.add if st.session_state[f"version-{name}"] else opened.discard)(name)


def show_versions(job: JobState) -> None:
    """Every bundle, newest first, each in a section whose details (its confusion matrices) are
    drawn only while it is open: with every section drawn, 20 bundles made 22 charts."""
    folder = models_folder()
    try:
        active = active_model_path(folder).name
    except SERError:
        active = None
    if notice := st.session_state.pop(NOTICE, None):
        getattr(st, notice[0])(md(notice[1]))
    bundles = list_bundles(folder, check=True)
    if not bundles:
        st.info(f"No model bundles in {folder}.")
    whole = sorted((b for b in bundles if isinstance(b[1], ModelCard)), key=lambda b: created(b[1]), reverse=True)
    for path, card in whole:
        # Open as the user left it: the label is part of a section's identity in Streamlit, so a
        # bundle made active (its label changes) would otherwise close.
        section = st.expander(
            version_title(path.name, card, active), expanded=path.name in st.session_state.get(OPEN, set()),
            key=f"version-{path.name}", on_change=remember_open, args=(path.name,),
        )  # fmt: skip
        if not section.open:
            continue
        with section:
            st.caption(f"{card.description}; created {card.created_at or '?'}")
            st.write(f"Trained on {card.data.get('root', '?')}: {card.data.get('trained_on', '?')}")
            for split in card.evaluation:
                show_evaluation(card, split, key=f"{path.name}-{split}")
            version_actions(path, active, job)
    for path, error in (b for b in bundles if not isinstance(b[1], ModelCard)):
        st.error(f"{md(path.name)}: {md(error)}")


through_app_navigation()
st.title("Train")
job = JOB.snapshot()
st.session_state[SHOWN_JOB] = job_signature(job)
keep_job_settings(job)
manifest = load_manifest()
if manifest is not None:
    training_form(manifest, job)
if manifest is None or job.kind == "train":
    job_panel()  # under the Start button
if manifest is not None:
    adaptation_form(manifest, job)
    if job.kind == "adapt":
        job_panel()  # under the Adapt button
st.header("Model versions")
show_versions(job)
