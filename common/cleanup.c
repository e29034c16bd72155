/* ghostswap: helpers behind the CLEANUP_* attributes. */
#include "cleanup.h"

/* cleanup_free - free(*ptr); for CLEANUP_FREE.
 * Context: any.  Return: nothing.
 */
void
cleanup_free (void *ptr)
{
  free (*(void **) ptr);
}

/* cleanup_mutex_unlock - unlock *ptr; for ACQUIRE_LOCK_FOR_CURRENT_SCOPE.
 * Context: caller holds *ptr.  Return: nothing.
 */
void
cleanup_mutex_unlock (pthread_mutex_t **ptr)
{
  pthread_mutex_unlock (*ptr);
}
