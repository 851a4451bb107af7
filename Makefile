# The README's commands. Each target sets up what it needs (venv, packages, migrations).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
APPS := accounts config core notifications profiles

# The suite on every core, at most 8 (conftest.py gives each worker its own Redis database); tests that
# share an expensive module fixture stay on one worker (`xdist_group` marks, --dist loadgroup).
TEST_WORKERS ?= auto
XDIST := -n $(TEST_WORKERS) --maxprocesses 8 --dist loadgroup

.PHONY: run test test-fast drills fuzz load-smoke lint typecheck check migrate worker beat serve services-start services-stop clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/activate
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/activate
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

migrate: $(VENV)/.runtime
	$(BIN)/python manage.py migrate --noinput

## run: the service on the embedded default at http://$(HOST):$(PORT) (admin created on first start)
run: migrate
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

## serve: the same under gunicorn (what production runs)
serve: migrate
	$(BIN)/gunicorn -c gunicorn.conf.py config.wsgi --bind $(HOST):$(PORT)

## test: the whole suite (SQLite and the in-process cache unless DATABASE_URL / REDIS_URL are set)
test: $(VENV)/.dev
	$(BIN)/pytest $(XDIST)

## test-fast: the suite without the tests marked slow (servers, brokers, browsers, fresh interpreters)
test-fast: $(VENV)/.dev
	$(BIN)/pytest $(XDIST) -m "not slow"

## drills: the fault drills, on real servers they start themselves (PostgreSQL, Redis, Kafka, Celery, gunicorn)
drills: $(VENV)/.dev
	$(BIN)/pytest testing/drills -m drill

## fuzz: schemathesis against /api/schema/ on the real stack, as a user, as an admin, then session-ending calls
fuzz: $(VENV)/.dev
	$(BIN)/python -m testing.fuzz --max-examples $${FUZZ_EXAMPLES:-10}

## load-smoke: a few seconds of the mixed load (benchmarks/load_mix.py without --smoke for the real figures)
load-smoke: $(VENV)/.dev
	$(BIN)/python benchmarks/load_mix.py --smoke

## lint: ruff; the import graph (no cycle; notifications imports no app above it); no app module over 600 lines
lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/import_graph.py
	@! find $(APPS) -name '*.py' -not -path '*/migrations/*' -exec wc -l {} + \
	  | awk '$$2 != "total" && $$1 > 600 { print "Over 600 lines, split it by concern:", $$2, $$1; found = 1 } END { exit !found }'

typecheck: $(VENV)/.dev
	$(BIN)/mypy .

check: lint typecheck test

worker: $(VENV)/.runtime
	$(BIN)/celery -A config worker --loglevel INFO

beat: $(VENV)/.runtime
	$(BIN)/celery -A config beat --loglevel INFO

## services-start: throwaway PostgreSQL + Redis on loopback; prints the variables to export
services-start:
	scripts/services start

services-stop:
	scripts/services stop

clean:
	rm -rf $(VENV) .ci/tmp logs staticfiles
