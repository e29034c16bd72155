/* ghostswap: io_uring with one ring per thread. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include <liburing.h>

#include "uring.h"

#define RING_DEPTH 64

static pthread_key_t ring_key;
static pthread_once_t ring_once = PTHREAD_ONCE_INIT;

static void
ring_free (void *p)
{
  struct io_uring *ring = p;

  io_uring_queue_exit (ring);
  free (ring);
}

static void
ring_key_make (void)
{
  pthread_key_create (&ring_key, ring_free);
}

static struct io_uring *
get_ring (int *err)
{
  struct io_uring *ring;
  int r;

  pthread_once (&ring_once, ring_key_make);
  ring = pthread_getspecific (ring_key);
  if (ring)
    return ring;
  ring = calloc (1, sizeof *ring);
  if (!ring) {
    *err = -ENOMEM;
    return NULL;
  }
  r = io_uring_queue_init (RING_DEPTH, ring, 0);
  if (r < 0) {
    free (ring);
    *err = r;
    return NULL;
  }
  pthread_setspecific (ring_key, ring);
  return ring;
}

/* gs_uring_run - see uring.h. */
int
gs_uring_run (struct gs_io *ios, size_t n)
{
  struct io_uring *ring;
  size_t next = 0, inflight = 0, i;
  int err = 0, first = 0;

  ring = get_ring (&err);
  if (!ring)
    return err;
  while (next < n || inflight > 0) {
    struct io_uring_cqe *cqe;
    int r;

    while (next < n && inflight < RING_DEPTH) {
      struct gs_io *io = &ios[next];
      struct io_uring_sqe *sqe;

      if (io->res != 0) {       /* failed before submission */
        next++;
        continue;
      }
      sqe = io_uring_get_sqe (ring);
      if (!sqe)
        break;
      if (io->write)
        io_uring_prep_write (sqe, io->fd, io->buf, io->len, io->offset);
      else
        io_uring_prep_read (sqe, io->fd, io->buf, io->len, io->offset);
      io_uring_sqe_set_data64 (sqe, next);
      next++;
      inflight++;
    }
    if (inflight == 0)
      break;
    r = io_uring_submit_and_wait (ring, 1);
    if (r < 0 && r != -EINTR) {
      /* Nothing more can be submitted: fail what was not. */
      for (i = next; i < n; i++)
        if (ios[i].res == 0)
          ios[i].res = r;
      next = n;
    }
    while (inflight > 0 && io_uring_peek_cqe (ring, &cqe) == 0) {
      struct gs_io *io = &ios[io_uring_cqe_get_data64 (cqe)];

      if (cqe->res < 0)
        io->res = cqe->res;
      else if ((uint32_t) cqe->res != io->len)
        io->res = -EIO;         /* short transfer: treat as an error */
      io_uring_cqe_seen (ring, cqe);
      inflight--;
    }
  }
  for (i = 0; i < n; i++)
    if (ios[i].res != 0 && first == 0)
      first = ios[i].res;
  return first;
}
