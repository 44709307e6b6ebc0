"""The chaos suite: real servers and workers crashed while thousands of commands flow.

It owns everything it breaks (a PostgreSQL cluster, a Redis server, an SMTP server, a vhost on the
machine's RabbitMQ), runs a real ``celery worker`` and ``celery beat`` under a small supervisor,
publishes commands (some twice) while it injects faults on a fixed schedule, and then counts from
the database and the SMTP server whether anything was lost or done twice. ``scenario.Scenario``
holds the scale of a run; ``test_chaos.py`` runs the short one, ``python -m bench.chaos`` the full.
"""
