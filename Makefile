# Quick start: `make demo` then `make test`. GPU users: make demo TORCH_SPEC="torch==2.13.0 --index-url <cuda wheel index>"
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.vidlab-installed
DEMO_DIR ?= work_dirs/demo
DEMO_CONFIG ?= configs/recognition/tsm_r18_synth.yaml
DET_DIR ?= work_dirs/demo_det
DET_CONFIG ?= configs/detection/slowonly_r18_synth_det.yaml

.PHONY: demo demo-det test lint install clean

install: $(STAMP)

# torch is installed first, on its own, so pip never resolves a CUDA build on a CPU machine.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	@start=$$(date +%s); \
	$(VENV)/bin/vidlab data synth --out data/synth --num-videos 1000 && \
	$(VENV)/bin/vidlab train $(DEMO_CONFIG) work_dir=$(DEMO_DIR) && \
	$(VENV)/bin/vidlab test $(DEMO_CONFIG) work_dir=$(DEMO_DIR) --split val --checkpoint $(DEMO_DIR)/best.pth \
		--out $(DEMO_DIR)/val_results.json > $(DEMO_DIR)/test_stdout.txt && \
	end=$$(date +%s) && minutes=$$(awk "BEGIN{printf \"%.2f\", ($$end-$$start)/60}") && \
	echo && echo "== vidlab demo: $(DEMO_CONFIG), best checkpoint on the SynthActions validation split ==" && \
	grep -v '^RESULT' $(DEMO_DIR)/test_stdout.txt && \
	echo "| demo time (min), data + train + test | $$minutes |" && \
	echo "checkpoint: $(DEMO_DIR)/best.pth" && \
	echo "training curves: $(DEMO_DIR)/curves.png" && \
	echo "confusion matrix: $(DEMO_DIR)/val_results.confusion.png" && \
	grep '^RESULT' $(DEMO_DIR)/test_stdout.txt | sed -E "s/minutes=[0-9.]+/minutes=$$minutes/"

# Spatio-temporal action detection: SynthActions-Det, a small SlowOnly detector, frame-mAP@0.5 on its val split.
demo-det: $(STAMP)
	@start=$$(date +%s); \
	$(VENV)/bin/vidlab data synth --task detection --out data/synth_det && \
	$(VENV)/bin/vidlab train $(DET_CONFIG) work_dir=$(DET_DIR) && \
	$(VENV)/bin/vidlab test $(DET_CONFIG) work_dir=$(DET_DIR) --split val --checkpoint $(DET_DIR)/best.pth \
		--out $(DET_DIR)/val_predictions.csv > $(DET_DIR)/test_stdout.txt && \
	end=$$(date +%s) && minutes=$$(awk "BEGIN{printf \"%.2f\", ($$end-$$start)/60}") && \
	echo && echo "== vidlab demo-det: $(DET_CONFIG), best checkpoint on the SynthActions-Det validation split ==" && \
	grep -v '^RESULT' $(DET_DIR)/test_stdout.txt && \
	echo "| demo time (min), data + train + test | $$minutes |" && \
	grep '^RESULT' $(DET_DIR)/test_stdout.txt | sed -E "s/minutes=[0-9.]+/minutes=$$minutes/"

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) work_dirs data/synth data/synth_det
