/* Backing I/O when the kernel refuses io_uring from the start: a seccomp
 * filter makes io_uring_setup fail (ENOSYS, as Docker's default profile
 * does, or EPERM, as kernel.io_uring_disabled=2 does) before the device
 * exists.  Pages written through a small ram-limit go to the backing file
 * (the writers' direct reclaim and gs_writeback), are rewritten in part,
 * and a drain brings them back into RAM; every byte must read back as the
 * shadow at each step.
 *
 * Regression test for issue 7, defect 2: gs_uring_run used to fail the
 * batch without setting each op's result, so writeback switched slots to
 * backing pages that were never written (they read back as zeroes).
 *
 *   test-uring-blocked enosys|eperm
 */
#include "backing-workload.h"

#define DEV_SLOTS 6144u             /* 24 MiB */
#define RAM_LIMIT (1024u * 1024)

int
main (int argc, char **argv)
{
  struct bw w = { 0 };
  struct gs_stats st;
  int err;

  TEST_INIT (argc, argv);
  CHECKF (argc == 2 && (strcmp (argv[1], "enosys") == 0
                        || strcmp (argv[1], "eperm") == 0),
          "usage: %s enosys|eperm", argv[0]);
  err = strcmp (argv[1], "enosys") == 0 ? ENOSYS : EPERM;
  w.seed = test_seed ();
  bw_dir_make ();

  /* Before any engine thread or ring exists: every thread inherits it. */
  bw_block_uring (err, false, false);

  bw_create (&w, (uint64_t) DEV_SLOTS * PAGE, RAM_LIMIT);
  bw_backing_add (w.dev, (uint64_t) DEV_SLOTS * PAGE);
  CHECK_OK (gs_device_start (w.dev));

  /* Fill the device through 1 MiB of RAM: most pages must go to backing. */
  bw_write_round (&w, 0, DEV_SLOTS, DEV_SLOTS * 2);
  CHECK (gs_writeback (w.dev, 0) >= 0);
  st = bw_stats (&w);
  fprintf (stderr, "%s: after writing: %" PRIu64 " slots on backing, %"
           PRIu64 " in RAM, %" PRIu64 " pages written back\n", argv[0],
           st.slots_backing, st.slots_ram, st.writeback_pages);
  CHECKF (st.slots_backing > DEV_SLOTS / 4,
          "only %" PRIu64 " slots on backing", st.slots_backing);
  bw_verify (&w, "after writeback");

  /* Rewrite a part (partial writes read-modify-write backing pages). */
  bw_write_round (&w, 0, DEV_SLOTS, DEV_SLOTS / 2);
  CHECK (gs_writeback (w.dev, 0) >= 0);
  bw_verify (&w, "after rewrites");

  /* The drain reads the backing in batches and re-homes into RAM. */
  bw_drain_to_ram (&w);
  st = bw_stats (&w);
  CHECKF (st.slots_backing == 0, "%" PRIu64 " slots left on backing",
          st.slots_backing);
  bw_verify (&w, "after the drain");

  /* The fallback did the work, and says why. */
  CHECKF (gs_backing_io_check () == -err, "gs_backing_io_check: %d",
          gs_backing_io_check ());
  fprintf (stderr, "%s: io_uring rings %" PRIu64 ", failures %" PRIu64
           ", fallback batches %" PRIu64 ", last error %" PRIu64 "\n",
           argv[0], st.io_uring_rings, st.io_uring_failures,
           st.io_uring_fallback_batches, st.io_uring_last_error);
  CHECK (st.io_uring_rings == 0);
  CHECK (st.io_uring_failures >= 1);
  CHECK (st.io_uring_last_error == (uint64_t) err);
  CHECK (st.io_uring_fallback_batches > 0);
  CHECKF (st.backing_read_errors == 0 && st.backing_write_errors == 0,
          "backing errors: %" PRIu64 " read, %" PRIu64 " write",
          st.backing_read_errors, st.backing_write_errors);

  gs_device_destroy (w.dev);
  free (w.shadow);
  return 0;
}
