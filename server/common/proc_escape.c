/* ghostswapd, ghostswapctl: the kernel tables' octal escapes (see
 * proc_escape.h). */
#include "proc_escape.h"

/* proc_unescape - see proc_escape.h. */
void
proc_unescape (char *s)
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
