/* ghostswap: one backing device: physical slot allocator, reverse map,
 * I/O and injected faults. */
#ifndef GHOSTSWAP_BACKING_IMPL_H
#define GHOSTSWAP_BACKING_IMPL_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ghostswap/backing.h"
#include "uring.h"

/* The reverse map: 7 bytes per physical slot, little-endian.
 *
 *   55   54    53    52 51  50                                      0
 *  +----+-----+-----+-----+------------------------------------------+
 *  | Z  | BAD | PIN |STATE|          owning ghost slot (51 bits)      |
 *  +----+-----+-----+-----+------------------------------------------+
 *
 * STATE is the physical slot's life (lib/slot.h has the whole diagram):
 *
 *   FREE --alloc--> RESERVED --commit--> LIVE --free--> DIRTY --scrub--> FREE
 *                      |                                   ^
 *                      +-------------release---------------+
 *
 * RESERVED: a mover has the slot for @owner and is writing it; no entry
 * points at it and no scan sees it.  LIVE: an entry points at it (the
 * slot module makes it LIVE under the owner's cluster lock when it stores
 * that entry, after the write completed).  PIN: a mover holds a copy of
 * the page and will commit it; the slot is not reallocated until it is
 * unpinned, even if freed meanwhile, so "the entry still points here"
 * means "the bytes are the ones read".  BAD: a checksum mismatch was
 * reported for the current page (once).  Z: the slot holds a zstd frame
 * padded to 4 KiB rather than a raw page.  DIRTY: freed, but its old
 * bytes are still on the device; it is not allocated again until a scrub
 * has punched (files) or zeroed (block devices) it, so that nothing freed
 * stays readable (gs_backing_scrub).
 *
 * Beside it, one crc32c per physical slot of the 4 KiB written there,
 * taken when the stored form was made and checked on every read back.
 */
#define GS_RMAP_BYTES        7u
#define GS_CRC_BYTES         4u
#define GS_RMAP_OWNER_MASK   ((1ull << 51) - 1)
#define GS_RMAP_STATE_SHIFT  51
#define GS_RMAP_STATE_MASK   (3ull << GS_RMAP_STATE_SHIFT)
#define GS_RMAP_FREE         (0ull << GS_RMAP_STATE_SHIFT)
#define GS_RMAP_RESERVED     (1ull << GS_RMAP_STATE_SHIFT)
#define GS_RMAP_LIVE         (2ull << GS_RMAP_STATE_SHIFT)
#define GS_RMAP_DIRTY        (3ull << GS_RMAP_STATE_SHIFT)
#define GS_RMAP_PIN          (1ull << 53)
#define GS_RMAP_BAD          (1ull << 54)
#define GS_RMAP_ZSTD         (1ull << 55)

_Static_assert (GS_RMAP_ZSTD < (1ull << (8 * GS_RMAP_BYTES)),
                "the reverse map word fits its bytes");

/* A page read back from a backing whose checksum does not match. */
#define GS_EINTEGRITY EBADMSG

enum gs_fault_kind { GS_FAULT_READ, GS_FAULT_WRITE, GS_FAULT_ENOSPC,
                     GS_FAULT_KINDS };

struct gs_backing;
struct gs_backing_info;

/* The kind of storage under a backing: everything above (allocator,
 * reverse map, writeback, drain, checksums, encryption) is the same for
 * every kind, which only moves bytes.  A file or block device
 * (backing.c: io_uring, pread/pwrite as fallback) or a remote NBD export
 * (backing_nbd.c: libnbd).
 *
 * run:   perform the @n prepared ops of @ios whose res is 0 and set each
 *        res (0, or -errno; -ENOTCONN: the storage could not be reached
 *        in time, which is not a fault of the storage).  Context: may
 *        sleep; any thread.
 * wipe:  make [@first, @first + @n) of physical slots unreadable (punch,
 *        trim or zero).  Context: may sleep.  Return: 0 or -errno.
 * same:  is @b the same storage as @a (both of this kind)?
 * info:  fill @o's kind-specific figures (remote_state, ...).
 * close: free the kind's state (b->priv), closing what it opened.
 */
struct gs_backing_ops {
  int (*run) (struct gs_backing *b, struct gs_io *ios, size_t n);
  int (*wipe) (struct gs_backing *b, uint64_t first, uint64_t n);
  bool (*same) (const struct gs_backing *a, const struct gs_backing *b);
  void (*info) (struct gs_backing *b, struct gs_backing_info *o);
  void (*close) (struct gs_backing *b);
};

/* Device-wide settings a kind of backing may need (remote ones). */
struct gs_backing_params {
  bool punch;                 /* give freed space back */
  const char *tls_psk;        /* PSK file, or NULL */
  const char *tls_username;   /* or NULL */
  const char *tls_certificates; /* directory, or NULL */
  unsigned remote_timeout;    /* seconds a remote may be unreachable */
};

