"""A headless Streamlit user: the browser's side of Streamlit's protocol, without a browser.

Speaks what the frontend speaks (protobuf BackMsg / ForwardMsg over ``/_stcore/stream``, file
uploads through ``/_stcore/upload_file``), so a load test measures the server and not the cost
of rendering many Chromium tabs on the same cores. Used by ``bench/browser.py load --client ws``.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import urllib.request
import uuid

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.Common_pb2 import UploadedFileInfo
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg


class StreamlitUser:
    """One browser session: connect, run the page, upload a file into its uploader, read the
    headings and section labels the script wrote."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session_id = ""
        self.page_script_hash = ""
        self.uploader_id = ""  # the page's first file uploader (Classify's clips, not its profile loader)
        self.headings: list[str] = []
        self.errors: list[str] = []  # st.error / st.exception bodies of the last run
        self.warnings: list[str] = []  # st.warning bodies of the last run
        self.buttons: dict[str, str] = {}  # label -> widget id, of the last run
        self.pages: dict[str, str] = {}  # url path ("train") -> page script hash, from st.navigation
        self._cookies = http.cookiejar.CookieJar()
        self._http = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self._cookies))
        self._ws = None
        self._uploader_seen = False

    async def connect(self) -> None:
        await asyncio.to_thread(self._http.open, f"{self.url}/_stcore/health")  # sets the XSRF cookie
        xsrf = self._cookie("_streamlit_xsrf")
        host = self.url.split("://", 1)[1]
        self._ws = await websockets.connect(
            f"ws://{host}/_stcore/stream",
            subprotocols=["streamlit", xsrf],
            additional_headers={"Origin": self.url, "Cookie": f"_streamlit_xsrf={xsrf}"},
            max_size=None,
        )

    async def run(self, widget_states: list | None = None) -> None:
        """Rerun the script (with these widget states) and read its output until it finishes."""
        message = BackMsg()
        message.rerun_script.query_string = ""
        message.rerun_script.page_script_hash = self.page_script_hash
        message.rerun_script.widget_states.SetInParent()
        for state in widget_states or []:
            message.rerun_script.widget_states.widgets.append(state)
        await self._ws.send(message.SerializeToString())
        self.headings, self.errors, self.warnings, self.buttons = [], [], [], {}
        self._uploader_seen = False
        while True:
            forward = ForwardMsg()
            forward.ParseFromString(await self._ws.recv())
            kind = forward.WhichOneof("type")
            if kind == "new_session":
                self.session_id = forward.new_session.initialize.session_id
                self.page_script_hash = forward.new_session.page_script_hash
            elif kind == "navigation":  # the page that runs: / opens /classify
                self.pages = {p.url_pathname: p.page_script_hash for p in forward.navigation.app_pages}
                self.page_script_hash = forward.navigation.page_script_hash
            elif kind == "delta" and forward.delta.WhichOneof("type") == "new_element":
                self._read(forward.delta.new_element)
            elif kind == "delta" and forward.delta.WhichOneof("type") == "add_block":
                if forward.delta.add_block.WhichOneof("type") == "expandable":  # a clip's result is its label
                    self.headings.append(forward.delta.add_block.expandable.label)
            elif kind == "script_finished" and forward.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                return

    async def open(self, page: str) -> None:
        """Switch to the page at url path ``page`` (e.g. "train"), as its sidebar link does."""
        self.page_script_hash = self.pages[page]
        await self.run()

    async def click(self, label: str) -> None:
        """Press the button labelled ``label`` of the last run, and read the run it starts."""
        state = BackMsg().rerun_script.widget_states.widgets.add()
        state.id, state.trigger_value = self.buttons[label], True
        await self.run([state])

    async def upload(self, name: str, data: bytes) -> None:
        """Put ``data`` in the page's file uploader, as the browser does, and rerun."""
        request = BackMsg()
        request.file_urls_request.request_id = uuid.uuid4().hex
        request.file_urls_request.session_id = self.session_id
        request.file_urls_request.file_names.append(name)
        await self._ws.send(request.SerializeToString())
        while True:
            forward = ForwardMsg()
            forward.ParseFromString(await self._ws.recv())
            if forward.WhichOneof("type") == "file_urls_response":
                urls = forward.file_urls_response.file_urls[0]
                break
        await asyncio.to_thread(self._put, urls.upload_url, name, data)
        state = BackMsg().rerun_script.widget_states.widgets.add()
        state.id = self.uploader_id
        info = UploadedFileInfo(name=name, size=len(data), file_id=urls.file_id)
        info.file_urls.CopyFrom(urls)
        state.file_uploader_state_value.uploaded_file_info.append(info)
        await self.run([state])

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()

    def _read(self, element) -> None:
        kind = element.WhichOneof("type")
        if kind == "heading":
            self.headings.append(element.heading.body)
        elif kind == "button":
            self.buttons[element.button.label] = element.button.id
        elif kind == "alert" and element.alert.format == element.alert.WARNING:
            self.warnings.append(element.alert.body)
        elif kind == "file_uploader" and not self._uploader_seen:
            self.uploader_id, self._uploader_seen = element.file_uploader.id, True
        elif kind == "alert" and element.alert.format == element.alert.ERROR:
            self.errors.append(element.alert.body)
        elif kind == "exception":
            self.errors.append(element.exception.message)

    def _put(self, upload_url: str, name: str, data: bytes) -> None:
        boundary = uuid.uuid4().hex
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}"\r\n'
                f"Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )
        url = upload_url if upload_url.startswith("http") else f"{self.url}{upload_url}"
        request = urllib.request.Request(url, data=body, method="PUT")
        request.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
        request.add_header("X-Xsrftoken", self._cookie("_streamlit_xsrf"))
        with self._http.open(request) as response:
            response.read()

    def _cookie(self, name: str) -> str:
        return next((c.value for c in self._cookies if c.name == name), "")
