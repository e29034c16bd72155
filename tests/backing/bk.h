/* ghostswap backing-tier tests: shared helpers on top of the integration
 * harness (tests/integration/harness.h, which starts the real nbdkit).
 *
 *  - a directory for backing files, on a file system the engine accepts
 *    (not tmpfs, FUSE or NFS; O_DIRECT must work), removed at exit and on
 *    a fatal signal;
 *  - a client of the plugin's control socket (one request line, one JSON
 *    line back) and a tiny JSON field reader;
 *  - a byte-exact shadow of the device, with write / trim helpers that
 *    keep it and check every answer;
 *  - a scan of a backing file for pages stored raw (incompressible pages
 *    are written verbatim, so finding one tells which physical slot holds
 *    which ghost slot without asking the engine).
 *
 * Environment (besides the harness's):
 *   GHOSTSWAP_BACKING_TMPDIR  where to make the backing directory
 *                             (default /var/tmp, then the current directory)
 */
#ifndef GHOSTSWAP_TEST_BK_H
#define GHOSTSWAP_TEST_BK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libnbd.h>

#include "harness.h"

#define SLOT 4096u
#define MiB (1024u * 1024u)

/* ---- setup ---- */

/* harness_init, then make the backing directory (skips, exit 77, when no
 * suitable file system is found).  Return: the plugin path. */
const char *bk_init (int argc, char **argv);

/* The backing directory. */
extern char bk_dir[];

/* "DIR/NAME" for a file in the backing directory, remembered so that it is
 * removed at exit.  The string is static (one per name). */
const char *bk_path (const char *name);

/* The control socket path (DIR/ctl). */
const char *bk_ctl (void);

/* Start nbdkit with the plugin and the NULL-terminated KEY=VALUE list,
 * plus control=bk_ctl(); fail the test if it does not start; wait until
 * the control socket answers. */
void bk_start (struct server *srv, ...) __attribute__ ((sentinel));

/* Start nbdkit with the plugin and @args (NULL-terminated); it must exit
 * with an error, printing one error line that contains "backing" and
 * @name.  Return false (after printing why, naming @what) if it did
 * not. */
bool bk_expect_refusal (const char *what, const char *name,
                        const char *const *args);

/* ---- control socket ---- */

/* Send one request (printf format) and return the answer line, malloc'd,
 * without its newline.  Fails the test if the socket cannot be used. */
