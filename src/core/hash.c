/* FNV-1a, 64 bit (see hash.h). */
#include "core/hash.h"

uint64_t dlm_fnv1a(uint64_t h, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}
