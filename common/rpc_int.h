/* rpc_int: helpers shared by rpc.c (server) and rpc_client.c, not part of the rpc API.
 * Thread-safety: pure functions. */
#ifndef MS_RPC_INT_H
#define MS_RPC_INT_H

#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>

#define RPC_PEM_MAX (1u << 20) /* certificates, keys and CA bundles beyond 1 MiB are refused */

/* Reads a PEM file whole (NUL-terminated, malloc'd). -ENOENT/-EACCES, -EFBIG, -ENODATA. */
int rpc_read_pem(const char *path, char **ret);
/* A byte buffer holding a copy of buf. */
grpc_byte_buffer *rpc_bb_from(const uint8_t *buf, size_t len);
/* The bytes of a (possibly compressed) byte buffer, malloc'd. */
int rpc_bb_to(grpc_byte_buffer *bb, uint8_t **ret, size_t *ret_len);

#endif
