#!/usr/bin/env bash
# Find PostgreSQL and Redis on 127.0.0.1 for the tests, starting local ones if they are down;
# RabbitMQ too when it is installed (the publisher and chaos tests use it, and skip without it).
set -euo pipefail

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {
  local name=$1 port=$2
  for _ in $(seq 1 30); do
    answers "$port" && return 0
    sleep 1
  done
  echo "$name does not answer on 127.0.0.1:$port" >&2
  return 1
}

if ! answers 5432; then
  echo "PostgreSQL is down; starting the local cluster"
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
  fi
fi
if ! answers 6379; then
  echo "Redis is down; starting a local server"
  if command -v redis-server >/dev/null 2>&1; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  fi
fi
if command -v rabbitmq-server >/dev/null 2>&1 && ! answers 5672; then
  echo "RabbitMQ is down; starting a local server"
  rabbitmq-server -detached
fi
wait_for PostgreSQL 5432
wait_for Redis 6379
if command -v rabbitmq-server >/dev/null 2>&1; then
  wait_for RabbitMQ 5672
fi

# Answering a TCP connect is not enough: check that each speaks its protocol.
.venv/bin/python - <<'PY'
import psycopg, redis
from tests.support import environment

url = environment.POSTGRES_SERVER.replace("postgresql+psycopg", "postgresql") + "/postgres"
with psycopg.connect(url, connect_timeout=5) as connection:
    version = connection.execute("show server_version").fetchone()[0]
with redis.Redis.from_url(environment.BROKER_URL, socket_timeout=5) as client:
    client.ping()
    redis_version = client.info("server")["redis_version"]
print(f"PostgreSQL {version} and Redis {redis_version} answer on 127.0.0.1")
PY
