/* SPDX-License-Identifier: BSD-3-Clause
 * The ip filter: accept or refuse each client before the handshake by
 * its address (IPv4/IPv6 networks), its credentials on a Unix socket
 * (pid, uid, gid) or its AF_VSOCK address.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <linux/vm_sockets.h>

#include <nbdkit-filter.h>

#include "cleanup.h"
#include "utils.h"
#include "vector.h"

enum rule_type {
  ANY,                          /* all, any */
  ANY_IPV4,                     /* allipv4, anyipv4 */
  ANY_IPV6,                     /* allipv6, anyipv6 */
  ANY_UNIX,                     /* allunix, anyunix */
  ANY_VSOCK,                    /* allvsock, anyvsock */
  IPV4,                         /* A.B.C.D[/NN] */
  IPV6,                         /* A:B:...[/NN] */
  PID,                          /* pid:N */
  UID,                          /* uid:N */
  GID,                          /* gid:N */
  VSOCK_CID,                    /* vsock-cid:N */
  VSOCK_PORT,                   /* vsock-port:N */
};

struct rule {
  enum rule_type type;
  char *text;                   /* as written, for messages */
  union {
    struct { struct in_addr addr; unsigned bits; } ipv4;
    struct { struct in6_addr addr; unsigned bits; } ipv6;
    int64_t id;                 /* pid, uid, gid, cid or port */
  } u;
};

DEFINE_VECTOR_TYPE (rule_list, struct rule)

/* The allow= and deny= lists, in command line order. */
static rule_list allow_rules = empty_vector;
static rule_list deny_rules = empty_vector;

static void
free_rules (rule_list *rules)
{
  size_t i;

  for (i = 0; i < rules->len; ++i)
    free (rules->ptr[i].text);
  rule_list_reset (rules);
}

static void
ip_unload (void)
{
  free_rules (&allow_rules);
  free_rules (&deny_rules);
}

static const struct {
  const char *name;
  enum rule_type type;
} keywords[] = {
  { "all", ANY }, { "any", ANY },
  { "allipv4", ANY_IPV4 }, { "anyipv4", ANY_IPV4 },
  { "allipv6", ANY_IPV6 }, { "anyipv6", ANY_IPV6 },
  { "allunix", ANY_UNIX }, { "anyunix", ANY_UNIX },
  { "allvsock", ANY_VSOCK }, { "anyvsock", ANY_VSOCK },
};

static const struct {
  const char *prefix;
  enum rule_type type;
  int64_t max;
} id_rules[] = {
  { "pid:", PID, INT32_MAX },
  { "uid:", UID, UINT32_MAX },
  { "gid:", GID, UINT32_MAX },
  { "vsock-cid:", VSOCK_CID, UINT32_MAX },
  { "vsock-port:", VSOCK_PORT, UINT32_MAX },
};

/* "ADDR" or "ADDR/BITS" with at most MAX bits. */
static int
parse_network (const char *key, const char *text, int family, void *addr,
               unsigned max, unsigned *bits)
{
  CLEANUP_FREE char *copy = strdup (text);
  char *slash;

  if (copy == NULL) {
    nbdkit_error ("strdup: %m");
    return -1;
  }
  *bits = max;
  slash = strchr (copy, '/');
  if (slash) {
    *slash = '\0';
    if (nbdkit_parse_unsigned (key, slash + 1, bits) == -1)
      return -1;
    if (*bits > max) {
      nbdkit_error ("%s: '%s': the prefix length must be at most %u",
                    key, text, max);
      return -1;
    }
  }
  if (inet_pton (family, copy, addr) != 1) {
    nbdkit_error ("%s: '%s' is not a valid %s address", key, text,
                  family == AF_INET ? "IPv4" : "IPv6");
    return -1;
  }
  return 0;
}

