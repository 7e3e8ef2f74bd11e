# Every target that needs the virtual environment depends on its stamp, so a fresh clone
# needs no separate set-up step.
PY      := .venv/bin/python
ANOMALY := .venv/bin/anomaly
STAMP   := .venv/.stamp-setup
TORCH   := torch==2.13.0
export PYTHONHASHSEED := 0

.PHONY: setup test test-fast lint data demo reproduce reproduce-full reproduce-claim4 reproduce-alfa results score ui \
	bench bench-startup bench-synth bench-train bench-score bench-watch bench-lens clean

setup: $(STAMP)

# torch first and pinned: the package's own loose `torch>=2.4` is then already met, so pip
# never reaches for another build; where the index's 2.13.0 is a multi-GB CUDA build, name a CPU
# one with TORCH=... (see README, "Dependencies").
$(STAMP): pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(PY) -m ruff check anomaly tests scripts
	$(PY) -m ruff format --check anomaly tests scripts

data: $(STAMP)
	$(ANOMALY) synth --out data/synthetic --flights 64 --seed 0 --overwrite

clean:
	rm -rf .venv data/synthetic data/study data/study-quick data/smoke data/bench data/tuning \
		reports scored explain mlflow.db mlartifacts lightning_logs

demo: $(STAMP)
	$(ANOMALY) synth --out data/synthetic --flights 64 --seed 0 --overwrite >/dev/null
	$(ANOMALY) compare --data synthetic --train-flights 8 --experiment demo

ui: $(STAMP)
	.venv/bin/mlflow ui --backend-store-uri $${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/mlflow.db} --host 127.0.0.1 --port $${PORT:-5000}

bench-startup: $(STAMP)
	$(PY) scripts/bench_startup.py

bench-synth: $(STAMP)
	$(PY) scripts/bench_synth.py

bench-train: $(STAMP)
	$(PY) scripts/bench_train.py

bench-score: $(STAMP)
	$(PY) scripts/bench_score.py --big

bench-watch: $(STAMP)
	$(PY) scripts/bench_watch.py

bench-lens: $(STAMP)
	$(PY) scripts/bench_lens.py

bench: bench-startup bench-synth bench-train bench-score bench-watch bench-lens

QUICK_REPORT := reports/small_data_quick
STUDY_REPORT := reports/small_data
ALFA_REPORT  := reports/alfa
LOCO_REPORT  := reports/alfa_loco
CLAIM4_REPORT := reports/claim4

# A study's committed archive (docs/results/<study>/cells.jsonl.gz, written by `anomaly report`):
# its cells count as finished and only the rest run, so a design longer than one machine's life
# still finishes. `make reproduce-full ARCHIVES=` recomputes every cell.
ARCHIVES ?= docs/results
resume = $(if $(ARCHIVES),$(if $(wildcard $(ARCHIVES)/$(1)/cells.jsonl.gz),--resume-from $(ARCHIVES)/$(1)/cells.jsonl.gz))

# the main study cut to fit 15 minutes on 2 cores, set-up included; the full design: reproduce-full
reproduce: $(STAMP)
	$(ANOMALY) sweep experiments/small_data_quick.yaml
	$(ANOMALY) report --sweep study-small-data-quick --out $(QUICK_REPORT)
	@echo "report: $(QUICK_REPORT)/report.md"

reproduce-full: $(STAMP)
	$(ANOMALY) sweep experiments/small_data.yaml $(call resume,small_data)
	$(ANOMALY) report --sweep study-small-data --out $(STUDY_REPORT)
	@echo "report: $(STUDY_REPORT)/report.md"

# claim 4's factorial (positional encoding x readout) alone, on the full design's flights (22 min of sweep on 2 cores)
reproduce-claim4: $(STAMP)
	$(ANOMALY) sweep experiments/claim4.yaml $(call resume,claim4)
	$(ANOMALY) report --sweep study-claim4 --out $(CLAIM4_REPORT)
	@echo "report: $(CLAIM4_REPORT)/report.md"

reproduce-alfa: $(STAMP)
	$(ANOMALY) sweep experiments/alfa.yaml $(call resume,alfa)
	$(ANOMALY) report --sweep study-alfa --out $(ALFA_REPORT)
	$(ANOMALY) sweep experiments/alfa_loco.yaml $(call resume,alfa_loco)
	$(ANOMALY) report --sweep study-alfa-loco --out $(LOCO_REPORT)
	@echo "reports: $(ALFA_REPORT)/report.md $(LOCO_REPORT)/report.md"

score: $(STAMP)
	@test -n "$(INPUT)" -a -n "$(MODEL)" || { echo "usage: make score INPUT=logs/ MODEL=models:/NAME@champion [OUT=scored]"; exit 2; }
	$(ANOMALY) score $(INPUT) --model $(MODEL) --out $(or $(OUT),scored)

# Copies each study's report, figures and cell archive into docs/results/ (committed, shown in
# README) together, and only where its report is newer than the committed one: an old report
# left in reports/ never replaces a newer committed one, nor mixes its figures with it. Figures
# are not removed (some committed ones come from scripts/), so one a report no longer draws stays.
results:
	@for pair in $(QUICK_REPORT):small_data_quick $(STUDY_REPORT):small_data $(ALFA_REPORT):alfa \
	    $(LOCO_REPORT):alfa_loco $(CLAIM4_REPORT):claim4; do \
	  src=$${pair%%:*}; dst=docs/results/$${pair##*:}; mkdir -p $$dst; \
	  if [ $$src/report.md -nt $$dst/report.md ]; then \
	    cp $$src/report.md $$src/cells.jsonl.gz $$dst/ && for f in $$src/*.png; do \
	      [ -e "$$f" ] && cp "$$f" $$dst/; done; echo "copied $$src -> $$dst"; \
	  else echo "kept $$dst (not older than $$src)"; fi; \
	done
