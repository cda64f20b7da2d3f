/* Running a helper program with its stdout and stderr captured (see corpus_run.h). */
#define _POSIX_C_SOURCE 200809L
#include "io/corpus_run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

dlm_status dlm_corpus_run_capture(const char *const *argv, tbuf *out, tbuf *err, run_result *res)
{
    int po[2], pe[2];
    memset(res, 0, sizeof *res);
    DLM_CHECK(pipe(po) == 0, DLM_ERR_IO, "cannot create a pipe to run %s: %s", argv[0],
              strerror(errno));
    if (pipe(pe) != 0) {
        int saved = errno;
        close(po[0]);
        close(po[1]);
        DLM_CHECK(0, DLM_ERR_IO, "cannot create a pipe to run %s: %s", argv[0], strerror(saved));
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    posix_spawn_file_actions_addclose(&fa, po[0]);
    posix_spawn_file_actions_addclose(&fa, po[1]);
    posix_spawn_file_actions_addclose(&fa, pe[0]);
    posix_spawn_file_actions_addclose(&fa, pe[1]);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(po[1]);
    close(pe[1]);
    if (rc != 0) {
        close(po[0]);
        close(pe[0]);
        res->err_no = rc;
        return DLM_OK;
    }
    res->started = 1;
    struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    int open_fds = 2;
    char chunk[1 << 14];
    while (open_fds) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (int k = 0; k < 2; k++) {
            if (fds[k].fd < 0 || !(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t r = read(fds[k].fd, chunk, sizeof chunk);
            if (r > 0) {
                tb_add(k ? err : out, chunk, (size_t)r);
            } else if (r == 0 || errno != EINTR) {
                close(fds[k].fd);
                fds[k].fd = -1;
                open_fds--;
            }
        }
    }
    for (int k = 0; k < 2; k++)
        if (fds[k].fd >= 0) close(fds[k].fd);
    int wst = 0;
    while (waitpid(pid, &wst, 0) < 0 && errno == EINTR) {
    }
    res->status = WIFEXITED(wst) ? WEXITSTATUS(wst) : 128 + (WIFSIGNALED(wst) ? WTERMSIG(wst) : 0);
    DLM_CHECK(!out->failed && !err->failed, DLM_ERR_NOMEM, "out of memory reading the output of %s",
              argv[0]);
    return DLM_OK;
}

const char *dlm_corpus_output_tail(const tbuf *b, char *dst, size_t cap)
{
    size_t n = b->len, from = n > cap - 1 ? n - (cap - 1) : 0, k = 0;
    for (size_t i = from; i < n && k + 1 < cap; i++) dst[k++] = b->p[i] == '\n' ? ' ' : b->p[i];
    while (k && dst[k - 1] == ' ') k--;
    dst[k] = '\0';
    return dst;
}
