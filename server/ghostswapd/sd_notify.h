/* ghostswapd: the systemd readiness protocol, without libsystemd.
 *
 * systemd passes a datagram socket in $NOTIFY_SOCKET to services of
 * Type=notify; a service sends "READY=1" there once it serves.  The
 * protocol is a single sendto, so a few lines here spare the daemon a
 * library dependency (sd_notify(3) describes the same protocol). */
#ifndef GHOSTSWAPD_SD_NOTIFY_H
#define GHOSTSWAPD_SD_NOTIFY_H

/* notify_systemd - send @state (newline-separated VAR=VALUE assignments,
 * e.g. "READY=1" or "STATUS=...") to $NOTIFY_SOCKET.  Abstract socket
 * names start with '@'.
 * Context: any.
 * Return: 1 sent, 0 no $NOTIFY_SOCKET (not run by systemd), or -errno.
 */
int notify_systemd (const char *state);

#endif /* GHOSTSWAPD_SD_NOTIFY_H */
