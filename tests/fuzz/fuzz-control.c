/* Fuzz the control protocol (service/control.c): request lines through
 * gs_control_handle, as the socket thread feeds them, on a real device
 * with fault injection allowed, a small ram-limit and backing files in a
 * temporary directory.
 *
 * The input is request lines (split at newlines; a NUL ends a line early,
 * as it would a C string).  A line "!wN" is not sent: the harness
 * rewrites page N instead, so that data moves while drains, migrations
 * and writebacks run.  Lines holding '/' are skipped, so that no request
 * can name a file outside the temporary directory (relative names land
 * in it: the harness works there while an input runs), and so are
 * backings over 256 MiB (see too_big).  Checked:
 *   - every answer is one line of valid JSON with a boolean "ok", and a
 *     non-empty "error" when it is false;
 *   - nothing stored is lost: once the drains have finished and the
 *     faults are cleared, every page reads back as last written (a
 *     failed write of a whole slot leaves the old page).
 *
 * GHOSTSWAP_FUZZ_VERBOSE=1 prints every request and its answer.
 * Backing files go to a fresh directory under $GHOSTSWAP_FUZZ_TMPDIR
 * (default /var/tmp: O_DIRECT must work there), removed at exit.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "ghostswap/backing.h"
#include "ghostswap/config.h"
#include "ghostswap/control.h"
#include "ghostswap/service/control.h"
#include "ghostswap/device.h"
#include "json_read.h"

#define NPAGES 16
#define PAGE GS_SLOT_SIZE
#define MAX_LINES 64
#define MAX_BACKING_BYTES (256ull << 20)

static char dir[PATH_MAX];
static char answer_buf[1 << 20];
static struct gs_backing_info backings[GS_MAX_BACKINGS];

/* Remove every file in the temporary directory (the cwd while an input
 * runs). */
static void
empty_dir (void)
{
  DIR *d = opendir (".");
  struct dirent *e;

  if (d == NULL)
    return;
  while ((e = readdir (d)) != NULL)
    if (strcmp (e->d_name, ".") != 0 && strcmp (e->d_name, "..") != 0)
      unlink (e->d_name);
  closedir (d);
}

static void
remove_dir (void)
{
  if (dir[0] && chdir (dir) == 0) {
    empty_dir ();
    if (chdir ("/") == 0)
      rmdir (dir);
  }
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  const char *base = getenv ("GHOSTSWAP_FUZZ_TMPDIR");

  snprintf (dir, sizeof dir, "%s/ghostswap-fuzz-control-XXXXXX",
            base && *base ? base : "/var/tmp");
  if (mkdtemp (dir) == NULL) {
    perror (dir);
    exit (1);
  }
  atexit (remove_dir);
  return 0;
}

/* Page @p's contents at @version: distinct for every pair, compressible
 * for some and not for others. */
static void
page_fill (unsigned char *buf, unsigned p, unsigned version)
{
  uint64_t s = ((uint64_t) p << 32 | version) * 0x9e3779b97f4a7c15ull + 1;
  size_t i;

  for (i = 0; i < PAGE; i += 8) {
    uint64_t w;

    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    w = (p + version) % 3 == 0 ? s : (s & 0x0f0f0f0f) | (uint64_t) p << 56;
    memcpy (buf + i, &w, 8);
  }
}

static void
check_answer (const char *line, size_t n)
{
  struct jr_value *v;
  char err[128];

  FUZZ_CHECK (n > 0 && answer_buf[n - 1] == '\n'
              && memchr (answer_buf, '\n', n - 1) == NULL,
              "'%s': the answer is not one line: %s", line, answer_buf);
  v = jr_parse (answer_buf, n, err, sizeof err);
  FUZZ_CHECK (v != NULL, "'%s': invalid JSON (%s): %s", line, err, answer_buf);
  FUZZ_CHECK (jr_get (v, "ok") && jr_get (v, "ok")->type == JR_BOOL,
              "'%s': no \"ok\": %s", line, answer_buf);
  if (!jr_bool (v, "ok", true))
    FUZZ_CHECK (jr_str (v, "error") && jr_str (v, "error")[0],
                "'%s': no error text: %s", line, answer_buf);
  jr_free (v);
}

