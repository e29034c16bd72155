/* ghostswap-generator: reading the configuration (see gen_config.h). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gen_config.h"

#define CONF_FILE "/etc/ghostswap/ghostswap.conf"
#define CONF_DIR "/etc/ghostswap/ghostswap.conf.d"

static void __attribute__ ((noreturn))
out_of_memory (void)
{
  fprintf (stderr, "ghostswap-generator: out of memory\n");
  exit (1);
}

static char *
xstrdup (const char *s)
{
  char *p = strdup (s);

  if (p == NULL)
    out_of_memory ();
  return p;
}

static char *
trim (char *s)
{
  char *e;

  while (isspace ((unsigned char) *s))
    s++;
  e = s + strlen (s);
  while (e > s && isspace ((unsigned char) e[-1]))
    *--e = '\0';
  return s;
}

static struct gen_section *
find_section (struct gen_config *cfg, const char *name)
{
  size_t i;

  for (i = 0; i < cfg->nsec; i++)
    if (strcmp (cfg->sec[i].name, name) == 0)
      return &cfg->sec[i];
  return NULL;
}

static struct gen_section *
add_section (struct gen_config *cfg, const char *name, const char *file,
             unsigned line)
{
  struct gen_section *s = realloc (cfg->sec, (cfg->nsec + 1) * sizeof *s);

  if (s == NULL)
    out_of_memory ();
  cfg->sec = s;
  s = &cfg->sec[cfg->nsec++];
  memset (s, 0, sizeof *s);
  snprintf (s->name, sizeof s->name, "%s", name);
  s->file = file;
  s->line = line;
  return s;
}

static void
remove_kv (struct gen_section *s, size_t i)
{
  free (s->kv[i].key);
  free (s->kv[i].value);
  memmove (&s->kv[i], &s->kv[i + 1], (s->nkv - i - 1) * sizeof *s->kv);
  s->nkv--;
}

/* set_kv - @key = @value from line @line of file @fi: replaces the
 * earlier files' values of @key (and, but for backing, this file's). */
static void
set_kv (struct gen_section *s, const char *key, const char *value,
        const char *file, unsigned fi, unsigned line, gen_log_fn log)
{
  bool list = strcmp (key, "backing") == 0;
  struct gen_kv *kv;
  size_t i;

  for (i = s->nkv; i-- > 0;) {
    if (strcmp (s->kv[i].key, key) != 0)
      continue;
    if (s->kv[i].file_index == fi && !list && value[0] != '\0')
      log (true, "%s:%u: [%s] %s: given more than once (also on line %u): "
           "the last value counts", file, line, s->name, key, s->kv[i].line);
    if (s->kv[i].file_index != fi || !list || value[0] == '\0')
      remove_kv (s, i);
  }
  if (value[0] == '\0')
    return;                     /* reset to the default */
  kv = realloc (s->kv, (s->nkv + 1) * sizeof *kv);
  if (kv == NULL)
    out_of_memory ();
  s->kv = kv;
  kv = &s->kv[s->nkv++];
  kv->key = xstrdup (key);
  kv->value = xstrdup (value);
  kv->file = file;
  kv->line = line;
  kv->file_index = fi;
}

static bool
valid_key (const char *k)
{
  if (*k == '\0')
    return false;
  for (; *k; k++)
    if (!islower ((unsigned char) *k) && !isdigit ((unsigned char) *k)
        && *k != '-')
      return false;
  return true;
}

