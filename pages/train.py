"""Train: retrain a model on the chosen corpus in the background, watch it learn, and serve it."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ser.app.jobs import JOB, JobState
from ser.app.ui import active_bundle_path, load_manifest, md, through_app_navigation
from ser.app.versions import activate, compare_with_active, named_active, show_evaluation, show_versions
from ser.config import TrainConfig
from ser.corpora.splits import PROTOCOLS, applicable_protocols
from ser.errors import SERError
from ser.models import kind_of
from ser.models.archs import ARCHITECTURES
from ser.store.card import read_card
from ser.viz.plots import history_figure

SHOWN_JOB = "train_shown_job"  # session key: (running, started_at) of the job this page run showed
START_ERROR = "train_start_error"  # session key: ("train" or "adapt", why that button's click started nothing)


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
        arch = job.config.get("arch", "")
        epochs = f", up to {job.n_epochs} epochs" if arch in ARCHITECTURES and kind_of(arch).early_stopped else ""
        st.caption(f"{arch} on {job.data}, protocol {job.split}{epochs}")
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
    done, text = job.progress()
    st.progress(min(1.0, done), text=text)


def show_outcome(job: JobState) -> None:
    if job.status == "failed":
        what = "Adaptation" if job.kind == "adapt" else "Training"
        st.error(f"{what} failed: {md(job.error)}. The active model is unchanged.")
    elif job.status == "stopped":
        st.warning(f"{job.error}")
    elif job.status == "interrupted":  # by a server restart: ser.app.jobs.TrainingJob.recover
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
    in_one_go = not kind_of(arch).early_stopped
    cols[2].number_input(
        "Epochs (at most)", min_value=1, max_value=500, key="train_epochs", disabled=in_one_go,
        help="This model is fitted in one go and has no epochs to set" if in_one_go else None,
    )  # fmt: skip
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
    if base is not None and not kind_of(read_card(Path(base)).architecture).adaptable:
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
