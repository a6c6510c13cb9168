/* SPDX-License-Identifier: BSD-3-Clause
 * The requests the curl plugin makes on one handle: the size probe
 * (HEAD, or a one-byte Range GET when HEAD does not tell), ranged reads
 * (GET with Range) and ranged writes (PUT with Content-Range).
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "curl-internal.h"

/* Every header line of every response (redirects included) comes here;
 * a status line starts a new response, so the state is reset.
 */
static size_t
header_cb (char *line, size_t size, size_t n, void *opaque)
{
  struct curl_handle *h = opaque;
  size_t len = size * n;
  long long start, end, total;
  char buf[256];

  if (len >= sizeof buf)
    return len;                 /* not a header we look at */
  memcpy (buf, line, len);
  buf[len] = '\0';

  if (strncmp (buf, "HTTP/", 5) == 0) {
    h->accept_ranges = false;
    h->range_start = h->range_total = -1;
  }
  else if (strncasecmp (buf, "Accept-Ranges:", 14) == 0) {
    if (strcasestr (buf + 14, "bytes") != NULL)
      h->accept_ranges = true;
  }
  else if (strncasecmp (buf, "Content-Range:", 14) == 0) {
    if (sscanf (buf + 14, " bytes %lld-%lld/%lld", &start, &end, &total) == 3) {
      h->range_start = start;
      h->range_total = total;
    }
    else if (sscanf (buf + 14, " bytes */%lld", &total) == 1)
      h->range_total = total;
  }
  return len;
}

/* Body bytes: copied into the caller's buffer, never beyond it.  Too
 * much data (a server ignoring Range) aborts the transfer.
 */
static size_t
write_cb (char *data, size_t size, size_t n, void *opaque)
{
  struct curl_handle *h = opaque;
  size_t len = size * n;

  if (h->rbuf == NULL)
    return len;                 /* a body we do not need */
  if (len > h->rwant - h->rgot)
    return 0;                   /* CURLE_WRITE_ERROR */
  memcpy (h->rbuf + h->rgot, data, len);
  h->rgot += len;
  return len;
}

/* Body bytes for PUT. */
static size_t
read_cb (char *data, size_t size, size_t n, void *opaque)
{
  struct curl_handle *h = opaque;
  size_t len = size * n;

  if (len > h->wlen - h->wpos)
    len = h->wlen - h->wpos;
  memcpy (data, h->wbuf + h->wpos, len);
  h->wpos += len;
  return len;
}