/* read_file - one file.  Return: errors, or -errno. */
static int
read_file (struct gen_config *cfg, const char *path, const char *shown,
           unsigned fi, gen_log_fn log)
{
  FILE *fp = fopen (path, "re");
  struct gen_section *cur = NULL;
  char buf[8192], *line, *eq;
  unsigned lineno = 0;
  int errors = 0, err;

  if (fp == NULL) {
    err = -errno;
    log (false, "%s: %s", shown, strerror (errno));
    return err;
  }
  while (fgets (buf, sizeof buf, fp)) {
    lineno++;
    if (strchr (buf, '\n') == NULL && !feof (fp)) {
      log (false, "%s:%u: line too long", shown, lineno);
      errors++;
      if (cur)
        cur->bad = true;
      while (fgets (buf, sizeof buf, fp) && strchr (buf, '\n') == NULL)
        ;
      continue;
    }
    line = trim (buf);
    if (line[0] == '\0' || line[0] == '#' || line[0] == ';')
      continue;
    if (line[0] == '[') {
      char *end = strchr (line, ']');
      char *name;

      if (end == NULL || trim (end + 1)[0] != '\0') {
        log (false, "%s:%u: '%s': not a [NAME] section header", shown,
             lineno, line);
        errors++;
        cur = NULL;
        continue;
      }
      *end = '\0';
      name = trim (line + 1);
      cur = find_section (cfg, name);
      if (cur == NULL)
        cur = add_section (cfg, name, shown, lineno);
      continue;
    }
    eq = strchr (line, '=');
    if (eq == NULL) {
      log (false, "%s:%u: '%s': not KEY = VALUE", shown, lineno, line);
      errors++;
      if (cur)
        cur->bad = true;
      continue;
    }
    *eq = '\0';
    if (cur == NULL) {
      log (false, "%s:%u: %s: outside any [NAME] section", shown, lineno,
           trim (line));
      errors++;
      continue;
    }
    if (!valid_key (trim (line))) {
      log (false, "%s:%u: [%s] '%s': not a key", shown, lineno, cur->name,
           trim (line));
      errors++;
      cur->bad = true;
      continue;
    }
    set_kv (cur, trim (line), trim (eq + 1), shown, fi, lineno, log);
  }
  if (ferror (fp)) {
    err = -errno;
    log (false, "%s: read error", shown);
    fclose (fp);
    return err ? err : -EIO;
  }
  fclose (fp);
  return errors;
}

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* add_file - remember @shown (the path without the root) for messages. */
static const char *
add_file (struct gen_config *cfg, const char *shown)
{
  char **f = realloc (cfg->files, (cfg->nfiles + 1) * sizeof *f);

  if (f == NULL)
    out_of_memory ();
  cfg->files = f;
  f[cfg->nfiles] = xstrdup (shown);
  return f[cfg->nfiles++];
}

/* gen_config_read - see gen_config.h. */
int
gen_config_read (const char *root, struct gen_config *cfg, gen_log_fn log)
{
  char path[4096], shown[4096];
  char **names = NULL;
  size_t n = 0, i;
  struct dirent *e;
  DIR *d;
  int r, errors = 0;

  memset (cfg, 0, sizeof *cfg);
  snprintf (path, sizeof path, "%s%s", root, CONF_FILE);
  if (access (path, F_OK) == 0) {
    r = read_file (cfg, path, add_file (cfg, CONF_FILE), 0, log);
    if (r < 0)
      return r;
    errors += r;
  }

  snprintf (path, sizeof path, "%s%s", root, CONF_DIR);
  d = opendir (path);
  if (d == NULL && errno != ENOENT) {
    r = -errno;
    log (false, "%s: %s", CONF_DIR, strerror (errno));
    return r;
  }
  while (d && (e = readdir (d)) != NULL) {
    size_t len = strlen (e->d_name);
    char **p;

    if (e->d_name[0] == '.' || len <= 5
        || strcmp (e->d_name + len - 5, ".conf") != 0)
      continue;
    p = realloc (names, (n + 1) * sizeof *names);
    if (p == NULL)
      out_of_memory ();
    names = p;
    names[n++] = xstrdup (e->d_name);
  }
  if (d)
    closedir (d);
  if (n > 0)
    qsort (names, n, sizeof *names, cmp_str);
  for (i = 0; i < n; i++) {
    snprintf (shown, sizeof shown, "%s/%s", CONF_DIR, names[i]);
    snprintf (path, sizeof path, "%s%s", root, shown);
    r = read_file (cfg, path, add_file (cfg, shown), (unsigned) i + 1, log);
    if (r < 0) {
      errors = r;
      break;
    }
    errors += r;
  }
  for (i = 0; i < n; i++)
    free (names[i]);
  free (names);
  return errors;
}

/* gen_section_get - see gen_config.h. */
const char *
gen_section_get (const struct gen_section *s, const char *key)
{
  size_t i;

  for (i = s->nkv; i-- > 0;)
    if (strcmp (s->kv[i].key, key) == 0)
      return s->kv[i].value;
  return NULL;
}

/* gen_config_free - see gen_config.h. */
void
gen_config_free (struct gen_config *cfg)
{
  size_t i, k;

  for (i = 0; i < cfg->nsec; i++) {
    for (k = 0; k < cfg->sec[i].nkv; k++) {
      free (cfg->sec[i].kv[k].key);
      free (cfg->sec[i].kv[k].value);
    }
    free (cfg->sec[i].kv);
  }
  free (cfg->sec);
  for (i = 0; i < cfg->nfiles; i++)
    free (cfg->files[i]);
  free (cfg->files);
  memset (cfg, 0, sizeof *cfg);
}
