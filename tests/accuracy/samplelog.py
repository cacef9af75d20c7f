"""Reader of the agent's per-sample log (--sample-log, agent/samplelog.h, docs/BENCHMARKS.md):
a 16-byte header (magic "MSSLOG1\\0", u32 record size, u32 version) then 64-byte little-endian
records. The file is untrusted input: header and record size are checked before use."""
import struct

MAGIC = b"MSSLOG1\x00"
HEADER = struct.Struct("<8sII")
REC = struct.Struct("<QQQQQQIIIHBB")
FIELDS = ("ts_ns", "flow_id", "ip", "addr", "ctx_age_ns", "period", "cpu", "pid", "tid", "event",
          "attr_rule", "user_mode")
ATTR_NONE, ATTR_THREAD, ATTR_PACKET = 0, 1, 2


def read(path):
    """Returns a list of tuples in FIELDS order."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < HEADER.size:
        raise ValueError(f"{path}: shorter than the sample-log header")
    magic, rec_size, version = HEADER.unpack_from(data, 0)
    if magic != MAGIC or rec_size != REC.size or version != 1:
        raise ValueError(f"{path}: not a version-1 sample log (magic {magic!r}, record {rec_size})")
    body = memoryview(data)[HEADER.size:]
    n = len(body) // REC.size  # a torn last record (agent killed) is ignored
    return [REC.unpack_from(body, i * REC.size) for i in range(n)]
