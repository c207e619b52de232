# Two commands for a newcomer: `make run` and `make test`. Everything else is optional.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
N ?= 2200000
ARGS ?=
# The benchmarks need the real services; they make (and drop) scratch databases on this server, never touch
# the named database, and use their own Redis keys. Override with DATABASE_URL / REDIS_URL.
BENCH_DATABASE_URL := $(or $(DATABASE_URL),postgres://postgres@127.0.0.1:5432/postgres)
BENCH_REDIS_URL := $(or $(REDIS_URL),redis://127.0.0.1:6379/3)

.PHONY: run test install demo lint bench bench-import bench-refresh worker beat

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo_setup

run: demo
	$(BIN)/python manage.py runserver 127.0.0.1:8000

test: install
	$(BIN)/python -m pytest $(ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

bench-import: install
	DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python scripts/bench_import.py --rows $(N)

# 1,000 candidates refreshed by real workers against the local fake APIs at 50 req/s per source (auto: lower
# when the baseline shows the machine cannot do that); RATE=50 forces it.
CANDIDATES ?= 1000
RATE ?= auto
bench-refresh: install
	DATABASE_URL=$(BENCH_DATABASE_URL) REDIS_URL=$(BENCH_REDIS_URL) \
		$(BIN)/python scripts/bench_refresh.py --candidates $(CANDIDATES) --rate $(RATE)

bench: bench-import bench-refresh

worker: install
	$(BIN)/celery -A portal worker --loglevel=INFO -Q celery,sources,notifications

beat: install
	$(BIN)/celery -A portal beat --loglevel=INFO
