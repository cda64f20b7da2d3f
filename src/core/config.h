/* Configuration files: libconfig text read against a schema (a table of
 * keys, each a typed field of the caller's struct), every key overridable on
 * the command line, validated completely before any work starts. Errors name
 * the file, the line, the key and what was expected. The run's own schema
 * (its keys, defaults and consistency checks) lives with the trainer
 * (train/run_config.h); this file knows no key by name.
 *
 *   static const dlm_config_key keys[] = {
 *       DLM_KEY_NUM("train", "lr", DLM_KEY_DOUBLE, my_cfg, lr, DLM_GT(0)),
 *       DLM_KEY_ENUM("train", "lr_schedule", my_cfg, kind, dlm_lr_kind_names), ...};
 *   static const dlm_config_schema schema = {keys, n_keys, groups, n_groups,
 *                                            sizeof(my_cfg), defaults, derive, check};
 *   my_cfg c;
 *   DLM_CALL(dlm_config_load(&schema, "x.cfg", sets, n_sets, &c));
 *       // "x.cfg line 12: train.lr must be > 0, got -1"
 *       // "--set train.lr=abc: train.lr expects a number, got 'abc'"
 *   char *text;
 *   DLM_CALL(dlm_config_to_text(&schema, &c, &text)); // reads back to the same bytes
 *
 * Rules:
 * - Unknown groups and keys are errors; the message lists the valid ones.
 * - An integer is accepted where a number is expected (lr = 1); a float
 *   where an integer is expected is not (steps = 300.0). int and int64
 *   (123L) settings are both integers. libconfig 1.5 silently wraps a plain
 *   literal beyond 32 bits, so in a file such a literal is an error asking
 *   for the L suffix; an override gets the suffix added. U64 keys range over
 *   0 .. 2^63 - 1.
 * - Overrides "group.key=value" apply after the file, in order; the value is
 *   read as libconfig reads the right side of `=`, and string keys also take
 *   a bare word (data.format=raw-u16, data.train=data/x.bin).
 * - @include paths are relative to the folder of the file loaded.
 * - Several errors are reported at once (up to DLM_CONFIG_MAX_ERRORS), each
 *   its own frame of the error stack. Ranges, then the schema's consistency
 *   checks, run once every value has been read; consistency errors point at
 *   the line of the key to change and say where the other value came from.
 */
#ifndef DLM_CONFIG_H
#define DLM_CONFIG_H

#include <stddef.h>

#include "core/status.h"

#define DLM_CONFIG_MAX_PATHS 16
#define DLM_CONFIG_MAX_INTS 64
#define DLM_CONFIG_PATH_MAX 1024 /* bytes, with the terminating NUL */
#define DLM_CONFIG_MAX_ERRORS 8

typedef enum {
    DLM_KEY_INT,    /* int */
    DLM_KEY_U64,    /* uint64_t, 0 .. 2^63 - 1 */
    DLM_KEY_DOUBLE, /* double */
    DLM_KEY_BOOL,   /* int, 0 or 1 */
    DLM_KEY_ENUM,   /* an int-sized enum named by the owning module's table */
    DLM_KEY_STRING, /* char[DLM_CONFIG_PATH_MAX] */
    DLM_KEY_PATHS,  /* char[DLM_CONFIG_MAX_PATHS][DLM_CONFIG_PATH_MAX] and an int count */
    DLM_KEY_INTS,   /* int[DLM_CONFIG_MAX_INTS] and an int count; an empty list is count 0 */
    DLM_KEY_DOUBLES /* double[DLM_CONFIG_MAX_INTS] and an int count; bounds hold for each */
} dlm_key_type;

/* Bounds of a number: lo and/or hi, each inclusive or open. */
enum { DLM_BOUND_LO = 1, DLM_BOUND_LO_OPEN = 2, DLM_BOUND_HI = 4, DLM_BOUND_HI_OPEN = 8 };
#define DLM_GE(x) DLM_BOUND_LO, (x), 0.0
#define DLM_GT(x) DLM_BOUND_LO | DLM_BOUND_LO_OPEN, (x), 0.0
#define DLM_IN_CC(a, b) DLM_BOUND_LO | DLM_BOUND_HI, (a), (b) /* [a, b] */
#define DLM_IN_CO(a, b) DLM_BOUND_LO | DLM_BOUND_HI | DLM_BOUND_HI_OPEN, (a), (b) /* [a, b) */
#define DLM_IN_OO(a, b) \
    DLM_BOUND_LO | DLM_BOUND_LO_OPEN | DLM_BOUND_HI | DLM_BOUND_HI_OPEN, (a), (b) /* (a, b) */
