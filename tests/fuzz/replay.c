/* replay-NAME: run files through a fuzz harness once each, without
 * libFuzzer (see fuzz.h).
 *
 *   replay-NAME FILE|DIR...
 *
 * A directory stands for the files in it (not recursive, in name order).
 * Exits 0 when every input went through; a failed check aborts.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* A harness need not define LLVMFuzzerInitialize. */
#pragma weak LLVMFuzzerInitialize

static unsigned long replayed;

static int
replay_file (const char *path)
{
  FILE *f = fopen (path, "rb");
  unsigned char *data = NULL;
  size_t size = 0, cap = 0, n;

  if (f == NULL) {
    fprintf (stderr, "replay: %s: %s\n", path, strerror (errno));
    return -1;
  }
  do {
    if (size == cap) {
      unsigned char *p = realloc (data, cap = cap ? 2 * cap : 4096);
      if (p == NULL) {
        fprintf (stderr, "replay: %s: out of memory\n", path);
        free (data);
        fclose (f);
        return -1;
      }
      data = p;
    }
    n = fread (data + size, 1, cap - size, f);
    size += n;
  } while (n > 0);
  if (ferror (f)) {
    fprintf (stderr, "replay: %s: read error\n", path);
    free (data);
    fclose (f);
    return -1;
  }
  fclose (f);
  fprintf (stderr, "replay: %s (%zu bytes)\n", path, size);
  LLVMFuzzerTestOneInput (data, size);
  free (data);
  replayed++;
  return 0;
}

static int
by_name (const struct dirent **a, const struct dirent **b)
{
  return strcmp ((*a)->d_name, (*b)->d_name);
}

static int
replay_path (const char *path)
{
  struct dirent **names;
  struct stat st;
  int n, i, r = 0;

  if (stat (path, &st) < 0) {
    fprintf (stderr, "replay: %s: %s\n", path, strerror (errno));
    return -1;
  }
  if (!S_ISDIR (st.st_mode))
    return replay_file (path);
  n = scandir (path, &names, NULL, by_name);
  if (n < 0) {
    fprintf (stderr, "replay: %s: %s\n", path, strerror (errno));
    return -1;
  }
  for (i = 0; i < n; i++) {
    char sub[4096];

    if (names[i]->d_name[0] != '.') {
      snprintf (sub, sizeof sub, "%s/%s", path, names[i]->d_name);
      if (stat (sub, &st) == 0 && S_ISREG (st.st_mode)
          && replay_file (sub) < 0)
        r = -1;
    }
    free (names[i]);
  }
  free (names);
  return r;
}

int
main (int argc, char **argv)
{
  int i, r = 0;

  if (argc < 2) {
    fprintf (stderr, "usage: %s FILE|DIR...\n", argv[0]);
    return 2;
  }
  if (LLVMFuzzerInitialize)
    LLVMFuzzerInitialize (&argc, &argv);
  for (i = 1; i < argc; i++)
    if (replay_path (argv[i]) < 0)
      r = 1;
  if (replayed == 0) {
    fprintf (stderr, "replay: no input found\n");
    r = 1;
  }
  fprintf (stderr, "replay: %lu inputs, %s\n", replayed, r ? "errors" : "ok");
  return r;
}
