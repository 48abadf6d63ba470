#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Screenshot of the Space (spaces/alhubert) with a real result, taken in headless Chromium through Selenium.

    python scripts/space_screenshot.py --model /tmp/ctc-model --audio data/demo_corpus/dev-clean-demo/.../x.flac \
        --output spaces/alhubert/screenshot.png

Serves the page on 127.0.0.1, uploads the clip, presses Analyse, waits for the pictures and saves a PNG. The
browser is the system's Chromium and chromedriver (`make browser`), started with a fresh profile and no network
services of its own. The browser test (tests/test_space_browser.py) drives the page with the same functions.
"""

import argparse
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "spaces" / "alhubert"))

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1350",
)
FAKE_MICROPHONE_FLAGS = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream")


def system_browser() -> tuple[str, str] | None:
    """The paths of Chromium and chromedriver, or None when either is missing."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def chromium_driver(profile_dir: str, fake_microphone: bool = False):
    """A Selenium driver for the system's headless Chromium with the fresh profile folder `profile_dir`;
    `fake_microphone` grants the page Chromium's synthetic microphone (a beeping tone)."""
    from selenium import webdriver

    paths = system_browser()
    if paths is None:
        raise RuntimeError(
            "Chromium and chromedriver are not installed: make browser (or apt-get install chromium chromium-driver)."
        )
    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    flags = CHROMIUM_FLAGS + (FAKE_MICROPHONE_FLAGS if fake_microphone else ())
    for flag in (*flags, f"--user-data-dir={profile_dir}"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=paths[1]))


def analyse_in_browser(
    driver, url: str, audio: str | None, record_seconds: float = 2.0, timeout: float = 60.0
) -> dict:
    """Open the page, upload `audio` (or, when None, record `record_seconds` from the microphone), press Analyse and
    wait for the pictures; returns what the page shows: the `src` of the two pictures, the transcript (None without
    a CTC model) and the timing table's text."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    wait = WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,))
    if audio is not None:
        wait.until(lambda page: page.find_elements(By.CSS_SELECTOR, "#audio input[type=file]"))
        driver.find_element(By.CSS_SELECTOR, "#audio input[type=file]").send_keys(str(Path(audio).resolve()))
    else:
        wait.until(lambda page: page.find_elements(By.CSS_SELECTOR, "#audio button[aria-label='Record audio']"))
        driver.find_element(By.CSS_SELECTOR, "#audio button[aria-label='Record audio']").click()
        wait.until(lambda page: page.find_elements(By.CSS_SELECTOR, "#audio .record-button"))[0].click()
        time.sleep(record_seconds)  # the length of the recording
        wait.until(
            lambda page: [
                button
                for button in page.find_elements(By.CSS_SELECTOR, "#audio .stop-button")
                if button.is_displayed()
            ]
        )[0].click()
    wait.until(lambda page: page.find_elements(By.CSS_SELECTOR, "#audio audio"))  # the clip is on the server
    driver.find_element(By.ID, "analyse").click()
    wait.until(
        lambda page: (
            page.find_elements(By.CSS_SELECTOR, "#similarity img")
            and page.find_elements(By.CSS_SELECTOR, "#features img")
            and page.find_elements(By.CSS_SELECTOR, "#timing table")
        )
    )
    transcripts = driver.find_elements(By.CSS_SELECTOR, "#transcript textarea")
    if transcripts:
        wait.until(lambda page: transcripts[0].get_attribute("value"))
    return {
        "similarity": driver.find_element(By.CSS_SELECTOR, "#similarity img").get_attribute("src"),
        "features": driver.find_element(By.CSS_SELECTOR, "#features img").get_attribute("src"),
        "transcript": transcripts[0].get_attribute("value") if transcripts else None,
        "timing": driver.find_element(By.CSS_SELECTOR, "#timing table").text,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="Model folder or Hub id.")
    parser.add_argument("--audio", required=True, help="Clip to upload.")
    parser.add_argument("--output", default="spaces/alhubert/screenshot.png", help="Where to save the PNG.")
    args = parser.parse_args(argv)

    import app
    import space_analysis
    from PIL import Image

    demo = app.build_demo(space_analysis.load_model(args.model))
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    try:
        with tempfile.TemporaryDirectory() as profile:
            driver = chromium_driver(profile)
            try:
                shown = analyse_in_browser(driver, url, args.audio)
                png = driver.get_screenshot_as_png()
            finally:
                driver.quit()
    finally:
        demo.close()
    with Image.open(io.BytesIO(png)) as page:  # 256 colours: a few hundred KB at most, for the README
        page.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            args.output, optimize=True
        )
    print(f"Saved {args.output}; transcript: {shown['transcript']!r}")


if __name__ == "__main__":
    main()
