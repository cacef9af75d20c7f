/* spool: a bounded, crash-safe, FIFO on-disk queue of opaque byte records (unacked uplink
 * windows, ClickHouse batches while the server is away). It is not a database, not an index
 * (only the oldest pending record is readable) and not shared between processes (the directory
 * is locked with flock; a second open gets -EBUSY).
 * Thread-safety: every call takes an internal mutex, so appends may come from any thread
 * (uplink aio callbacks and the loop) while one consumer thread peeks and pops. The buffer from
 * spool_peek stays valid until that consumer's next peek/pop/ack or spool_free; appends never
 * touch it.
 *
 * Delivery: at-least-once, in id order. A record is never reordered and never lost except by
 * the configured full-policy (counted) or by corruption found on disk (counted). After a crash
 * the records consumed since the last cursor write may be delivered again; consumers dedup by
 * id. Ids are per spool, start at 1, strictly increase and are never reused, also across
 * restarts (they may jump after a restart, see the state file below).
 *
 * On-disk format (all integers little-endian; CRC is CRC-32/ISO-HDLC, zlib's crc32()):
 *
 *   DIR/000000000001.seg, 000000000002.seg, ...  segment files, 12 decimal digits, oldest
 *       first. A segment is a plain concatenation of records, no file header:
 *         off  size  field
 *           0     4  magic       0x3150534d ("MSP1" in file byte order)
 *           4     4  len         payload bytes, <= SPOOL_RECORD_MAX
 *           8     8  id          record id; strictly increasing within and across segments
 *          16     4  data_crc    CRC of the payload
 *          20     4  hdr_crc     CRC of bytes 0..19 (so a flipped length is never trusted)
 *          24   len  payload
 *       A segment is rolled (a new file started) before a record would take it past
 *       segment_bytes; a single record larger than that gets a segment of its own.
 *   DIR/state  two 32-byte slots, written alternately with pwrite (no rename; a torn write can
 *       damage only the slot being written, the other stays valid):
 *           0     4  magic       0x3153534d ("MSS1")
 *           4     4  reserved    0
 *           8     8  consumed    every record with id <= consumed is consumed or dropped
 *          16     8  id_limit    ids below this may have been issued; never reused
 *          24     4  reserved    0
 *          28     4  crc         CRC of bytes 0..27
 *       Both fields only grow, so open takes the maximum of each over the valid slots. Cursor
 *       updates (every pop) go to one slot, unflushed. Ids are reserved SPOOL_ID_BLOCK at a
 *       time by writing and flushing both slots in turn (twice per block), and open starts
 *       at id_limit, so an id handed out before a crash is not reused even if its record was
 *       lost with the page cache. Cost: ids jump by up to SPOOL_ID_BLOCK at each open.
 *
 * Corruption policy (chosen for simplicity and safety): open scans every segment; the first
 * bad record of a segment (short header, bad magic, bad header CRC, length over the cap,
 * short payload, bad payload CRC, id not above the previous one) ends that segment: the file
 * is truncated there, corrupt_truncations is incremented and the cut bytes are added to
 * corrupt_bytes. Later segments are still used. Records are not searched for past a bad one:
 * a torn tail is the expected case, and resynchronising on a magic inside payload bytes could
 * deliver garbage. The same rule applies if a record fails its check when read later. A
 * process killed inside spool_append leaves such a torn tail (that append never returned, so
 * nothing acknowledged is lost); appends after open always start a new segment.
 *
 * Durability (enum spool_fsync): NONE survives a process crash but a host crash may lose the
 * records of the last few seconds; ROLL fdatasyncs a segment when it is sealed and at free;
 * APPEND fdatasyncs after every record (and the directory when a segment is created), costing
 * one disk flush per append. Cursor writes are never synced: a stale cursor only causes
 * redelivery. */
#ifndef MS_SPOOL_H
#define MS_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#define SPOOL_RECORD_MAX (64u << 20) /* payload cap; larger appends get -EMSGSIZE */
#define SPOOL_HDR_SIZE 24u
#define SPOOL_ID_BLOCK 65536u
#define SPOOL_DEFAULT_MAX_BYTES (256ull << 20)
#define SPOOL_DEFAULT_SEGMENT_BYTES (4ull << 20)
#define SPOOL_MIN_BYTES 4096u

enum spool_full_policy {
	SPOOL_DROP_OLDEST = 0, /* delete whole oldest segments until the record fits (also when the
				* filesystem is full: ENOSPC deletes the oldest finished segment, retries) */
	SPOOL_DROP_NEWEST = 1, /* refuse the new record with -ENOSPC */
};

enum spool_fsync {
	SPOOL_FSYNC_NONE = 0,
	SPOOL_FSYNC_ROLL = 1,
	SPOOL_FSYNC_APPEND = 2,
};

/* A zeroed struct (or NULL) means the defaults. */
struct spool_opts {
	uint64_t max_bytes;     /* hard bound on the segment files' total size (256 MiB);
				 * >= SPOOL_MIN_BYTES; the 64-byte state file is extra */
	uint64_t segment_bytes; /* roll-over size (min(4 MiB, max_bytes / 8)); <= max_bytes.
				 * DROP_OLDEST frees space a segment at a time, so a smaller
				 * segment drops fewer records at once */
	enum spool_full_policy policy;
	enum spool_fsync fsync;
};

