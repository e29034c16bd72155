/* ghostswap-generator: systemd units for the devices of
 * /etc/ghostswap/ghostswap.conf (see systemd.generator(7)).
 *
 *   ghostswap-generator NORMAL_DIR [EARLY_DIR LATE_DIR]
 *
 * For each section [NAME] (gen_config.c reads and merges the files), the
 * keys are checked by the engine's own parser (gs_config_set and
 * gs_config_check: a bad key is reported with its name, file and line,
 * and that device gets no units) and these units are written to
 * NORMAL_DIR, ordered before swap.target and wanted by it:
 *
 *   frontend=fuse (default)
 *     ghostswap@NAME.service          ghostswapd on /run/ghostswap/NAME
 *                                     (fuse-uring=yes: first the fuse
 *                                     module's enable_uring turned on)
 *     ghostswap-swapon@NAME.service   losetup + mkswap + swapon on its file
 *   frontend=nbd
 *     ghostswap@NAME.service          nbdkit ghostswap on a Unix socket
 *     ghostswap-connect@NAME.service  nbd-client to nbd-device + mkswap
 *     dev-nbdN.swap                   the swap itself (Priority=, Options=)
 *
 * The servers have no default dependencies (they would order them after
 * sysinit.target, which comes after swap.target): they need only their
 * kernel module, /run and the mounts their backings live on.  The
 * control socket is /run/ghostswap/NAME.sock, so `ghostswapctl -n NAME`
 * finds it.
 *
 * GHOSTSWAP_GENERATOR_ROOT, for tests, prefixes every path read.  Messages
 * go to standard error, or to /dev/kmsg when systemd runs us.  Exit
 * status: 0, or 1 if any section or file had an error (the good sections
 * are generated all the same).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ghostswap/config.h"

#include "gen_config.h"

#ifndef GHOSTSWAPD_PATH
#error "GHOSTSWAPD_PATH, NBDKIT_PATH and UNIT_HELPER_PATH come from meson"
#endif

#define RUNDIR "/run/ghostswap"
#define DEFAULT_PRIORITY 100

static const char *prog = "ghostswap-generator";
static FILE *logf_;             /* stderr or /dev/kmsg */
static bool to_kmsg;
static int errors;

static void __attribute__ ((format (printf, 2, 3)))
say (bool warning, const char *fmt, ...)
{
  va_list ap;

  if (!warning)
    errors++;
  /* kmsg: "<3>" error, "<4>" warning, one record per write. */
  if (to_kmsg)
    fprintf (logf_, "<%d>", warning ? 4 : 3);
  fprintf (logf_, "%s: %s", prog, warning ? "warning: " : "");
  va_start (ap, fmt);
  vfprintf (logf_, fmt, ap);
  va_end (ap);
  fputc ('\n', logf_);
  fflush (logf_);
}

/* The keys of this file that are not the plugin's. */
static bool
generator_key (const char *key)
{
  return strcmp (key, "frontend") == 0 || strcmp (key, "priority") == 0
    || strcmp (key, "discard") == 0 || strcmp (key, "nbd-device") == 0
    || strcmp (key, "fuse-uring") == 0;
}

/* One device to write units for. */
struct device {
  const struct gen_section *s;
  bool nbd;
  long priority;
  const char *swapon_discard;   /* "--discard", "--discard=once", "" */
  const char *swap_options;     /* Options= of the .swap unit, or NULL */
  bool fuse_uring;              /* turn the fuse module's enable_uring on */
  char nbd_device[64];
};

