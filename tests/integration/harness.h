/* ghostswap integration tests: start the real nbdkit with the ghostswap
 * plugin on a Unix socket in a fresh temporary directory, and always clean
 * up (kill nbdkit, remove the directory), also on failure or on a signal.
 *
 * Environment:
 *   GHOSTSWAP_PLUGIN  path of the built plugin (required; tests skip
 *                     with exit code 77 without it)
 *   NBDKIT            the nbdkit binary (default "nbdkit" on $PATH)
 *   GHOSTSWAP_NBDKIT_WRAPPER
 *                     a program to start nbdkit through: it is run as
 *                     "WRAPPER NBDKIT ARGS..." (the backing tests'
 *                     uring-blocked-exec)
 *   GHOSTSWAP_SEED    seed for the tests' PRNG (default: time-based)
 */
#ifndef GHOSTSWAP_TEST_HARNESS_H
#define GHOSTSWAP_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <libnbd.h>

#define TEST_SKIP 77

/* The program name, for messages (set by harness_init). */
extern const char *test_name;

/* Print "NAME: test failed: <what>" and exit 1 (cleanup runs at exit). */
void test_fail (const char *fmt, ...)
  __attribute__ ((format (printf, 1, 2), noreturn));

/* Print "NAME: skipped: <why>" and exit 77. */
void test_skip (const char *fmt, ...)
  __attribute__ ((format (printf, 1, 2), noreturn));

/* Like test_fail, adding libnbd's error message and errno. */
void test_fail_nbd (const char *fmt, ...)
  __attribute__ ((format (printf, 1, 2), noreturn));

/* Set test_name, install the exit and signal cleanup, and return the
 * plugin path from $GHOSTSWAP_PLUGIN (skips if it is unset or missing). */
const char *harness_init (int argc, char **argv);

struct server {
  pid_t pid;            /* nbdkit's pid, 0 when not running */
  char dir[256];        /* the temporary directory */
  char sock[300];       /* dir/sock */
  char pidfile[300];    /* dir/pid */
  int exit_status;      /* wait status once it exited */
};

/* server_start - start "nbdkit -f -U dir/sock -P dir/pid --exit-with-parent
 * PLUGIN ARGS..." (ARGS: a NULL-terminated list of KEY=VALUE strings) and
 * wait until it listens.
 *
 * Return: 0 when it serves; -1 if nbdkit exited first (its wait status is
 * in srv->exit_status; the directory is already removed).  Any other
 * problem fails the test.
 */
int server_start (struct server *srv, const char *const *args);

/* server_start_cmd - as server_start, but with any plugin: @cmd is what
 * follows "-P dir/pid" ("memory", "size=64M", or "--filter=delay",
 * "file", "file=...", ...), and without GHOSTSWAP_NBDKIT_WRAPPER.  For a
 * second nbdkit serving a remote export.  Return: as server_start. */
int server_start_cmd (struct server *srv, const char *const *cmd);

/* server_kill - SIGKILL nbdkit and reap it, keeping its directory (the
 * socket path stays valid for server_respawn). */
void server_kill (struct server *srv);

/* server_respawn - start nbdkit again in the same directory, on the same
 * socket, with @cmd (as server_start_cmd) after server_kill.
 * Return: as server_start. */
int server_respawn (struct server *srv, const char *const *cmd);

/* server_stop - kill nbdkit (SIGTERM, then SIGKILL), reap it, remove the
 * directory.  Safe to call twice. */
void server_stop (struct server *srv);

/* server_stop_check - server_stop, and fail the test unless nbdkit exited
 * with status 0 on SIGTERM (a crash at shutdown or unload fails). */
void server_stop_check (struct server *srv);

/* server_rss_kib - VmRSS of the running nbdkit, in KiB. */
uint64_t server_rss_kib (const struct server *srv);

/* server_connect - a new libnbd handle connected to @srv, with the
 * base:allocation meta context requested.  Fails the test on error. */
struct nbd_handle *server_connect (const struct server *srv);

/* The seed: $GHOSTSWAP_SEED or a time-based one; printed. */
uint64_t test_seed (void);

/* xoshiro256** PRNG. */
struct rng { uint64_t s[4]; };
void rng_seed (struct rng *r, uint64_t seed);
uint64_t rng_next (struct rng *r);
/* uniform in [0, n), n > 0 */
uint64_t rng_below (struct rng *r, uint64_t n);

/* Fill @buf, which will be written at device offset @devoff, with a random
 * mix of zero runs, repeated 8-byte words (phase-aligned to device offsets
 * so that whole slots become same-filled), text-like compressible bytes and
 * incompressible random bytes. */
void fill_mixed (struct rng *r, unsigned char *buf, size_t len,
                 uint64_t devoff);

/* Fill with bytes of one kind: 0 zero, 1 word, 2 text, 3 random. */
void fill_kind (struct rng *r, unsigned char *buf, size_t len,
                uint64_t devoff, int kind);

/* Offset of the first difference between @a and @b, or -1. */
ssize_t first_diff (const void *a, const void *b, size_t len);

/* True if @len bytes at @p are all zero. */
bool is_zero (const void *p, size_t len);

/* Whole-range helpers that split into requests of at most 16 MiB and fail
 * the test on error. */
void xpread (struct nbd_handle *h, void *buf, uint64_t count, uint64_t off);
void xpwrite (struct nbd_handle *h, const void *buf, uint64_t count,
              uint64_t off);

#endif /* GHOSTSWAP_TEST_HARNESS_H */
