/* SPDX-License-Identifier: BSD-3-Clause
 * The thread model: the locks that serialize connections or requests
 * according to the most restrictive model in the chain, and the unload
 * lock that keeps the plugin loaded while any request runs.
 */

#include <config.h>

#include <assert.h>
#include <pthread.h>

#include "internal.h"

int thread_model = -1;

static pthread_mutex_t connection_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t all_requests_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t unload_lock = PTHREAD_RWLOCK_INITIALIZER;

const char *
name_of_thread_model (int model)
{
  switch (model) {
  case NBDKIT_THREAD_MODEL_SERIALIZE_CONNECTIONS:
    return "serialize_connections";
  case NBDKIT_THREAD_MODEL_SERIALIZE_ALL_REQUESTS:
    return "serialize_all_requests";
  case NBDKIT_THREAD_MODEL_SERIALIZE_REQUESTS:
    return "serialize_requests";
  case NBDKIT_THREAD_MODEL_PARALLEL:
    return "parallel";
  default:
    return "unknown";
  }
}

/* The chain runs at the most restrictive model of any layer. */
void
lock_init_thread_model (void)
{
  struct backend *b;

  thread_model = NBDKIT_THREAD_MODEL_PARALLEL;
  for_each_backend (b) {
    int m = b->thread_model (b);
    if (m < thread_model)
      thread_model = m;
  }
}

void
lock_connection (void)
{
  if (thread_model <= NBDKIT_THREAD_MODEL_SERIALIZE_CONNECTIONS)
    pthread_mutex_lock (&connection_lock);
}

void
unlock_connection (void)
{
  if (thread_model <= NBDKIT_THREAD_MODEL_SERIALIZE_CONNECTIONS)
    pthread_mutex_unlock (&connection_lock);
}

void
lock_request (void)
{
  if (thread_model <= NBDKIT_THREAD_MODEL_SERIALIZE_ALL_REQUESTS)
    pthread_mutex_lock (&all_requests_lock);
  pthread_rwlock_rdlock (&unload_lock);
}

void
unlock_request (void)
{
  pthread_rwlock_unlock (&unload_lock);
  if (thread_model <= NBDKIT_THREAD_MODEL_SERIALIZE_ALL_REQUESTS)
    pthread_mutex_unlock (&all_requests_lock);
}

void
lock_unload (void)
{
  pthread_rwlock_wrlock (&unload_lock);
}

void
unlock_unload (void)
{
  pthread_rwlock_unlock (&unload_lock);
}
