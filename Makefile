# Set-up and checks. `make test` and `make demo` work on a fresh machine: they create .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# PyTorch first, pinned, so that pip takes the CPU build on this machine's disk and not a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
TORCHCODEC_SPEC ?= torchcodec==0.13.*
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install system-deps test demo benchmark clean

$(VENV)/.installed: setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH_SPEC)" "$(TORCHCODEC_SPEC)"
	$(PIP) install --quiet -e ".[dev]"
	@touch $@

install: system-deps $(VENV)/.installed

# FFmpeg's libraries decode audio for datasets' Audio feature (through torchcodec).
system-deps:
	@if ! ldconfig -p 2>/dev/null | grep -q libavcodec; then \
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null; \
		else echo "Please install FFmpeg (e.g. 'sudo apt-get install ffmpeg'): datasets decodes audio with it."; fi; \
	fi
# espeak-ng and sox synthesise the speech corpora (scripts/make_demo_corpus.py, scripts/make_speech_corpus.py).
	@if ! command -v espeak-ng >/dev/null || ! command -v sox >/dev/null; then \
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng sox >/dev/null; \
		else echo "Please install espeak-ng and sox (e.g. 'sudo apt-get install espeak-ng sox'): the corpus scripts need them."; fi; \
	fi

test: install
	$(PY) -m pytest -n 2 -q tests

demo: install
	$(PY) scripts/demo.py

benchmark: install
	$(PY) benchmarks/inference.py

clean:
	rm -rf $(VENV) build *.egg-info
