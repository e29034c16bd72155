/* ghostswap: the pattern table holds the 8-byte words of same-filled
 * pages that do not fit inline in an entry (see entry.h), refcounted and
 * deduplicated. */
#ifndef GHOSTSWAP_PATTERN_H
#define GHOSTSWAP_PATTERN_H

#include <pthread.h>
#include <stdint.h>

struct gs_patterns {
  pthread_mutex_t lock;   /* protects everything below */
  uint64_t *words;        /* index -> pattern */
  uint32_t *refs;         /* index -> number of entries using it (0: free) */
  uint32_t *hash;         /* open addressing: index + 1, 0 = empty */
  uint32_t capacity;      /* length of words/refs; hash has 2x */
  uint32_t count;         /* indexes in use */
  uint32_t next_unused;   /* indexes below this have been used once */
  uint32_t free_head;     /* free index list threaded through refs, + 1 */
};

/* gs_patterns_init - an empty table.  Context: any.  Return: nothing. */
void gs_patterns_init (struct gs_patterns *pt);

/* gs_patterns_destroy - free the table.  Context: no other call running.
 * Return: nothing. */
void gs_patterns_destroy (struct gs_patterns *pt);

/* gs_patterns_get - take a reference on @word, adding it if new.
 * Context: takes pt->lock; may allocate.
 * Return: 0 and *@index set, or -ENOMEM / -ENOSPC (2^32 patterns).
 */
int gs_patterns_get (struct gs_patterns *pt, uint64_t word, uint32_t *index);

/* gs_patterns_put - drop a reference taken by gs_patterns_get.
 * Context: takes pt->lock.  Return: nothing.
 */
void gs_patterns_put (struct gs_patterns *pt, uint32_t index);

/* gs_patterns_word - the word at @index, which the caller holds a
 * reference on.  Context: takes pt->lock.  Return: the word.
 */
uint64_t gs_patterns_word (struct gs_patterns *pt, uint32_t index);

/* gs_patterns_bytes - memory used by the table.  Context: takes pt->lock.
 * Return: bytes.
 */
uint64_t gs_patterns_bytes (struct gs_patterns *pt);

#endif /* GHOSTSWAP_PATTERN_H */
