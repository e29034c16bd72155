/* ghostswap: pattern table for wide same-filled words. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "pattern.h"

/* gs_patterns_init - see pattern.h. */
void
gs_patterns_init (struct gs_patterns *pt)
{
  memset (pt, 0, sizeof *pt);
  pthread_mutex_init (&pt->lock, NULL);
}

/* gs_patterns_destroy - see pattern.h. */
void
gs_patterns_destroy (struct gs_patterns *pt)
{
  free (pt->words);
  free (pt->refs);
  free (pt->hash);
  pthread_mutex_destroy (&pt->lock);
}

static uint32_t
hash_word (uint64_t w, uint32_t mask)
{
  w ^= w >> 33;
  w *= 0xff51afd7ed558ccdull;
  w ^= w >> 33;
  return (uint32_t) w & mask;
}

/* Find @word's hash bucket: the one holding it or the empty one where it
 * would go. */
static uint32_t *
bucket (struct gs_patterns *pt, uint64_t word)
{
  uint32_t mask = pt->capacity * 2 - 1;
  uint32_t h = hash_word (word, mask);

  while (pt->hash[h] != 0 && pt->words[pt->hash[h] - 1] != word)
    h = (h + 1) & mask;
  return &pt->hash[h];
}

/* Free indexes are chained through refs[]: the high bit marks a free
 * index, the rest is the next free index + 1 (0 ends the chain). */
#define FREE_MARK 0x80000000u

/* Rebuild the hash from the live words (after growing). */
static void
rehash (struct gs_patterns *pt)
{
  uint32_t i;

  memset (pt->hash, 0, sizeof (uint32_t) * pt->capacity * 2);
  for (i = 0; i < pt->next_unused; i++)
    if ((pt->refs[i] & FREE_MARK) == 0)
      *bucket (pt, pt->words[i]) = i + 1;
}

/* Remove @word from the hash, shifting later members of its probe run
 * back so that no tombstone is needed. */
static void
unhash (struct gs_patterns *pt, uint64_t word)
{
  uint32_t mask = pt->capacity * 2 - 1;
  uint32_t *b = bucket (pt, word);
  uint32_t hole = (uint32_t) (b - pt->hash), j = hole, home;

  for (;;) {
    j = (j + 1) & mask;
    if (pt->hash[j] == 0)
      break;
    home = hash_word (pt->words[pt->hash[j] - 1], mask);
    /* Leave it if its home lies cyclically in (hole, j]. */
    if (hole <= j ? (home > hole && home <= j) : (home > hole || home <= j))
      continue;
    pt->hash[hole] = pt->hash[j];
    hole = j;
  }
  pt->hash[hole] = 0;
}

static int
grow (struct gs_patterns *pt)
{
  uint32_t cap = pt->capacity ? pt->capacity * 2 : 64;
  uint64_t *words;
  uint32_t *refs, *hash;

  if (cap == 0 || cap > (1u << 30))
    return -ENOSPC;
  words = realloc (pt->words, sizeof *words * cap);
  if (!words)
    return -ENOMEM;
  pt->words = words;
  refs = realloc (pt->refs, sizeof *refs * cap);
  if (!refs)
    return -ENOMEM;
  pt->refs = refs;
  hash = malloc (sizeof *hash * cap * 2);
  if (!hash)
    return -ENOMEM;
  free (pt->hash);
  pt->hash = hash;
  pt->capacity = cap;
  rehash (pt);
  return 0;
}

/* gs_patterns_get - see pattern.h. */
int
gs_patterns_get (struct gs_patterns *pt, uint64_t word, uint32_t *index)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&pt->lock);
  uint32_t *b, i;
  int r;

  if (pt->capacity > 0) {
    b = bucket (pt, word);
    if (*b != 0) {
      i = *b - 1;
      if (pt->refs[i] == FREE_MARK - 1)
        return -ENOSPC;
      pt->refs[i]++;
      *index = i;
      return 0;
    }
  }
  if (pt->free_head == 0 && pt->next_unused == pt->capacity) {
    r = grow (pt);
    if (r < 0)
      return r;
  }
  if (pt->free_head != 0) {
    i = pt->free_head - 1;
    pt->free_head = pt->refs[i] & ~FREE_MARK;
  }
  else
    i = pt->next_unused++;
  pt->words[i] = word;
  pt->refs[i] = 1;
  pt->count++;
  *bucket (pt, word) = i + 1;
  *index = i;
  return 0;
}

/* gs_patterns_put - see pattern.h. */
void
gs_patterns_put (struct gs_patterns *pt, uint32_t index)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&pt->lock);

  if (--pt->refs[index] != 0)
    return;
  unhash (pt, pt->words[index]);
  pt->refs[index] = FREE_MARK | pt->free_head;
  pt->free_head = index + 1;
  pt->count--;
}

/* gs_patterns_word - see pattern.h. */
uint64_t
gs_patterns_word (struct gs_patterns *pt, uint32_t index)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&pt->lock);

  return pt->words[index];
}

/* gs_patterns_bytes - see pattern.h. */
uint64_t
gs_patterns_bytes (struct gs_patterns *pt)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&pt->lock);

  return (uint64_t) pt->capacity * (sizeof (uint64_t) + 3 * sizeof (uint32_t));
}
