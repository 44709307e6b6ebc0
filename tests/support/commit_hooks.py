"""A COMMIT that PostgreSQL holds or fails on purpose, for one shop's email deliveries.

A deferred constraint trigger on ``email_deliveries`` runs inside the COMMIT itself. For a shop
the test names, it either waits on an advisory lock the test holds (a COMMIT whose reply comes
late) or fails once as a server shutting down would (a COMMIT whose fate the client never
learns). Other shops are untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from sqlalchemy import Engine, text

Hook = Literal["wait", "fail-once"]

_INSTALL = """
CREATE TABLE IF NOT EXISTS test_commit_hooks (shop_id text PRIMARY KEY, hook text NOT NULL);
DROP SEQUENCE IF EXISTS test_commit_hook_failures;
CREATE SEQUENCE test_commit_hook_failures;
CREATE OR REPLACE FUNCTION test_commit_hook() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    wanted text;
BEGIN
    SELECT hook INTO wanted FROM test_commit_hooks WHERE shop_id = NEW.shop_id;
    IF wanted = 'wait' THEN
        SET LOCAL lock_timeout = '5s';
        PERFORM pg_advisory_xact_lock(hashtext(NEW.shop_id));
    ELSIF wanted = 'fail-once' AND nextval('test_commit_hook_failures') = 1 THEN
        RAISE EXCEPTION 'terminating connection due to administrator command'
            USING ERRCODE = 'admin_shutdown';
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS test_commit_hook ON email_deliveries;
CREATE CONSTRAINT TRIGGER test_commit_hook AFTER INSERT OR UPDATE ON email_deliveries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_commit_hook();
"""

_REMOVE = """
DROP TRIGGER IF EXISTS test_commit_hook ON email_deliveries;
DROP FUNCTION IF EXISTS test_commit_hook();
DROP SEQUENCE IF EXISTS test_commit_hook_failures;
DROP TABLE IF EXISTS test_commit_hooks;
"""


@contextmanager
def commit_hook(engine: Engine, shop_id: str, hook: Hook) -> Iterator[None]:
    """Installs the hook for ``shop_id`` (committed), and removes every trace of it after."""
    with engine.begin() as connection:
        connection.exec_driver_sql(_INSTALL)
        connection.execute(
            text("INSERT INTO test_commit_hooks VALUES (:shop_id, :hook)"),
            {"shop_id": shop_id, "hook": hook},
        )
    try:
        yield
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(_REMOVE)
