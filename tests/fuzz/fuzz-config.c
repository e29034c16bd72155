/* Fuzz the configuration parser (lib/config.c): gs_config_set,
 * gs_config_check, gs_parse_size and gs_format_size.
 *
 * The input is lines (split at newlines and NULs) of KEY=VALUE, split at
 * the first '=' as ghostswapd does; a line without one is a value of the
 * magic key "size", as nbdkit passes it.  Every line is set into two
 * configurations, one with a roomy error buffer and one with a tiny one.
 * Checked, against expectations written here independently of config.c:
 *   - a size string parses exactly as a POSIX regular expression of the
 *     documented syntax says, to the same value or the same error;
 *   - gs_format_size of any parsed value parses back to it;
 *   - a failed set leaves the configuration as it was and writes one
 *     line "KEY: ..." naming the key; an unknown key gives -ENOENT, a bad
 *     value -EINVAL;
 *   - a successful set stores what the value says and keeps every
 *     field's documented range;
 *   - the tiny buffer gets a NUL-terminated prefix of the same message
 *     and both configurations agree at the end;
 *   - gs_config_check accepts exactly when writeback-low < -high.
 */
#include <errno.h>
#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "fuzz.h"
#include "ghostswap/config.h"

static regex_t size_re;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  /* The documented syntax: digits, an optional unit (b, or k..E with an
   * optional "B" or "iB"), blanks around. */
  if (regcomp (&size_re,
               "^[[:space:]]*([0-9]+)([bB]|[kKmMgGtTpPeE](i[bB]|[bB])?)?"
               "[[:space:]]*$", REG_EXTENDED) != 0)
    abort ();
  return 0;
}

/* The expected gs_parse_size result for @s: 0 and *@out, -EINVAL, -ERANGE. */
static int
reference_size (const char *s, uint64_t *out)
{
  regmatch_t m[3];
  const char *d;
  size_t ndigits;
  unsigned __int128 v = 0;
  unsigned shift = 0;

  if (regexec (&size_re, s, 3, m, 0) != 0)
    return -EINVAL;
  d = s + m[1].rm_so;
  ndigits = (size_t) (m[1].rm_eo - m[1].rm_so);
  while (ndigits > 1 && *d == '0') {
    d++;
    ndigits--;
  }
  if (ndigits > 20)
    return -ERANGE;
  for (; ndigits > 0; ndigits--, d++)
    v = v * 10 + (unsigned) (*d - '0');
  if (v > UINT64_MAX)
    return -ERANGE;
  if (m[2].rm_so >= 0)
    switch (s[m[2].rm_so]) {
    case 'k': case 'K': shift = 10; break;
    case 'm': case 'M': shift = 20; break;
    case 'g': case 'G': shift = 30; break;
    case 't': case 'T': shift = 40; break;
    case 'p': case 'P': shift = 50; break;
    case 'e': case 'E': shift = 60; break;
    }
  v <<= shift;
  if (v > INT64_MAX)
    return -ERANGE;
  *out = (uint64_t) v;
  return 0;
}

static void
check_size_string (const char *s)
{
  uint64_t got = 0, want = 0, back = 0;
  int r = gs_parse_size (s, &got), rw = reference_size (s, &want);
  char buf[32];

  FUZZ_CHECK (r == rw, "gs_parse_size ('%s') = %d, expected %d", s, r, rw);
  if (r < 0)
    return;
  FUZZ_CHECK (got == want, "gs_parse_size ('%s') = %llu, expected %llu", s,
              (unsigned long long) got, (unsigned long long) want);
  gs_format_size (got, buf, sizeof buf);
  FUZZ_CHECK (gs_parse_size (buf, &back) == 0 && back == got,
              "gs_format_size (%llu) = '%s' does not parse back",
              (unsigned long long) got, buf);
}

static bool
str_eq (const char *a, const char *b)
{
  return a == b || (a && b && strcmp (a, b) == 0);
}

/* Deep comparison of two configurations. */
static bool
config_eq (const struct gs_config *a, const struct gs_config *b)
{
  unsigned i;

  if (a->size != b->size || a->ram_limit != b->ram_limit
      || a->compression_level != b->compression_level
      || a->compact_threshold != b->compact_threshold
      || a->recompress_level != b->recompress_level
      || a->recompress_cpu != b->recompress_cpu
      || a->nbacking != b->nbacking || a->backing_size != b->backing_size
      || a->punch_holes != b->punch_holes
      || a->writeback_high != b->writeback_high
      || a->writeback_low != b->writeback_low
      || a->fault_injection != b->fault_injection
      || a->remote_timeout != b->remote_timeout
      || !str_eq (a->control, b->control)
      || !str_eq (a->tls_psk, b->tls_psk)
      || !str_eq (a->tls_username, b->tls_username)
      || !str_eq (a->tls_certificates, b->tls_certificates))
    return false;
  for (i = 0; i < a->nbacking; i++)
    if (!str_eq (a->backing[i], b->backing[i]))
      return false;
  return true;
}

