.PHONY: demo test lint bench chaos

# The embedded default: SQLite files under .loyalty/, a real worker process, no servers.
demo:
	scripts/bootstrap.sh
	.venv/bin/loyalty demo

# Everything, against PostgreSQL and Redis on 127.0.0.1 (started if they are down).
test:
	scripts/test.sh

lint:
	scripts/bootstrap.sh dev
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy && .venv/bin/lint-imports

bench:
	scripts/bootstrap.sh dev
	.venv/bin/python -m bench.throughput

# Crashes its own PostgreSQL, Redis and workers (and a RabbitMQ vhost's connections) while 6,000
# commands flow, then counts what was lost or done twice: see tests/chaos/.
chaos:
	scripts/bootstrap.sh dev
	.venv/bin/python -m bench.chaos --broker both
