"""Headless Chromium driven over the DevTools protocol on a pipe: no websocket, no
package. Chromium reads commands from its fd 3 and writes answers to its fd 4, each
message JSON ended by a NUL byte."""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium")
TIMEOUT = 120


class Browser:
    """One headless Chromium with one page."""

    def __init__(self, profile: Path) -> None:
        commands, self._to_browser = os.pipe()
        self._from_browser, answers = os.pipe()

        def on_fds_3_and_4() -> None:
            os.dup2(commands, 3)
            os.dup2(answers, 4)

        assert CHROMIUM is not None
        self._process = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--remote-debugging-pipe", "--hide-scrollbars", f"--user-data-dir={profile}"],
            pass_fds=(3, 4), preexec_fn=on_fds_3_and_4, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(commands)
        os.close(answers)
        self._next_id, self._unread = 0, b""
        self.events: list[dict[str, Any]] = []
        target = self._send("Target.createTarget", url="about:blank")["targetId"]
        self._session = self._send("Target.attachToTarget", targetId=target,
                                   flatten=True)["sessionId"]
        self.call("Page.enable")

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *_: object) -> None:
        try:
            self._send("Browser.close")
        finally:
            try:
                self._process.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self._process.kill()
            os.close(self._to_browser)
            os.close(self._from_browser)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """A protocol command on the page; its result."""
        return self._send(method, self._session, **params)

    def open(self, url: str, width: int, height: int, media: str = "screen") -> None:
        """Show `url` in a viewport of `width` x `height` CSS pixels for `media`, and wait
        for it to load."""
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)
        self.call("Emulation.setEmulatedMedia", media=media)
        self.events.clear()
        self.call("Page.navigate", url=url)
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self._answer(None)

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a script run in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def screenshot(self, path: Path) -> None:
        """The whole page, as tall as it is, as a PNG."""
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(data["data"]))

    def pdf(self, path: Path) -> None:
        """The page printed (A4, print media) to a PDF."""
        data = self.call("Page.printToPDF", paperWidth=8.27, paperHeight=11.69)
        path.write_bytes(base64.b64decode(data["data"]))

    def _send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        return self._answer(self._next_id)

    def _answer(self, wanted: int | None) -> dict[str, Any]:
        """Read messages up to the answer to command `wanted` (or, for None, the next
        message), keeping events; the answer's result."""
        while True:
            while b"\0" not in self._unread:
                if not select.select([self._from_browser], [], [], TIMEOUT)[0]:
                    raise TimeoutError(f"chromium said nothing in {TIMEOUT} s")
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the pipe")
                self._unread += chunk
            raw, self._unread = self._unread.split(b"\0", 1)
            message = json.loads(raw)
            if "id" not in message:
                self.events.append(message)
                if wanted is None:
                    return message
            elif message["id"] == wanted:
                if "error" in message:
                    raise RuntimeError(f"{message['error']}")
                return dict(message["result"])


def png_size(path: Path) -> tuple[int, int]:
    """The width and height in a PNG's header."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