/* A shallow copy for comparison: strings are compared by content, and
 * a set never frees a backing string; control is copied. */
static void
snapshot (struct gs_config *snap, const struct gs_config *cfg)
{
  *snap = *cfg;
  snap->control = cfg->control ? strdup (cfg->control) : NULL;
  if (cfg->control && !snap->control)
    abort ();
}

/* Whether @key is documented: a line of gs_config_help starting with
 * "KEY=" (the --help text is the list of keys). */
static bool
known_key (const char *key)
{
  const char *line = gs_config_help;
  size_t len = strlen (key);

  while (line && *line) {
    if (line[0] != ' ' && strncmp (line, key, len) == 0 && line[len] == '=')
      return true;
    line = strchr (line, '\n');
    if (line)
      line++;
  }
  return false;
}

/* What a successful set of @key=@value must have stored. */
static void
check_stored (const struct gs_config *cfg, const char *key, const char *value)
{
  uint64_t v;

  FUZZ_CHECK (cfg->size > 0 && cfg->size % GS_SLOT_SIZE == 0
              && cfg->size <= GS_MAX_SIZE, "size %llu",
              (unsigned long long) cfg->size);
  FUZZ_CHECK (cfg->ram_limit >= GS_MIN_RAM_LIMIT, "ram-limit %llu",
              (unsigned long long) cfg->ram_limit);
  FUZZ_CHECK (cfg->compact_threshold >= 1 && cfg->compact_threshold <= 99,
              "compact-threshold %u", cfg->compact_threshold);
  FUZZ_CHECK (cfg->writeback_high >= 1 && cfg->writeback_high <= 100
              && cfg->writeback_low >= 1 && cfg->writeback_low <= 100,
              "writeback %u..%u", cfg->writeback_low, cfg->writeback_high);
  FUZZ_CHECK (cfg->compression_level >= ZSTD_minCLevel ()
              && cfg->compression_level <= ZSTD_maxCLevel (),
              "compression-level %d", cfg->compression_level);
  FUZZ_CHECK (cfg->recompress_level >= 0
              && cfg->recompress_level <= ZSTD_maxCLevel (),
              "recompress-level %d", cfg->recompress_level);
  FUZZ_CHECK (cfg->recompress_cpu >= 1 && cfg->recompress_cpu <= 100,
              "recompress-cpu %u", cfg->recompress_cpu);
  FUZZ_CHECK (cfg->nbacking <= GS_CONFIG_MAX_BACKINGS, "%u backings",
              cfg->nbacking);

  if (strcmp (key, "size") == 0) {
    FUZZ_CHECK (gs_parse_size (value, &v) == 0 && v == cfg->size,
                "size=%s stored %llu", value, (unsigned long long) cfg->size);
  } else if (strcmp (key, "ram-limit") == 0) {
    FUZZ_CHECK (gs_parse_size (value, &v) == 0 && v == cfg->ram_limit,
                "ram-limit=%s stored %llu", value,
                (unsigned long long) cfg->ram_limit);
  } else if (strcmp (key, "backing-size") == 0) {
    FUZZ_CHECK (gs_parse_size (value, &v) == 0
                && cfg->backing_size == v - v % GS_SLOT_SIZE
                && cfg->backing_size >= GS_SLOT_SIZE,
                "backing-size=%s stored %llu", value,
                (unsigned long long) cfg->backing_size);
  } else if (strcmp (key, "backing") == 0) {
    FUZZ_CHECK (cfg->nbacking > 0
                && strcmp (cfg->backing[cfg->nbacking - 1], value) == 0,
                "backing=%s not stored last", value);
  } else if (strcmp (key, "control") == 0) {
    FUZZ_CHECK (cfg->control && strcmp (cfg->control, value) == 0,
                "control=%s not stored", value);
  } else if (strcmp (key, "tls-psk") == 0 || strcmp (key, "tls-username") == 0
             || strcmp (key, "tls-certificates") == 0) {
    const char *got = key[4] == 'p' ? cfg->tls_psk
      : key[4] == 'u' ? cfg->tls_username : cfg->tls_certificates;
    FUZZ_CHECK (got && strcmp (got, value) == 0, "%s=%s not stored", key,
                value);
  } else if (strcmp (key, "remote-timeout") == 0) {
    FUZZ_CHECK (cfg->remote_timeout >= 1
                && cfg->remote_timeout <= GS_REMOTE_TIMEOUT_MAX
                && (long) cfg->remote_timeout == strtol (value, NULL, 10),
                "remote-timeout=%s stored %u", value, cfg->remote_timeout);
  } else if (strcmp (key, "compact-threshold") == 0
             || strcmp (key, "writeback-high") == 0
             || strcmp (key, "writeback-low") == 0
             || strcmp (key, "compression-level") == 0
             || strcmp (key, "recompress-level") == 0
             || strcmp (key, "recompress-cpu") == 0) {
    long want = strtol (value, NULL, 10), got;

    if (strcmp (key, "compact-threshold") == 0)
      got = (long) cfg->compact_threshold;
    else if (strcmp (key, "recompress-level") == 0)
      got = (long) cfg->recompress_level;
    else if (strcmp (key, "recompress-cpu") == 0)
      got = (long) cfg->recompress_cpu;
    else if (strcmp (key, "compression-level") == 0)
      got = (long) cfg->compression_level;
    else if (strcmp (key, "writeback-high") == 0)
      got = (long) cfg->writeback_high;
    else
      got = (long) cfg->writeback_low;
    FUZZ_CHECK (got == want, "%s=%s stored %ld", key, value, got);
  }
}

