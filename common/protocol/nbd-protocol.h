/* SPDX-License-Identifier: BSD-3-Clause
 * NBD wire constants and structures (nbd-protocol.md "Values").  All
 * multi-byte fields are big endian on the wire; structures are packed and
 * converted with the htobeNN and beNNtoh functions at the socket boundary.
 */

#ifndef NBD_PROTOCOL_H
#define NBD_PROTOCOL_H

#include <stdint.h>

#define NBD_PACKED __attribute__ ((__packed__))

/* Handshake magics. */
#define NBD_MAGIC              UINT64_C (0x4e42444d41474943) /* "NBDMAGIC" */
#define NBD_OLD_VERSION        UINT64_C (0x0000420281861253)
#define NBD_NEW_VERSION        UINT64_C (0x49484156454F5054) /* "IHAVEOPT" */
#define NBD_REP_MAGIC          UINT64_C (0x0003e889045565a9)

/* Handshake flags (16 bits, server). */
#define NBD_FLAG_FIXED_NEWSTYLE   (1 << 0)
#define NBD_FLAG_NO_ZEROES        (1 << 1)

/* Client flags (32 bits). */
#define NBD_FLAG_C_FIXED_NEWSTYLE (1 << 0)
#define NBD_FLAG_C_NO_ZEROES      (1 << 1)

/* Transmission flags (16 bits). */
#define NBD_FLAG_HAS_FLAGS         (1 << 0)
#define NBD_FLAG_READ_ONLY         (1 << 1)
#define NBD_FLAG_SEND_FLUSH        (1 << 2)
#define NBD_FLAG_SEND_FUA          (1 << 3)
#define NBD_FLAG_ROTATIONAL        (1 << 4)
#define NBD_FLAG_SEND_TRIM         (1 << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1 << 6)
#define NBD_FLAG_SEND_DF           (1 << 7)
#define NBD_FLAG_CAN_MULTI_CONN    (1 << 8)
#define NBD_FLAG_SEND_RESIZE       (1 << 9)
#define NBD_FLAG_SEND_CACHE        (1 << 10)
#define NBD_FLAG_SEND_FAST_ZERO    (1 << 11)

/* Options. */
#define NBD_OPT_EXPORT_NAME        1
#define NBD_OPT_ABORT              2
#define NBD_OPT_LIST               3
#define NBD_OPT_STARTTLS           5
#define NBD_OPT_INFO               6
#define NBD_OPT_GO                 7
#define NBD_OPT_STRUCTURED_REPLY   8
#define NBD_OPT_LIST_META_CONTEXT  9
#define NBD_OPT_SET_META_CONTEXT   10

/* Option replies. */
#define NBD_REP_ERR(x)             (UINT32_C (0x80000000) | (x))
#define NBD_REP_ACK                1
#define NBD_REP_SERVER             2
#define NBD_REP_INFO               3
#define NBD_REP_META_CONTEXT       4
#define NBD_REP_ERR_UNSUP          NBD_REP_ERR (1)
#define NBD_REP_ERR_POLICY         NBD_REP_ERR (2)
#define NBD_REP_ERR_INVALID        NBD_REP_ERR (3)
#define NBD_REP_ERR_PLATFORM       NBD_REP_ERR (4)
#define NBD_REP_ERR_TLS_REQD       NBD_REP_ERR (5)
#define NBD_REP_ERR_UNKNOWN        NBD_REP_ERR (6)
#define NBD_REP_ERR_SHUTDOWN       NBD_REP_ERR (7)
#define NBD_REP_ERR_BLOCK_SIZE_REQD NBD_REP_ERR (8)
#define NBD_REP_ERR_TOO_BIG        NBD_REP_ERR (9)

/* NBD_REP_INFO types. */
#define NBD_INFO_EXPORT            0
#define NBD_INFO_NAME              1
#define NBD_INFO_DESCRIPTION       2
#define NBD_INFO_BLOCK_SIZE        3

/* Transmission magics. */
#define NBD_REQUEST_MAGIC          UINT32_C (0x25609513)
#define NBD_SIMPLE_REPLY_MAGIC     UINT32_C (0x67446698)
#define NBD_STRUCTURED_REPLY_MAGIC UINT32_C (0x668e33ef)

/* Commands. */
#define NBD_CMD_READ               0
#define NBD_CMD_WRITE              1
#define NBD_CMD_DISC               2
#define NBD_CMD_FLUSH              3
#define NBD_CMD_TRIM               4
#define NBD_CMD_CACHE              5
#define NBD_CMD_WRITE_ZEROES       6
#define NBD_CMD_BLOCK_STATUS       7