char *ctl (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

/* As ctl, and fail the test unless the answer says "ok":true. */
char *ctl_ok (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

/* Send @n request lines in one write on one connection (pipelined: the
 * server answers them in order, back to back) and return the answers in
 * @ans (malloc'd each).  Fails the test if the socket cannot be used or
 * an answer takes more than ctl_timeout_s. */
void ctl_multi (unsigned n, const char *const *lines, char **ans);

/* Seconds to wait for an answer (default 300). */
extern unsigned ctl_timeout_s;

/* Whether an answer is {"ok":true,...}. */
bool ans_ok (const char *ans);

/* The value of the first "KEY": at or after @from (NULL if absent). */
const char *json_at (const char *from, const char *key);

/* Typed readers: fail the test if the key is missing or the wrong type. */
uint64_t json_u64 (const char *from, const char *key);
int64_t json_i64 (const char *from, const char *key);
bool json_bool (const char *from, const char *key);
/* Copy a string value (escapes decoded) into @buf. */
void json_str (const char *from, const char *key, char *buf, size_t len);

/* The object of backing @path inside an answer's "backings" array, or
 * NULL.  (Its fields are read with json_* from there: each backing object
 * starts with "path", so the first match after it is its own.) */
const char *json_backing (const char *ans, const char *path);

/* Selected figures of the "stats" answer. */
struct bk_stats {
  uint64_t ram_limit, slots_same, slots_ram, slots_ram_raw, slots_backing;
  uint64_t pool_bytes, backings, backing_slots, backing_used;
  uint64_t writeback_pages, writeback_batches;
  uint64_t backing_read_errors, backing_write_errors;
  uint64_t errors, enospc;
  uint64_t io_uring_rings, io_uring_failures, io_uring_fallback_batches;
  uint64_t io_uring_last_error;
};
/* Also checks the I/O path the environment asks for: with
 * GHOSTSWAP_IO_URING=0 (nbdkit inherits it) or
 * GHOSTSWAP_TEST_URING_BLOCKED=ENOSYS (nbdkit runs under
 * uring-blocked-exec), no ring may have been set up, and pages written
 * back mean batches done by the fallback; blocked, the failures must say
 * ENOSYS.  Fails the test otherwise. */
void bk_stats (struct bk_stats *st);

/* One backing of "backing list"; returns false if @path is not listed. */
struct bk_backing {
  uint64_t size, slots, used, reads, writes, read_errors, write_errors;
  bool healthy, draining;
};
bool bk_backing (const char *path, struct bk_backing *b);

/* Wait (polling "drain status" every 10 ms, at most @timeout_s) until no
 * drain runs; return its answer (malloc'd).  *@max_done_seen is the
 * largest "done" seen while it was running (progress), if not NULL. */
char *bk_drain_finish (unsigned timeout_s, uint64_t *max_done_seen);

/* ---- shadow of the device ---- */

struct shadow {
  unsigned char *data;   /* size bytes, calloc'd (untouched pages cost nothing) */
  uint64_t size;
};

void shadow_init (struct shadow *sh, uint64_t size);

/* Write @len bytes at @off through @h and into the shadow (fail on error). */
void sh_write (struct shadow *sh, struct nbd_handle *h, const void *buf,
               uint64_t len, uint64_t off);
/* Same, but return the errno instead of failing; the shadow is updated
 * only on success (callers use it for single-slot writes, which are
 * all-or-nothing). */
int sh_try_write (struct shadow *sh, struct nbd_handle *h, const void *buf,
                  uint32_t len, uint64_t off);
/* Trim (or zero with NBD_CMD_WRITE_ZEROES if @zero) and record zeroes. */
void sh_trim (struct shadow *sh, struct nbd_handle *h, uint64_t len,
              uint64_t off, bool zero);

/* Read [off, off+len) and compare with the shadow; fail on any
 * difference, naming @what, the slot and the offset. */
void sh_verify (const struct shadow *sh, struct nbd_handle *h, uint64_t off,
                uint64_t len, const char *what);
/* Read slot @slot alone: 0 when it matches the shadow, else the errno of
 * the failed read; wrong data fails the test, naming @what. */
int sh_read_slot (const struct shadow *sh, struct nbd_handle *h,
                  uint64_t slot, const char *what);
/* The whole device, in 16 MiB requests. */
void sh_verify_all (const struct shadow *sh, struct nbd_handle *h,
                    const char *what);

/* Random content for a whole slot: kind 0 zero, 1 repeated word, 2 text,
 * 3 random (incompressible), 4 a mix of them; -1: pick one with the
 * weights zero 10 %, word 10 %, text 30 %, random 40 %, mix 10 %. */
void gen_slot (struct rng *r, unsigned char *buf, uint64_t slot, int kind);

/* Whether a page is one repeated 8-byte word (never stored on backing). */
bool page_same_filled (const unsigned char *p);

/* ---- backing files ---- */

/* st_blocks (512-byte units) of @path. */
uint64_t file_blocks (const char *path);

/* For every slot of the shadow in [0, nslots) whose current contents are
 * not same-filled and appear verbatim in a block of the backing file
 * @path, set map[slot] to that block (physical slot) + 1; others 0.
 * Return: how many were found. */
uint64_t scan_raw_pages (const struct shadow *sh, const char *path,
                         uint64_t nslots, uint64_t *map);

/* Sleep @ms milliseconds. */
void msleep (unsigned ms);

#endif /* GHOSTSWAP_TEST_BK_H */
