/* ghostswap fuzz harnesses: what tests/fuzz/fuzz-*.c share.
 *
 * Each harness defines LLVMFuzzerTestOneInput (and may define
 * LLVMFuzzerInitialize).  Linked with -fsanitize=fuzzer it is a libFuzzer
 * binary (fuzz-NAME); linked with replay.c it is replay-NAME, which runs
 * the files and directories named on its command line through the
 * harness once each: the corpus in tests/fuzz/corpus/NAME is replayed so
 * by a meson test in every build.
 *
 * A harness checks what it drives against an independent expectation and
 * calls FUZZ_FAIL (which aborts, so libFuzzer saves the input) on any
 * difference.
 */
#ifndef GHOSTSWAP_FUZZ_H
#define GHOSTSWAP_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);
int LLVMFuzzerInitialize (int *argc, char ***argv);

/* FUZZ_FAIL(fmt, ...): say what went wrong, then abort (libFuzzer then
 * saves the input as a crash). */
#define FUZZ_FAIL(...)                                                  \
  do {                                                                  \
    fprintf (stderr, "fuzz: check failed (%s:%d): ", __FILE__, __LINE__); \
    fprintf (stderr, __VA_ARGS__);                                      \
    fputc ('\n', stderr);                                               \
    abort ();                                                           \
  } while (0)

/* FUZZ_CHECK(cond, fmt, ...): unless @cond holds, say which check failed
 * and why, then abort. */
#define FUZZ_CHECK(cond, ...)                                           \
  do {                                                                  \
    if (!(cond)) {                                                      \
      fprintf (stderr, "fuzz: check failed: %s (%s:%d): ",              \
               #cond, __FILE__, __LINE__);                              \
      fprintf (stderr, __VA_ARGS__);                                    \
      fputc ('\n', stderr);                                             \
      abort ();                                                         \
    }                                                                   \
  } while (0)

#endif /* GHOSTSWAP_FUZZ_H */
