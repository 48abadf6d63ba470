"""The Space served on 127.0.0.1: its Gradio API through gradio_client, and the page in headless Chromium.

One server per module (a tiny CTC model), closed at teardown and in any case by a timer: it never outlives the
tests. The browser test needs the system's Chromium and chromedriver (`make browser`, which `make test` runs) and
is skipped, with the reason, where they are missing.
"""

import sys
import threading

import numpy as np
import pytest
import soundfile
from helpers import save_tiny_ctc
from PIL import Image
from space_app import DEMO_CLIP, REPO_ROOT
from space_app import space_analysis as analysis


gr = pytest.importorskip("gradio", reason="the Space needs Gradio: pip install -e '.[space]' (make test installs it)")
gradio_client = pytest.importorskip("gradio_client")
sys.path.insert(0, str(REPO_ROOT / "scripts"))
import space_screenshot  # noqa: E402


SERVER_LIFETIME_S = 300
pytestmark = pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword).*")  # pandas 3, in Gradio


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    return analysis.load_model(str(save_tiny_ctc(tmp_path_factory.mktemp("browser-ctc"))))


@pytest.fixture(scope="module")
def server(loaded):
    import app

    demo = app.build_demo(loaded)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True)
    deadline = threading.Timer(SERVER_LIFETIME_S, demo.close)  # bounded even if the teardown never runs
    deadline.daemon = True
    deadline.start()
    yield url
    deadline.cancel()
    demo.close()


@pytest.fixture(scope="module")
def client(server, tmp_path_factory):
    return gradio_client.Client(server, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))


def expected_transcript(loaded) -> str:
    return analysis.transcribe(loaded, analysis.load_audio(str(DEMO_CLIP)))


def test_the_api_analyses_an_upload(client, loaded, server):
    assert server.startswith("http://127.0.0.1:")
    similarity, features, timing, transcript, labels, onnx_text, notices = client.predict(
        gradio_client.handle_file(str(DEMO_CLIP)), 3, 3, "linear CKA", "PyTorch", api_name="/analyse"
    )
    assert transcript == expected_transcript(loaded) and transcript.strip()
    direct = analysis.analyse(loaded, str(DEMO_CLIP), 3, 3)
    for served, image in ((similarity, direct.similarity), (features, direct.features)):
        with Image.open(served) as picture:  # the pictures the page shows, as the functions draw them
            assert (picture.height, picture.width) == image.shape[:2]
    rows = [line for line in timing.splitlines() if line.startswith("| ") and line.split("|")[1].strip().isdigit()]
    assert len(rows) == 1 and rows[0].split("|")[2:4] == [" PyTorch ", " 3 "]
    assert (onnx_text, notices) == ("", "")


@pytest.mark.parametrize(
    "make_audio, message",
    [
        (lambda folder: None, "No audio: record a clip"),
        (lambda folder: str(folder / "silence.wav"), "The clip is silent"),
        (lambda folder: str(folder / "broken.flac"), "Cannot decode this file as audio"),
    ],
    ids=["no audio", "silence", "undecodable"],
)
def test_bad_input_reaches_the_page_as_a_message(client, tmp_path, make_audio, message):
    soundfile.write(tmp_path / "silence.wav", np.zeros(16000, dtype=np.float32), 16000)
    (tmp_path / "broken.flac").write_bytes(b"fLaC" + bytes(range(256)) * 8)
    audio = make_audio(tmp_path)
    with pytest.raises(gradio_client.exceptions.AppError) as raised:
        client.predict(audio and gradio_client.handle_file(audio), 6, 6, "linear CKA", "PyTorch", api_name="/analyse")
    assert message in str(raised.value) and "Traceback" not in str(raised.value)


needs_browser = pytest.mark.skipif(
    space_screenshot.system_browser() is None,
    reason="Chromium and chromedriver are not installed (make browser installs them)",
)


@pytest.fixture
def driver(tmp_path, request):
    pytest.importorskip("selenium", reason="the browser test drives Chromium through Selenium (the dev extra)")
    browser = space_screenshot.chromium_driver(str(tmp_path / "profile"), fake_microphone=True)
    yield browser
    browser.quit()


@pytest.mark.slow
@pytest.mark.browser
@needs_browser
def test_the_page_in_a_headless_browser(server, loaded, driver, tmp_path):
    shown = space_screenshot.analyse_in_browser(driver, server, str(DEMO_CLIP))
    driver.save_screenshot(str(tmp_path / "page.png"))
    assert shown["similarity"] and shown["features"] and shown["similarity"] != shown["features"]
    assert shown["transcript"] == expected_transcript(loaded)
    assert "PyTorch" in shown["timing"]
    assert (tmp_path / "page.png").stat().st_size > 10_000


@pytest.mark.slow
@pytest.mark.browser
@needs_browser
def test_a_microphone_recording_in_a_headless_browser(server, driver):
    """Chromium's synthetic microphone (a beeping tone): recorded on the page, sent, analysed."""
    shown = space_screenshot.analyse_in_browser(driver, server, None, record_seconds=1.5)
    assert shown["similarity"] and shown["features"] and shown["transcript"].strip()
    assert "PyTorch" in shown["timing"]