struct spool_stats {
	uint64_t records;             /* pending (appended, not yet consumed or dropped) */
	uint64_t bytes;               /* segment bytes on disk: what max_bytes bounds */
	uint64_t segments;            /* segment files */
	uint64_t dropped_oldest;      /* pending records deleted to make room */
	uint64_t dropped_newest;      /* appends refused because the spool was full */
	uint64_t write_errors;        /* failed segment or state writes (append got -errno) */
	uint64_t read_errors;         /* failed reads (peek got -errno) */
	uint64_t corrupt_truncations; /* segments cut at a bad record */
	uint64_t corrupt_bytes;       /* bytes cut */
	uint64_t appended_total;      /* since open */
	uint64_t consumed_total;      /* since open */
	uint64_t next_id;             /* id the next append will get */
};

struct spool;

/* Opens (creating the last path component, mode 0700, if missing) and recovers the spool in
 * dir: scans and repairs every segment, deletes fully consumed ones. Returns 0, -EINVAL (bad
 * opts), -EBUSY (already open elsewhere), -ENOMEM or the -errno of a failed directory
 * operation. Opening costs a read of every segment (CRC over all spooled bytes). */
int spool_open(const char *dir, const struct spool_opts *opts, struct spool **ret);
/* Syncs (unless fsync is NONE), closes and frees. Records stay on disk. NULL-safe. */
struct spool *spool_free(struct spool *sp);

/* Appends a copy of data[0..len) and writes its id to *ret_id (may be NULL). Returns 0,
 * -EMSGSIZE (len > SPOOL_RECORD_MAX or the record could never fit in max_bytes), -ENOSPC
 * (DROP_NEWEST and full; counted in dropped_newest) or the -errno of a failed write (counted
 * in write_errors; a partial record is truncated away, so the spool stays consistent). A
 * full filesystem is also -ENOSPC: the counters tell the two apart. Cost: one pwritev and a
 * CRC of the payload; a synced state write every SPOOL_ID_BLOCK appends. */
int spool_append(struct spool *sp, const void *data, size_t len, uint64_t *ret_id);

/* Returns the oldest pending record without consuming it: *ret_buf (owned by the spool, see
 * above), *ret_len, *ret_id. -ENOENT when nothing is pending; -errno on a read error. A record
 * that fails its check is cut as on open and the next one is returned. */
int spool_peek(struct spool *sp, const void **ret_buf, size_t *ret_len, uint64_t *ret_id);
/* Consumes the oldest pending record; -ENOENT when there is none. Deletes a segment once all
 * its records are consumed (the active segment is emptied in place instead). Never fails on a cursor write error (counted; costs redelivery).
 * With DROP_OLDEST and appends on other threads, the record peeked may have been dropped in
 * between and pop would consume its successor unseen: such consumers use spool_ack. */
int spool_pop(struct spool *sp);
/* Consumes the record with this id if it is the oldest pending one. Returns 0 also when id was
 * already consumed or dropped (acks are idempotent), -ESRCH when id is newer than the oldest
 * pending record (acks are not cumulative, so a lost earlier record is never skipped) or was
 * never issued. */
int spool_ack(struct spool *sp, uint64_t id);

void spool_stats(struct spool *sp, struct spool_stats *ret);

/* Why spool_segment_scan stopped. */
enum spool_scan_stop {
	SPOOL_SCAN_END = 0,         /* the whole buffer is valid records */
	SPOOL_SCAN_SHORT_HEADER,
	SPOOL_SCAN_BAD_MAGIC,
	SPOOL_SCAN_BAD_HEADER_CRC,
	SPOOL_SCAN_BAD_LENGTH,
	SPOOL_SCAN_SHORT_PAYLOAD,
	SPOOL_SCAN_BAD_PAYLOAD_CRC,
	SPOOL_SCAN_BAD_ID,
};

struct spool_scan {
	uint64_t good_bytes;      /* length of the valid prefix */
	uint64_t bad_bytes;       /* len - good_bytes */
	uint64_t records;         /* records in the valid prefix */
	uint64_t first_id, last_id; /* of those records; 0 when there are none */
	uint64_t pending_records; /* records with id > after_id */
	uint64_t pending_off;     /* offset of the first of them (good_bytes when none) */
	enum spool_scan_stop stop;
};

/* Pure parser of one segment's bytes (used by open and by the fuzz target): walks records
 * while they are valid, ids strictly increasing and > min_id. Never reads outside buf.
 * Returns 0 with *ret filled whether or not the buffer is entirely valid (ret->stop says),
 * -EINVAL for a NULL ret or NULL buf with len > 0. Cost: one CRC pass over the valid bytes. */
int spool_segment_scan(const uint8_t *buf, size_t len, uint64_t min_id, uint64_t after_id,
		       struct spool_scan *ret);

#endif
