from __future__ import annotations

import subprocess
import sys

from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT


def test_app_starts_and_shows_the_active_model():
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not app.exception
    assert "Classify" in [t.value for t in app.title]
    sidebar = " ".join(m.value for m in app.sidebar.markdown)
    assert "cnn" in sidebar


def test_pylibsrtp_and_tensorflow_load_in_either_order():
    """pylibsrtp segfaults when loaded after TensorFlow; importing ``ser`` settles the order, so a
    page that loads the model before the Live page's WebRTC stack cannot crash the server."""
    code = "import ser.model, pylibsrtp, streamlit_webrtc; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_a_streamlit_rerun_leaves_the_training_threads_keras_state_alone():
    """Streamlit ends each script run with keras.backend.clear_session(), which wipes Keras'
    per-thread naming state in every thread: a training job building a model meanwhile got two
    layers of one name. ser.ui turns that clean-up off for Keras."""
    import threading

    import keras
    from streamlit.runtime.scriptrunner import script_runner

    import ser.ui  # noqa: F401  (installs the fix)

    names = []

    def build_across_a_rerun():
        names.append(keras.layers.ReLU().name)  # a fresh thread: "re_lu"
        script_runner._clean_problem_modules()  # what Streamlit runs after every script run
        names.append(keras.layers.ReLU().name)

    thread = threading.Thread(target=build_across_a_rerun)
    thread.start()
    thread.join()
    assert names == ["re_lu", "re_lu_1"]
