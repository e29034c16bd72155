/* ghostswap service: the warning for a remote backing without TLS. */
#ifndef GHOSTSWAP_SERVICE_REMOTE_WARN_H
#define GHOSTSWAP_SERVICE_REMOTE_WARN_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "ghostswap/device.h"

/* Room enough for the message. */
#define GS_INSECURE_WARNING_MAX (PATH_MAX + 256)

/* gs_service_insecure_warning - if the attached backing @path is a remote
 * export reached over TCP without TLS (the engine's remote_insecure),
 * write the one-line warning the front ends log into @msg.
 * Context: takes the backing list lock.
 * Return: true if there is one to give.
 */
bool gs_service_insecure_warning (struct gs_device *dev, const char *path,
                                  char *msg, size_t len);

#endif /* GHOSTSWAP_SERVICE_REMOTE_WARN_H */
