"""The app served for real: `vreason app` and an exported Space's `app.py` in their own processes, driven by a
headless Chromium (Playwright, the system's `chromium`) and by `gradio_client`.

Both servers serve a tiny random Qwen2.5-VL saved to a folder, and must answer exactly what the library answers
in this process (`compare_answers` on the same folder; the children get this process's intra-op thread count, so
their float arithmetic is the same). Regenerate the README's screenshot with
`VREASON_APP_SCREENSHOT=docs/app.png python -m pytest tests/test_app_served.py -k page_answers`.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from vreason_hf import VReasonConfig
from vreason_hf.app import compare_answers
from vreason_hf.cli import main
from vreason_hf.loading import load_model

pytest.importorskip("gradio", reason="the app needs the `app` extra: pip install 'vreason-hf[app]'")
gradio_client = pytest.importorskip("gradio_client")
pytestmark = [  # pandas deprecations inside Gradio's queue (in-process app only)
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

QUESTION = "What are the people doing?"
FRAMES, TOKENS = 8, 16
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The status line's text (without Gradio's progress timer, which shares its box while a request is pending).
STATUS = '#status [data-testid="markdown"]'
_BIN = Path(sys.executable).with_name("vreason")
VREASON = str(_BIN) if _BIN.is_file() else shutil.which("vreason")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium: install Debian's `chromium` (apt-get install -y chromium), see README",
)


# --------------------------------------------------------------------------------------------- servers
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _child_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "OMP_NUM_THREADS": str(torch.get_num_threads()),  # same arithmetic as the in-process reference
        **extra,
    }


class _Server:
    """A child process serving an app on 127.0.0.1:port; its output goes to a log file shown on failure."""

    def __init__(self, command: list[str], port: int, log: Path, **popen) -> None:
        self._url, self.log, self._ready = f"http://127.0.0.1:{port}/", log, False
        self._log_file = log.open("w")
        self.process = subprocess.Popen(command, stdout=self._log_file, stderr=subprocess.STDOUT, **popen)

    @property
    def url(self) -> str:
        """The app's address, once it answers (the servers start while the other fixtures are set up)."""
        deadline = time.monotonic() + 180
        while not self._ready and time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(
                    f"The app exited with status {self.process.returncode}:\n{self.log.read_text()[-3000:]}"
                )
            with contextlib.suppress(OSError), urllib.request.urlopen(self._url, timeout=2) as response:
                self._ready = response.status == 200
            time.sleep(0.0 if self._ready else 0.3)
        if not self._ready:
            pytest.fail(
                f"The app did not answer on {self._url} within 180 s:\n{self.log.read_text()[-3000:]}"
            )
        return self._url

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log_file.close()


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, tiny_qwen2_5_vl) -> Path:
    folder = tmp_path_factory.mktemp("models") / "tiny-random-qwen2.5-vl"
    model, processor = tiny_qwen2_5_vl
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def space_dir(tmp_path_factory, real_clip) -> Path:
    """`vreason export-space` (in-process) with the real clip as example and small budgets."""
    folder = tmp_path_factory.mktemp("space") / "space"
    args = ["export-space", str(folder), "--example", str(real_clip), "--num-frames", str(FRAMES)]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--max-new-tokens", str(TOKENS), "--concurrency-limit", "2"])
    assert exit_info.value.code == 0
    return folder


@pytest.fixture(scope="module")
def servers(tmp_path_factory, tiny_dir, space_dir, real_clip):
    """`vreason app` on the tiny folder, and the exported Space's `app.py` serving it too; started together, and
    not waited for here (`_Server.url` waits), so they boot while the reference and the browser are set up."""
    if VREASON is None:
        pytest.skip("the `vreason` console script is not installed (pip install -e .)")
    logs = tmp_path_factory.mktemp("logs")
    app_port, space_port = _free_port(), _free_port()
    command = [VREASON, "app", "--model", str(tiny_dir), "--host", "127.0.0.1", "--port", str(app_port)]
    command += ["--num-frames", str(FRAMES), "--max-new-tokens", str(TOKENS), "--concurrency-limit", "2"]
    command += ["--example", str(real_clip), "--device", "cpu"]
    started = [
        _Server(command, app_port, logs / "app.log", env=_child_env(GRADIO_TEMP_DIR=str(logs / "app-tmp"))),
        _Server(
            [sys.executable, "app.py"],
            space_port,
            logs / "space.log",
            cwd=space_dir,
            env=_child_env(
                VREASON_MODEL=str(tiny_dir),
                GRADIO_SERVER_NAME="127.0.0.1",
                GRADIO_SERVER_PORT=str(space_port),
                GRADIO_TEMP_DIR=str(logs / "space-tmp"),
            ),
        ),
    ]
    try:
        yield {"app": started[0], "space": started[1]}
    finally:
        for server in started:
            server.stop()


