/* A small JSON reader (for shard metadata) and string writer. Numbers are
 * doubles; 64-bit hashes therefore travel as hex strings. */
#ifndef DLM_JSON_H
#define DLM_JSON_H

#include <stddef.h>
#include <stdio.h>

#include "core/status.h"

typedef enum {
    DLM_JSON_NULL,
    DLM_JSON_BOOL,
    DLM_JSON_NUMBER,
    DLM_JSON_STRING,
    DLM_JSON_ARRAY,
    DLM_JSON_OBJECT
} dlm_json_type;

typedef struct dlm_json {
    dlm_json_type type;
    double number;           /* NUMBER, and BOOL as 0/1 */
    char *string;            /* STRING */
    int n;                   /* ARRAY, OBJECT: entries */
    char **keys;             /* OBJECT */
    struct dlm_json *items;  /* ARRAY elements or OBJECT values */
} dlm_json;

/* Parses text; errors name origin (a file name) and the byte offset. */
dlm_status dlm_json_parse(const char *text, size_t len, const char *origin, dlm_json **out);
void dlm_json_free(dlm_json **v);
/* The value under key in an object, or NULL. */
const dlm_json *dlm_json_get(const dlm_json *obj, const char *key);
/* Writes s as a quoted JSON string with escapes. */
void dlm_json_write_string(FILE *f, const char *s);

#endif
