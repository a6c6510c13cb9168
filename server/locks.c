/* SPDX-License-Identifier: BSD-3-Clause
 * The thread model: the locks that serialize connections or requests
 * according to the most restrictive model in the chain.
 */

#include <config.h>

#include <assert.h>
#include <pthread.h>

#include "internal.h"

int thread_model = -1;

static pthread_mutex_t connection_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t all_requests_lock = PTHREAD_MUTEX_INITIALIZER;

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

/* Unloading needs no lock of its own on the request path: main.c only
 * unloads once every connection thread has ended, and does not unload
 * at all if one is stuck.
 */
void
lock_request (void)
{
  if (thread_model <= NBDKIT_THREAD_MODEL_SERIALIZE_ALL_REQUESTS)
    pthread_mutex_lock (&all_requests_lock);
}

void
unlock_request (void)
{
  if (thread_model <= NBDKIT_THREAD_MODEL_SERIALIZE_ALL_REQUESTS)
    pthread_mutex_unlock (&all_requests_lock);
}