static int
parse_rule (const char *key, const char *text, struct rule *rule)
{
  size_t i, len;

  for (i = 0; i < ARRAY_SIZE (keywords); ++i)
    if (strcmp (text, keywords[i].name) == 0) {
      rule->type = keywords[i].type;
      return 0;
    }

  for (i = 0; i < ARRAY_SIZE (id_rules); ++i) {
    len = strlen (id_rules[i].prefix);
    if (strncmp (text, id_rules[i].prefix, len) == 0) {
      int64_t id;
      if (nbdkit_parse_int64_t (key, text + len, &id) == -1)
        return -1;
      if (id < 0 || id > id_rules[i].max) {
        nbdkit_error ("%s: '%s': the number is out of range", key, text);
        return -1;
      }
      rule->type = id_rules[i].type;
      rule->u.id = id;
      return 0;
    }
  }

  if (strchr (text, ':')) {
    rule->type = IPV6;
    return parse_network (key, text, AF_INET6, &rule->u.ipv6.addr, 128,
                          &rule->u.ipv6.bits);
  }
  if (strchr (text, '.')) {
    rule->type = IPV4;
    return parse_network (key, text, AF_INET, &rule->u.ipv4.addr, 32,
                          &rule->u.ipv4.bits);
  }
  nbdkit_error ("%s: '%s' is not an address, a network or a known rule "
                "(see nbdkit-ip-filter(1))", key, text);
  return -1;
}

/* A comma-separated list of rules, appended to RULES. */
static int
parse_rules (const char *key, const char *value, rule_list *rules)
{
  const char *p = value;

  for (;;) {
    size_t len = strcspn (p, ",");
    struct rule rule = { 0 };

    rule.text = strndup (p, len);
    if (rule.text == NULL) {
      nbdkit_error ("strndup: %m");
      return -1;
    }
    if (len == 0) {
      nbdkit_error ("%s: empty rule in '%s'", key, value);
      free (rule.text);
      return -1;
    }
    if (parse_rule (key, rule.text, &rule) == -1) {
      free (rule.text);
      return -1;
    }
    if (rule_list_append (rules, rule) == -1) {
      nbdkit_error ("realloc: %m");
      free (rule.text);
      return -1;
    }
    if (p[len] == '\0')
      return 0;
    p += len + 1;
  }
}

static int
ip_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
           const char *key, const char *value)
{
  if (strcmp (key, "allow") == 0)
    return parse_rules (key, value, &allow_rules);
  if (strcmp (key, "deny") == 0)
    return parse_rules (key, value, &deny_rules);
  return next (nxdata, key, value);
}

#define ip_config_help \
  "allow=<RULE>[,<RULE>...]  Clients to accept, even if denied.\n" \
  "deny=<RULE>[,<RULE>...]   Clients to refuse, unless allowed.\n" \
  "RULE: all, anyipv4, anyipv6, anyunix, anyvsock, A.B.C.D[/NN],\n" \
  "      A:B:...[/NN], pid:PID, uid:UID, gid:GID, vsock-cid:CID,\n" \
  "      vsock-port:PORT."

/* What we know about the client. */
struct peer {
  int family;                   /* AF_INET, AF_INET6, AF_UNIX, AF_VSOCK, or
                                 * AF_UNSPEC if not a socket */
  struct in_addr ipv4;
  struct in6_addr ipv6;
  int64_t pid, uid, gid;        /* -1 if not known */
  uint32_t cid, port;
  char text[128];               /* for messages */
};

static void
get_peer (struct peer *peer)
{
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;

  memset (peer, 0, sizeof *peer);
  peer->pid = peer->uid = peer->gid = -1;
  peer->family = AF_UNSPEC;
  snprintf (peer->text, sizeof peer->text, "(not a socket)");

  if (nbdkit_peer_name ((struct sockaddr *) &ss, &len) == -1)
    return;

  switch (ss.ss_family) {
  case AF_INET: {
    const struct sockaddr_in *sin = (const struct sockaddr_in *) &ss;
    peer->family = AF_INET;
    peer->ipv4 = sin->sin_addr;
    break;
  }
  case AF_INET6: {
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) &ss;
    /* An IPv4 client on a dual-stack socket is still an IPv4 client. */
    if (IN6_IS_ADDR_V4MAPPED (&sin6->sin6_addr)) {
      peer->family = AF_INET;
      memcpy (&peer->ipv4, &sin6->sin6_addr.s6_addr[12], 4);
    }
    else {
      peer->family = AF_INET6;
      peer->ipv6 = sin6->sin6_addr;
    }
    break;
  }
  case AF_UNIX:
    peer->family = AF_UNIX;
    peer->pid = nbdkit_peer_pid ();
    peer->uid = nbdkit_peer_uid ();
    peer->gid = nbdkit_peer_gid ();
    snprintf (peer->text, sizeof peer->text,
              "unix socket (pid %" PRIi64 ", uid %" PRIi64 ", gid %" PRIi64
              ")", peer->pid, peer->uid, peer->gid);
    return;
  case AF_VSOCK: {
    const struct sockaddr_vm *svm = (const struct sockaddr_vm *) &ss;
    peer->family = AF_VSOCK;
    peer->cid = svm->svm_cid;
    peer->port = svm->svm_port;
    snprintf (peer->text, sizeof peer->text, "vsock cid %" PRIu32
              " port %" PRIu32, peer->cid, peer->port);
    return;
  }
  default:
    snprintf (peer->text, sizeof peer->text, "address family %d",
              (int) ss.ss_family);
    return;
  }

  if (peer->family == AF_INET)
    inet_ntop (AF_INET, &peer->ipv4, peer->text, sizeof peer->text);
  else
    inet_ntop (AF_INET6, &peer->ipv6, peer->text, sizeof peer->text);
}

