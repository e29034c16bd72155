/* ghostswapctl: printing answers for people (tables, sizes, drains). */
#ifndef GHOSTSWAPCTL_OUTPUT_H
#define GHOSTSWAPCTL_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctl_json.h"

/* ctl_size_long - @bytes as "64.0 MiB" (under 1 KiB: "512 B").
 * Context: any.  Return: @buf.
 */
const char *ctl_size_long (uint64_t bytes, char *buf, size_t len);

/* ctl_size_short - @bytes as zramctl writes them ("64M", "1.5G", "0B"),
 * or as a plain number of bytes if @exact.
 * Context: any.  Return: @buf.
 */
const char *ctl_size_short (uint64_t bytes, bool exact, char *buf, size_t len);

/* A table printed with aligned columns. */
struct ctl_table {
  size_t ncols;
  const char *const *head;      /* column titles */
  const bool *left;             /* left-aligned columns (else right) */
  char **cells;                 /* nrows * ncols, malloc'd strings */
  size_t nrows;
};

/* ctl_table_add - append a row of @t->ncols cells (printf'd strings
 * copied).  Exits on out of memory.
 * Context: any.  Return: nothing.
 */
void ctl_table_add (struct ctl_table *t, const char *const *row);

/* ctl_table_print - print @t (with its header unless @noheadings) and
 * free its cells.
 * Context: any.  Return: nothing.
 */
void ctl_table_print (struct ctl_table *t, bool noheadings);

/* ctl_print_stats - the "stats" object as "key  value" lines.
 * Context: any.  Return: nothing.
 */
void ctl_print_stats (json_object *stats, bool exact);

/* ctl_print_backings - the "backings" array as a table.
 * Context: any.  Return: nothing.
 */
void ctl_print_backings (json_object *list, bool exact, bool noheadings);

/* ctl_drain_line - one line (no newline) about the finished drain @d into
 * @buf: "drained X: ..." or "drain of X failed: ...".
 * Context: any.  Return: 0 if it succeeded (or none ran), 1 if it failed.
 */
int ctl_drain_line (json_object *d, char *buf, size_t len);

/* ctl_print_drain_status - "drain: ..." for the running or last drain.
 * Context: any.  Return: 0, or 1 if the last drain failed.
 */
int ctl_print_drain_status (json_object *d);

/* ctl_draw_bar - the progress of the running drain @d, redrawn in place.
 * Context: any.  Return: nothing.
 */
void ctl_draw_bar (json_object *d);

#endif /* GHOSTSWAPCTL_OUTPUT_H */
