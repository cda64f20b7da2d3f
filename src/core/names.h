/* The names of an enum's values, as files and command lines spell them. A
 * module that owns an enum keeps one table, indexed by value and ended by
 * NULL ({"ar", "mdlm", NULL}); its parser, its printer and the config
 * machinery all read that one table. */
#ifndef DLM_NAMES_H
#define DLM_NAMES_H

#include <stddef.h>

#include "core/status.h"

/* The value named name, or -1 when no entry matches. */
int dlm_names_find(const char *const *names, const char *name);

/* The number of names before the NULL. */
int dlm_names_count(const char *const *names);

/* "a, b or c" into buf (truncated to n bytes), for "expected ..." messages. */
void dlm_names_or(const char *const *names, char *buf, size_t n);

/* *value = the value named name, or DLM_ERR_ARG "unknown <what> '<name>'
 * (expected a, b or c)". */
dlm_status dlm_names_parse(const char *const *names, const char *what, const char *name,
                           int *value);

#endif