/* Command flags. */
#define NBD_CMD_FLAG_FUA           (1 << 0)
#define NBD_CMD_FLAG_NO_HOLE       (1 << 1)
#define NBD_CMD_FLAG_DF            (1 << 2)
#define NBD_CMD_FLAG_REQ_ONE       (1 << 3)
#define NBD_CMD_FLAG_FAST_ZERO     (1 << 4)

/* Structured reply flags and types. */
#define NBD_REPLY_FLAG_DONE        (1 << 0)
#define NBD_REPLY_TYPE_NONE        0
#define NBD_REPLY_TYPE_OFFSET_DATA 1
#define NBD_REPLY_TYPE_OFFSET_HOLE 2
#define NBD_REPLY_TYPE_BLOCK_STATUS 5
#define NBD_REPLY_TYPE_ERROR       32769
#define NBD_REPLY_TYPE_ERROR_OFFSET 32770

/* base:allocation flags. */
#define NBD_STATE_HOLE             (1 << 0)
#define NBD_STATE_ZERO             (1 << 1)

/* Error values (nbd-protocol.md "Error values"). */
#define NBD_SUCCESS                0
#define NBD_EPERM                  1
#define NBD_EIO                    5
#define NBD_ENOMEM                 12
#define NBD_EINVAL                 22
#define NBD_ENOSPC                 28
#define NBD_EOVERFLOW              75
#define NBD_ENOTSUP                95
#define NBD_ESHUTDOWN              108

/* Limits of this implementation. */
#define NBD_MAX_STRING             4096 /* export names, descriptions */
#define NBD_MAX_OPTION_LENGTH      (NBD_MAX_STRING * 4 + 64)

/* Oldstyle greeting: magic, NBD_OLD_VERSION, size, flags, 124 zeroes. */
struct nbd_old_handshake {
  uint64_t nbdmagic;
  uint64_t version;
  uint64_t exportsize;
  uint16_t gflags;
  uint16_t eflags;
  char zeroes[124];
} NBD_PACKED;

/* Newstyle greeting. */
struct nbd_new_handshake {
  uint64_t nbdmagic;
  uint64_t version;
  uint16_t gflags;
} NBD_PACKED;

/* Option request header sent by the client. */
struct nbd_new_option {
  uint64_t version;             /* NBD_NEW_VERSION */
  uint32_t option;
  uint32_t optlen;
} NBD_PACKED;

/* Option reply header sent by the server. */
struct nbd_fixed_new_option_reply {
  uint64_t magic;               /* NBD_REP_MAGIC */
  uint32_t option;
  uint32_t reply;
  uint32_t replylen;
} NBD_PACKED;

/* Reply to NBD_OPT_EXPORT_NAME (the 124 zeroes are optional). */
struct nbd_export_name_reply {
  uint64_t exportsize;
  uint16_t eflags;
  char zeroes[124];
} NBD_PACKED;

struct nbd_info_export {
  uint16_t info;
  uint64_t exportsize;
  uint16_t eflags;
} NBD_PACKED;

struct nbd_info_block_size {
  uint16_t info;
  uint32_t minimum;
  uint32_t preferred;
  uint32_t maximum;
} NBD_PACKED;

struct nbd_request {
  uint32_t magic;
  uint16_t flags;
  uint16_t type;
  uint64_t handle;
  uint64_t offset;
  uint32_t count;
} NBD_PACKED;

struct nbd_simple_reply {
  uint32_t magic;
  uint32_t error;
  uint64_t handle;
} NBD_PACKED;

struct nbd_structured_reply {
  uint32_t magic;
  uint16_t flags;
  uint16_t type;
  uint64_t handle;
  uint32_t length;
} NBD_PACKED;

struct nbd_structured_reply_offset_data {
  uint64_t offset;
} NBD_PACKED;

struct nbd_structured_reply_offset_hole {
  uint64_t offset;
  uint32_t length;
} NBD_PACKED;

struct nbd_structured_reply_error {
  uint32_t error;
  uint16_t len;                 /* length of the message that follows */
} NBD_PACKED;

struct nbd_block_descriptor {
  uint32_t length;
  uint32_t status_flags;
} NBD_PACKED;

/* Names for debug messages and errors. */
extern const char *nbd_option_name (uint32_t option);
extern const char *nbd_reply_name (uint32_t reply);
extern const char *nbd_command_name (uint16_t type);
extern const char *nbd_error_name (uint32_t error);

#endif /* NBD_PROTOCOL_H */
