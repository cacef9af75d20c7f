-- MicroSentinel ClickHouse schema, rendered for ClickHouse 18.16 (no TTL, CODEC, DateTime64,
-- IPv6). GENERATED from the migrations in coordinator/schema.c: do not edit by hand;
-- coordinator/schema_test.c checks this file and writes the expected text beside the test
-- binary when it differs. The coordinator applies the same migrations itself (and adapts
-- them to newer servers); this file is for people and for loading by hand:
--   clickhouse-client --multiquery < FILE

SET allow_experimental_low_cardinality_type = 1;

CREATE DATABASE IF NOT EXISTS microsentinel;

CREATE TABLE IF NOT EXISTS microsentinel.ms_schema_migrations
(
    version UInt32,
    name String,
    applied_at DateTime,
    features String,
    checksum UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY version
;

-- migration 1: core

CREATE TABLE IF NOT EXISTS microsentinel.ms_flow_rollup
(
    ts DateTime,
    host LowCardinality(String),
    seq UInt64,
    row UInt32,
    flow_id UInt64,
    func_id UInt64,
    stack_id UInt64,
    object_id UInt64,
    event LowCardinality(String),
    pid UInt32,
    numa_node Int16,
    direction Enum8('none' = 0, 'rx' = 1, 'tx' = 2),
    iclass UInt8,
    user_mode UInt8,
    samples UInt64,
    norm_cost Float64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (ts, host, seq, row);

CREATE TABLE IF NOT EXISTS microsentinel.ms_raw_samples
(
    ts DateTime,
    host LowCardinality(String),
    seq UInt64,
    idx UInt32,
    ts_ns UInt64,
    cpu UInt16,
    pid UInt32,
    tid UInt32,
    flow_id UInt64,
    event LowCardinality(String),
    ip UInt64,
    data_addr UInt64,
    stack_id UInt64,
    numa_node Int16,
    direction Enum8('none' = 0, 'rx' = 1, 'tx' = 2),
    gso_segs UInt16,
    attr_rule Enum8('none' = 0, 'thread' = 1, 'packet' = 2),
    lbr_from Array(UInt64),
    lbr_to Array(UInt64)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (ts, host, seq, idx);

CREATE TABLE IF NOT EXISTS microsentinel.ms_stack_traces
(
    ts DateTime,
    host LowCardinality(String),
    seq UInt64,
    stack_id UInt64,
    user_stack UInt32,
    kernel_stack UInt32,
    frames Array(String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (host, stack_id);

CREATE TABLE IF NOT EXISTS microsentinel.ms_data_objects
(
    ts DateTime,
    host LowCardinality(String),
    seq UInt64,
    object_id UInt64,
    name String,
    addr UInt64,
    size UInt64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (host, object_id);

CREATE TABLE IF NOT EXISTS microsentinel.ms_flows
(
    ts DateTime,
    host LowCardinality(String),
    seq UInt64,
    flow_id UInt64,
    has_tuple UInt8,
    family UInt8,
    proto UInt8,
    saddr FixedString(16),
    daddr FixedString(16),
    sport UInt16,
    dport UInt16,
    direction Enum8('none' = 0, 'rx' = 1, 'tx' = 2),
    ifindex UInt32,
    netns UInt32,
    vlan UInt16,
    encap UInt8
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (host, flow_id);

CREATE TABLE IF NOT EXISTS microsentinel.ms_functions
(
    ts DateTime,
    host LowCardinality(String),
    seq UInt64,
    func_id UInt64,
    name String,
    module LowCardinality(String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (host, func_id);

INSERT INTO microsentinel.ms_schema_migrations (version, name, applied_at, features, checksum) VALUES (1, 'core', now(), 'lc', 952250260859385630);

-- migration 2: fleet

ALTER TABLE microsentinel.ms_flow_rollup ADD COLUMN mode Enum8('sentinel' = 0, 'diagnostic' = 1) DEFAULT 'sentinel';

ALTER TABLE microsentinel.ms_flow_rollup ADD COLUMN window_ms UInt32 DEFAULT 0;

CREATE TABLE IF NOT EXISTS microsentinel.ms_windows
(
    ts DateTime,
    host LowCardinality(String),
    seq UInt64,
    start_ns UInt64,
    end_ns UInt64,
    mode Enum8('sentinel' = 0, 'diagnostic' = 1),
    budget_per_cpu UInt64,
    nrows UInt32,
    nflows UInt32,
    samples UInt64,
    emitted UInt64,
    budget UInt64,
    gap UInt64,
    ringfull UInt64,
    unattributed UInt64,
    attr_thread UInt64,
    attr_packet UInt64,
    idle UInt64,
    filtered UInt64,
    ctx_rx UInt64,
    ctx_tx UInt64,
    ctx_sock UInt64,
    ctx_parse_fail UInt64,
    stack_fail UInt64,
    processed UInt64,
    lost UInt64,
    agg_degraded UInt64,
    agg_dropped UInt64,
    flows_overflow UInt64,
    events Array(LowCardinality(String)),
    event_sources Array(UInt8),
    cpu_emitted Array(UInt64)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (ts, host, seq);

CREATE TABLE IF NOT EXISTS microsentinel.ms_false_sharing
(
    ts DateTime,
    host LowCardinality(String),
    seq UInt64,
    idx UInt32,
    line_addr UInt64,
    object_id UInt64,
    offsets Array(UInt32),
    pids Array(UInt32),
    func_ids Array(UInt64),
    writers UInt64,
    readers UInt64,
    score Float64,
    true_sharing UInt8
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (ts, host, seq, idx);

CREATE TABLE IF NOT EXISTS microsentinel.ms_remote_dram
(
    ts DateTime,
    host LowCardinality(String),
    seq UInt64,
    idx UInt32,
    flow_id UInt64,
    object_id UInt64,
    mem_node Int32,
    cpu_node Int32,
    samples UInt64,
    cost Float64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (ts, host, seq, idx);

CREATE TABLE IF NOT EXISTS microsentinel.ms_anomalies
(
    ts DateTime,
    host LowCardinality(String),
    seq UInt64,
    idx UInt32,
    ts_ns UInt64,
    ifname LowCardinality(String),
    ifindex UInt32,
    kind Enum8('unspecified' = 0, 'drop' = 1, 'spike' = 2, 'stop' = 3, 'latency' = 4),
    metric LowCardinality(String),
    value Float64,
    baseline Float64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (ts, host, seq, idx);

CREATE TABLE IF NOT EXISTS microsentinel.ms_fleet_events
(
    ts DateTime,
    host LowCardinality(String),
    seq UInt64,
    ts_ns UInt64,
    kind LowCardinality(String),
    group_key String,
    hosts Array(String),
    mode LowCardinality(String),
    ttl_ms UInt64,
    reason String,
    details String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (ts, host, seq);

CREATE TABLE IF NOT EXISTS microsentinel.ms_agents
(
    ts DateTime,
    host LowCardinality(String),
    seq UInt64,
    instance UInt64,
    version String,
    hostname String,
    label_keys Array(String),
    label_values Array(String),
    control_endpoint String,
    hook_tier LowCardinality(String),
    synthetic UInt8,
    kernel String,
    ncpu UInt32,
    window_ms UInt32,
    events_live Array(String),
    events_fallback Array(String)
)
ENGINE = ReplacingMergeTree(ts)
ORDER BY host;

INSERT INTO microsentinel.ms_schema_migrations (version, name, applied_at, features, checksum) VALUES (2, 'fleet', now(), 'lc', 17411924987074445574);

