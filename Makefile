# The two commands of the README:
#   make demo   set up, then train + evaluate FactorGAN on Paired MNIST (a few minutes, CPU)
#   make test   set up, then run the test suite
# Set-up = check system tools, create .venv if missing, install requirements.txt.

PYTHON ?= python3
VENV ?= .venv
SHARED_DATA ?= ../shared/data
# Offline MNIST when the project's shared data folder is there; otherwise download.
MNIST_DIR ?= $(if $(wildcard $(SHARED_DATA)/mnist/train-images-idx3-ubyte.gz),$(abspath $(SHARED_DATA)/mnist),)
MUSDB_DIR ?= $(if $(wildcard $(SHARED_DATA)/musdb18_sample/train),$(abspath $(SHARED_DATA)/musdb18_sample),)
OUT_PATH ?= runs
PY := $(VENV)/bin/python

.PHONY: demo test setup benchmark clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt tools/check_system.sh
	tools/check_system.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

demo: setup
	$(PY) -m trainers.paired_mnist --flagfile=trainers/flagfiles/paired_mnist_demo.cfg \
	  --out_path=$(OUT_PATH) $(if $(MNIST_DIR),--mnist_manual_dir=$(MNIST_DIR),)

test: setup
	FACTORGAN_MNIST_DIR=$(MNIST_DIR) FACTORGAN_MUSDB_DIR=$(MUSDB_DIR) $(PY) -m pytest -q tests

benchmark: setup
	$(PY) -m benchmarks.paired_mnist_throughput

clean:
	rm -rf $(VENV) $(OUT_PATH)
