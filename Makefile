# Set-up and checks. `make test` and `make demo` work on a fresh machine: they create .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# PyTorch first, pinned, so that pip takes the CPU build on this machine's disk and not a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
# datasets' Audio feature (the audiofolder and saved-dataset sources the tests use) encodes audio with torchcodec, which
# must match torch and needs FFmpeg's libraries. ALHuBERT's own decoding (soundfile) needs neither.
TORCHCODEC_SPEC ?= torchcodec==0.13.*
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install quality ffmpeg speech-tools browser space test test-fast demo demo-corpus benchmark benchmark-long-audio clean

$(VENV)/.installed: setup.py pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH_SPEC)" "$(TORCHCODEC_SPEC)"
	$(PIP) install --quiet -e ".[dev,onnx,space]"
	@touch $@

# Audio is decoded with soundfile (its wheel bundles libsndfile): no system package is needed to install.
install: $(VENV)/.installed

# FFmpeg's libraries, for torchcodec (datasets' audiofolder and saved-dataset sources; see TORCHCODEC_SPEC).
ffmpeg:
	@if ! ldconfig -p 2>/dev/null | grep -q libavcodec; then \
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null; \
		else echo "Please install FFmpeg (e.g. 'sudo apt-get install ffmpeg'): datasets' audio sources need it."; exit 1; fi; \
	fi

# espeak-ng and sox synthesise speech: the corpus scripts (make_demo_corpus.py, make_speech_corpus.py), the long-audio
# benchmark and the replication test need them.
speech-tools:
	@if ! command -v espeak-ng >/dev/null || ! command -v sox >/dev/null; then \
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng sox >/dev/null; \
		else echo "Please install espeak-ng and sox (e.g. 'sudo apt-get install espeak-ng sox')."; exit 1; fi; \
	fi

# Chromium and its driver, for the Space's browser test (tests/test_space_browser.py). Without them (no apt-get, not
# root) the browser test is skipped with its reason, so this target only warns.
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
		else echo "Chromium is not installed ('sudo apt-get install chromium chromium-driver'): the browser test is skipped."; \
		fi; \
	fi

# Lint and formatting with the committed ruff settings (pyproject.toml: Transformers' rules, 119 characters).
quality: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: install ffmpeg speech-tools browser
	$(PY) -m pytest -n 2 -q tests

# The inner loop: everything but the end-to-end, multi-process and subprocess tests (marked slow).
test-fast: install ffmpeg speech-tools
	$(PY) -m pytest -n 2 -q -m "not slow" tests

demo: install
	$(PY) scripts/demo.py

# The browser demo on http://127.0.0.1:7860 with the `make demo` student (built first when missing); other models:
# $(PY) spaces/alhubert/app.py --model FOLDER-OR-HUB-ID
space: install
	$(PY) spaces/alhubert/app.py

# Regenerates data/demo_corpus in place (deterministic for a given espeak-ng and sox version: `git status data/`
# shows whether yours gave the committed files).
demo-corpus: install speech-tools
	$(PY) scripts/make_demo_corpus.py --overwrite_output_dir true

benchmark: install
	$(PY) benchmarks/inference.py

benchmark-long-audio: install speech-tools
	$(PY) benchmarks/long_audio.py --mode compare --duration_s 60

clean:
	rm -rf $(VENV) build *.egg-info
