/* SPDX-License-Identifier: BSD-3-Clause
 * The client side of the fuzz targets: one socketpair per input, the
 * server serving the other end in its own thread, the input pumped in
 * while the replies are drained, so that neither side can block the
 * other.  Also the plugin reset between inputs.
 */

#include <config.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <endian.h>
#include <sys/socket.h>

#include <gnutls/gnutls.h>

#include "internal.h"
#include "nbd-protocol.h"
#include "fuzz-entry.h"
#include "fuzz-harness.h"

/* One client connection being pumped. */
struct client {
  int fd;
  gnutls_session_t session;     /* NULL: plain socket */
  const uint8_t *out;           /* still to send */
  size_t out_len;
};

/* What a send or receive did: bytes moved, or one of these. */
#define IO_AGAIN (-1)
#define IO_END   (-2)

static ssize_t
client_send (struct client *c)
{
  ssize_t r;

  if (c->session) {
    r = gnutls_record_send (c->session, c->out, c->out_len);
    if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
      return IO_AGAIN;
    return r < 0 ? IO_END : r;
  }
  r = send (c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (r == -1 && (errno == EAGAIN || errno == EINTR))
    return IO_AGAIN;
  return r < 0 ? IO_END : r;
}

static ssize_t
client_recv (struct client *c, void *buf, size_t len)
{
  ssize_t r;

  if (c->session) {
    r = gnutls_record_recv (c->session, buf, len);
    if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
      return IO_AGAIN;
    return r <= 0 ? IO_END : r;
  }
  r = recv (c->fd, buf, len, MSG_DONTWAIT);
  if (r == -1 && (errno == EAGAIN || errno == EINTR))
    return IO_AGAIN;
  return r <= 0 ? IO_END : r;
}

/* Send everything, then half-close, while draining replies until the
 * server closes.
 */
static void
pump (struct client *c)
{
  static char buf[65536];
  bool shut = false;

  for (;;) {
    ssize_t r;

    if (c->out_len == 0 && !shut) {
      if (c->session)
        gnutls_bye (c->session, GNUTLS_SHUT_WR);
      shutdown (c->fd, SHUT_WR);
      shut = true;
    }
    if (!c->session || gnutls_record_check_pending (c->session) == 0) {
      struct pollfd p = {
        .fd = c->fd,
        .events = POLLIN | (c->out_len ? POLLOUT : 0),
      };
      if (poll (&p, 1, -1) == -1 && errno != EINTR)
        abort ();
    }
    r = client_recv (c, buf, sizeof buf);
    if (r == IO_END)
      return;
    if (c->out_len) {
      r = client_send (c);
      if (r == IO_END)
        c->out_len = 0;         /* the server stopped reading */
      else if (r > 0) {
        c->out += r;
        c->out_len -= r;
      }
    }
  }
}

static void
pump_client (void *vc)
{
  pump (vc);
}

void
fuzz_exchange (const uint8_t *prefix, size_t prefix_len,
               const uint8_t *data, size_t len)
{
  uint8_t *all = malloc (prefix_len + len + 1);
  struct client c = { .out = all, .out_len = prefix_len + len };
  int sv[2];

  if (all == NULL ||
      socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
    abort ();
  if (prefix_len)
    memcpy (all, prefix, prefix_len);
  if (len)
    memcpy (all + prefix_len, data, len);
  c.fd = sv[0];
  fuzz_server_serve (sv[1], pump_client, &c);
  close (sv[0]);
  free (all);
}

/* Blocking helpers for the plain part before STARTTLS.  libFuzzer's
 * SIGALRM (its -timeout watchdog) may interrupt them.
 */
static bool
send_all (int fd, const void *buf, size_t len)
{
  const char *p = buf;

  while (len > 0) {
    ssize_t r = send (fd, p, len, MSG_NOSIGNAL);
    if (r == -1 && errno == EINTR)
      continue;
    if (r <= 0)
      return false;
    p += r;
    len -= r;
  }
  return true;
}

static bool
recv_all (int fd, void *buf, size_t len)
{
  char *p = buf;

  while (len > 0) {
    ssize_t r = recv (fd, p, len, 0);
    if (r == -1 && errno == EINTR)
      continue;
    if (r <= 0)
      return false;
    p += r;
    len -= r;
  }
  return true;
}

/* Client flags and NBD_OPT_STARTTLS; true if the server said yes. */
static bool
negotiate_starttls (int fd)
{
  struct nbd_new_handshake greeting;
  struct nbd_fixed_new_option_reply reply;
  uint32_t flags = htobe32 (NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
  struct nbd_new_option opt = {
    .version = htobe64 (NBD_NEW_VERSION),
    .option = htobe32 (NBD_OPT_STARTTLS),
    .optlen = 0,
  };

  return recv_all (fd, &greeting, sizeof greeting) &&
    send_all (fd, &flags, sizeof flags) &&
    send_all (fd, &opt, sizeof opt) &&
    recv_all (fd, &reply, sizeof reply) &&
    be32toh (reply.reply) == NBD_REP_ACK && reply.replylen == 0;
}

struct tls_client {
  struct client c;
  bool ok;
};

static void
tls_client (void *vt)
{
  struct tls_client *t = vt;
  struct client *c = &t->c;
  gnutls_psk_client_credentials_t creds;
  const gnutls_datum_t key = {
    .data = (unsigned char *) FUZZ_PSK_KEY,
    .size = strlen (FUZZ_PSK_KEY),
  };
  int r;

  if (!negotiate_starttls (c->fd)) {
    pump (c);                   /* let the server end the connection */
    return;
  }
  if (gnutls_psk_allocate_client_credentials (&creds) < 0 ||
      gnutls_psk_set_client_credentials (creds, FUZZ_PSK_USER, &key,
                                         GNUTLS_PSK_KEY_HEX) < 0 ||
      gnutls_init (&c->session, GNUTLS_CLIENT) < 0 ||
      gnutls_priority_set_direct (c->session,
                                  "NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK",
                                  NULL) < 0 ||
      gnutls_credentials_set (c->session, GNUTLS_CRD_PSK, creds) < 0)
    abort ();
  gnutls_transport_set_int (c->session, c->fd);
  do
    r = gnutls_handshake (c->session);
  while (r < 0 && !gnutls_error_is_fatal (r));
  if (r == 0) {
    t->ok = true;
    fcntl (c->fd, F_SETFL, O_NONBLOCK);
    pump (c);
  }
  else {
    gnutls_deinit (c->session);
    c->session = NULL;
    c->out_len = 0;
    pump (c);
  }
  if (c->session)
    gnutls_deinit (c->session);
  gnutls_psk_free_client_credentials (creds);
}

void
fuzz_exchange_tls (const uint8_t *data, size_t len)
{
  struct tls_client t = { .c = { .out = data, .out_len = len } };
  int sv[2];

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
    abort ();
  t.c.fd = sv[0];
  fuzz_server_serve (sv[1], tls_client, &t);
  close (sv[0]);
  /* The harness, not the input, decides this: a failed handshake is a
   * broken set-up, never a finding.
   */
  if (!t.ok) {
    fprintf (stderr, "fuzz: the TLS PSK handshake failed\n");
    abort ();
  }
}

/* A handshake being written into a buffer. */
struct prefix {
  uint8_t buf[FUZZ_HANDSHAKE_MAX];
  size_t len;
};

static void
put (struct prefix *p, const void *data, size_t len)
{
  if (len == 0)
    return;
  memcpy (p->buf + p->len, data, len);
  p->len += len;
}

static void
put_be32 (struct prefix *p, uint32_t v)
{
  v = htobe32 (v);
  put (p, &v, sizeof v);
}

static void
put_option (struct prefix *p, uint32_t option, const void *data,
            uint32_t len)
{
  struct nbd_new_option opt = {
    .version = htobe64 (NBD_NEW_VERSION),
    .option = htobe32 (option),
    .optlen = htobe32 (len),
  };

  put (p, &opt, sizeof opt);
  put (p, data, len);
}

size_t
fuzz_handshake (uint8_t *buf, unsigned variant)
{
  static const char meta[] = "base:allocation";
  static const uint8_t go_default[6] = { 0 }; /* name "", no info */
  struct prefix p = { .len = 0 }, set_meta = { .len = 0 };

  put_be32 (&p, NBD_FLAG_C_FIXED_NEWSTYLE |
            (variant == 3 ? 0 : NBD_FLAG_C_NO_ZEROES));
  if (variant == 3)
    put_option (&p, NBD_OPT_EXPORT_NAME, NULL, 0);
  else {
    if (variant <= 1)
      put_option (&p, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
    if (variant == 0) {
      /* Export "", one query: its length, then the name. */
      put_be32 (&set_meta, 0);
      put_be32 (&set_meta, 1);
      put_be32 (&set_meta, strlen (meta));
      put (&set_meta, meta, strlen (meta));
      put_option (&p, NBD_OPT_SET_META_CONTEXT, set_meta.buf, set_meta.len);
    }
    put_option (&p, NBD_OPT_GO, go_default, sizeof go_default);
  }
  memcpy (buf, p.buf, p.len);
  return p.len;
}

static char psk_dir[] = "/tmp/nbdkit-fuzzXXXXXX";
static char *psk_file;

static void
remove_psk_file (void)
{
  unlink (psk_file);
  rmdir (psk_dir);
  free (psk_file);
}

const char *
fuzz_harness_psk_file (void)
{
  FILE *fp;

  if (mkdtemp (psk_dir) == NULL ||
      asprintf (&psk_file, "%s/keys.psk", psk_dir) == -1 ||
      (fp = fopen (psk_file, "w")) == NULL)
    abort ();
  fprintf (fp, "%s:%s\n", FUZZ_PSK_USER, FUZZ_PSK_KEY);
  if (fclose (fp) == EOF)
    abort ();
  atexit (remove_psk_file);
  return psk_file;
}

void
fuzz_harness_init (void)
{
  signal (SIGPIPE, SIG_IGN);
}

static struct backend *
plugin_backend (void)
{
  struct backend *b;

  for (b = top; b->next != NULL; b = b->next)
    ;
  return b;
}

void
fuzz_reset_plugin (void)
{
  struct backend *b = plugin_backend ();
  struct nbdkit_plugin *(*plugin_init) (void);
  struct nbdkit_plugin *p;

  *(void **) &plugin_init = dlsym (b->dl, "plugin_init");
  p = plugin_init ();
  if (p->unload)
    p->unload ();
  if (p->get_ready && p->get_ready () == -1)
    abort ();
}

void
fuzz_reset_filter (const char *name)
{
  struct nbdkit_filter *(*filter_init) (void);
  struct nbdkit_filter *f;
  struct backend *b;

  for (b = top; b->next != NULL && strcmp (b->name, name) != 0; b = b->next)
    ;
  if (strcmp (b->type, "filter") != 0 || strcmp (b->name, name) != 0)
    abort ();
  *(void **) &filter_init = dlsym (b->dl, "filter_init");
  f = filter_init ();
  if (f->unload)
    f->unload ();
  if (f->get_ready && f->get_ready (thread_model) == -1)
    abort ();
}

void
fuzz_write_plugin (const void *buf, size_t len, uint64_t offset)
{
  struct context *c = backend_open (plugin_backend (), 0, "", 0);
  int err;

  if (c == NULL || backend_prepare (c) == -1 ||
      backend_get_size (c) == -1 || backend_can_write (c) != 1 ||
      backend_pwrite (c, buf, len, offset, 0, &err) == -1 ||
      backend_finalize (c) == -1)
    abort ();
  backend_close (c);
}