@pytest.fixture(scope="module")
def reference(tiny_dir, real_clip):
    """What the library answers in this process, from the same folder, with the apps' settings."""
    model, processor = load_model(
        str(tiny_dir), device="cpu", dtype="auto", device_map=None, trust_remote_code=False
    )
    *_, (plain, vreason) = compare_answers(
        model, processor, real_clip, QUESTION, vreason_config=VReasonConfig(), num_frames=FRAMES,
        max_new_tokens=TOKENS,
    )  # fmt: skip
    return plain, vreason


# --------------------------------------------------------------------------------------------- browser
@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium with a fresh profile; every request off 127.0.0.1 is blocked and recorded."""
    if CHROMIUM is None:
        pytest.skip("no Chromium: install Debian's `chromium` (apt-get install -y chromium), see README")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        context.offsite_requests = []

        def route(route):
            url = route.request.url
            if url.startswith(("http://127.0.0.1:", "data:", "blob:")):
                return route.continue_()
            context.offsite_requests.append(url)
            return route.abort()

        context.route("**/*", route)
        yield context
        context.close()


def _open(browser, url):
    page = browser.new_page()
    page.goto(url)
    page.wait_for_selector("#run")
    return page


def _wait_video(page, name: str) -> None:
    """Wait until the video input holds the file `name` (an upload or an example is set asynchronously)."""
    from playwright.sync_api import expect

    expect(page.locator("#video video")).to_have_attribute("src", re.compile(re.escape(name) + "$"))


def _upload(page, video: Path) -> None:
    page.set_input_files("#video input[type=file]", str(video))
    _wait_video(page, video.name)


def _pick_example(page, video: Path) -> None:
    page.locator(".gallery-item").first.click()
    _wait_video(page, video.name)


def _ask(page, video: Path | None, question: str) -> None:
    if video is not None:
        _upload(page, video)
    page.fill("#question textarea", question)
    _run(page)


def _run(page) -> None:
    """Click "Compare" and wait until the status line has left the previous request's outcome."""
    from playwright.sync_api import expect

    status = page.locator(STATUS)
    previous = status.inner_text().strip()
    page.click("#run")
    if previous:
        expect(status).not_to_have_text(previous, timeout=30_000)


def _wait_done(page) -> None:
    from playwright.sync_api import expect

    status = page.locator(STATUS)
    expect(status).to_contain_text(re.compile("Done|Error:"), timeout=90_000)
    assert status.inner_text().strip().startswith("Done"), status.inner_text()
    page.wait_for_function(
        "() => { const i = document.querySelector('#plot img'); return i && i.complete && i.naturalWidth > 0; }"
    )


def _stats(answer) -> str:
    return f"{len(answer.token_ids)} output tokens · {answer.seconds:.2f} s · {answer.optimizer_steps} Adam steps"


def _pixels(path_or_bytes) -> np.ndarray:
    import io

    from PIL import Image

    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    return np.asarray(Image.open(source).convert("RGB")).astype(float)


def _has_color(pixels: np.ndarray, hex_color: str, min_count: int = 30) -> bool:
    rgb = np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)
    return int((np.abs(pixels - rgb).max(-1) < 24).sum()) >= min_count


