/* ghostswap: the device's backings: attach, detach, list, pick. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sys/stat.h>

#include "backing_file.h"
#include "backing_nbd.h"
#include "backing_open.h"
#include "cleanup.h"
#include "errmsg.h"
#include "backing_list.h"

/* The backing attached as @path.  Context: backing_lock held. */
static struct gs_backing *
find (struct gs_device *dev, const char *path)
{
  unsigned i;

  for (i = 0; i < GS_MAX_BACKINGS; i++)
    if (dev->backing[i] && strcmp (dev->backing[i]->path, path) == 0)
      return dev->backing[i];
  return NULL;
}

/* Close @b, which never took a page, removing its file if opening it
 * created it.  Context: @b is in no table. */
static void
discard (struct gs_backing *b)
{
  if (b->created)
    gs_backing_file_remove (b->path, b->st_dev, b->st_ino);
  gs_backing_close (b);
}

/* The attached backing that @path names, if any: a second open of it
 * fails (O_EXCL on a device, the lock on a file) before its identity can
 * be compared.  Only for the message.  Context: backing_lock held. */
static struct gs_backing *
find_same (struct gs_device *dev, const char *path)
{
  struct stat st;
  unsigned i;

  if (lstat (path, &st) < 0)
    return NULL;
  for (i = 0; i < GS_MAX_BACKINGS; i++) {
    struct gs_backing *b = dev->backing[i];

    if (b && S_ISBLK (st.st_mode) && b->block_device
        && b->st_rdev == st.st_rdev)
      return b;
    if (b && S_ISREG (st.st_mode) && !b->block_device
        && b->st_dev == st.st_dev && b->st_ino == st.st_ino)
      return b;
  }
  return NULL;
}

/* gs_backing_add - see backing.h. */
int
gs_backing_add (struct gs_device *dev, const char *path, uint64_t size,
                char *err, size_t errlen)
{
  struct gs_backing_params pm = {
    .punch = dev->cfg.punch_holes,
    .tls_psk = dev->cfg.tls_psk,
    .tls_username = dev->cfg.tls_username,
    .tls_certificates = dev->cfg.tls_certificates,
    .remote_timeout = dev->cfg.remote_timeout,
  };
  struct gs_backing *b;
  unsigned id;
  int r;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&dev->backing_lock);
    if (find (dev, path))
      return gs_errmsg (err, errlen, -EEXIST, "backing: %s is already attached",
                   path);
    for (id = 0; id < GS_MAX_BACKINGS && dev->backing[id]; id++)
      ;
    if (id == GS_MAX_BACKINGS)
      return gs_errmsg (err, errlen, -ENOSPC, "backing: %s: already %d backings",
                   path, GS_MAX_BACKINGS);
  }
  /* Open outside the lock (it may create and size a file); the id is
   * claimed again below. */
  if (gs_backing_is_remote (path))
    r = size != 0
      ? gs_errmsg (err, errlen, -EINVAL, "backing: %s: a remote backing has "
                   "its export's size: backing-size (or a size) does not "
                   "apply", path)
      : gs_backing_nbd_attach (path, id, &pm, &b, err, errlen);
  else
    r = gs_backing_file_attach (path, size, id, &pm, &b, err, errlen);
  if (r == -EBUSY) {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&dev->backing_lock);
    struct gs_backing *o = find_same (dev, path);

    if (o)
      return gs_errmsg (err, errlen, -EEXIST,
                        "backing: %s is already attached (as %s)", path,
                        o->path);
  }
  if (r < 0)
    return r;
  r = gs_backing_encrypt (b, dev->cfg.encrypt);
  if (r < 0) {
    discard (b);
    return gs_errmsg (err, errlen, r, "backing: %s: cannot make an "
                      "encryption key in locked memory: %s", path,
                      strerrordesc_np (-r));
  }
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&dev->backing_lock);
    unsigned i;

    for (i = 0; i < GS_MAX_BACKINGS; i++) {
      struct gs_backing *o = dev->backing[i];
      if (o && (strcmp (o->path, path) == 0 || gs_backing_same (o, b))) {
        r = gs_errmsg (err, errlen, -EEXIST,
                       "backing: %s is already attached (as %s)", path,
                       o->path);
        discard (b);
        return r;
      }
    }
    for (id = 0; id < GS_MAX_BACKINGS && dev->backing[id]; id++)
      ;
    if (id == GS_MAX_BACKINGS) {
      discard (b);
      return gs_errmsg (err, errlen, -ENOSPC, "backing: %s: already %d backings",
                   path, GS_MAX_BACKINGS);
    }
    b->id = id;
    __atomic_store_n (&dev->backing[id], b, __ATOMIC_RELEASE);
    __atomic_add_fetch (&dev->backing_count, 1, __ATOMIC_RELAXED);
  }
  return 0;
}

/* Detach @b if nothing needs it but @own_refs references the caller
 * holds.  Context: backing_lock held. */
