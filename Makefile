PY := .venv/bin/python
STAMP := .venv/.installed

.PHONY: run test lint bench clean chromium

# The app's main job: the Streamlit app; open the URL it prints (http://localhost:8501).
# On first start it builds the index of data/papers with a progress bar. Headless: no
# first-run e-mail prompt; no usage statistics leave the machine. (The CLI chat is
# `python -m assistant chat`.)
run: $(STAMP)
	$(PY) -m streamlit run ui/app.py --server.headless true --browser.gatherUsageStats false

test: $(STAMP) chromium
	$(PY) -m ruff check assistant tests benchmarks ui training
	$(PY) -m pytest -q
# The eval gate: the offline backend on a fixed subset, against the committed baseline.
	$(PY) -m assistant ingest --quiet
	$(PY) -m assistant eval --subset gate --backend extractive --judge local \
		--baseline evals/baseline/report.json --out evals/out/gate --quiet

lint: $(STAMP)
	$(PY) -m ruff check assistant tests benchmarks ui training
	$(PY) -m ruff format --check assistant tests benchmarks ui training

# tests/test_browser.py drives Debian's chromium through its chromedriver. Installed
# here when missing and we are root (CI); otherwise this says how.
chromium:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update && apt-get install -y chromium chromium-driver; \
	else \
		echo "tests/test_browser.py needs Chromium: sudo apt-get install -y chromium chromium-driver" >&2; \
	fi

bench: $(STAMP)
	$(PY) benchmarks/retrieval_seed.py
	$(PY) benchmarks/retrieval_scifact.py
	$(PY) benchmarks/speed.py
	$(PY) benchmarks/index_repeatability.py
	$(PY) benchmarks/answers.py
	$(PY) benchmarks/summaries.py
	$(PY) benchmarks/grounding.py

# torch first and pinned: a plain requirement would pull several GB of CUDA
# packages, while 2.13.0 resolves to the CPU build on this kind of machine.
$(STAMP): pyproject.toml
	test -d .venv || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

clean:
	rm -rf .venv .assistant
