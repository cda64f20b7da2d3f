/* The JSON string writer for shard metadata and dlm-eval --json (reading
 * is json-c's, in meta.c). */
#ifndef DLM_JSON_H
#define DLM_JSON_H

#include <stdio.h>

/* Writes s as a quoted JSON string with escapes. */
void dlm_json_write_string(FILE *f, const char *s);

#endif
