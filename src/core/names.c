/* Enum name tables (see names.h). */
#include "core/names.h"

#include <stdio.h>
#include <string.h>

int dlm_names_find(const char *const *names, const char *name)
{
    for (int v = 0; names[v]; v++)
        if (strcmp(names[v], name) == 0) return v;
    return -1;
}

int dlm_names_count(const char *const *names)
{
    int n = 0;
    while (names[n]) n++;
    return n;
}

dlm_status dlm_names_parse(const char *const *names, const char *what, const char *name,
                           int *value)
{
    int v = dlm_names_find(names, name);
    char expected[256];
    dlm_names_or(names, expected, sizeof expected);
    DLM_CHECK(v >= 0, DLM_ERR_ARG, "unknown %s '%s' (expected %s)", what, name, expected);
    *value = v;
    return DLM_OK;
}

void dlm_names_or(const char *const *names, char *buf, size_t n)
{
    int count = dlm_names_count(names);
    size_t len = 0;
    buf[0] = '\0';
    for (int v = 0; v < count && len < n; v++) {
        const char *sep = v == 0 ? "" : v == count - 1 ? " or " : ", ";
        len += (size_t)snprintf(buf + len, n - len, "%s%s", sep, names[v]);
    }
}
