/* ghostswapd: the FUSE-over-io_uring uAPI that Debian 12's kernel headers
 * (linux-libc-dev 6.1, FUSE protocol 7.38) lack.
 *
 * Taken from Linux 6.18's include/uapi/linux/fuse.h (the ring came with
 * FUSE protocol 7.42, Linux 6.14); the kernel side is fs/fuse/dev_uring.c.
 * Only what ghostswapd uses; every definition is
 * skipped when the system's <linux/fuse.h> already has it, so newer
 * headers win.  The layout is the kernel's ABI: the static assertions
 * below hold it. */
#ifndef GHOSTSWAPD_FUSE_URING_UAPI_H
#define GHOSTSWAPD_FUSE_URING_UAPI_H

#include <assert.h>
#include <linux/fuse.h>
#include <stdint.h>

/* INIT flag (bit 41, so bit 9 of flags2): offered by the kernel when the
 * fuse module's enable_uring parameter is on; set in the reply by a
 * server that will register ring entries. */
#ifndef FUSE_OVER_IO_URING
#define FUSE_OVER_IO_URING (1ULL << 41)
#endif

#if FUSE_KERNEL_MINOR_VERSION < 42

#define FUSE_URING_IN_OUT_HEADER_SZ 128
#define FUSE_URING_OP_IN_OUT_SZ 128

/* Part of struct fuse_uring_req_header: written by the kernel with each
 * request, read back with the reply. */
struct fuse_uring_ent_in_out {
  uint64_t flags;
  uint64_t commit_id;           /* the request's unique: echo it in the
                                 * COMMIT_AND_FETCH command */
  uint32_t payload_sz;          /* bytes valid in the payload buffer */
  uint32_t padding;
  uint64_t reserved;
};

/* The header buffer of a ring entry (iov[0] of REGISTER). */
struct fuse_uring_req_header {
  char in_out[FUSE_URING_IN_OUT_HEADER_SZ]; /* fuse_in_header on fetch,
                                             * fuse_out_header on commit */
  char op_in[FUSE_URING_OP_IN_OUT_SZ];      /* the request's first argument
                                             * (the per-opcode header) */
  struct fuse_uring_ent_in_out ring_ent_in_out;
};

/* sqe->cmd_op of an IORING_OP_URING_CMD on /dev/fuse. */
enum fuse_uring_cmd {
  FUSE_IO_URING_CMD_INVALID = 0,
  FUSE_IO_URING_CMD_REGISTER = 1,          /* hand the kernel an entry */
  FUSE_IO_URING_CMD_COMMIT_AND_FETCH = 2,  /* answer, and take the next */
};

/* In the 80-byte command area of a 128-byte SQE. */
struct fuse_uring_cmd_req {
  uint64_t flags;
  uint64_t commit_id;
  uint16_t qid;                 /* the queue: one per possible CPU */
  uint8_t padding[6];
};

#endif /* FUSE_KERNEL_MINOR_VERSION < 42 */

static_assert (sizeof (struct fuse_uring_ent_in_out) == 32,
               "fuse_uring_ent_in_out is 32 bytes in the kernel's ABI");
static_assert (sizeof (struct fuse_uring_req_header) == 288,
               "fuse_uring_req_header is 288 bytes in the kernel's ABI");
static_assert (sizeof (struct fuse_uring_cmd_req) == 24,
               "fuse_uring_cmd_req is 24 bytes in the kernel's ABI");

#endif /* GHOSTSWAPD_FUSE_URING_UAPI_H */