static bool
valid_name (const char *n)
{
  size_t len = strlen (n);

  if (len == 0 || len > GEN_NAME_MAX || n[0] == '.' || n[0] == '-')
    return false;
  for (; *n; n++)
    if (!((*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z')
          || (*n >= '0' && *n <= '9') || *n == '_' || *n == '.'
          || *n == '-'))
      return false;
  return true;
}

/* plain_value - can @v go into a unit as it is (after %% and $$)? */
static bool
plain_value (const char *v)
{
  for (; *v; v++)
    if ((unsigned char) *v <= ' ' || *v == 0x7f || *v == '"' || *v == '\''
        || *v == '\\')
      return false;
  return true;
}

/* check_section - @d from its section, checked.  Return: 0 or -1. */
static int
check_section (struct device *d, unsigned nbd_index)
{
  const struct gen_section *s = d->s;
  const char *v;
  struct gs_config cfg;
  char err[1024], warn[2048], *line, *save = NULL;
  int r, bad = 0;
  size_t i;
  char *end;

  if (!valid_name (s->name)) {
    say (false, "%s:%u: [%s]: not a device name (letters, digits, '_', "
         "'.', '-', at most %d, not starting with '.' or '-'): skipped",
         s->file, s->line, s->name, GEN_NAME_MAX);
    return -1;
  }
  if (s->bad) {
    say (false, "[%s]: skipped (errors above)", s->name);
    return -1;
  }

  gs_config_init (&cfg);
  for (i = 0; i < s->nkv; i++) {
    const struct gen_kv *kv = &s->kv[i];

    if (!plain_value (kv->value)) {
      say (false, "%s:%u: [%s] %s: '%s': white space, quotes and "
           "backslashes are not allowed in values", kv->file, kv->line,
           s->name, kv->key, kv->value);
      bad = 1;
      continue;
    }
    if (generator_key (kv->key))
      continue;
    if (strcmp (kv->key, "control") == 0 || strcmp (kv->key, "name") == 0) {
      say (false, "%s:%u: [%s] %s: not allowed here: the device's name is "
           "its section's, and its control socket " RUNDIR "/%s.sock",
           kv->file, kv->line, s->name, kv->key, s->name);
      bad = 1;
      continue;
    }
    r = gs_config_set (&cfg, kv->key, kv->value, err, sizeof err);
    if (r == -ENOENT) {
      say (false, "%s:%u: [%s] %s: unknown key (see ghostswap.conf(5))",
           kv->file, kv->line, s->name, kv->key);
      bad = 1;
    }
    else if (r < 0) {
      say (false, "%s:%u: [%s] %s", kv->file, kv->line, s->name, err);
      bad = 1;
    }
  }
  if (!bad && gs_config_check (&cfg, err, sizeof err) < 0) {
    say (false, "%s: [%s] %s", s->file, s->name, err);
    bad = 1;
  }
  if (!bad && gs_config_warnings (&cfg, warn, sizeof warn) > 0)
    for (line = strtok_r (warn, "\n", &save); line;
         line = strtok_r (NULL, "\n", &save))
      say (true, "[%s] %s", s->name, line);
  gs_config_free (&cfg);

  v = gen_section_get (s, "frontend");
  if (v == NULL || strcmp (v, "fuse") == 0)
    d->nbd = false;
  else if (strcmp (v, "nbd") == 0)
    d->nbd = true;
  else {
    say (false, "%s: [%s] frontend: '%s' is not fuse or nbd", s->file,
         s->name, v);
    bad = 1;
  }

  d->priority = DEFAULT_PRIORITY;
  v = gen_section_get (s, "priority");
  if (v != NULL) {
    errno = 0;
    d->priority = strtol (v, &end, 10);
    if (errno || end == v || *end || d->priority < -1
        || d->priority > 32767) {
      say (false, "%s: [%s] priority: '%s' is not a swap priority "
           "(-1 to 32767)", s->file, s->name, v);
      bad = 1;
    }
  }

  v = gen_section_get (s, "discard");
  if (v == NULL || !strcmp (v, "yes") || !strcmp (v, "true")
      || !strcmp (v, "on") || !strcmp (v, "1") || !strcmp (v, "both")) {
    d->swapon_discard = "--discard";
    d->swap_options = "discard";
  }
  else if (!strcmp (v, "once") || !strcmp (v, "pages")) {
    d->swapon_discard = !strcmp (v, "once") ? "--discard=once"
      : "--discard=pages";
    d->swap_options = !strcmp (v, "once") ? "discard=once" : "discard=pages";
  }
  else if (!strcmp (v, "no") || !strcmp (v, "false") || !strcmp (v, "off")
           || !strcmp (v, "0")) {
    d->swapon_discard = "";
    d->swap_options = NULL;
  }
  else {
    say (false, "%s: [%s] discard: '%s' is not yes, no, once or pages",
         s->file, s->name, v);
    bad = 1;
  }

  v = gen_section_get (s, "fuse-uring");
  if (v == NULL || !strcmp (v, "no") || !strcmp (v, "false")
      || !strcmp (v, "off") || !strcmp (v, "0"))
    d->fuse_uring = false;
  else if (!strcmp (v, "yes") || !strcmp (v, "true") || !strcmp (v, "on")
           || !strcmp (v, "1"))
    d->fuse_uring = true;
  else {
    say (false, "%s: [%s] fuse-uring: '%s' is not yes or no", s->file,
         s->name, v);
    bad = 1;
  }
  if (d->fuse_uring && d->nbd) {
    say (false, "%s: [%s] fuse-uring: only with frontend=fuse", s->file,
         s->name);
    bad = 1;
  }

  v = gen_section_get (s, "nbd-device");
  if (v != NULL && !d->nbd) {
    say (false, "%s: [%s] nbd-device: only with frontend=nbd", s->file,
         s->name);
    bad = 1;
  }
  if (v == NULL)
    snprintf (d->nbd_device, sizeof d->nbd_device, "/dev/nbd%u", nbd_index);
  else {
    unsigned long k;

    errno = 0;
    k = strncmp (v, "/dev/nbd", 8) == 0 && v[8] >= '0' && v[8] <= '9'
      ? strtoul (v + 8, &end, 10) : 0;
    if (strncmp (v, "/dev/nbd", 8) != 0 || v[8] < '0' || v[8] > '9'
        || *end || errno || k > 65535) {
      say (false, "%s: [%s] nbd-device: '%s' is not /dev/nbdN", s->file,
           s->name, v);
      bad = 1;
    }
    else
      snprintf (d->nbd_device, sizeof d->nbd_device, "%s", v);
  }
  if (bad)
    say (false, "[%s]: skipped", s->name);
  return bad ? -1 : 0;
}

/* put_escaped - @v with systemd's specifiers (%) and, in command lines,
 * variables ($) escaped. */
static void
put_escaped (FILE *f, const char *v, bool exec)
{
  for (; *v; v++) {
    if (*v == '%')
      fputs ("%%", f);
    else if (*v == '$' && exec)
      fputs ("$$", f);
    else
      fputc (*v, f);
  }
}

static FILE *
open_unit (const char *dir, const char *unit, const struct device *d)
{
  char path[4096];
  FILE *f;

  snprintf (path, sizeof path, "%s/%s", dir, unit);
  f = fopen (path, "wxe");
  if (f == NULL) {
    say (false, "%s: %s", path, strerror (errno));
    return NULL;
  }
  fprintf (f, "# Generated by ghostswap-generator from [%s] of %s.\n"
           "# Edit that file (see ghostswap.conf(5)), then run "
           "`systemctl daemon-reload`.\n\n", d->s->name, d->s->file);
  return f;
}

static int
close_unit (FILE *f, const char *dir, const char *unit)
{
  if (ferror (f) | (fclose (f) != 0)) {
    say (false, "%s/%s: write error", dir, unit);
    return -1;
  }
  return 0;
}

/* want - swap.target.wants/@unit in @dir. */
static int
want (const char *dir, const char *unit)
{
  char path[4096], target[512];

  snprintf (path, sizeof path, "%s/swap.target.wants", dir);
  if (mkdir (path, 0755) < 0 && errno != EEXIST) {
    say (false, "%s: %s", path, strerror (errno));
    return -1;
  }
  snprintf (path, sizeof path, "%s/swap.target.wants/%s", dir, unit);
  snprintf (target, sizeof target, "../%s", unit);
  if (symlink (target, path) < 0) {
    say (false, "%s: %s", path, strerror (errno));
    return -1;
  }
  return 0;
}

/* put_keys - the plugin's keys, for the server's command line. */
static void
put_keys (FILE *f, const struct device *d)
{
  size_t i;

  for (i = 0; i < d->s->nkv; i++)
    if (!generator_key (d->s->kv[i].key)) {
      fprintf (f, " %s=", d->s->kv[i].key);
      put_escaped (f, d->s->kv[i].value, true);
    }
}

/* put_server_common - what both servers' units share. */
static void
put_server_unit_deps (FILE *f, const struct device *d, const char *module,
                      const char *next)
{
  size_t i;

  fprintf (f, "DefaultDependencies=no\n"
           "Wants=modprobe@%s.service\n"
           "After=modprobe@%s.service\n"
           "Before=%s swap.target shutdown.target\n"
           "Conflicts=shutdown.target\n", module, module, next);
  for (i = 0; i < d->s->nkv; i++)
    if (strcmp (d->s->kv[i].key, "backing") == 0) {
      fputs ("RequiresMountsFor=", f);
      put_escaped (f, d->s->kv[i].value, false);
      fputc ('\n', f);
    }
}

static void
put_hardening (FILE *f, const struct device *d, bool fuse)
{
  /* A metrics listener (metrics-listen=ADDR:PORT) needs TCP. */
  const char *families = gen_section_get (d->s, "metrics-listen")
    ? "AF_UNIX AF_INET AF_INET6" : "AF_UNIX";

  fprintf (f,
"# A restarted server is an empty device: never behind the kernel's back.\n"
"Restart=no\n"
"# Deadlock safety (see ghostswapd(8), nbdkit-ghostswap-plugin(1)).\n"
"LimitMEMLOCK=infinity\n"
"OOMScoreAdjust=-1000\n"
"ManagedOOMPreference=omit\n"
"CapabilityBoundingSet=%sCAP_IPC_LOCK CAP_SYS_RESOURCE\n"
"AmbientCapabilities=\n"
"NoNewPrivileges=yes\n"
"UMask=0077\n"
"RestrictAddressFamilies=%s\n"
"RestrictNamespaces=yes\n"
"RestrictRealtime=yes\n"
"RestrictSUIDSGID=yes\n"
"LockPersonality=yes\n"
"MemoryDenyWriteExecute=yes\n"
"SystemCallArchitectures=native\n",
          fuse ? "CAP_SYS_ADMIN " : "", families);
}

static int
write_fuse (const char *dir, const struct device *d)
{
  const char *n = d->s->name;
  char server[128], swapon[128];
  FILE *f;

  snprintf (server, sizeof server, "ghostswap@%s.service", n);
  snprintf (swapon, sizeof swapon, "ghostswap-swapon@%s.service", n);

  if ((f = open_unit (dir, server, d)) == NULL)
    return -1;
  fprintf (f, "[Unit]\n"
           "Description=ghostswap device %s (ghostswapd, FUSE)\n"
           "Documentation=man:ghostswap.conf(5) man:ghostswapd(8)\n"
           "SourcePath=%s\n", n, d->s->file);
  put_server_unit_deps (f, d, "fuse", swapon);
  fprintf (f, "\n[Service]\n"
           "Type=notify\n"
           "NotifyAccess=main\n"
           "RuntimeDirectory=ghostswap/%s\n"
           "RuntimeDirectoryMode=0700\n", n);
  if (d->fuse_uring)
    fputs ("# fuse-uring=yes: FUSE over io_uring where the kernel has it; a\n"
           "# kernel without it keeps /dev/fuse (the helper says why).\n"
           "ExecStartPre=-" UNIT_HELPER_PATH " fuse-uring\n", f);
  fprintf (f, "ExecStart=" GHOSTSWAPD_PATH " --foreground --control "
           RUNDIR "/%s.sock " RUNDIR "/%s", n, n);
  put_keys (f, d);
  fprintf (f, "\n"
           "ExecStopPost=-" UNIT_HELPER_PATH " cleanup-mount " RUNDIR "/%s\n"
           "# ghostswapd refuses SIGTERM while its file is active swap: the\n"
           "# swap unit, bound to this one, is stopped (swapoff) first.\n"
           "KillMode=mixed\n"
           "SendSIGKILL=no\n"
           "TimeoutStopSec=30\n", n);
  put_hardening (f, d, true);
  if (close_unit (f, dir, server) < 0)
    return -1;

  if ((f = open_unit (dir, swapon, d)) == NULL)
    return -1;
  fprintf (f, "[Unit]\n"
           "Description=ghostswap swap on device %s (loop device over "
           RUNDIR "/%s/swap)\n"
           "Documentation=man:ghostswap.conf(5) man:swapon(8)\n"
           "SourcePath=%s\n"
           "DefaultDependencies=no\n"
           "BindsTo=%s\n"
           "Wants=modprobe@loop.service\n"
           "After=%s modprobe@loop.service\n"
           "Before=swap.target umount.target\n"
           "Conflicts=umount.target\n"
           "\n[Service]\n"
           "Type=oneshot\n"
           "RemainAfterExit=yes\n"
           "Environment=LOOP_DIRECT_IO=on SWAPON_OPTS=%s SWAP_PRIORITY=%ld\n"
           "ExecStart=" UNIT_HELPER_PATH " loop-start %s\n"
           "ExecStop=" UNIT_HELPER_PATH " loop-stop %s\n"
           "# swapoff reads every page back into memory: it may take a while.\n"
           "TimeoutStopSec=15min\n",
           n, n, d->s->file, server, server, d->swapon_discard, d->priority,
           n, n);
  if (close_unit (f, dir, swapon) < 0)
    return -1;
  return want (dir, swapon);
}

static int
write_nbd (const char *dir, const struct device *d)
{
  const char *n = d->s->name;
  char server[128], connect[128], swap[128];
  FILE *f;

  snprintf (server, sizeof server, "ghostswap@%s.service", n);
  snprintf (connect, sizeof connect, "ghostswap-connect@%s.service", n);
  /* /dev/nbdN -> dev-nbdN.swap (no character of it needs escaping). */
  snprintf (swap, sizeof swap, "dev-%s.swap", d->nbd_device + 5);

  if ((f = open_unit (dir, server, d)) == NULL)
    return -1;
  fprintf (f, "[Unit]\n"
           "Description=ghostswap device %s (nbdkit ghostswap)\n"
           "Documentation=man:ghostswap.conf(5) man:nbdkit-ghostswap-plugin(1)\n"
           "SourcePath=%s\n", n, d->s->file);
  put_server_unit_deps (f, d, "nbd", connect);
  fprintf (f, "\n[Service]\n"
           "# nbdkit does not speak sd_notify: ready once its PID file is\n"
           "# written, which it does when it accepts connections.\n"
           "Type=simple\n"
           "RuntimeDirectory=ghostswap/%s\n"
           "RuntimeDirectoryMode=0700\n"
           "ExecStart=" NBDKIT_PATH " --foreground --swap --pidfile="
           RUNDIR "/%s/nbdkit.pid --unix=" RUNDIR "/%s/nbd.sock ghostswap "
           "control=" RUNDIR "/%s.sock", n, n, n, n);
  put_keys (f, d);
  fprintf (f, "\n"
           "ExecStartPost=" UNIT_HELPER_PATH " wait-pidfile " RUNDIR
           "/%s/nbdkit.pid $MAINPID\n"
           "TimeoutStopSec=30\n", n);
  put_hardening (f, d, false);
  if (close_unit (f, dir, server) < 0)
    return -1;

  if ((f = open_unit (dir, connect, d)) == NULL)
    return -1;
  fprintf (f, "[Unit]\n"
           "Description=ghostswap device %s on %s (nbd-client)\n"
           "Documentation=man:ghostswap.conf(5) man:nbd-client(8)\n"
           "SourcePath=%s\n"
           "DefaultDependencies=no\n"
           "BindsTo=%s\n"
           "After=%s\n"
           "Before=%s umount.target\n"
           "Conflicts=umount.target\n"
           "\n[Service]\n"
           "Type=oneshot\n"
           "RemainAfterExit=yes\n"
           "Environment=NBD_DEVICE=%s\n"
           "ExecStart=" UNIT_HELPER_PATH " nbd-connect %s\n"
           "ExecStop=" UNIT_HELPER_PATH " nbd-stop %s\n"
           "TimeoutStopSec=15min\n",
           n, d->nbd_device, d->s->file, server, server, swap,
           d->nbd_device, n, n);
  if (close_unit (f, dir, connect) < 0)
    return -1;

  if ((f = open_unit (dir, swap, d)) == NULL)
    return -1;
  fprintf (f, "[Unit]\n"
           "Description=ghostswap swap on device %s (%s)\n"
           "Documentation=man:ghostswap.conf(5)\n"
           "SourcePath=%s\n"
           "BindsTo=%s\n"
           "After=%s\n"
           "\n[Swap]\n"
           "What=%s\n"
           "Priority=%ld\n",
           n, d->nbd_device, d->s->file, connect, connect, d->nbd_device,
           d->priority);
  if (d->swap_options)
    fprintf (f, "Options=%s\n", d->swap_options);
  fputs ("TimeoutSec=15min\n", f);
  if (close_unit (f, dir, swap) < 0)
    return -1;
  return want (dir, swap);
}

static void
open_log (const char *root)
{
  int fd;

  logf_ = stderr;
  if (root[0] != '\0' || getenv ("SYSTEMD_SCOPE") == NULL)
    return;
  fd = open ("/dev/kmsg", O_WRONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return;
  logf_ = fdopen (fd, "w");
  if (logf_ == NULL) {
    close (fd);
    logf_ = stderr;
    return;
  }
  to_kmsg = true;
}

/* main - read the configuration, write the units.
 * Context: the program, run by systemd at boot and on daemon-reload.
 * Return: 0, or 1 if anything was wrong (see above), 2 for bad arguments.
 */
int
main (int argc, char **argv)
{
  const char *root = getenv ("GHOSTSWAP_GENERATOR_ROOT");
  const char *initrd = getenv ("SYSTEMD_IN_INITRD");
  struct gen_config cfg;
  struct device *devs;
  unsigned nbd_index = 0;
  size_t i, k;
  int r;

  if (root == NULL)
    root = "";
  open_log (root);
  if (argc != 2 && argc != 4) {
    fprintf (stderr, "Usage: %s NORMAL_DIR [EARLY_DIR LATE_DIR]\n", prog);
    return 2;
  }
  /* The initrd has neither our binaries nor our configuration. */
  if (root[0] == '\0' && initrd != NULL && strcmp (initrd, "1") == 0)
    return 0;

  r = gen_config_read (root, &cfg, say);
  if (r < 0)
    return 1;
  devs = calloc (cfg.nsec ? cfg.nsec : 1, sizeof *devs);
  if (devs == NULL) {
    say (false, "out of memory");
    return 1;
  }
  for (i = 0; i < cfg.nsec; i++) {
    struct device *d = &devs[i];

    d->s = &cfg.sec[i];
    if (check_section (d, nbd_index) < 0) {
      d->s = NULL;
      continue;
    }
    if (d->nbd) {
      for (k = 0; k < i; k++)
        if (devs[k].s && devs[k].nbd
            && strcmp (devs[k].nbd_device, d->nbd_device) == 0)
          break;
      if (k < i) {
        say (false, "[%s] nbd-device: %s is [%s]'s already: skipped",
             d->s->name, d->nbd_device, devs[k].s->name);
        d->s = NULL;
        continue;
      }
      nbd_index++;
    }
    if (d->nbd ? write_nbd (argv[1], d) : write_fuse (argv[1], d))
      continue;
  }
  free (devs);
  gen_config_free (&cfg);
  return errors > 0 ? 1 : 0;
}
