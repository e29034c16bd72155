/* ghostswap: scope-bound cleanup, as nbdkit's common/include/cleanup.h. */
#ifndef GHOSTSWAP_CLEANUP_H
#define GHOSTSWAP_CLEANUP_H

#include <pthread.h>
#include <stdlib.h>

void cleanup_free (void *ptr);
#define CLEANUP_FREE __attribute__ ((cleanup (cleanup_free)))

void cleanup_mutex_unlock (pthread_mutex_t **ptr);
#define CLEANUP_MUTEX_UNLOCK __attribute__ ((cleanup (cleanup_mutex_unlock)))

#define GS_CONCAT_(a, b) a##b
#define GS_CONCAT(a, b) GS_CONCAT_ (a, b)

/* Hold @mutex until the end of the enclosing scope. */
#define ACQUIRE_LOCK_FOR_CURRENT_SCOPE(mutex)                           \
  CLEANUP_MUTEX_UNLOCK pthread_mutex_t *GS_CONCAT (_lock_, __LINE__) =  \
    (mutex);                                                            \
  pthread_mutex_lock (GS_CONCAT (_lock_, __LINE__))

#endif /* GHOSTSWAP_CLEANUP_H */
