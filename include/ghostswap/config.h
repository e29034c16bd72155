/* ghostswap: device configuration, parsed from KEY=VALUE pairs.
 *
 * One parser serves every front end (the nbdkit plugin, ghostswapd), so the
 * keys, their defaults and their error messages are the same everywhere.
 */
#ifndef GHOSTSWAP_CONFIG_H
#define GHOSTSWAP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GS_SLOT_SIZE 4096u

/* Largest device: the largest whole number of slots below 2^63 (NBD's
 * export size is a signed 64-bit number). */
#define GS_MAX_SIZE ((uint64_t) INT64_MAX - (uint64_t) INT64_MAX % GS_SLOT_SIZE)

#define GS_CONFIG_MAX_BACKINGS 255

/* The smallest ram-limit: four of the RAM pool's 64 KiB segments.  Below
 * one segment nothing compressed could be stored at all. */
#define GS_MIN_RAM_LIMIT (256u * 1024)

/* metadata-limit when not set: ram-limit / 16, at least 64 MiB. */
#define GS_METADATA_LIMIT_AUTO UINT64_MAX
#define GS_MIN_METADATA_LIMIT_AUTO (64u * 1024 * 1024)

/* recompress-level and recompress-cpu when not set: off; 10 % of one
 * core when on. */
#define GS_RECOMPRESS_LEVEL_DEFAULT 0
#define GS_RECOMPRESS_CPU_DEFAULT 10

/* remote-timeout= when not set, and its largest value. */
#define GS_REMOTE_TIMEOUT_DEFAULT 30
#define GS_REMOTE_TIMEOUT_MAX 3600

/* Longest device name (name=). */
#define GS_NAME_MAX 64

struct gs_config {
  uint64_t size;              /* device size in bytes, a multiple of 4096 */
  uint64_t ram_limit;         /* cap on RAM pool bytes, > 0 */
  uint64_t metadata_limit;    /* cap on table metadata, 0 = none, or AUTO */
  int compression_level;      /* zstd level */
  unsigned compact_threshold; /* pool fragmentation (percent) that starts compaction */
  int recompress_level;       /* zstd level for cold pages, 0 = off */
  unsigned recompress_cpu;    /* recompression's CPU share, percent of a core */
  char *backing[GS_CONFIG_MAX_BACKINGS];  /* backing=PATH, in order (owned) */
  unsigned nbacking;
  uint64_t backing_size;      /* size for backing files that must be created */
  bool punch_holes;           /* punch freed backing slots out of files */
  bool encrypt;               /* encrypt=: AES-256-XTS at rest on backings
                               * (default true; not applied to I/O yet) */
  unsigned writeback_high;    /* percent of ram-limit that starts writeback */
  unsigned writeback_low;     /* percent of ram-limit where it stops */
  char *control;              /* control socket path (owned), NULL: default */
  char *name;                 /* name= (owned), NULL: derived (service.h) */
  char *metrics_listen;       /* metrics-listen=ADDR:PORT (owned), NULL: off */
  bool fault_injection;       /* allow gs_fault_set (tests only) */
  char *tls_psk;              /* tls-psk=FILE for remote backings (owned) */
  char *tls_username;         /* tls-username= (owned), NULL: libnbd's */
  char *tls_certificates;     /* tls-certificates=DIR (owned) */
  unsigned remote_timeout;    /* remote-timeout=SECONDS (default 30) */
  uint32_t given;             /* keys set by gs_config_set (one bit each) */
  uint32_t given_twice;       /* non-repeatable keys set more than once */
};

/* A description of every key, one "key=VALUE  text" line each, for --help. */
extern const char gs_config_help[];

/* gs_config_init - fill @cfg with the documented defaults.
 *
 * The default size is twice the machine's physical memory rounded up to a
 * GiB, the default ram-limit half of it (see docs/nbdkit-ghostswap-plugin.pod).
 *
 * Context: any.
 * Return: nothing.
 */
void gs_config_init (struct gs_config *cfg);

/* gs_config_free - free the strings @cfg owns (it stays usable with none).
 *
 * Context: any.
 * Return: nothing.
 */
void gs_config_free (struct gs_config *cfg);

/* gs_config_set - parse one KEY=VALUE pair into @cfg.
 *
 * On error a one-line message naming the key is written to @err (at most
 * @errlen bytes, NUL-terminated) and @cfg is unchanged.
 *
 * Context: any.
 * Return: 0, -ENOENT for an unknown key, -EINVAL for a bad value.
 */
int gs_config_set (struct gs_config *cfg, const char *key, const char *value,
                   char *err, size_t errlen);

/* gs_config_check - check relations between keys once all are set.
 *
 * Context: any.
 * Return: 0 or -EINVAL with a message in @err.
 */
int gs_config_check (const struct gs_config *cfg, char *err, size_t errlen);

/* gs_config_metadata_limit - the metadata-limit @cfg asks for, with the
 * default worked out (0: no cap).
 * Context: any.  Return: bytes.
 */
uint64_t gs_config_metadata_limit (const struct gs_config *cfg);

/* gs_config_warnings - what is valid but probably not meant: a key
 * (other than backing) given more than once, ram-limit above the
 * machine's memory, backing-size without a backing.  One line per
 * warning, each naming its key, into @buf (NUL-terminated, lines ended by
 * newlines).
 *
 * Context: any.
 * Return: the number of warnings.
 */
int gs_config_warnings (const struct gs_config *cfg, char *buf, size_t buflen);

/* gs_parse_size - parse a byte count with an optional suffix
 * (b, k/K, M, G, T, P, E: powers of 1024; "KiB"/"KB"-style tails accepted).
 *
 * Context: any.
 * Return: 0 and *@out set, -EINVAL for a malformed string, -ERANGE if the
 * value does not fit in 63 bits.
 */
int gs_parse_size (const char *str, uint64_t *out);

/* gs_format_size - write @bytes in the largest exact binary unit ("2G",
 * "4096") into @buf.
 *
 * Context: any.
 * Return: @buf.
 */
char *gs_format_size (uint64_t bytes, char *buf, size_t buflen);

#endif /* GHOSTSWAP_CONFIG_H */
