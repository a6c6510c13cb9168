/* SPDX-License-Identifier: BSD-3-Clause
 * Scope-bound cleanup: CLEANUP_FREE for heap pointers, and a lock held
 * until the end of the enclosing scope.
 */

#ifndef NBDKIT_CLEANUP_H
#define NBDKIT_CLEANUP_H

#include <pthread.h>
#include <stdlib.h>
#include <assert.h>

static inline void
cleanup_free (void *ptr)
{
  free (*(void **) ptr);
}
#define CLEANUP_FREE __attribute__ ((cleanup (cleanup_free)))

static inline void
cleanup_mutex_unlock (pthread_mutex_t **ptr)
{
  if (*ptr) {
    int r = pthread_mutex_unlock (*ptr);
    assert (r == 0);
  }
}

#define CLEANUP_CONCAT_(a, b) a##b
#define CLEANUP_CONCAT(a, b) CLEANUP_CONCAT_ (a, b)

/* Lock MUTEX now and unlock it when the current scope ends. */
#define ACQUIRE_LOCK_FOR_CURRENT_SCOPE(mutex)                           \
  __attribute__ ((cleanup (cleanup_mutex_unlock)))                      \
  pthread_mutex_t *CLEANUP_CONCAT (scoped_lock_, __LINE__) = (mutex);   \
  do {                                                                  \
    int r_ = pthread_mutex_lock (CLEANUP_CONCAT (scoped_lock_, __LINE__)); \
    assert (r_ == 0);                                                   \
  } while (0)

static inline void
cleanup_rwlock_unlock (pthread_rwlock_t **ptr)
{
  if (*ptr) {
    int r = pthread_rwlock_unlock (*ptr);
    assert (r == 0);
  }
}

#define ACQUIRE_RDLOCK_FOR_CURRENT_SCOPE(rwlock)                        \
  __attribute__ ((cleanup (cleanup_rwlock_unlock)))                     \
  pthread_rwlock_t *CLEANUP_CONCAT (scoped_rdlock_, __LINE__) = (rwlock); \
  do {                                                                  \
    int r_ = pthread_rwlock_rdlock (CLEANUP_CONCAT (scoped_rdlock_, __LINE__)); \
    assert (r_ == 0);                                                   \
  } while (0)

#define ACQUIRE_WRLOCK_FOR_CURRENT_SCOPE(rwlock)                        \
  __attribute__ ((cleanup (cleanup_rwlock_unlock)))                     \
  pthread_rwlock_t *CLEANUP_CONCAT (scoped_wrlock_, __LINE__) = (rwlock); \
  do {                                                                  \
    int r_ = pthread_rwlock_wrlock (CLEANUP_CONCAT (scoped_wrlock_, __LINE__)); \
    assert (r_ == 0);                                                   \
  } while (0)

#endif /* NBDKIT_CLEANUP_H */
