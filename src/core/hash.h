/* FNV-1a, 64 bit: the identity hash of documents, shard contents, chunk sets
 * and sample n-grams (not for security). Chain calls to hash pieces in
 * order: dlm_fnv1a(dlm_fnv1a(DLM_FNV_OFFSET, a, na), b, nb). */
#ifndef DLM_HASH_H
#define DLM_HASH_H

#include <stddef.h>
#include <stdint.h>

#define DLM_FNV_OFFSET UINT64_C(0xcbf29ce484222325)

/* h continued over len bytes of data; start from DLM_FNV_OFFSET. */
uint64_t dlm_fnv1a(uint64_t h, const void *data, size_t len);

#endif
