/* ghostswap: the control protocol, shared by the server (the service
 * library, include/ghostswap/service/control.h) and its clients
 * (ghostswapctl).  Nothing here is code: the engine does not serve
 * sockets.
 *
 * A Unix stream socket (mode 0600) that accepts peers whose uid is root or
 * the server's own (SO_PEERCRED).  Each request is one line of words;
 * each answer is one line of JSON: {"ok":true,...} or
 * {"ok":false,"error":"..."}.  See docs/ghostswapctl.pod for the commands.
 */
#ifndef GHOSTSWAP_CONTROL_H
#define GHOSTSWAP_CONTROL_H

/* Longest request line accepted, newline included. */
#define GS_CONTROL_MAX_REQUEST 4096

/* Default socket directory.  A device's socket is GS_CONTROL_DEFAULT_DIR
 * "/NAME.sock" unless control=PATH names another (NAME: the name= key,
 * see include/ghostswap/service/service.h). */
#define GS_CONTROL_DEFAULT_DIR "/run/ghostswap"

#endif /* GHOSTSWAP_CONTROL_H */
