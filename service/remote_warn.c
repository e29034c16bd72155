/* ghostswap service: the warning for a remote backing without TLS
 * (remote_warn.h). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ghostswap/backing.h"
#include "remote_warn.h"

/* gs_service_insecure_warning - see remote_warn.h. */
bool
gs_service_insecure_warning (struct gs_device *dev, const char *path,
                             char *msg, size_t len)
{
  struct gs_backing_info *b = calloc (GS_MAX_BACKINGS, sizeof *b);
  bool found = false;
  unsigned i, n;

  if (!b)
    return false;
  n = gs_backing_list (dev, b, GS_MAX_BACKINGS);
  for (i = 0; i < n && i < GS_MAX_BACKINGS; i++)
    if (strcmp (b[i].path, path) == 0 && b[i].remote_insecure) {
      snprintf (msg, len, "backing %s: a remote reached over TCP without "
                "TLS: the channel's integrity and the export's "
                "availability are not protected, page contents only by "
                "encrypt= (on by default); use nbds:// with tls-psk= or "
                "tls-certificates=", path);
      found = true;
    }
  free (b);
  return found;
}
