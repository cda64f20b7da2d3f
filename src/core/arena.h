/* One aligned float allocation per kind of buffer (parameters, gradients,
 * moments, activations); named views are offsets into it. */
#ifndef DLM_ARENA_H
#define DLM_ARENA_H

#include <stddef.h>

#include "core/status.h"

#define DLM_ALIGN_FLOATS 16 /* 64-byte alignment for every view */

typedef struct {
    float *base;
    size_t capacity; /* floats */
    size_t used;     /* floats */
} dlm_arena;

/* Floats [lo, hi) of an arena. */
typedef struct {
    size_t lo, hi;
} dlm_range;

/* Rounds n floats up so the next view stays 64-byte aligned. */
size_t dlm_arena_round(size_t n);
/* Zero-filled. */
dlm_status dlm_arena_create(size_t capacity_floats, dlm_arena *arena);
/* A view of n floats; fails if the arena was sized too small. */
dlm_status dlm_arena_take(dlm_arena *arena, size_t n, float **view);
void dlm_arena_zero(dlm_arena *arena);
void dlm_arena_destroy(dlm_arena *arena);

#endif
