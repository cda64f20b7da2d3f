/* Fault injection for crash-safety tests: with DLM_FAULT=<point>:<n> in the
 * environment, the process kills itself with SIGKILL the n-th time it
 * reaches the named point (as kill -9 from outside would, so no atexit,
 * no stdio flush, no HDF5 close). Without DLM_FAULT a point costs one
 * string compare.
 *
 * Points: runfile.write, runfile.rename (src/io/runfile.c),
 *         ckpt.write, ckpt.rename (src/io/checkpoint.c). */
#ifndef DLM_FAULT_H
#define DLM_FAULT_H

/* The variable is read on the first call in each process (a forked child
 * reads it afresh), counting from zero there. */
void dlm_fault_point(const char *name);

#endif
