"""ClickHouse schema management on a real 18.16 server (issue 6): a fresh server gets the whole
schema from the coordinator's migration runner; a server holding the previous schema version
(backend/migrations/0001_core.sql loaded by hand, with data in it) is migrated and keeps its
data; running the migration again changes nothing; the hand-loadable
backend/clickhouse_schema.sql gives exactly the tables the runner creates; the ClickHouse
password comes from a file that others may not read."""
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import chrun  # noqa: E402
import clickhouse  # noqa: E402
import mstest  # noqa: E402

BACKEND = os.path.join(mstest.SRC, "backend")
TABLES = {"ms_flow_rollup", "ms_raw_samples", "ms_stack_traces", "ms_data_objects", "ms_flows", "ms_functions",
          "ms_windows", "ms_false_sharing", "ms_remote_dram", "ms_anomalies", "ms_fleet_events", "ms_agents",
          "ms_schema_migrations"}


def init_schema(ch, db, *extra):
    return mstest.run([chrun.COORD, "--init-schema", f"--clickhouse-endpoint={ch.endpoint}",
                       f"--clickhouse-database={db}"] + list(extra), check=False)


def snapshot(ch, db):
    """Everything a migration could change: columns with types and defaults, table engines and
    keys, and the migration records (raw row count, not FINAL)."""
    cols = ch.rows("SELECT table, name, type, default_kind, default_expression FROM system.columns "
                   f"WHERE database = '{db}' ORDER BY table, name")
    tabs = ch.rows("SELECT name, engine_full, partition_key, sorting_key FROM system.tables "
                   f"WHERE database = '{db}' ORDER BY name")
    recs = ch.scalar(f"SELECT count() FROM {db}.ms_schema_migrations")
    return cols, tabs, recs


def columns_only(snap):
    return snap[0], [t[:1] + t[2:] for t in snap[1]]


class ClickHouseSchema(unittest.TestCase):
    def setUp(self):
        clickhouse.skip_unless_available()
        if not os.path.exists(chrun.COORD):
            raise unittest.SkipTest("coordinator not built")

    def test_fresh_then_twice_is_a_no_op(self):
        with clickhouse.Server() as ch:
            r = init_schema(ch, "fresh")
            self.assertEqual(r.returncode, 0, r.stderr)
            tables = {t[0] for t in ch.rows("SELECT name FROM system.tables WHERE database = 'fresh'")}
            self.assertEqual(tables, TABLES)
            versions = ch.rows("SELECT version, name FROM fresh.ms_schema_migrations FINAL ORDER BY version")
            self.assertEqual(versions, [("1", "core"), ("2", "fleet")])
            self.assertIn("LowCardinality(String)",
                          ch.query("SELECT type FROM system.columns WHERE database = 'fresh' "
                                   "AND table = 'ms_flow_rollup' AND name = 'host'"))
            before = snapshot(ch, "fresh")
            r = init_schema(ch, "fresh")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(snapshot(ch, "fresh"), before, "a second run changed the schema")
            # the hand-loadable file describes the same tables (it is rendered for database microsentinel)
            with open(os.path.join(BACKEND, "clickhouse_schema.sql")) as f:
                ch.run_script(f.read())
            by_file = columns_only(snapshot(ch, "microsentinel"))
            self.assertEqual(by_file, columns_only(before))

    def test_previous_version_is_migrated(self):
        with clickhouse.Server() as ch:
            with open(os.path.join(BACKEND, "migrations", "0001_core.sql")) as f:
                ch.run_script(f.read())
            self.assertEqual(ch.rows("SELECT version FROM microsentinel.ms_schema_migrations FINAL"), [("1",)])
            ch.query("INSERT INTO microsentinel.ms_flow_rollup (ts, host, seq, row, flow_id, samples) "
                     "VALUES (now(), 'old-host', 7, 0, 42, 5), (now(), 'old-host', 7, 1, 43, 6)")
            r = init_schema(ch, "microsentinel")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("from version 1 to 2", r.stderr)
            versions = ch.rows("SELECT version FROM microsentinel.ms_schema_migrations FINAL ORDER BY version")
            self.assertEqual(versions, [("1",), ("2",)])
            self.assertEqual(ch.rows("SELECT sum(samples), any(mode), any(window_ms) FROM "
                                     "microsentinel.ms_flow_rollup FINAL"), [("11", "sentinel", "0")])
            migrated = snapshot(ch, "microsentinel")
            r = init_schema(ch, "fresh")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(columns_only(migrated), columns_only(snapshot(ch, "fresh")),
                             "a migrated server differs from a fresh one")
            r = init_schema(ch, "microsentinel")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(snapshot(ch, "microsentinel"), migrated, "a second run changed the schema")

    def test_password_from_a_private_file(self):
        with clickhouse.Server(users={"ms": "s3cret"}) as ch:
            d = tempfile.mkdtemp(prefix="ms-pw-")
            pw = os.path.join(d, "pw")
            with open(pw, "w") as f:
                f.write("s3cret\n")
            os.chmod(pw, 0o644)
            r = init_schema(ch, "auth", "--clickhouse-user=ms", f"--clickhouse-password-file={pw}")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("chmod 600", r.stderr)
            os.chmod(pw, 0o600)
            r = init_schema(ch, "auth", "--clickhouse-user=ms", f"--clickhouse-password-file={pw}")
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(pw, "w") as f:
                f.write("wrong\n")
            r = init_schema(ch, "auth", "--clickhouse-user=ms", f"--clickhouse-password-file={pw}")
            self.assertNotEqual(r.returncode, 0)
            self.assertNotIn("wrong", r.stderr + r.stdout, "the password leaked into the log")


if __name__ == "__main__":
    mstest.main()
