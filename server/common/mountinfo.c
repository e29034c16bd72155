/* ghostswapd, ghostswapctl: the mount table (see mountinfo.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mountinfo.h"
#include "proc_escape.h"

/* mountinfo_fstype - see mountinfo.h.  Lines: ID PARENT MAJ:MIN ROOT
 * MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS; later
 * lines are mounted over earlier ones. */
int
mountinfo_fstype (const char *dir, char *fstype, size_t len)
{
  FILE *fp = fopen ("/proc/self/mountinfo", "re");
  char line[8192], *f[5], *dash, *save = NULL, *type;
  int found = 0, i;

  if (fp == NULL)
    return -errno;
  while (fgets (line, sizeof line, fp)) {
    dash = strstr (line, " - ");
    if (dash == NULL)
      continue;
    *dash = '\0';
    f[0] = strtok_r (line, " ", &save);
    for (i = 1; i < 5 && f[i - 1]; i++)
      f[i] = strtok_r (NULL, " ", &save);
    if (f[4] == NULL)
      continue;
    proc_unescape (f[4]);
    if (strcmp (f[4], dir) != 0)
      continue;
    type = strtok_r (dash + 3, " ", &save);
    snprintf (fstype, len, "%s", type ? type : "?");
    found = 1;
  }
  fclose (fp);
  return found;
}
