/* A configuration written back as libconfig text from the schema's key
 * table (see dlm_config_to_text in config.h): the text reads back to the
 * same values. */
#include "core/config.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/names.h"

/* ---- writing ---- */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} text_buf;

static void tb_printf(text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void tb_printf(text_buf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = 2 * b->cap + (size_t)n;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

/* A libconfig string literal: quote and backslash escaped, control bytes as \xNN. */
static void tb_string(text_buf *b, const char *s)
{
    tb_printf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') tb_printf(b, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f) tb_printf(b, "\\x%02x", *p);
        else tb_printf(b, "%c", *p);
    }
    tb_printf(b, "\"");
}

/* A double as libconfig reads it back as a float: a whole number keeps a
 * ".0" (in arrays too, whose elements share one type). */
static void number_text(double v, char *buf, size_t n)
{
    dlm_config_format_double(v, buf, n);
    if (isfinite(v) && !strpbrk(buf, ".eE") && strlen(buf) + 2 < n) strcat(buf, ".0");
}

dlm_status dlm_config_to_text(const dlm_config_schema *schema, const void *c, const char *title,
                              char **text)
{
    DLM_CHECK(schema != NULL && c != NULL && title != NULL && text != NULL, DLM_ERR_ARG,
              "dlm_config_to_text: NULL argument");
    *text = NULL;
    text_buf b = {.p = malloc(4096), .cap = 4096};
    DLM_CHECK(b.p != NULL, DLM_ERR_NOMEM, "allocating the configuration text");
    b.p[0] = '\0';
    tb_printf(&b, "# %s\n", title);
    const char *group = NULL;
    for (int i = 0; i < schema->n_keys; i++) {
        const dlm_config_key *k = &schema->keys[i];
        const char *field = (const char *)c + k->offset;
        if (!group || strcmp(group, k->group) != 0) {
            if (group) tb_printf(&b, "};\n");
            tb_printf(&b, "%s = {\n", k->group);
            group = k->group;
        }
        tb_printf(&b, "  %s = ", k->name);
        char num[40];
        switch (k->type) {
        case DLM_KEY_INT: tb_printf(&b, "%d", *(const int *)field); break;
        case DLM_KEY_U64: {
            uint64_t v = *(const uint64_t *)field;
            if (v > (uint64_t)INT64_MAX) {
                free(b.p);
                DLM_CHECK(0, DLM_ERR_ARG, "%s.%s %llu does not fit libconfig's signed 64-bit integers",
                          k->group, k->name, (unsigned long long)v);
            }
            tb_printf(&b, "%llu%s", (unsigned long long)v, v > (uint64_t)INT_MAX ? "L" : "");
            break;
        }
        case DLM_KEY_DOUBLE:
            number_text(*(const double *)field, num, sizeof num);
            tb_printf(&b, "%s", num);
            break;
        case DLM_KEY_BOOL: tb_printf(&b, "%s", *(const int *)field ? "true" : "false"); break;
        case DLM_KEY_ENUM: {
            int v = *(const int *)field;
            const char *name = v >= 0 && v < dlm_names_count(k->names) ? k->names[v] : NULL;
            if (!name) {
                free(b.p);
                DLM_CHECK(0, DLM_ERR_ARG, "%s.%s holds %d, not a known value", k->group, k->name,
                          *(const int *)field);
            }
            tb_string(&b, name);
            break;
        }
        case DLM_KEY_STRING: tb_string(&b, field); break;
        case DLM_KEY_PATHS: {
            const char(*paths)[DLM_CONFIG_PATH_MAX] = (const char(*)[DLM_CONFIG_PATH_MAX])field;
            int n = *(const int *)((const char *)c + k->count_offset);
            if (n < 0 || n > DLM_CONFIG_MAX_PATHS) {
                free(b.p);
                DLM_CHECK(0, DLM_ERR_ARG, "%s.%s: %d paths, expected 0 to %d", k->group, k->name,
                          n, DLM_CONFIG_MAX_PATHS);
            }
            if (n == 1) {
                tb_string(&b, paths[0]);
                break;
            }
            tb_printf(&b, "[");
            for (int j = 0; j < n; j++) {
                tb_printf(&b, "%s", j ? ", " : " ");
                tb_string(&b, paths[j]);
            }
            tb_printf(&b, " ]");
            break;
        }
        case DLM_KEY_INTS:
        case DLM_KEY_DOUBLES: {
            int n = *(const int *)((const char *)c + k->count_offset);
            if (n < 0 || n > DLM_CONFIG_MAX_INTS) {
                free(b.p);
                DLM_CHECK(0, DLM_ERR_ARG, "%s.%s: %d values, expected 0 to %d", k->group, k->name,
                          n, DLM_CONFIG_MAX_INTS);
            }
            tb_printf(&b, "[");
            for (int j = 0; j < n; j++) {
                if (k->type == DLM_KEY_INTS) {
                    tb_printf(&b, "%s%d", j ? ", " : " ", ((const int *)field)[j]);
                } else {
                    number_text(((const double *)field)[j], num, sizeof num);
                    tb_printf(&b, "%s%s", j ? ", " : " ", num);
                }
            }
            tb_printf(&b, " ]");
            break;
        }
        }
        tb_printf(&b, ";\n");
    }
    tb_printf(&b, "};\n");
    if (b.oom) {
        free(b.p);
        DLM_CHECK(0, DLM_ERR_NOMEM, "allocating the configuration text");
    }
    *text = b.p;
    return DLM_OK;
}