/* Whether the first BITS bits of A and B are the same. */
static bool
prefix_equal (const uint8_t *a, const uint8_t *b, unsigned bits)
{
  unsigned whole = bits / 8, rest = bits % 8;
  uint8_t mask;

  if (memcmp (a, b, whole) != 0)
    return false;
  if (rest == 0)
    return true;
  mask = 0xff << (8 - rest);
  return (a[whole] & mask) == (b[whole] & mask);
}

static bool
rule_matches (const struct rule *rule, const struct peer *peer)
{
  switch (rule->type) {
  case ANY:
    return true;
  case ANY_IPV4:
    return peer->family == AF_INET;
  case ANY_IPV6:
    return peer->family == AF_INET6;
  case ANY_UNIX:
    return peer->family == AF_UNIX;
  case ANY_VSOCK:
    return peer->family == AF_VSOCK;
  case IPV4:
    return peer->family == AF_INET &&
      prefix_equal ((const uint8_t *) &peer->ipv4,
                    (const uint8_t *) &rule->u.ipv4.addr, rule->u.ipv4.bits);
  case IPV6:
    return peer->family == AF_INET6 &&
      prefix_equal (peer->ipv6.s6_addr, rule->u.ipv6.addr.s6_addr,
                    rule->u.ipv6.bits);
  case PID:
    return peer->family == AF_UNIX && peer->pid == rule->u.id;
  case UID:
    return peer->family == AF_UNIX && peer->uid == rule->u.id;
  case GID:
    return peer->family == AF_UNIX && peer->gid == rule->u.id;
  case VSOCK_CID:
    return peer->family == AF_VSOCK && peer->cid == rule->u.id;
  case VSOCK_PORT:
    return peer->family == AF_VSOCK && peer->port == rule->u.id;
  }
  return false;
}

static const struct rule *
first_match (const rule_list *rules, const struct peer *peer)
{
  size_t i;

  for (i = 0; i < rules->len; ++i)
    if (rule_matches (&rules->ptr[i], peer))
      return &rules->ptr[i];
  return NULL;
}

/* nbdkit-ip-filter(1) "RULES": a match in the allow list accepts, then a
 * match in the deny list refuses, and anything else is accepted.
 */
static int
ip_preconnect (nbdkit_next_preconnect *next, nbdkit_backend *nxdata,
               int readonly)
{
  struct peer peer;
  const struct rule *rule;

  if (allow_rules.len == 0 && deny_rules.len == 0)
    return next (nxdata, readonly);

  get_peer (&peer);
  rule = first_match (&allow_rules, &peer);
  if (rule) {
    nbdkit_debug ("ip: client %s accepted by allow rule '%s'",
                  peer.text, rule->text);
    return next (nxdata, readonly);
  }
  rule = first_match (&deny_rules, &peer);
  if (rule) {
    nbdkit_error ("client %s refused by deny rule '%s'",
                  peer.text, rule->text);
    return -1;
  }
  nbdkit_debug ("ip: client %s accepted: no rule matches", peer.text);
  return next (nxdata, readonly);
}

static struct nbdkit_filter filter = {
  .name              = "ip",
  .longname          = "nbdkit ip filter",
  .version           = PACKAGE_VERSION,
  .description       = "Accept or refuse clients by address or credentials",
  .unload            = ip_unload,
  .config            = ip_config,
  .config_help       = ip_config_help,
  .preconnect        = ip_preconnect,
};

NBDKIT_REGISTER_FILTER (filter)