#define DLM_IN_OC(a, b) DLM_BOUND_LO | DLM_BOUND_LO_OPEN | DLM_BOUND_HI, (a), (b) /* (a, b] */
#define DLM_ANY 0, 0.0, 0.0

typedef struct {
    const char *group, *name;
    dlm_key_type type;
    size_t offset;            /* of the value in the configuration struct */
    size_t count_offset;      /* PATHS, INTS: of the int count */
    const char *const *names; /* ENUM: names[v] names value v, NULL-ended (core/names.h) */
    int bounds;               /* INT, DOUBLE and each of DOUBLES: DLM_BOUND_* */
    double lo, hi;
} dlm_config_key;

#define DLM_KEY_NUM(g, n, type, st, field, ...) {g, n, type, offsetof(st, field), 0, NULL, __VA_ARGS__}
#define DLM_KEY_ENUM(g, n, st, field, names) \
    {g, n, DLM_KEY_ENUM, offsetof(st, field), 0, names, DLM_ANY}
#define DLM_KEY_PATHS(g, n, st, field, count) \
    {g, n, DLM_KEY_PATHS, offsetof(st, field), offsetof(st, count), NULL, DLM_ANY}
#define DLM_KEY_INTS(g, n, st, field, count) \
    {g, n, DLM_KEY_INTS, offsetof(st, field), offsetof(st, count), NULL, DLM_ANY}
#define DLM_KEY_DOUBLES(g, n, st, field, count, ...) \
    {g, n, DLM_KEY_DOUBLES, offsetof(st, field), offsetof(st, count), NULL, __VA_ARGS__}

/* One load in progress, as the schema's derive and check functions see it. */
typedef struct dlm_config_load_ctx dlm_config_load_ctx;

typedef struct {
    const dlm_config_key *keys; /* in the order the text is written */
    int n_keys;
    const char *const *groups;
    int n_groups;
    size_t size; /* of the configuration struct */
    /* Every byte of c set (strings zero-padded, so configurations compare
     * with memcmp). */
    void (*defaults)(void *c);
    /* Values that default to another key's value follow it unless set
     * (dlm_config_is_set); runs before the range checks. May be NULL. */
    void (*derive)(const dlm_config_load_ctx *x, void *c);
    /* The checks that tie keys together, on values all in range; report
     * with dlm_config_pair_error / dlm_config_key_error. May be NULL. */
    void (*check)(dlm_config_load_ctx *x, const void *c);
} dlm_config_schema;

/* Loads path (NULL = defaults only), applies overrides "group.key=value" in
 * order, validates; out is a struct of schema->size bytes. On error *out is
 * left untouched. */
dlm_status dlm_config_load(const dlm_config_schema *schema, const char *path,
                           const char *const *overrides, int n_overrides, void *out);

/* Same from text in memory; origin names it in messages (e.g. "run.h5"). */
dlm_status dlm_config_load_text(const dlm_config_schema *schema, const char *text,
                                const char *origin, const char *const *overrides,
                                int n_overrides, void *out);

/* The configuration as libconfig text, every key with its value, under a
 * first comment line "# <title>"; dlm_config_load_text of it gives back an
 * identical struct. *text is malloc'd; the caller frees it. */
dlm_status dlm_config_to_text(const dlm_config_schema *schema, const void *c, const char *title,
                              char **text);

/* ---- for a schema's derive and check functions; keys are "group.name" ---- */

/* Whether the file or an override set the key (else it holds its default). */
int dlm_config_is_set(const dlm_config_load_ctx *x, const char *key);

/* An error about keys a and b together: reported where a was set, or where b
 * was if a was not, with a note on where the other value came from. */
void dlm_config_pair_error(dlm_config_load_ctx *x, const char *a, const char *b, const char *fmt,
                           ...) __attribute__((format(printf, 4, 5)));

/* An error reported where the first of a, b (NULL: only a) that was set
 * came from, or against the file when neither was. */
void dlm_config_key_error(dlm_config_load_ctx *x, const char *a, const char *b, const char *fmt,
                          ...) __attribute__((format(printf, 4, 5)));

/* The shortest text that reads back as exactly v (300, 0.001, 1e-08). */
void dlm_config_format_double(double v, char *buf, size_t n);

#endif
