"""Throughput and latency of the loyalty worker, next to its two ceilings, in one run.

    .venv/bin/python -m bench.throughput                      # Redis broker, 20,000 commands
    .venv/bin/python -m bench.throughput --broker amqp://guest:guest@127.0.0.1:5672//

Phases, all on the same broker, the same bench database and the same worker concurrency:

(a) end to end: 20,000 ``loyalty.adjust_points`` commands are queued while no worker runs, then
    a real ``celery worker -c 2 -P prefork`` drains them; done when ``processed_commands`` has
    them all.
(b) framework ceiling: the same messages to ``loyalty.bench.noop`` (bench/noop.py), a task with the
    same options and result that touches no database.
(c) database ceiling: the engine without Celery: as many processes as the worker has apply the
    commands through ``command_engine.apply_batch``, in the worker's batches, one transaction
    each, with no broker, result backend or acknowledgement.
(d) publish-to-commit latency at a steady publish rate of half of (a).

The modules: ``config`` (options, environment), ``database`` (the bench database, its checks),
``workload`` (the commands), ``broker`` and ``worker`` (queues, the worker under test), ``cpu`` and
``measures`` (what is measured), ``drain`` (a, b), ``engine`` (c), ``latency`` (d), ``report``.
Nothing here imports the project's settings at import time: ``config.configure_environment``
must run first. See bench/README.md for how each figure is measured.
"""
