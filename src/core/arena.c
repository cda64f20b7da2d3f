/* Aligned, zeroed float arenas. */
#include "core/arena.h"

#include <stdlib.h>
#include <string.h>

size_t dlm_arena_round(size_t n)
{
    return (n + DLM_ALIGN_FLOATS - 1) / DLM_ALIGN_FLOATS * DLM_ALIGN_FLOATS;
}

dlm_status dlm_arena_create(size_t capacity_floats, dlm_arena *arena)
{
    arena->base = NULL;
    arena->capacity = dlm_arena_round(capacity_floats);
    arena->used = 0;
    size_t bytes = (arena->capacity ? arena->capacity : DLM_ALIGN_FLOATS) * sizeof(float);
    arena->base = aligned_alloc(DLM_ALIGN_FLOATS * sizeof(float), bytes);
    DLM_CHECK(arena->base != NULL, DLM_ERR_NOMEM, "allocating an arena of %zu MB",
              bytes >> 20);
    memset(arena->base, 0, bytes);
    return DLM_OK;
}

dlm_status dlm_arena_take(dlm_arena *arena, size_t n, float **view)
{
    size_t need = dlm_arena_round(n);
    DLM_CHECK(arena->used + need <= arena->capacity, DLM_ERR_STATE,
              "arena of %zu floats cannot hold %zu more (used %zu)", arena->capacity, need,
              arena->used);
    *view = arena->base + arena->used;
    arena->used += need;
    return DLM_OK;
}

void dlm_arena_zero(dlm_arena *arena)
{
    if (arena->base) memset(arena->base, 0, arena->capacity * sizeof(float));
}

void dlm_arena_destroy(dlm_arena *arena)
{
    free(arena->base);
    arena->base = NULL;
    arena->capacity = arena->used = 0;
}
