/* ghostswap-generator: /etc/ghostswap/ghostswap.conf and its drop-ins.
 *
 * INI sections, one per device, as zram-generator.conf: "[NAME]" then
 * "key = value" lines; '#' and ';' start comment lines.  The main file is
 * read first, then the files ghostswap.conf.d/FILE.conf in lexical order; a key in a
 * later file replaces the value of an earlier one (backing, which may be
 * given several times in one file, replaces the earlier files' list; an
 * empty value resets a key to its default).  See docs/ghostswap.conf.pod.
 */
#ifndef GHOSTSWAP_GEN_CONFIG_H
#define GHOSTSWAP_GEN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define GEN_NAME_MAX 64

/* One key = value line, as it stands after merging. */
struct gen_kv {
  char *key, *value;
  const char *file;             /* where it was given (static for the run) */
  unsigned line;
  unsigned file_index;
};

/* A device: its section, merged over every file. */
struct gen_section {
  char name[GEN_NAME_MAX + 1];
  const char *file;             /* where it first appears */
  unsigned line;
  struct gen_kv *kv;
  size_t nkv;
  bool bad;                     /* a syntax error in it: not generated */
};

struct gen_config {
  struct gen_section *sec;
  size_t nsec;
  char **files;                 /* the files read (owned) */
  size_t nfiles;
};

/* A message callback: @warning or error, one line (no newline). */
typedef void (*gen_log_fn) (bool warning, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));

/* gen_config_read - read @root/etc/ghostswap/ghostswap.conf and its
 * drop-ins into @cfg.  Syntax errors are logged; the section they are in
 * is marked bad (a line outside any section is an error of its own).
 * Context: reads files.
 * Return: the number of errors (0: all fine), or -errno if a file cannot
 * be read (also logged).
 */
int gen_config_read (const char *root, struct gen_config *cfg,
                     gen_log_fn log);

/* gen_section_get - the value of @key in @s (the last one given), or NULL.
 * Context: any.  Return: it.
 */
const char *gen_section_get (const struct gen_section *s, const char *key);

/* gen_config_free - free what gen_config_read built.
 * Context: any.  Return: nothing.
 */
void gen_config_free (struct gen_config *cfg);

#endif /* GHOSTSWAP_GEN_CONFIG_H */
