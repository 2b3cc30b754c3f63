/* mkdir -p: one place for it (the state dir, the runtime dir, storage pools). */
#ifndef MINIVMM_LIB_MKDIRS_H
#define MINIVMM_LIB_MKDIRS_H

#include <sys/types.h>

/* Create path and its missing parents, each new one with mode (existing ones are left as they
 * are); 0 when path is a directory afterwards, else -errno with a message naming the component
 * that failed (lib/error.h). */
int mkdirs(const char *path, mode_t mode);

#endif
