"""PDF rendering and page checks with headless Chromium, driven over the DevTools protocol.

One engine for both jobs: Debian's ``chromium`` (``apt-get install -y chromium``) or any
Chrome/Chromium binary named by ``PRIVAUDIT_CHROMIUM``. Chromium is started with
:data:`CHROMIUM_FLAGS`, a fresh ``--user-data-dir`` and ``--remote-debugging-pipe`` (commands
on fd 3, replies on fd 4, messages separated by NUL), so no port is opened. Host-name
resolution is switched off, so rendering a report never contacts the network.

:func:`screenshot_html` records what the page did while loading: every network request
(``Network.requestWillBeSent``), every failed one (``Network.loadingFailed`` or an HTTP status
≥ 400), uncaught exceptions and console/log errors, and whether a CSS selector (e.g. the
verdict) is rendered and on the first screen. A page is self-contained when it made no
request other than the document itself and ``data:``/``blob:`` URLs, and none failed.
:func:`~privaudit.reports.html_refs.external_references` is the static counterpart, for
tests without Chromium.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from privaudit.core.errors import ConfigError, InternalError
from privaudit.core.rundir import write_bytes_atomic

CHROMIUM_ENV = "PRIVAUDIT_CHROMIUM"
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
               "chrome", "chrome-headless-shell")
INSTALL_HINT = ("install Chromium (Debian/Ubuntu: `apt-get install -y chromium`) or set "
                f"{CHROMIUM_ENV} to a Chrome/Chromium executable")
CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--no-default-browser-check", "--disable-extensions", "--disable-dev-shm-usage",
    "--hide-scrollbars", "--mute-audio", "--host-resolver-rules=MAP * ~NOTFOUND",
)
_EMBEDDED_SCHEMES = ("data:", "blob:", "about:")
# Runs in a tiny Python child: move the two pipe ends to fds 3 and 4, then become Chromium.
_TRAMPOLINE = (
    "import fcntl, os, sys\n"
    "r = fcntl.fcntl(int(sys.argv[1]), fcntl.F_DUPFD, 10)\n"
    "w = fcntl.fcntl(int(sys.argv[2]), fcntl.F_DUPFD, 10)\n"
    "os.dup2(r, 3); os.dup2(w, 4); os.close(r); os.close(w)\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)


class RenderEngineUnavailable(ConfigError):
    """No Chromium to render with; the message says what to install."""


class RenderError(InternalError):
    """Chromium started but could not load, print or capture the page."""


def find_chromium() -> str | None:
    """Path of the Chromium to use: ``$PRIVAUDIT_CHROMIUM`` if set, else the first on PATH."""
    override = os.environ.get(CHROMIUM_ENV)
    if override:
        return override if os.access(override, os.X_OK) else shutil.which(override)
    for name in _CANDIDATES:
        if found := shutil.which(name):
            return found
    return None


@dataclass(frozen=True)
class FailedRequest:
    url: str
    reason: str


@dataclass(frozen=True)
class PageCheck:
    """What loading one page did (see the module docstring)."""

    url: str
    png_path: Path
    requests: list[str]
    failed_requests: list[FailedRequest]
    errors: list[str]
    selector: str | None = None
    selector_visible: bool = False
    selector_above_fold: bool = False
    #: the whole element lies within the first screen (width × height), none of it below
    selector_whole_on_screen: bool = False
    selector_text: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def external_requests(self) -> list[str]:
        """Requests for anything but the document itself and embedded (data:/blob:) URLs."""
        return [u for u in self.requests if u != self.url and not u.startswith(_EMBEDDED_SCHEMES)]

    @property
    def self_contained(self) -> bool:
        return not self.external_requests and not self.failed_requests


class _Browser:
    """One headless Chromium and its DevTools pipe; a context manager that always cleans up."""

    def __init__(self, executable: str, timeout_s: float) -> None:
        self._executable, self._timeout_s = executable, timeout_s
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def __enter__(self) -> _Browser:
        self._tmp = tempfile.TemporaryDirectory(prefix="privaudit-chromium-")
        self._log = open(Path(self._tmp.name) / "stderr.log", "wb")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        args = [self._executable, *CHROMIUM_FLAGS, "--remote-debugging-pipe",
                f"--user-data-dir={Path(self._tmp.name) / 'profile'}", "about:blank"]
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _TRAMPOLINE, str(to_chrome_r),
                 str(from_chrome_w), *args],
                pass_fds=(to_chrome_r, from_chrome_w), stdin=subprocess.DEVNULL,
                stdout=self._log, stderr=self._log, start_new_session=True)
        except OSError as exc:
            self._close_fds()
            self._tmp.cleanup()
            raise RenderEngineUnavailable(f"cannot start {self._executable}: {exc}; "
                                          f"{INSTALL_HINT}") from exc
        finally:
            os.close(to_chrome_r)
            os.close(from_chrome_w)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if self._proc.poll() is None:
                self._send("Browser.close", {}, None)
                self._proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)  # the group this browser started
        self._proc.wait()
        self._close_fds()
        self._tmp.cleanup()

    def _close_fds(self) -> None:
        for fd in (self._to_chrome, self._from_chrome):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._log.close()

    def stderr_tail(self) -> str:
        self._log.flush()
        return (Path(self._tmp.name) / "stderr.log").read_bytes()[-1500:].decode("utf-8",
                                                                                  "replace")

    def _send(self, method: str, params: dict[str, Any], session: str | None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode("utf-8") + b"\0")
        return self._next_id

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_chrome], [], [], max(left, 0.0))
            if not ready:
                raise RenderError(f"Chromium did not answer within {self._timeout_s:g} s")
            chunk = os.read(self._from_chrome, 1 << 16)
            if not chunk:
                raise RenderError("Chromium exited unexpectedly:\n" + self.stderr_tail())
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def call(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None) -> dict[str, Any]:
        """Send one command and return its result; events read meanwhile go to ``events``."""
        wanted = self._send(method, params or {}, session)
        deadline = time.monotonic() + self._timeout_s
        while True:
            message = self._receive(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise RenderError(f"{method} failed: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            if "method" in message:
                self.events.append(message)

    def wait_event(self, method: str, session: str) -> None:
        deadline = time.monotonic() + self._timeout_s
        seen = lambda m: m.get("method") == method and m.get("sessionId") == session  # noqa: E731
        while not any(seen(m) for m in self.events):
            message = self._receive(deadline)
            if "method" in message:
                self.events.append(message)

    def open(self, url: str, *, width: int, height: int) -> str:
        """Load ``url`` in a new tab; return its session id once it and its fonts loaded."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session: str = self.call("Target.attachToTarget",
                                 {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=session)
        self.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                  "deviceScaleFactor": 1, "mobile": False}, session)
        navigation = self.call("Page.navigate", {"url": url}, session)
        if navigation.get("errorText"):
            raise RenderError(f"cannot load {url}: {navigation['errorText']}")
        self.wait_event("Page.loadEventFired", session)
        self.call("Runtime.evaluate", {"expression": "document.fonts.ready.then(() => true)",
                                       "awaitPromise": True}, session)
        return session


