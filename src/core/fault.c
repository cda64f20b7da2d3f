/* DLM_FAULT=<point>:<n>: SIGKILL (or an error) on the n-th arrival at a named point. */
#define _POSIX_C_SOURCE 200809L
#include "core/fault.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

/* Process-wide by nature: the hook stands for an outside kill, and the
 * parse is keyed by pid so a forked child starts its own count. */
static pid_t fault_pid;
static char fault_name[64];
static long fault_target, fault_count;

static void fault_parse(void)
{
    fault_name[0] = '\0';
    fault_target = 0;
    fault_count = 0;
    const char *v = getenv("DLM_FAULT");
    if (!v || !*v) return;
    const char *colon = strrchr(v, ':');
    char *end = NULL;
    long n = colon ? strtol(colon + 1, &end, 10) : 0;
    size_t len = colon ? (size_t)(colon - v) : 0;
    if (!colon || len == 0 || len >= sizeof fault_name || !end || *end || end == colon + 1 || n < 1) {
        DLM_WARN("DLM_FAULT='%s' not understood (expected <point>:<n>, n >= 1); ignored", v);
        return;
    }
    memcpy(fault_name, v, len);
    fault_name[len] = '\0';
    fault_target = n;
}

/* 1 on the n-th arrival at the named point. */
static int fault_due(const char *name)
{
    pid_t me = getpid();
    if (me != fault_pid) {
        fault_pid = me;
        fault_parse();
    }
    return fault_name[0] && !strcmp(name, fault_name) && ++fault_count == fault_target;
}

void dlm_fault_point(const char *name)
{
    if (fault_due(name)) {
        raise(SIGKILL);
        _exit(137); /* not reached */
    }
}

int dlm_fault_error(const char *name) { return fault_due(name); }