static void
set_line (struct gs_config *cfg, struct gs_config *tiny_cfg, char *line)
{
  struct gs_config before;
  char *eq = strchr (line, '=');
  const char *key = "size", *value = line;
  char err[1024], tiny[8];
  size_t tinylen = 1 + strlen (line) % sizeof tiny, keylen;
  int r, rt;

  if (eq) {
    *eq = '\0';
    key = line;
    value = eq + 1;
  }
  check_size_string (value);

  snapshot (&before, cfg);
  memset (err, 'x', sizeof err);
  memset (tiny, 'x', sizeof tiny);
  r = gs_config_set (cfg, key, value, err, sizeof err);
  rt = gs_config_set (tiny_cfg, key, value, tiny, tinylen);
  FUZZ_CHECK (r == rt, "%s=%s: %d with a %zu-byte error buffer, %d with "
              "%zu bytes", key, value, rt, tinylen, r, sizeof err);
  if (r == 0) {
    check_stored (cfg, key, value);
  } else {
    keylen = strlen (key);
    FUZZ_CHECK (r == (known_key (key) ? -EINVAL : -ENOENT),
                "%s=%s: returned %d", key, value, r);
    FUZZ_CHECK (config_eq (&before, cfg), "%s=%s failed but changed the "
                "configuration", key, value);
    FUZZ_CHECK (memchr (err, '\0', sizeof err) != NULL, "%s=%s: error "
                "message not terminated", key, value);
    FUZZ_CHECK (strncmp (err, key, keylen) == 0 && err[keylen] == ':'
                && err[keylen + 1] == ' ' && err[keylen + 2] != '\0',
                "%s=%s: message does not name the key: '%s'", key, value, err);
    FUZZ_CHECK (strchr (err, '\n') == NULL,
                "%s=%s: message is not one line: '%s'", key, value, err);
    FUZZ_CHECK (memchr (tiny, '\0', tinylen) != NULL
                && strncmp (tiny, err, strlen (tiny)) == 0,
                "%s=%s: truncated message '%s' is not a prefix of '%s'",
                key, value, tiny, err);
  }
  free (before.control);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct gs_config cfg, tiny_cfg;
  char *text = malloc (size + 1), *line, *end;
  char err[512];
  uint64_t word;
  bool ok;

  if (text == NULL)
    return 0;
  memcpy (text, data, size);
  text[size] = '\0';

  /* Any 64-bit value formats to something that parses back. */
  if (size >= 8) {
    char buf[32];
    uint64_t back;

    memcpy (&word, data, 8);
    word &= INT64_MAX;
    gs_format_size (word, buf, sizeof buf);
    FUZZ_CHECK (gs_parse_size (buf, &back) == 0 && back == word,
                "gs_format_size (%llu) = '%s'", (unsigned long long) word,
                buf);
  }

  gs_config_init (&cfg);
  gs_config_init (&tiny_cfg);
  for (line = text; line <= text + size; line = end + 1) {
    end = line;
    while (end < text + size && *end != '\n' && *end != '\0')
      end++;
    *end = '\0';
    set_line (&cfg, &tiny_cfg, line);
  }
  FUZZ_CHECK (config_eq (&cfg, &tiny_cfg), "the configurations differ");
  ok = gs_config_check (&cfg, err, sizeof err) == 0;
  FUZZ_CHECK (ok == (cfg.writeback_low < cfg.writeback_high),
              "gs_config_check %s with writeback %u..%u: %s",
              ok ? "accepts" : "refuses", cfg.writeback_low,
              cfg.writeback_high, ok ? "" : err);
  gs_config_free (&cfg);
  gs_config_free (&tiny_cfg);
  free (text);
  return 0;
}