def _file_url(html_path: Path | str) -> str:
    path = Path(html_path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such HTML file")
    return path.resolve().as_uri()


def _executable() -> str:
    found = find_chromium()
    if found is None:
        raise RenderEngineUnavailable(f"rendering needs headless Chromium: {INSTALL_HINT}")
    return found


def _write(path: Path, data: bytes) -> Path:
    write_bytes_atomic(path, data)
    return path


def html_to_pdf(html_path: Path | str, pdf_path: Path | str, *,
                timeout_s: float = 60.0) -> Path:
    """Print ``html_path`` to ``pdf_path`` (backgrounds on, the page's CSS page size, a tagged
    PDF with an outline from the headings); return ``pdf_path``."""
    url = _file_url(html_path)
    with _Browser(_executable(), timeout_s) as browser:
        session = browser.open(url, width=1280, height=900)
        printed = browser.call("Page.printToPDF", {
            "printBackground": True, "preferCSSPageSize": True, "displayHeaderFooter": False,
            "generateTaggedPDF": True, "generateDocumentOutline": True}, session)
    return _write(Path(pdf_path), base64.b64decode(printed["data"]))


_VISIBILITY_JS = """(() => {
  const el = document.querySelector(%s);
  if (!el) return {found: false};
  const r = el.getBoundingClientRect(), s = getComputedStyle(el);
  const visible = r.width > 0 && r.height > 0 && s.visibility !== 'hidden'
    && s.display !== 'none' && parseFloat(s.opacity) > 0;
  return {found: true, visible, aboveFold: visible && r.top < window.innerHeight,
          wholeOnScreen: visible && r.top >= 0 && r.bottom <= window.innerHeight
            && r.right <= window.innerWidth,
          text: (el.innerText || '').slice(0, 2000)};
})()"""


def _page_problems(events: list[dict[str, Any]]) -> tuple[list[str], list[FailedRequest],
                                                           list[str]]:
    urls: dict[str, str] = {}
    requests: list[str] = []
    failed: list[FailedRequest] = []
    errors: list[str] = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Network.requestWillBeSent":
            urls[params["requestId"]] = params["request"]["url"]
            requests.append(params["request"]["url"])
        elif method == "Network.loadingFailed":
            reason = params.get("blockedReason") or params.get("errorText", "failed")
            failed.append(FailedRequest(urls.get(params["requestId"], "?"), reason))
        elif method == "Network.responseReceived" and params["response"].get("status", 0) >= 400:
            failed.append(FailedRequest(params["response"]["url"],
                                        f"HTTP {params['response']['status']}"))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            errors.append(details.get("exception", {}).get("description")
                          or details.get("text", "uncaught exception"))
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                   for a in params.get("args", [])))
        elif (method == "Log.entryAdded" and params["entry"].get("level") == "error"
              and params["entry"].get("source") != "network"):
            errors.append(params["entry"].get("text", ""))
    return requests, failed, errors