static int
detach_locked (struct gs_device *dev, struct gs_backing *b, unsigned own_refs,
               char *err, size_t errlen)
{
  uint64_t used = __atomic_load_n (&b->used, __ATOMIC_ACQUIRE);

  if (used > 0)
    return gs_errmsg (err, errlen, -EBUSY,
                      "backing: %s still holds %llu live pages: drain it "
                      "first (ghostswapctl backing drain %s)", b->path,
                      (unsigned long long) used, b->path);
  /* A scrub of it is brief: wait for it rather than refuse.  The wait
   * lets go of backing_lock, so hold a reference meanwhile: another
   * detach (a migration's end racing a "backing remove") is then refused
   * instead of freeing @b under us. */
  if (b->scrub_refs > 0) {
    b->refs++;
    while (b->scrub_refs > 0)
      pthread_cond_wait (&dev->backing_cond, &dev->backing_lock);
    b->refs--;
  }
  /* A drain detaches its own source (own_refs > 0) while it still takes
   * no new pages. */
  if (b->refs > own_refs
      || (own_refs == 0 && __atomic_load_n (&b->draining, __ATOMIC_RELAXED)))
    return gs_errmsg (err, errlen, -EBUSY,
                      "backing: %s is in use by a drain, migration or "
                      "relocation", b->path);
  dev->backing[b->id] = NULL;
  __atomic_sub_fetch (&dev->backing_count, 1, __ATOMIC_RELAXED);
  return 0;
}

/* Close a detached backing, wiping every slot freed on it first: nothing
 * written through this device stays readable in it. */
static void
close_detached (struct gs_backing *b)
{
  gs_backing_scrub (b, true);
  gs_backing_close (b);
}

/* gs_backing_detach - see backing_list.h. */
int
gs_backing_detach (struct gs_device *dev, struct gs_backing *b,
                   unsigned own_refs, char *err, size_t errlen)
{
  int r;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&dev->backing_lock);
    r = detach_locked (dev, b, own_refs, err, errlen);
  }
  if (r == 0)
    close_detached (b);
  return r;
}

/* gs_backing_remove - see backing.h. */
int
gs_backing_remove (struct gs_device *dev, const char *path,
                   char *err, size_t errlen)
{
  struct gs_backing *b;
  int r;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&dev->backing_lock);
    b = find (dev, path);
    if (!b)
      return gs_errmsg (err, errlen, -ENOENT, "backing: %s is not attached",
                        path);
    r = detach_locked (dev, b, 0, err, errlen);
  }
  if (r == 0)
    close_detached (b);
  return r;
}

/* gs_backing_withdraw - see backing.h. */
int
gs_backing_withdraw (struct gs_device *dev, const char *path,
                     char *err, size_t errlen)
{
  struct gs_backing *b;
  int r;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&dev->backing_lock);
    b = find (dev, path);
    if (!b)
      return gs_errmsg (err, errlen, -ENOENT, "backing: %s is not attached",
                        path);
    r = detach_locked (dev, b, 0, err, errlen);
  }
  if (r < 0)
    return r;
  if (__atomic_load_n (&b->writes, __ATOMIC_RELAXED) == 0)
    discard (b);
  else
    close_detached (b);
  return 0;
}

/* gs_backing_get - see backing_list.h. */
struct gs_backing *
gs_backing_get (struct gs_device *dev, const char *path)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&dev->backing_lock);
  struct gs_backing *b = find (dev, path);

  if (b)
    b->refs++;
  return b;
}

/* gs_backing_put - see backing_list.h. */
void
gs_backing_put (struct gs_device *dev, struct gs_backing *b)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&dev->backing_lock);

  if (b)
    b->refs--;
}

/* gs_backing_list - see backing.h. */
unsigned
gs_backing_list (struct gs_device *dev, struct gs_backing_info *out,
                 unsigned max)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&dev->backing_lock);
  unsigned i, n = 0;

  for (i = 0; i < GS_MAX_BACKINGS; i++) {
    struct gs_backing *b = dev->backing[i];
    struct gs_backing_info *o;

    if (!b)
      continue;
    if (n < max) {
      o = &out[n];
      memset (o, 0, sizeof *o);
      strcpy (o->path, b->path);
      o->id = b->id;
      o->slots = b->nslots;
      o->size = b->nslots * GS_SLOT_SIZE;
      o->used = __atomic_load_n (&b->used, __ATOMIC_RELAXED);
      o->healthy = __atomic_load_n (&b->healthy, __ATOMIC_RELAXED);
      o->draining = __atomic_load_n (&b->draining, __ATOMIC_RELAXED);
      o->block_device = b->block_device;
      o->reads = __atomic_load_n (&b->reads, __ATOMIC_RELAXED);
      o->writes = __atomic_load_n (&b->writes, __ATOMIC_RELAXED);
      o->read_errors = __atomic_load_n (&b->read_errors, __ATOMIC_RELAXED);
      o->write_errors = __atomic_load_n (&b->write_errors, __ATOMIC_RELAXED);
      b->ops->info (b, o);
    }
    n++;
  }
  return n;
}

static bool
has_room (const struct gs_backing *b)
{
  return __atomic_load_n (&b->healthy, __ATOMIC_RELAXED)
    && !__atomic_load_n (&b->draining, __ATOMIC_RELAXED)
    && !__atomic_load_n (&b->offline, __ATOMIC_RELAXED)
    && __atomic_load_n (&b->used, __ATOMIC_RELAXED) < b->nslots;
}

