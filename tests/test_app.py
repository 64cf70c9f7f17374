from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT


def test_app_starts_and_shows_the_active_model():
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not app.exception
    assert "Classify" in [t.value for t in app.title]
    sidebar = " ".join(m.value for m in app.sidebar.markdown)
    assert "cnn" in sidebar
