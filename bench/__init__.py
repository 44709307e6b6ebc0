"""Benchmarks of the loyalty worker. Run ``python -m bench.throughput --help``.

The names below are shared by the benchmark driver and the no-op task; this module imports nothing,
so the driver can read them before the worker's settings are in the environment.
"""

NOOP_TASK = "loyalty.bench.noop"

# The no-op task appends its completion time (time.time()) to this Redis list: LLEN is the number
# of tasks done and the list's min/max is the span, in one round trip per task.
COMPLETIONS_URL_ENV = "LOYALTY_BENCH_COMPLETIONS_URL"
COMPLETIONS_KEY = "loyalty:bench:noop:completions"
