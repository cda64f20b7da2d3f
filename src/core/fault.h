/* Fault injection for crash-safety tests: with DLM_FAULT=<point>:<n> in the
 * environment, the process kills itself with SIGKILL the n-th time it
 * reaches the named point (as kill -9 from outside would, so no atexit,
 * no stdio flush, no HDF5 close). Without DLM_FAULT a point costs one
 * string compare.
 *
 * Points: runfile.write, runfile.rename (src/io/runfile.c),
 *         ckpt.write, ckpt.rename (src/io/checkpoint.c); error points,
 *         where the code fails as a library call would instead:
 *         ckpt.write_error (one dataset's collective write). */
#ifndef DLM_FAULT_H
#define DLM_FAULT_H

/* The variable is read on the first call in each process (a forked child
 * reads it afresh), counting from zero there. */
void dlm_fault_point(const char *name);
/* An error point: 1 the n-th time it is reached under DLM_FAULT=<name>:<n>
 * (the caller then fails as if the call at that point had), else 0. */
int dlm_fault_error(const char *name);

#endif
