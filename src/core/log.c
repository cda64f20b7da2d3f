/* Rank-prefixed log lines to stderr (errors, warnings) and stdout (the rest). */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>

static int log_rank;
static dlm_log_level log_level = DLM_LOG_INFO;

void dlm_log_set_rank(int rank) { log_rank = rank; }
void dlm_log_set_level(dlm_log_level level) { log_level = level; }

void dlm_log(dlm_log_level level, const char *fmt, ...)
{
    static const char *tag[] = {"error", "warn", "info", "debug"};
    if (level > log_level) return;
    FILE *f = level <= DLM_LOG_WARN ? stderr : stdout;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(f, "[%d] %s: %s\n", log_rank, tag[level], line);
    fflush(f);
}
