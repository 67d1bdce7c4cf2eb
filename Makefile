PY := .venv/bin/python
STAMP := .venv/.installed

.PHONY: run test lint bench clean

# The app's main job. Until the Streamlit app exists it is an interactive chat
# with cited answers (extractive offline; an OpenAI-compatible model with a key).
run: $(STAMP)
	$(PY) -m assistant ingest  # builds the index the first time; later ~1 s, picks up changes
	$(PY) -m assistant chat

test: $(STAMP)
	$(PY) -m ruff check assistant tests benchmarks
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check assistant tests benchmarks
	$(PY) -m ruff format --check assistant tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/retrieval_seed.py
	$(PY) benchmarks/retrieval_scifact.py
	$(PY) benchmarks/speed.py
	$(PY) benchmarks/answers.py
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