/* Run the request set up on H, with fresh callback state. */
static CURLcode
perform (struct curl_handle *h, void *rbuf, size_t rwant)
{
  h->rbuf = rbuf;
  h->rwant = rwant;
  h->rgot = 0;
  h->accept_ranges = false;
  h->range_start = h->range_total = -1;
  h->errbuf[0] = '\0';
  curl_easy_setopt (h->c, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt (h->c, CURLOPT_HEADERDATA, h);
  curl_easy_setopt (h->c, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt (h->c, CURLOPT_WRITEDATA, h);
  return curl_easy_perform (h->c);
}

/* libcurl's detailed message if it left one, else the generic one. */
static const char *
error_text (struct curl_handle *h, CURLcode rc)
{
  return h->errbuf[0] ? h->errbuf : curl_easy_strerror (rc);
}

/* Whether the last response came over HTTP or HTTPS (after redirects). */
static bool
is_http (struct curl_handle *h)
{
  char *scheme = NULL;

  if (curl_easy_getinfo (h->c, CURLINFO_SCHEME, &scheme) != CURLE_OK ||
      scheme == NULL)
    return false;
  return strcasecmp (scheme, "http") == 0 || strcasecmp (scheme, "https") == 0;
}

static long
status_code (struct curl_handle *h)
{
  long code = 0;

  curl_easy_getinfo (h->c, CURLINFO_RESPONSE_CODE, &code);
  return code;
}

/* GET bytes 0-0: a 206 answer's Content-Range carries the total size. */
static int
probe_range (struct curl_handle *h, int64_t *size)
{
  char byte;
  CURLcode rc;
  long code;

  curl_easy_setopt (h->c, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt (h->c, CURLOPT_RANGE, "0-0");
  rc = perform (h, &byte, 1);
  curl_easy_setopt (h->c, CURLOPT_RANGE, NULL);
  code = status_code (h);

  if (code == 200) {
    nbdkit_error ("%s: the server does not support range requests "
                  "(it answered a Range request with the whole file)",
                  config.url);
    return -1;
  }
  /* Over-long 206 bodies are cut short by write_cb: the size is known. */
  if (code == 0 || (rc != CURLE_OK && code != 206 && code < 400)) {
    nbdkit_error ("%s: %s", config.url, error_text (h, rc));
    return -1;
  }
  /* A zero-length file cannot satisfy 0-0: "416, bytes *\/0". */
  if ((code == 206 && h->range_total >= 0) ||
      (code == 416 && h->range_total == 0)) {
    *size = h->range_total;
    return 0;
  }
  if (code == 206) {
    nbdkit_error ("%s: could not get the size of the remote file "
                  "(no Content-Length, and Content-Range has no total)",
                  config.url);
    return -1;
  }
  nbdkit_error ("%s: the server answered HTTP status %ld", config.url, code);
  return -1;
}

int
request_size (struct curl_handle *h, int64_t *size)
{
  CURLcode rc;
  curl_off_t length = -1;
  long code;

  curl_easy_setopt (h->c, CURLOPT_NOBODY, 1L);
  rc = perform (h, NULL, 0);
  curl_easy_setopt (h->c, CURLOPT_NOBODY, 0L);
  if (rc != CURLE_OK) {
    nbdkit_error ("%s: %s", config.url, error_text (h, rc));
    return -1;
  }
  curl_easy_getinfo (h->c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);

  if (!is_http (h)) {
    if (length < 0) {
      nbdkit_error ("%s: could not get the size of the remote file "
                    "(is the URL correct?)", config.url);
      return -1;
    }
    *size = length;
    return 0;
  }

  code = status_code (h);
  if (code >= 200 && code < 300 && length >= 0 && h->accept_ranges) {
    *size = length;
    return 0;
  }
  /* Servers that refuse HEAD, or do not advertise ranges or the
   * length, may still answer a Range request properly.
   */
  if ((code >= 200 && code < 300) || code == 405 || code == 501) {
    nbdkit_debug ("curl: HEAD answered %ld (length %" PRId64 ", ranges %s), "
                  "probing with a Range request", code, (int64_t) length,
                  h->accept_ranges ? "yes" : "no");
    return probe_range (h, size);
  }
  nbdkit_error ("%s: the server answered HTTP status %ld", config.url, code);
  return -1;
}

int
request_read (struct curl_handle *h, void *buf, uint32_t count,
              uint64_t offset, int *err)
{
  char range[64];
  CURLcode rc;
  long code = 0;
  bool http;

  snprintf (range, sizeof range, "%" PRIu64 "-%" PRIu64,
            offset, offset + count - 1);
  curl_easy_setopt (h->c, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt (h->c, CURLOPT_RANGE, range);
  rc = perform (h, buf, count);
  curl_easy_setopt (h->c, CURLOPT_RANGE, NULL);
  http = is_http (h);
  if (http)
    code = status_code (h);

  *err = EIO;
  if (http && code != 0 && code != 206) {
    if (code == 200)
      nbdkit_error ("pread: %s: the server ignored the range request "
                    "(HTTP status 200)", config.url);
    else
      nbdkit_error ("pread: %s: the server answered HTTP status %ld",
                    config.url, code);
    return -1;
  }
  if (rc != CURLE_OK) {
    nbdkit_error ("pread: %s: %s", config.url, error_text (h, rc));
    return -1;
  }
  if (http && h->range_start != (int64_t) offset) {
    nbdkit_error ("pread: %s: asked for bytes from %" PRIu64
                  ", the server sent them from %" PRId64,
                  config.url, offset, h->range_start);
    return -1;
  }
  if (h->rgot != count) {
    nbdkit_error ("pread: %s: short read: %zu of %" PRIu32
                  " bytes at offset %" PRIu64,
                  config.url, h->rgot, count, offset);
    return -1;
  }
  return 0;
}

/* The configured headers plus Content-Range, and no "Expect:
 * 100-continue" round trip.
 */
static struct curl_slist *
write_headers (uint32_t count, uint64_t offset, int64_t size)
{
  struct curl_slist *list = NULL, *p, *next;
  char line[128];

  snprintf (line, sizeof line,
            "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRId64,
            offset, offset + count - 1, size);
  for (p = scripts_headers (); p != NULL; p = p->next) {
    next = curl_slist_append (list, p->data);
    if (next == NULL)
      goto fail;
    list = next;
  }
  if ((next = curl_slist_append (list, line)) == NULL)
    goto fail;
  list = next;
  if ((next = curl_slist_append (list, "Expect:")) == NULL)
    goto fail;
  return next;

 fail:
  curl_slist_free_all (list);
  return NULL;
}

int
request_write (struct curl_handle *h, const void *buf, uint32_t count,
               uint64_t offset, int64_t size, int *err)
{
  struct curl_slist *headers;
  CURLcode rc;
  long code;

  *err = EIO;
  headers = write_headers (count, offset, size);
  if (headers == NULL) {
    *err = ENOMEM;
    nbdkit_error ("pwrite: curl_slist_append: %m");
    return -1;
  }
  h->wbuf = buf;
  h->wlen = count;
  h->wpos = 0;
  curl_easy_setopt (h->c, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt (h->c, CURLOPT_READFUNCTION, read_cb);
  curl_easy_setopt (h->c, CURLOPT_READDATA, h);
  curl_easy_setopt (h->c, CURLOPT_INFILESIZE_LARGE, (curl_off_t) count);
  curl_easy_setopt (h->c, CURLOPT_HTTPHEADER, headers);
  rc = perform (h, NULL, 0);
  curl_easy_setopt (h->c, CURLOPT_HTTPHEADER, scripts_headers ());
  curl_easy_setopt (h->c, CURLOPT_UPLOAD, 0L);
  curl_slist_free_all (headers);
  h->wbuf = NULL;

  if (rc != CURLE_OK) {
    nbdkit_error ("pwrite: %s: %s", config.url, error_text (h, rc));
    return -1;
  }
  code = status_code (h);
  if (code < 200 || code >= 300) {
    nbdkit_error ("pwrite: %s: the server answered HTTP status %ld to PUT",
                  config.url, code);
    return -1;
  }
  return 0;
}