/* gs_backing_any_room - see backing_list.h. */
bool
gs_backing_any_room (struct gs_device *dev)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&dev->backing_lock);
  unsigned i;

  for (i = 0; i < GS_MAX_BACKINGS; i++)
    if (dev->backing[i] && has_room (dev->backing[i]))
      return true;
  return false;
}

/* gs_backing_any_offline - see backing_list.h. */
bool
gs_backing_any_offline (struct gs_device *dev)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&dev->backing_lock);
  struct timespec ts;
  uint64_t now, limit = (uint64_t) dev->cfg.remote_timeout * 1000000u;
  unsigned i;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  now = (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
  for (i = 0; i < GS_MAX_BACKINGS; i++) {
    struct gs_backing *b = dev->backing[i];
    if (b && __atomic_load_n (&b->offline, __ATOMIC_ACQUIRE)
        && now - __atomic_load_n (&b->offline_since, __ATOMIC_RELAXED) < limit
        && __atomic_load_n (&b->healthy, __ATOMIC_RELAXED)
        && !__atomic_load_n (&b->draining, __ATOMIC_RELAXED)
        && __atomic_load_n (&b->used, __ATOMIC_RELAXED) < b->nslots)
      return true;
  }
  return false;
}

/* gs_backing_reserve - see backing_list.h. */
struct gs_backing *
gs_backing_reserve (struct gs_device *dev, const struct gs_backing *exclude,
                    struct gs_backing *only, const uint64_t *owners,
                    const uint32_t *crcs, const bool *zstd, uint64_t n,
                    uint64_t *first, uint64_t *got)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&dev->backing_lock);
  unsigned k;

  if (only) {
    *got = gs_backing_alloc (only, owners, crcs, zstd, n, first);
    return *got > 0 ? only : NULL;
  }
  /* Round robin over backings with room, so that writeback spreads. */
  for (k = 0; k < GS_MAX_BACKINGS; k++) {
    unsigned id = (dev->next_backing + k) % GS_MAX_BACKINGS;
    struct gs_backing *b = dev->backing[id];

    if (!b || b == exclude || !has_room (b))
      continue;
    *got = gs_backing_alloc (b, owners, crcs, zstd, n, first);
    if (*got > 0) {
      dev->next_backing = id + 1;
      return b;
    }
  }
  return NULL;
}

/* gs_fault_set - see backing.h. */
int
gs_fault_set (struct gs_device *dev, const char *path, const char *kind,
              uint64_t first, uint64_t last)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&dev->backing_lock);
  static const char *const kinds[GS_FAULT_KINDS] = {
    [GS_FAULT_READ] = "read", [GS_FAULT_WRITE] = "write",
    [GS_FAULT_ENOSPC] = "enospc",
  };
  struct gs_backing *b;
  int k;

  if (!dev->cfg.fault_injection)
    return -EPERM;
  b = find (dev, path);
  if (!b)
    return -ENOENT;
  if (strcmp (kind, "off") == 0) {
    pthread_mutex_lock (&b->lock);
    for (k = 0; k < GS_FAULT_KINDS; k++)
      b->fault[k].on = false;
    pthread_mutex_unlock (&b->lock);
    /* Clearing faults also lets the backing take writes again. */
    __atomic_store_n (&b->healthy, true, __ATOMIC_RELAXED);
    return 0;
  }
  for (k = 0; k < GS_FAULT_KINDS; k++)
    if (strcmp (kind, kinds[k]) == 0)
      break;
  if (k == GS_FAULT_KINDS || first > last)
    return -EINVAL;
  pthread_mutex_lock (&b->lock);
  b->fault[k].on = true;
  b->fault[k].first = first;
  b->fault[k].last = last;
  pthread_mutex_unlock (&b->lock);
  return 0;
}

/* gs_backings_scrub - see backing_list.h. */
uint64_t
gs_backings_scrub (struct gs_device *dev)
{
  struct gs_backing *held[GS_MAX_BACKINGS];
  unsigned i, n = 0;
  uint64_t done = 0;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&dev->backing_lock);
    for (i = 0; i < GS_MAX_BACKINGS; i++) {
      struct gs_backing *b = dev->backing[i];
      if (b && __atomic_load_n (&b->dirty, __ATOMIC_RELAXED) > 0) {
        b->scrub_refs++;      /* not removed while we scrub it */
        held[n++] = b;
      }
    }
  }
  for (i = 0; i < n; i++)
    done += gs_backing_scrub (held[i], false);
  if (n > 0) {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&dev->backing_lock);
    for (i = 0; i < n; i++)
      held[i]->scrub_refs--;
    pthread_cond_broadcast (&dev->backing_cond);
  }
  return done;
}

/* gs_backings_close_all - see backing_list.h. */
void
gs_backings_close_all (struct gs_device *dev)
{
  unsigned i;

  for (i = 0; i < GS_MAX_BACKINGS; i++) {
    gs_backing_close (dev->backing[i]);
    dev->backing[i] = NULL;
  }
}
