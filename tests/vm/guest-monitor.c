/* guest-monitor - run in the vm tests' guest (built static by
 * build-guest.sh): every few seconds, print on standard output the
 * counters that changed in /proc/net/netstat, /proc/net/snmp and
 * /proc/vmstat (selected ones), and the NBD socket's queues from
 * /proc/net/tcp.  It locks itself in memory first (mlockall), so it
 * keeps reporting when everything else in the guest waits for swap.
 *
 *   guest-monitor SECONDS PORT
 *
 * Output lines: "GS-MON t=T name=+delta ..." and
 * "GS-MON t=T tcp port PORT tx_queue rx_queue".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MAXC 1024

static char names[MAXC][48];
static unsigned long long vals[MAXC];
static int ncounters;

/* Remember @v for @name; return the change since the last call. */
static long long
delta (const char *name, unsigned long long v)
{
  int i;

  for (i = 0; i < ncounters; i++)
    if (strcmp (names[i], name) == 0) {
      long long d = (long long) (v - vals[i]);
      vals[i] = v;
      return d;
    }
  if (ncounters < MAXC) {
    snprintf (names[ncounters], sizeof names[0], "%s", name);
    vals[ncounters++] = v;
  }
  return 0;
}

static char line[8192], line2[8192];

/* /proc/net/netstat and /proc/net/snmp: pairs of lines "Prefix: names"
 * and "Prefix: values". */
static void
pairs (const char *path, char *out, size_t outsz)
{
  FILE *fp = fopen (path, "r");

  if (!fp)
    return;
  while (fgets (line, sizeof line, fp) && fgets (line2, sizeof line2, fp)) {
    char *s1, *s2, *n, *v;
    char *prefix = strtok_r (line, " \n", &s1);

    strtok_r (line2, " \n", &s2);
    while ((n = strtok_r (NULL, " \n", &s1)) && (v = strtok_r (NULL, " \n", &s2))) {
      char key[48];
      long long d;

      snprintf (key, sizeof key, "%s%s", prefix, n);
      d = delta (key, strtoull (v, NULL, 10));
      if (d != 0 && strlen (out) + 64 < outsz)
        sprintf (out + strlen (out), " %s%+lld", key, d);
    }
  }
  fclose (fp);
}

static void
vmstat (char *out, size_t outsz)
{
  static const char *const keep[] = {
    "pswpin", "pswpout", "allocstall_normal", "allocstall_dma32",
    "pgscan_kswapd", "pgscan_direct", "oom_kill", "nr_free_pages", NULL
  };
  FILE *fp = fopen ("/proc/vmstat", "r");
  char n[64];
  unsigned long long v;

  if (!fp)
    return;
  while (fscanf (fp, "%63s %llu", n, &v) == 2) {
    int i;

    for (i = 0; keep[i]; i++)
      if (strcmp (n, keep[i]) == 0) {
        long long d = delta (n, v);

        if (strcmp (n, "nr_free_pages") == 0)
          sprintf (out + strlen (out), " free_kib=%llu", v * 4);
        else if (d != 0 && strlen (out) + 64 < outsz)
          sprintf (out + strlen (out), " %s%+lld", n, d);
      }
  }
  fclose (fp);
}

static void
tcp (unsigned port, long t)
{
  FILE *fp = fopen ("/proc/net/tcp", "r");
  char want[8];

  if (!fp)
    return;
  snprintf (want, sizeof want, ":%04X", port);
  while (fgets (line, sizeof line, fp)) {
    char local[64], remote[64], queues[64], st[8];

    if (sscanf (line, "%*s %63s %63s %7s %63s", local, remote, st, queues) == 4 &&
        strstr (remote, want))
      printf ("GS-MON t=%ld tcp %s -> %s st %s tx:rx %s\n", t, local, remote, st, queues);
  }
  fclose (fp);
}

int
main (int argc, char **argv)
{
  static char out[16384];
  unsigned secs = argc > 1 ? atoi (argv[1]) : 5;
  unsigned port = argc > 2 ? atoi (argv[2]) : 10809;
  long t = 0;

  if (mlockall (MCL_CURRENT | MCL_FUTURE) == -1)
    perror ("guest-monitor: mlockall");
  setvbuf (stdout, NULL, _IOLBF, 0);
  for (;;) {
    out[0] = 0;
    pairs ("/proc/net/netstat", out, sizeof out);
    pairs ("/proc/net/snmp", out, sizeof out);
    vmstat (out, sizeof out);
    printf ("GS-MON t=%ld%s\n", t, out);
    tcp (port, t);
    sleep (secs);
    t += secs;
  }
}
