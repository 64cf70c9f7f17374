from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from bench.appserver import AppServer
from tests.conftest import ROOT


def test_app_starts_and_shows_the_active_model():
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not app.exception
    assert "Classify" in [t.value for t in app.title]
    sidebar = " ".join(m.value for m in app.sidebar.markdown)
    from ser.store.registry import active_name, models_folder

    assert active_name(models_folder()) in sidebar


@pytest.mark.parametrize(
    ("library", "code", "printed"),
    [
        ("openSMILE", "from ser.features.functionals import egemaps\nprint(egemaps(tone).shape)", "(89,)"),
        ("onnxruntime (the voice-activity detector)", "from ser.audio.speech import voice_probability\n"
         "print(voice_probability(tone).shape)", "(32,)"),
    ],
)  # fmt: skip
def test_native_libraries_work_after_tensorflow(library, code, printed):
    """openSMILE's library corrupts the heap when loaded after TensorFlow's ("malloc(): invalid
    size"); importing ``ser`` loads it first, so eGeMAPS works in a process that runs a network. The
    voice-activity detector's onnxruntime is loaded after TensorFlow, and works beside it."""
    setup = (
        "import numpy as np, ser.models.network.layers, tensorflow as tf\n"
        "tf.constant([1.0]).numpy()\n"
        "tone = (0.1 * np.sin(2 * np.pi * 180 * np.arange(16000) / 16000)).astype(np.float32)\n"
    )
    done = subprocess.run([sys.executable, "-c", setup + code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == printed, (library, done.stderr[-2000:])


def test_tensorflow_imported_before_ser_gives_a_clear_error_where_opensmile_is_needed():
    """A script that imports TensorFlow first: openSMILE would crash the process (signal 11), so
    eGeMAPS raises ModelError saying what to do; the network, with its voice-activity detector, works."""
    code = (
        "import tensorflow\n"
        "from ser.audio.load import load_audio\n"
        "from ser.errors import ModelError\n"
        "from ser.features.functionals import egemaps\n"
        "from ser.serving.predict import Predictor\n"
        "clip = load_audio('assets/examples/03-01-05-02-01-01-16.flac')\n"
        "cnn = Predictor.from_path('models/cnn-tess-v1')\n"
        "print(cnn.predict(clip).label in cnn.labels)\n"
        "try:\n"
        "    egemaps(clip)\n"
        "except ModelError as e:\n"
        "    print(e)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    first, message = done.stdout.strip().splitlines()
    assert first == "True"
    assert "TensorFlow was imported before ser" in message and "import ser first" in message


def test_loading_the_networks_makes_ast_parse_one_thread_at_a_time():
    """ser.models.network.layers serialises ``ast.parse`` (CPython 3.11's AST constructor is not safe in two threads
    at once): TensorFlow's autograph (via gast) and Streamlit's magic both reach the locked one, and
    it parses as before."""
    import ast

    import gast

    import ser.models.network.layers  # noqa: F401

    assert getattr(ast.parse, "_ser_serialised", False)
    assert isinstance(ast.parse("x = 1", "<test>", "exec").body[0], ast.Assign)
    assert isinstance(gast.parse("y = 2").body[0], gast.Assign)


def test_pylibsrtp_and_tensorflow_load_in_either_order():
    """pylibsrtp segfaults when loaded after TensorFlow; importing ``ser`` settles the order, so a
    page that loads the model before the Live page's WebRTC stack cannot crash the server."""
    code = "import ser.models.network.layers, pylibsrtp, streamlit_webrtc; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_a_streamlit_rerun_leaves_the_training_threads_keras_state_alone():
    """Streamlit ends each script run with keras.backend.clear_session(), which wipes Keras'
    per-thread naming state in every thread: a training job building a model meanwhile got two
    layers of one name. ser.app.ui turns that clean-up off for Keras."""
    import threading

    import keras
    from streamlit.runtime.scriptrunner import script_runner

    import ser.app.ui  # noqa: F401  (installs the fix)

    names = []

    def build_across_a_rerun():
        names.append(keras.layers.ReLU().name)  # a fresh thread: "re_lu"
        script_runner._clean_problem_modules()  # what Streamlit runs after every script run
        names.append(keras.layers.ReLU().name)

    thread = threading.Thread(target=build_across_a_rerun)
    thread.start()
    thread.join()
    assert names == ["re_lu", "re_lu_1"]


def inotify_watches(pid: int) -> int:
    """How many inotify watches the process holds (Linux: one "inotify wd:" line per watch)."""
    count = 0
    for info in Path(f"/proc/{pid}/fdinfo").iterdir():
        try:
            count += info.read_text().count("inotify wd:")
        except OSError:  # an fd closed meanwhile
            continue
    return count


async def watches_and_a_change_seen(server: AppServer, change, timeout_s: float = 15.0) -> tuple[int, bool]:
    """Open the app as a browser would (Streamlit watches files only while a session is open),
    count the server's inotify watches, make ``change``, and wait for the server to say the
    source changed on disk (what the browser shows as "Source file changed. Rerun")."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    from bench.wsclient import StreamlitUser

    user = StreamlitUser(server.url)
    await user.connect()
    try:
        await user.run()
        watches = inotify_watches(server.process.pid)
        change()
        deadline = asyncio.get_running_loop().time() + timeout_s
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            forward = ForwardMsg()
            try:
                forward.ParseFromString(await asyncio.wait_for(user._ws.recv(), left))
            except TimeoutError:
                break
            if forward.WhichOneof("type") == "session_event" and forward.session_event.script_changed_on_disk:
                return watches, True
        return watches, False
    finally:
        await user.close()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/fdinfo").is_dir(), reason="counts inotify watches through Linux's /proc")
def test_the_server_watches_the_apps_sources_and_not_the_venv(tmp_path):
    """`make run` filled its log with "Inotify queue overflowed": Streamlit's watchdog watched the
    project folder recursively, .venv with it. The app's config polls its own sources instead;
    an edited page still tells the browser to rerun."""
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]
    assert config["fileWatcherType"] == "poll"
    assert ".venv" in config["folderWatchBlacklist"]

    app = tmp_path / "app"  # a copy of the app's sources, so the test can edit one
    for name in ("pages", "ser", ".streamlit"):
        shutil.copytree(ROOT / name, app / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "app.py", app / "app.py")
    (app / "assets").symlink_to(ROOT / "assets")
    venv = app / ".venv" / "lib"
    for i in range(300):  # a virtual environment's worth of folders
        (venv / f"package{i}").mkdir(parents=True)

    def churn_the_venv_then_edit_a_page() -> None:
        for n in range(5):  # what `pip install` does to .venv while the server runs
            for folder in venv.iterdir():
                (folder / f"module{n}.py").write_text("x = 1\n")
        with open(app / "pages" / "classify.py", "a") as page:
            page.write("\n# edited while the server runs\n")

    with AppServer(tmp_path / "work", root=app, watch=True) as server:
        watches, reloads = asyncio.run(watches_and_a_change_seen(server, churn_the_venv_then_edit_a_page))
        log = server.stop()
    assert watches == 0  # watchdog held one per folder of the project, .venv's included
    assert reloads
    assert "Inotify queue overflowed" not in log and "Traceback" not in log, log[-3000:]
