/* Durations, sizes and rates as the control port writes them ("50ms",
 * "64KB", "1MB/s"): pure parsers with hard limits, no sockets. */
#ifndef UNITS_H
#define UNITS_H

#include <stddef.h>
#include <stdint.h>

#define UNITS_MAX_MS    (24LL * 3600 * 1000)          /* a day */
#define UNITS_MAX_BYTES (1000ULL * 1000 * 1000 * 1000) /* 1 TB */
#define UNITS_MAX_RATE  (100ULL * 1000 * 1000 * 1000)  /* 100 GB/s */

/* A duration: a number (at most 3 decimals) and one of ms, s, m, min, h
 * ("50ms", "1.5s", "2m").  0..UNITS_MAX_MS, whole milliseconds.  0, or -1
 * (not a duration, a fraction of a millisecond, or past the limit). */
int units_duration(const char *s, size_t n, long long *ms);

/* A size in bytes: a number and B, KB, MB, GB (powers of 1000) or KiB,
 * MiB, GiB (powers of 1024), any case ("64KB", "8B").  At most
 * UNITS_MAX_BYTES, whole bytes.  0 or -1. */
int units_size(const char *s, size_t n, uint64_t *bytes);

/* A rate in bytes per second: a size unit or bit, kbit, Mbit, Gbit
 * (powers of 1000, 8 bits a byte), then "/s" ("1MB/s", "512kbit/s").
 * 1..UNITS_MAX_RATE bytes per second, rounded down.  0 or -1. */
int units_rate(const char *s, size_t n, uint64_t *bytes_per_s);

/* Write ms as the shortest exact form ("1500ms", "2s", "3m") into out. */
void units_fmt_duration(long long ms, char *out, size_t outlen);

#endif