struct gs_backing {
  const struct gs_backing_ops *ops;
  void *priv;                 /* the kind's own state */
  unsigned id;                /* index in the device's backing table, 0..254 */
  char path[PATH_MAX];
  int fd;                     /* O_DIRECT */
  bool block_device;
  dev_t st_dev;               /* identity: (st_dev, st_ino), or st_rdev */
  ino_t st_ino;               /* for a block device; the same file under */
  dev_t st_rdev;              /* two names is one backing */
  bool punch;                 /* wipe freed ranges by punching them out of
                               * the file (else zero them in place) */
  bool created;               /* gs_backing_open created the file */
  struct gs_crypt *crypt;     /* its key (encrypt=true), or NULL */
  uint64_t crypt_id;          /* a number no other key had */
  uint64_t nslots;

  pthread_mutex_t lock;       /* protects rmap, crc, cursor, faults and
                               * reserved */
  pthread_cond_t settled;     /* signalled when reserved drops to 0 */
  unsigned char *rmap;        /* nslots * GS_RMAP_BYTES */
  uint32_t *crc;              /* nslots checksums */
  uint64_t reserved;          /* RESERVED slots (under lock) */
  bool scrub;                 /* wipe freed slots before reuse */
  uint64_t dirty;             /* DIRTY slots (under lock; read atomically) */
  uint64_t *dirty_q;          /* where some of them are (a hint), */
  unsigned dirty_n;           /* how many the queue holds, */
  bool dirty_lost;            /* and whether it overflowed (then a scrub
                               * scans the whole map) */
  pthread_mutex_t scrub_lock; /* one scrub of this backing at a time */
  uint64_t scrubbed;          /* atomic: slots wiped */
  uint64_t cursor;            /* next-fit allocation cursor */
  struct { bool on; uint64_t first, last; } fault[GS_FAULT_KINDS];

  unsigned refs;              /* holders of a pointer found by path, who
                               * may not see it removed (device's
                               * backing_lock) */
  unsigned scrub_refs;        /* scrubs under way without the lock, which
                               * a detach waits for (backing_lock) */
  uint64_t used;              /* atomic: RESERVED and LIVE physical slots */
  bool healthy;               /* atomic: false after a write error */
  bool offline;               /* atomic: unreachable for now (a remote
                               * reconnecting): takes no new pages */
  uint64_t offline_since;     /* atomic: CLOCK_MONOTONIC µs it went */
  bool draining;              /* atomic: no new allocations */
  uint64_t reads, writes, read_errors, write_errors;  /* atomic */
};

/* gs_backing_new - allocate a backing of @nslots physical slots run by
 * @ops (with its state @priv), its maps empty and every slot FREE.
 * Context: any.  Return: the backing, or NULL (out of memory).
 */
struct gs_backing *gs_backing_new (const char *path, uint64_t nslots,
                                   unsigned id,
                                   const struct gs_backing_ops *ops,
                                   void *priv);

/* gs_backing_io - perform the @n ops of @ios prepared by gs_backing_prep
 * through @b's kind, and account for each (gs_backing_account).
 * Context: may sleep.
 * Return: 0 if every op succeeded, else the first op's error.
 */
int gs_backing_io (struct gs_backing *b, struct gs_io *ios, size_t n);

/* gs_backing_same - are @a and @b the same file or device?
 * Context: any.  Return: true or false.
 */
bool gs_backing_same (const struct gs_backing *a, const struct gs_backing *b);

/* gs_backing_close - close and free @b.
 * Context: no entry may point into @b.  Return: nothing.
 */
void gs_backing_close (struct gs_backing *b);

/* gs_backing_alloc - reserve a run of FREE, unpinned physical slots, at
 * most @n long, for the ghost slots @owners[0..] whose stored forms have
 * checksums @crcs[0..] (@zstd[0..]: zstd frames), as RESERVED.
 * Context: takes b->lock.
 * Return: the run's length (0 if @b is full, unhealthy or draining) and
 * *@first.
 */
uint64_t gs_backing_alloc (struct gs_backing *b, const uint64_t *owners,
                           const uint32_t *crcs, const bool *zstd,
                           uint64_t n, uint64_t *first);

/* gs_backing_commit_slot - RESERVED -> LIVE: an entry now points at @pslot.
 * Only the slot module calls it, as it stores that entry.
 * Context: caller holds the owner's cluster lock; takes b->lock.
 * Return: nothing.
 */
void gs_backing_commit_slot (struct gs_backing *b, uint64_t pslot);

/* gs_backing_release - RESERVED -> DIRTY (FREE when scrubbing is off): a
 * reservation that was not committed (the write failed or the page
 * changed meanwhile; it may have been written).
 * Context: takes b->lock.  Return: nothing.
 */
void gs_backing_release (struct gs_backing *b, uint64_t pslot);

/* gs_backing_free - LIVE -> DIRTY (FREE when scrubbing is off): the entry
 * that pointed at @pslot was replaced.  A pinned slot stays unallocatable
 * until unpinned.
 * Context: caller holds the owner's cluster lock; takes b->lock.
 * Return: nothing.
 */