@needs_chromium
def test_page_answers_with_both_columns_and_the_plot(servers, browser, reference, real_clip, tmp_path):
    page = _open(browser, servers["app"].url)
    _ask(page, real_clip, QUESTION)
    _wait_done(page)
    plain, vreason = reference
    assert page.input_value("#plain textarea") == plain.text
    assert page.input_value("#vreason textarea") == vreason.text
    for selector, answer in (("#plain-stats", plain), ("#vreason-stats", vreason)):
        text = page.inner_text(selector)
        numbers = re.fullmatch(r"(\d+) output tokens · [\d.]+ s · (\d+) Adam steps", text.strip())
        assert numbers, text
        expected = (len(answer.token_ids), answer.optimizer_steps)
        assert (int(numbers[1]), int(numbers[2])) == expected, _stats(answer)
    assert "Adam steps" in page.inner_text(STATUS)

    plot = _pixels(page.locator("#plot img").screenshot())
    assert plot.std() > 10
    # Both modes' curves, in the colours of the library's entropy plots.
    assert _has_color(plot, "#4c72b0") and _has_color(plot, "#dd8452")
    shot = tmp_path / "app.png"
    page.screenshot(path=str(shot), full_page=True)
    assert _pixels(shot).std() > 20  # not blank
    if os.environ.get("VREASON_APP_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["VREASON_APP_SCREENSHOT"])
    assert browser.offsite_requests == []  # the page needs no network beyond the app
    page.close()


# Fixed bytes that no backend opens (os.urandom sometimes made a "video" PyAV opened and then failed to decode).
NOT_A_VIDEO = random.Random(0).randbytes(4096)


@needs_chromium
def test_bad_input_shows_one_error_line_and_the_app_keeps_serving(
    servers, browser, reference, tmp_path, real_clip
):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(NOT_A_VIDEO)
    page = _open(browser, servers["app"].url)
    _ask(page, corrupt, QUESTION)
    from playwright.sync_api import expect

    status = page.locator(STATUS)
    expect(status).to_contain_text("Error:", timeout=60_000)
    line = status.inner_text().strip()
    assert "\n" not in line and "Could not read 'corrupt.mp4' as a video" in line  # the file's own name
    _ask(page, None, "   ")
    expect(status).to_contain_text("The question is empty", timeout=60_000)
    # Same page, a good clip from the examples: answered as usual.
    _pick_example(page, real_clip)
    page.fill("#question textarea", QUESTION)
    _run(page)
    _wait_done(page)
    assert page.input_value("#vreason textarea") == reference[1].text
    page.close()


@needs_chromium
def test_two_pages_at_once_each_get_the_solo_answers(servers, browser, reference, real_clip):
    # Runs two generations on one model at the same time (--concurrency-limit 2): needs the thread-safe core.
    pages = [_open(browser, servers["app"].url) for _ in range(2)]
    _upload(pages[0], real_clip)
    _pick_example(pages[1], real_clip)
    for page in pages:
        page.fill("#question textarea", QUESTION)
    for page in pages:
        page.click("#run")
    for page in pages:
        _wait_done(page)
    for page in pages:
        assert page.input_value("#plain textarea") == reference[0].text
        assert page.input_value("#vreason textarea") == reference[1].text
        page.close()


# --------------------------------------------------------------------------------------------- API and Space
@pytest.mark.parametrize("server", ["app", "space"])
def test_compare_endpoint_through_gradio_client(servers, reference, real_clip, tmp_path, server):
    client = gradio_client.Client(servers[server].url, verbose=False, download_files=str(tmp_path))
    api = client.view_api(print_info=False, return_format="dict")
    assert list(api["named_endpoints"]) == ["/compare"]
    assert [p["parameter_name"] for p in api["named_endpoints"]["/compare"]["parameters"]] == [
        "video",
        "question",
    ]

    plain, vreason, plot = client.predict(
        gradio_client.handle_file(str(real_clip)), QUESTION, api_name="/compare"
    )
    assert (plain, vreason) == (reference[0].text, reference[1].text)
    assert Path(plot).suffix == ".png" and _pixels(plot).std() > 10

    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(NOT_A_VIDEO)
    with pytest.raises(gradio_client.exceptions.AppError, match=r"Could not read 'corrupt\.mp4' as a video"):
        client.predict(gradio_client.handle_file(str(corrupt)), QUESTION, api_name="/compare")


@needs_chromium
def test_a_model_that_cannot_load_is_one_line_in_the_page(browser, real_clip, tmp_path):
    from vreason_hf.app import build_app

    demo = build_app(str(tmp_path / "no-such-model"), device="cpu")
    demo.launch(server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True, quiet=True)
    try:
        page = _open(browser, demo.local_url)
        _ask(page, real_clip, QUESTION)
        from playwright.sync_api import expect

        expect(page.locator(STATUS)).to_contain_text("Cannot load the model", timeout=60_000)
        assert "no-such-model" in page.inner_text(STATUS)
        page.close()
        client = gradio_client.Client(demo.local_url, verbose=False)
        for _ in range(2):  # still serving, same answer
            with pytest.raises(gradio_client.exceptions.AppError, match="Cannot load the model"):
                client.predict(gradio_client.handle_file(str(real_clip)), QUESTION, api_name="/compare")
    finally:
        demo.close()