def screenshot_html(html_path: Path | str, png_path: Path | str, *,
                    visible_selector: str | None = None, width: int = 1280, height: int = 900,
                    full_page: bool = True, timeout_s: float = 60.0) -> PageCheck:
    """Load ``html_path`` in headless Chromium, save a PNG screenshot, and report what loading
    did: requests, failures, errors, and whether ``visible_selector`` is rendered."""
    url = _file_url(html_path)
    with _Browser(_executable(), timeout_s) as browser:
        session = browser.open(url, width=width, height=height)
        found: dict[str, Any] = {}
        if visible_selector is not None:
            expression = _VISIBILITY_JS % json.dumps(visible_selector)
            found = browser.call("Runtime.evaluate", {"expression": expression,
                                                      "returnByValue": True}, session)
            found = found.get("result", {}).get("value") or {}
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = browser.call("Page.getLayoutMetrics", session=session)["cssContentSize"]
            params.update(captureBeyondViewport=True, clip={
                "x": 0, "y": 0, "scale": 1, "width": max(width, int(size["width"])),
                "height": min(max(height, int(size["height"])), 16384)})
        shot = browser.call("Page.captureScreenshot", params, session)
        requests, failed, errors = _page_problems(browser.events)
    png = _write(Path(png_path), base64.b64decode(shot["data"]))
    return PageCheck(url=url, png_path=png, requests=requests, failed_requests=failed,
                     errors=errors, selector=visible_selector,
                     selector_visible=bool(found.get("visible")),
                     selector_above_fold=bool(found.get("aboveFold")),
                     selector_whole_on_screen=bool(found.get("wholeOnScreen")),
                     selector_text=str(found.get("text", "")))