void gs_backing_free (struct gs_backing *b, uint64_t pslot);

/* gs_backing_pin - pin LIVE physical slot @pslot for a mover about to read
 * it, and tell its owner, checksum and form.
 * Context: takes b->lock.
 * Return: true, or false if @pslot is not LIVE (nothing pinned).
 */
bool gs_backing_pin (struct gs_backing *b, uint64_t pslot, uint64_t *owner,
                     uint32_t *crc, bool *zstd);

/* gs_backing_unpin - drop the pin from gs_backing_pin.
 * Context: takes b->lock.  Return: nothing.
 */
void gs_backing_unpin (struct gs_backing *b, uint64_t pslot);

/* gs_backing_set_draining - stop (or resume) allocations on @b; stopping
 * also waits until every reservation on it is committed or released, so
 * that afterwards every page on @b is LIVE and none appears.
 * Context: takes b->lock; may sleep.  Return: nothing.
 */
void gs_backing_set_draining (struct gs_backing *b, bool draining);

/* gs_backing_scrub - wipe DIRTY physical slots (punch them out of a file,
 * or zero them on a block device) and make them FREE: all of them with
 * @all, else a batch of those queued.
 * Context: takes b->lock (not across the I/O) and one scrub at a time;
 * may sleep.
 * Return: slots made FREE (a slot whose wipe failed stays DIRTY).
 */
uint64_t gs_backing_scrub (struct gs_backing *b, bool all);

/* gs_backing_wipe_all - wipe the whole device (punch or zero every slot),
 * as detaching a backing does, so that nothing written is left readable.
 * Context: no slot of @b may be in use; may sleep.
 * Return: 0 or -errno.
 */
int gs_backing_wipe_all (struct gs_backing *b);

/* gs_backing_next_live - up to @max LIVE physical slots from @from on, in
 * physical order, with their owners, checksums and forms.
 * Context: takes b->lock.
 * Return: how many were found.
 */
size_t gs_backing_next_live (struct gs_backing *b, uint64_t from,
                             uint64_t *pslots, uint64_t *owners,
                             uint32_t *crcs, bool *zstd, size_t max);

/* gs_backing_slot_crc - the checksum recorded for LIVE slot @pslot.
 * Context: caller holds the owner's cluster lock.  Return: the crc32c.
 */
uint32_t gs_backing_slot_crc (struct gs_backing *b, uint64_t pslot);

/* gs_backing_mark_bad - note a checksum mismatch on @pslot's page.
 * Context: takes b->lock.
 * Return: true the first time for this page (report it), else false.
 */
bool gs_backing_mark_bad (struct gs_backing *b, uint64_t pslot);

/* gs_page_crc - the checksum of a 4 KiB stored form (crc32c).
 * Context: any.  Return: the checksum.
 */
uint32_t gs_page_crc (const void *page);

/* gs_backing_prep - fill @io for @n pages at @pslot, @buf 4 KiB aligned;
 * an injected fault sets io->res so that the op is not submitted.  A
 * write's pages are encrypted in place (their plaintext is gone).
 * Context: takes b->lock.  Return: nothing.
 */
void gs_backing_prep (struct gs_backing *b, struct gs_io *io, bool write,
                      void *buf, uint64_t pslot, uint32_t n);

/* gs_backing_encrypt - with @on, give @b a fresh random key: from then on
 * gs_backing_prep encrypts what is written and gs_backing_account
 * decrypts what was read (AES-256-XTS, the physical slot as tweak:
 * lib/crypt.h), and freed slots are wiped only when punch-holes asks.
 * Context: before @b is used.  Return: 0 or -errno (no key could be made
 * in locked memory).
 */
int gs_backing_encrypt (struct gs_backing *b, bool on);

/* gs_backing_account - count a finished op, marking @b unhealthy after a
 * failed write (not one that failed only because @b could not be reached,
 * -ENOTCONN); a read that succeeded is decrypted in place (a failure to
 * decrypt sets io->res).
 * Context: any.  Return: nothing.
 */
void gs_backing_account (struct gs_backing *b, struct gs_io *io);

/* gs_backing_read_page - read physical slot @pslot into the 4 KiB-aligned
 * @buf and check it against @crc.
 * Context: may sleep.
 * Return: 0, -EIO (the read failed) or -GS_EINTEGRITY (checksum mismatch).
 */
int gs_backing_read_page (struct gs_backing *b, uint64_t pslot, void *buf,
                          uint32_t crc);

/* gs_backing_check_pages - after a batched read of @n pages at @buf, check
 * each against its checksum in @crcs; a mismatch sets @res[k] to
 * -GS_EINTEGRITY (others keep theirs).
 * Context: any.  Return: nothing.
 */
void gs_backing_check_pages (const void *buf, const uint32_t *crcs, size_t n,
                             int *res);

#endif /* GHOSTSWAP_BACKING_IMPL_H */
