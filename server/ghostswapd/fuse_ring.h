/* ghostswapd: the FUSE-over-io_uring queues.
 *
 * The kernel (fs/fuse/dev_uring.c) keeps one queue per possible CPU and
 * hands a request to the queue of the CPU that issued it.  Here each
 * queue has threads_per_queue threads; each thread owns an
 * io_uring of 128-byte SQEs and one ring entry (a header buffer and a
 * payload buffer) registered with IORING_OP_URING_CMD on the /dev/fuse
 * descriptor.  A completion means a request sits in the entry's buffers:
 * the thread lays it out as /dev/fuse would have delivered it, has
 * libfuse dispatch it (the same ghostfs operations as the other
 * transport), takes the reply libfuse writes (fuse_ring_capture, called
 * from the session's writev hook) into the entry, and sends it back with
 * COMMIT_AND_FETCH, which also waits for the next request.
 *
 * Life cycle: fuse_ring_create starts the threads, which set up their
 * io_uring and buffers and report; nothing is registered until
 * fuse_ring_go, called once the INIT reply carrying FUSE_OVER_IO_URING
 * has been written (the kernel refuses ring commands before).  The
 * kernel switches requests to the ring only when every queue has an
 * entry; if a registration fails it falls back to /dev/fuse by itself
 * (fuse_ring_failed then says why).  fuse_ring_destroy stops and joins
 * the threads. */
#ifndef GHOSTSWAPD_FUSE_RING_H
#define GHOSTSWAPD_FUSE_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "fuse_opcount.h"

struct fuse_session;
struct fuse_ring;

/* Threads (each with one entry) per kernel queue, by default. */
#define FUSE_RING_THREADS_PER_QUEUE 2

/* Each entry's payload buffer: enough for libfuse 3.14's max_write and
 * max_pages (1 MiB); the INIT reply is checked against it. */
#define FUSE_RING_PAYLOAD (1024u * 1024u)

struct fuse_ring_options {
  unsigned threads_per_queue;   /* 0: FUSE_RING_THREADS_PER_QUEUE */
};

/* fuse_ring_possible_cpus - the number of possible CPUs, so of kernel
 * queues (from /sys/devices/system/cpu/possible).
 * Context: may sleep.  Return: the count, or -errno.
 */
int fuse_ring_possible_cpus (void);

/* fuse_ring_create - start the queue threads for session @se on the
 * /dev/fuse descriptor @fd and wait until each has its io_uring and
 * buffers; nothing is registered yet.
 * Context: may sleep; before the session's loop runs.
 * Return: 0 and *@ringp, or -errno with the reason in @err.
 */
int fuse_ring_create (struct fuse_session *se, int fd,
                      const struct fuse_ring_options *opts,
                      struct fuse_ring **ringp, char *err, size_t errlen);

/* fuse_ring_queues - how many kernel queues @ring serves.
 * Context: any.  Return: the count.
 */
unsigned fuse_ring_queues (const struct fuse_ring *ring);

/* fuse_ring_threads_per_queue - the threads serving each queue.
 * Context: any.  Return: the count.
 */
unsigned fuse_ring_threads_per_queue (const struct fuse_ring *ring);

/* fuse_ring_go - register every thread's entry (the INIT reply with
 * FUSE_OVER_IO_URING has been written).
 * Context: any; does not sleep.  Return: nothing.
 */
void fuse_ring_go (struct fuse_ring *ring);

/* fuse_ring_failed - has a registration failed (so that the kernel
 * serves over /dev/fuse)?  The reason goes to @why.
 * Context: any.  Return: true if it has.
 */
bool fuse_ring_failed (struct fuse_ring *ring, char *why, size_t len);

/* fuse_ring_capture - if the calling thread is a ring thread answering
 * the request whose reply is @iov (@count pieces, the fuse_out_header
 * first), copy the reply into its entry instead of writing it to
 * /dev/fuse.
 * Context: the session's writev hook.
 * Return: true and the reply's length in *@len if it was taken.
 */
bool fuse_ring_capture (const struct iovec *iov, int count, ssize_t *len);

/* fuse_ring_served - requests of kind @i served over the ring so far.
 * Context: any.  Return: the count.
 */
uint64_t fuse_ring_served (const struct fuse_ring *ring, unsigned i);

/* fuse_ring_stop - stop the threads (within about 200 ms of now) and
 * join them; the counters stay readable.  Call it once the mount is
 * gone, before the session is destroyed: a thread may be dispatching
 * into it.
 * Context: may sleep.  Return: nothing.
 */
void fuse_ring_stop (struct fuse_ring *ring);

/* fuse_ring_destroy - fuse_ring_stop, then free @ring (NULL: nothing).
 * Context: may sleep.  Return: nothing.
 */
void fuse_ring_destroy (struct fuse_ring *ring);

#endif /* GHOSTSWAPD_FUSE_RING_H */
