# ase-au20 — every target is self-sufficient on a fresh machine with Python 3.11.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
AU20_DATA ?= $(abspath ../shared/data/au20)
export AU20_DATA
OUT    ?= runs

.PHONY: demo test docs bench reproduce lint venv clean

# The venv is refreshed whenever pyproject.toml changes; torch is pinned to the CPU wheel.
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "torch==2.13.0"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

venv: $(BIN)/.installed

demo: venv
	mkdir -p $(OUT)
	$(BIN)/au20-workflow sensitivity --out $(OUT)/demo-sensitivity --overwrite

# Two pytest workers (pytest-xdist): the suite waits on subprocesses, servers and Dask
# clusters as much as it computes; on 2 cores 1 min 44 s instead of 2 min 25 s in one process.
test: venv
	$(BIN)/ruff check ase_au20 tests benchmarks
	$(BIN)/python -m pytest -q -n 2 --durations=15

# The docs site (MkDocs, Material, mkdocstrings): warnings are errors, so a broken link or
# a missing API object fails the build.
$(BIN)/.docs-installed: $(BIN)/.installed
	$(BIN)/python -m pip install -q -e ".[docs]"
	touch $@

docs: $(BIN)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# Benchmark-only packages (SchNetPack for the side-by-side speed report) keep our torch.
$(BIN)/.bench-installed: $(BIN)/.installed benchmarks/requirements.txt
	$(BIN)/python -m pip install -q -c benchmarks/constraints.txt -r benchmarks/requirements.txt
	$(BIN)/python -m pip install -q --no-deps "schnetpack==2.1.1"
	touch $@

bench: $(BIN)/.bench-installed
	$(BIN)/python benchmarks/run_all.py --out $(OUT)/bench

# The corpus (~60,000 reference-labelled frames, ~22 min on 2 cores) is resumable: a stopped
# `make reproduce` goes on where it stopped; the database is built once. SchNet trains in two
# rounds (force recipe, then finetune: ~80 + ~40 min on 2 cores).
reproduce: venv
	mkdir -p $(OUT)
	test -f $(OUT)/au20-seed.db || $(BIN)/au20-workflow db build $(AU20_DATA)/xyz -o $(OUT)/au20-seed.db --split seed --seed-splits $(AU20_DATA)/splits_seed
	$(BIN)/python -m ase_au20.models.dftb.build --db $(OUT)/au20-seed.db --out ase_au20/models/pretrained/dftb --quiet
	$(BIN)/au20-workflow sample --db $(OUT)/au20-seed.db --quiet
	$(BIN)/python -m ase_au20.models.reproduce --db $(OUT)/au20-seed.db --out ase_au20/models/pretrained

lint: venv
	$(BIN)/ruff check ase_au20 tests benchmarks
	$(BIN)/ruff format --check ase_au20 tests benchmarks

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache site
