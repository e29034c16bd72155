/* ghostswapd, ghostswapctl: the mount table (see mountinfo.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mountinfo.h"

/* unescape - undo the table's octal escapes (\040 ...) in place. */
static void
unescape (char *s)
{
  char *out = s;

  while (*s) {
    if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3'
        && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
      *out++ = (char) ((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
      s += 4;
    }
    else
      *out++ = *s++;
  }
  *out = '\0';
}

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
    unescape (f[4]);
    if (strcmp (f[4], dir) != 0)
      continue;
    type = strtok_r (dash + 3, " ", &save);
    snprintf (fstype, len, "%s", type ? type : "?");
    found = 1;
  }
  fclose (fp);
  return found;
}
