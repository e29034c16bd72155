/* ghostswapd: find swap areas and loop devices on our file (see
 * swap_use.h). */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "swap_use.h"
#include "proc_escape.h"

/* backing_file_is - does the loop device whose sysfs directory is @sysdir
 * (".../loop3", or "/sys/dev/block/7:3") have @file as its backing file?
 * The kernel appends " (deleted)" to unlinked files' paths. */
static bool
backing_file_is (const char *sysdir, const char *file)
{
  char path[512], line[4096];
  size_t n, flen = strlen (file);
  FILE *fp;

  snprintf (path, sizeof path, "%s/loop/backing_file", sysdir);
  fp = fopen (path, "re");
  if (fp == NULL)
    return false;               /* not a loop device, or not attached */
  if (fgets (line, sizeof line, fp) == NULL)
    line[0] = '\0';
  fclose (fp);
  n = strlen (line);
  if (n > 0 && line[n - 1] == '\n')
    line[--n] = '\0';
  return strncmp (line, file, flen) == 0
    && (line[flen] == '\0' || strcmp (line + flen, " (deleted)") == 0);
}

/* swap_use_active - see swap_use.h. */
int
swap_use_active (const char *file, char *what, size_t whatlen)
{
  FILE *fp = fopen ("/proc/swaps", "re");
  char line[4096], name[4096], sysdir[64];
  struct stat st;
  int found = 0;

  if (fp == NULL)
    return -errno;
  if (fgets (line, sizeof line, fp) == NULL) {   /* the header line */
    fclose (fp);
    return 0;
  }
  while (!found && fgets (line, sizeof line, fp) != NULL) {
    if (sscanf (line, "%4095s", name) != 1)
      continue;
    proc_unescape (name);
    if (strcmp (name, file) == 0)
      found = 1;
    else if (stat (name, &st) == 0 && S_ISBLK (st.st_mode)) {
      snprintf (sysdir, sizeof sysdir, "/sys/dev/block/%u:%u",
                major (st.st_rdev), minor (st.st_rdev));
      found = backing_file_is (sysdir, file);
    }
    if (found)
      snprintf (what, whatlen, "%s", name);
  }
  fclose (fp);
  return found;
}

/* swap_use_loops - see swap_use.h. */
int
swap_use_loops (const char *file, char *list, size_t listlen)
{
  DIR *d = opendir ("/sys/block");
  struct dirent *de;
  char sysdir[512];
  size_t used = 0;
  int count = 0;

  if (listlen > 0)
    list[0] = '\0';
  if (d == NULL)
    return 0;
  while ((de = readdir (d)) != NULL) {
    if (strncmp (de->d_name, "loop", 4) != 0)
      continue;
    snprintf (sysdir, sizeof sysdir, "/sys/block/%s", de->d_name);
    if (!backing_file_is (sysdir, file))
      continue;
    count++;
    if (used < listlen) {
      int n = snprintf (list + used, listlen - used, "%s/dev/%s",
                        used > 0 ? " " : "", de->d_name);
      if (n > 0)
        used += (size_t) n;
    }
  }
  closedir (d);
  return count;
}
