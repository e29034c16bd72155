/* ghostswap service: the one start-up path of every front end.
 *
 * The nbdkit plugin and ghostswapd start a device the same way, through
 * these calls, in this order:
 *
 *   gs_service_harden         before any thread (see harden.h)
 *   gs_service_create_device  the device and its backing= files
 *   gs_device_start           (the engine's thread; after any fork)
 *   gs_service_start          name, control socket, metrics listener
 *   ...serve, timing each request into a struct gs_latency...
 *   gs_service_stop, gs_device_destroy
 *
 * Names: a device's name is name=NAME, else the base name of control=PATH
 * without ".sock", else the front end's default (ghostswapd: its mount
 * point's base name; the plugin: ghostswap-PID).  Its control socket is
 * control=PATH, else GS_CONTROL_DEFAULT_DIR/NAME.sock (a failure to open
 * that default one is only a warning); the name labels its metrics.
 *
 * Messages go through the front end's @log, one line each, without a
 * trailing newline; errors are also returned as -errno.
 */
#ifndef GHOSTSWAP_SERVICE_SERVICE_H
#define GHOSTSWAP_SERVICE_SERVICE_H

#include "ghostswap/config.h"
#include "ghostswap/device.h"
#include "ghostswap/service/latency.h"
#include "ghostswap/service/metrics.h"

enum gs_log_level { GS_LOG_ERROR, GS_LOG_WARNING, GS_LOG_INFO, GS_LOG_DEBUG };

/* A front end's logger: one message, no newline. */
typedef void (*gs_log_fn) (enum gs_log_level level, const char *msg);

struct gs_service;

struct gs_service_params {
  const char *frontend;         /* "nbd" (the plugin) or "fuse" (ghostswapd) */
  const char *transport;        /* as gs_service_set_transport; NULL: "none" */
  gs_transport_fn transport_fn; /* NULL, or the transport serving now
                                 * (ghostswapd: uring or dev), asked
                                 * whenever info is shown */
  void *transport_arg;
  const char *default_name;     /* when neither name= nor control= gives one */
  struct gs_latency *latency;   /* the front end's recorder (may be NULL) */
  gs_log_fn log;
};

/* gs_service_harden - gs_harden_process, then one message per measure:
 * GS_LOG_DEBUG when applied, a GS_LOG_WARNING naming the risk when not.
 * Context: before any thread is created (harden.h).  Return: nothing.
 */
void gs_service_harden (gs_log_fn log);

/* gs_service_create_device - create the device @cfg describes and attach
 * its backing= files (created at backing-size= if missing).  On error
 * nothing is left behind and the message has gone to @log.
 * Context: may sleep.
 * Return: 0 and *@devp set, or -errno.
 */
int gs_service_create_device (const struct gs_config *cfg, gs_log_fn log,
                              struct gs_device **devp);

/* gs_service_withdraw_backings - for a start that fails after
 * gs_service_create_device: detach every backing= of @cfg, removing the
 * files this start created (nothing was written to them yet).
 * Context: no request running; may sleep.  Return: nothing.
 */
void gs_service_withdraw_backings (struct gs_device *dev,
                                   const struct gs_config *cfg);

/* gs_service_start - name the device, open its control socket (unless
 * control=none) and its metrics listener (metrics-listen=).
 * Context: starts threads (call after any fork, after gs_device_start);
 * every signal is blocked in them.
 * Return: 0 and *@svcp set, or -errno (after a GS_LOG_ERROR message).
 */
int gs_service_start (struct gs_device *dev, const struct gs_config *cfg,
                      const struct gs_service_params *params,
                      struct gs_service **svcp);

/* gs_service_stop - close the control socket and the listener; @svc
 * NULL: nothing.
 * Context: may sleep.  Return: nothing.
 */
void gs_service_stop (struct gs_service *svc);

/* gs_service_set_transport - how clients reach the device, for the
 * ghostswap_info metric ("unix", "tcp", "vsock", "fuse", ...): a static
 * string.
 * Context: any.  Return: nothing.
 */
void gs_service_set_transport (struct gs_service *svc, const char *transport);

#endif /* GHOSTSWAP_SERVICE_SERVICE_H */