/* Whether @line makes or migrates to a backing of more than
 * MAX_BACKING_BYTES.  Harmless in a normal build (the reverse map is
 * calloc'd and stays untouched), but the sanitizers' allocators touch all
 * of it: 7 bytes per slot, gigabytes for a terabyte. */
static bool
too_big (const char *line)
{
  char copy[GS_CONTROL_MAX_REQUEST + 16], *save = NULL, *w;
  bool makes = false;
  uint64_t v;

  snprintf (copy, sizeof copy, "%s", line);
  for (w = strtok_r (copy, " \t", &save); w; w = strtok_r (NULL, " \t", &save)) {
    if (strcmp (w, "backing") == 0 || strcmp (w, "migrate") == 0)
      makes = true;
    else if (makes && gs_parse_size (w, &v) == 0 && v > MAX_BACKING_BYTES)
      return true;
  }
  return false;
}

/* Rewrite page @p with its next version; *@version counts the versions
 * stored.  A failed write of one whole slot leaves the old page. */
static void
write_page (struct gs_device *dev, unsigned *version, unsigned p)
{
  unsigned char buf[PAGE];
  int r;

  page_fill (buf, p, version[p] + 1);
  r = gs_pwrite (dev, buf, PAGE, (uint64_t) p * 3 * PAGE);
  FUZZ_CHECK (r == 0 || r == -ENOSPC || r == -ENOMEM,
              "pwrite of page %u: %d", p, r);
  if (r == 0)
    version[p]++;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct gs_config cfg;
  struct gs_device *dev;
  unsigned version[NPAGES];
  unsigned char want[PAGE], got[PAGE];
  char line[GS_CONTROL_MAX_REQUEST + 16];
  size_t at = 0, len;
  unsigned p, i, n, lines = 0;
  int cwd = open (".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  bool verbose = getenv ("GHOSTSWAP_FUZZ_VERBOSE") != NULL;

  /* Relative names in requests land in the temporary directory; the
   * fuzzer's own files (corpus, crashes) stay where it was started. */
  if (cwd < 0 || chdir (dir) < 0)
    abort ();
  gs_config_init (&cfg);
  cfg.size = 64 << 20;
  cfg.ram_limit = 1 << 20;
  cfg.fault_injection = true;
  if (gs_device_create (&cfg, &dev) < 0 || gs_device_start (dev) < 0)
    abort ();
  for (p = 0; p < NPAGES; p++) {
    version[p] = 0;
    write_page (dev, version, p);
    FUZZ_CHECK (version[p] == 1, "the first write of page %u failed", p);
  }

  while (at < size && lines++ < MAX_LINES) {
    const uint8_t *nl = memchr (data + at, '\n', size - at);

    len = (nl ? (size_t) (nl - data) : size) - at;
    if (len >= sizeof line)
      len = sizeof line - 1;
    memcpy (line, data + at, len);
    line[len] = '\0';
    at = nl ? (size_t) (nl - data) + 1 : size;

    if (line[0] == '!' && line[1] == 'w') {
      write_page (dev, version, (unsigned) strtoul (line + 2, NULL, 10) % NPAGES);
      continue;
    }
    if (strchr (line, '/') || too_big (line))
      continue;
    n = (unsigned) gs_control_handle (dev, NULL, line, answer_buf,
                                      sizeof answer_buf);
    if (verbose)
      fprintf (stderr, "fuzz-control: %s\n  -> %s", line, answer_buf);
    check_answer (line, n);
  }

  /* Quiet down: no drain running, no fault left; then nothing is lost. */
  gs_drain_wait (dev);
  n = gs_backing_list (dev, backings, GS_MAX_BACKINGS);
  for (i = 0; i < n; i++)
    FUZZ_CHECK (gs_fault_set (dev, backings[i].path, "off", 0, 0) == 0,
                "clearing faults on %s", backings[i].path);
  for (p = 0; p < NPAGES; p++) {
    int r = gs_pread (dev, got, PAGE, (uint64_t) p * 3 * PAGE);

    FUZZ_CHECK (r == 0, "page %u: read returned %d", p, r);
    page_fill (want, p, version[p]);
    FUZZ_CHECK (memcmp (got, want, PAGE) == 0,
                "page %u does not read back as written (version %u)", p,
                version[p]);
  }
  gs_device_destroy (dev);
  empty_dir ();
  if (fchdir (cwd) < 0)
    abort ();
  close (cwd);
  return 0;
}
