/* SPDX-License-Identifier: BSD-3-Clause
 * The server as a library for the libFuzzer targets (tests/fuzz/): set a
 * chain up once as main.c does, then serve one client per call over a
 * socket, in process.  Built only with -Dfuzzing=true.
 */

#include <config.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "fuzz-entry.h"

/* What main.c defines in the nbdkit program, with the same defaults
 * except no handshake timeout (nothing here runs the main loop's timer,
 * and the harness's client never stalls).
 */
struct config config = {
  .address_family = AF_UNSPEC,
  .mask_handshake = ~0U,
  .control_fd = -1,
  .max_connections = DEFAULT_MAX_CONNECTIONS,
};
struct backend *top;

/* Parameter keys, which modules may keep (nbdkit-plugin(3)). */
static string_vector config_keys = empty_vector;

/* Open module NAME of TYPE ("plugin" or "filter") from the build tree
 * and return its registration function (SYMBOL).
 */
static void *
open_build_tree_module (const char *name, const char *type,
                        const char *symbol, char **filename, void **dl)
{
  void *init;

  if (asprintf (filename, "%s/%ss/%s/nbdkit-%s-%s.so",
                BUILDDIR, type, name, name, type) == -1) {
    perror ("asprintf");
    exit (EXIT_FAILURE);
  }
  *dl = dlopen (*filename, RTLD_NOW | RTLD_GLOBAL);
  if (*dl == NULL) {
    fprintf (stderr, "fuzz: cannot open %s: %s\n", *filename, dlerror ());
    exit (EXIT_FAILURE);
  }
  init = dlsym (*dl, symbol);
  if (init == NULL) {
    fprintf (stderr, "fuzz: %s: no %s\n", *filename, symbol);
    exit (EXIT_FAILURE);
  }
  return init;
}

static void
load_chain (const char *plugin, const char *const *filters)
{
  struct nbdkit_plugin *(*plugin_init) (void);
  struct nbdkit_filter *(*filter_init) (void);
  char *filename;
  void *dl;
  size_t n = 0, i;

  *(void **) &plugin_init =
    open_build_tree_module (plugin, "plugin", "plugin_init", &filename, &dl);
  top = plugin_register (0, filename, dl, plugin_init);
  free (filename);

  while (filters[n] != NULL)
    n++;
  /* The first filter named is the outermost, so register it last. */
  for (i = n; i-- > 0; ) {
    *(void **) &filter_init =
      open_build_tree_module (filters[i], "filter", "filter_init",
                              &filename, &dl);
    top = filter_register (top, n - i, filename, dl, filter_init);
    free (filename);
  }
}

void
fuzz_server_init (const char *plugin, const char *const *filters,
                  const char *const *params, const char *tls_psk)
{
  config.program_name = "nbdkit";
  config.foreground = true;
  config.threads = 1;
  if (getenv ("NBDKIT_FUZZ_VERBOSE") == NULL)
    config.log_to = LOG_TO_NULL;

  load_chain (plugin, filters);
  for (; *params != NULL; params++) {
    char *key;
    const char *value;

    if (parse_plugin_key_value (*params, &key, &value) == -1) {
      fprintf (stderr, "fuzz: expected KEY=VALUE: %s\n", *params);
      exit (EXIT_FAILURE);
    }
    if (string_vector_append (&config_keys, key) == -1) {
      perror ("realloc");
      exit (EXIT_FAILURE);
    }
    top->config (top, key, value);
  }
  top->config_complete (top);

  lock_init_thread_model ();
  if (tls_psk) {
    config.tls = TLS_ON;
    config.tls_psk = tls_psk;
    if (tls_init () == -1)
      exit (EXIT_FAILURE);
  }
  free_debug_flags ();
  top->get_ready (top);
  server_ready ();
}

/* The client side of every input runs in one thread, made once, and the
 * server serves the connection in the caller's thread: a thread created
 * per input cost more than the input itself (ASan's thread set-up, and
 * the unmapping of its stack on every exit).
 */
static pthread_mutex_t job_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t job_cond = PTHREAD_COND_INITIALIZER;
static void (*job_client) (void *opaque);
static void *job_opaque;
static bool job_done;

static void *
client_loop (void *unused)
{
  for (;;) {
    void (*client) (void *);
    void *opaque;

    pthread_mutex_lock (&job_lock);
    while (job_client == NULL)
      pthread_cond_wait (&job_cond, &job_lock);
    client = job_client;
    opaque = job_opaque;
    pthread_mutex_unlock (&job_lock);

    client (opaque);

    pthread_mutex_lock (&job_lock);
    job_client = NULL;
    job_done = true;
    pthread_cond_broadcast (&job_cond);
    pthread_mutex_unlock (&job_lock);
  }
  return NULL;
}

void
fuzz_server_serve (int sock, void (*client) (void *opaque), void *opaque)
{
  static bool started;
  pthread_t thread;

  if (!started) {
    if (pthread_create (&thread, NULL, client_loop, NULL) != 0)
      abort ();
    started = true;
  }
  pthread_mutex_lock (&job_lock);
  job_client = client;
  job_opaque = opaque;
  job_done = false;
  pthread_cond_broadcast (&job_cond);
  pthread_mutex_unlock (&job_lock);

  if (!connection_serve_here (sock, sock))
    abort ();

  /* The server has closed its end; the client sees the end and stops. */
  pthread_mutex_lock (&job_lock);
  while (!job_done)
    pthread_cond_wait (&job_cond, &job_lock);
  pthread_mutex_unlock (&job_lock);
}
