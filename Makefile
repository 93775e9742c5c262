PYTHON ?= python3

.PHONY: install test lint docs demo bench

install:
	$(PYTHON) -m pip install -q -e '.[dev]'

test:
	$(PYTHON) -m pytest -q

lint:
	$(PYTHON) -m ruff check reactor tests examples benchmarks
	$(PYTHON) -m ruff format --check reactor tests examples benchmarks
	$(PYTHON) -m mypy

# The API reference from the docstrings (docs/mkdocs.yml), warnings as errors; it lands in
# build/docs/index.html.
docs:
	NO_MKDOCS_2_WARNING=1 $(PYTHON) -m mkdocs build --strict --quiet -f docs/mkdocs.yml

demo:
	$(PYTHON) examples/demo.py
	@echo "Web inbox: python examples/web_app.py, then open http://127.0.0.1:8000/ (inbox at /reactor/)"

bench:
	$(PYTHON) benchmarks/engine.py
	cd benchmarks && $(PYTHON) interrupts.py
	$(PYTHON) benchmarks/map.py
	$(PYTHON) benchmarks/worker.py
	cd benchmarks && $(PYTHON) scale.py
	cd benchmarks && $(PYTHON) inbox.py
	$(PYTHON) benchmarks/compare.py --base d37c5a6
