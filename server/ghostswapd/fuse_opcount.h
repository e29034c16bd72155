/* ghostswapd: FUSE requests counted by kind, per transport.
 *
 * One table (FUSE_OPCOUNT_KINDS) lists the kinds counted; the counters,
 * their names in the stats file and the opcode-to-index map all come from
 * it.  Requests of any other opcode count as `other'. */
#ifndef GHOSTSWAPD_FUSE_OPCOUNT_H
#define GHOSTSWAPD_FUSE_OPCOUNT_H

#include <linux/fuse.h>
#include <stdint.h>

/* X(opcode, name in the stats file) */
#define FUSE_OPCOUNT_KINDS(X)                   \
  X (FUSE_INIT, init)                           \
  X (FUSE_LOOKUP, lookup)                       \
  X (FUSE_FORGET, forget)                       \
  X (FUSE_BATCH_FORGET, batch_forget)           \
  X (FUSE_GETATTR, getattr)                     \
  X (FUSE_SETATTR, setattr)                     \
  X (FUSE_OPEN, open)                           \
  X (FUSE_RELEASE, release)                     \
  X (FUSE_READ, read)                           \
  X (FUSE_WRITE, write)                         \
  X (FUSE_FLUSH, flush)                         \
  X (FUSE_FSYNC, fsync)                         \
  X (FUSE_FALLOCATE, fallocate)                 \
  X (FUSE_STATFS, statfs)                       \
  X (FUSE_OPENDIR, opendir)                     \
  X (FUSE_READDIR, readdir)                     \
  X (FUSE_RELEASEDIR, releasedir)               \
  X (FUSE_INTERRUPT, interrupt)

enum fuse_opcount_index {
#define FUSE_OPCOUNT_ENUM(op, name) FUSE_OPCOUNT_##name,
  FUSE_OPCOUNT_KINDS (FUSE_OPCOUNT_ENUM)
#undef FUSE_OPCOUNT_ENUM
  FUSE_OPCOUNT_other,
  FUSE_OPCOUNT_N                /* the number of counters */
};

/* fuse_opcount_index - the counter of requests with @opcode.
 * Context: any.  Return: an index below FUSE_OPCOUNT_N.
 */
static inline unsigned
fuse_opcount_index (uint32_t opcode)
{
  switch (opcode) {
#define FUSE_OPCOUNT_CASE(op, name) case op: return FUSE_OPCOUNT_##name;
  FUSE_OPCOUNT_KINDS (FUSE_OPCOUNT_CASE)
#undef FUSE_OPCOUNT_CASE
  default: return FUSE_OPCOUNT_other;
  }
}

/* fuse_opcount_name - the name of counter @i in the stats file.
 * Context: any.  Return: a static string.
 */
static inline const char *
fuse_opcount_name (unsigned i)
{
  static const char *const names[FUSE_OPCOUNT_N] = {
#define FUSE_OPCOUNT_NAME(op, name) #name,
    FUSE_OPCOUNT_KINDS (FUSE_OPCOUNT_NAME)
#undef FUSE_OPCOUNT_NAME
    "other",
  };
  return i < FUSE_OPCOUNT_N ? names[i] : "other";
}

#endif /* GHOSTSWAPD_FUSE_OPCOUNT_H */
