"""Streamlit glue for the Train page: a model's scores (its evaluation, an adaptation's before
and after, beside the active model) and the list of model versions with their actions.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd
import streamlit as st

from ser.app.jobs import JobState, zip_bundle
from ser.app.ui import md
from ser.corpora.splits import PROTOCOLS
from ser.errors import SERError
from ser.store.card import ModelCard, compare_on_protocol, created, read_card, version_title
from ser.store.registry import active_name, delete_bundle, list_bundles, models_folder, serving_bundle, set_active
from ser.viz.plots import confusion_figure

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
        active = serving_bundle(models_folder())[0]
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


# --- model versions -----------------------------------------------------------------------------------


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
        active = serving_bundle(folder)[0].name
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
