/* One error channel for every layer.  A function that fails returns -errno and records one line
 * saying why (naming the file, image, register or value) with error_set(); the caller that decides
 * reads it with error_msg(), passes the failure up (adding context with error_wrap()), or reports
 * it once through lib/log.h.  The message is thread-local: it is the thread's latest failure, so a
 * caller reads it right after the call that failed.
 *
 *   return error_set(-EINVAL, "%s: L1 table offset %#llx beyond end of file", bs->filename, x);
 */
#ifndef MINIVMM_LIB_ERROR_H
#define MINIVMM_LIB_ERROR_H

#include <stdbool.h>

/* Record the message of the current failure; returns err as a negative errno (-5 for 5 or -5).
 * The arguments may include error_msg() (the previous message). */
int error_set(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Put context in front of the recorded message ("<fmt>: <message>"); returns err as error_set. */
int error_wrap(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The recorded message, or "no error recorded". */
const char *error_msg(void);
/* Forget the recorded message (error_msg() says "no error recorded" again). */
void error_clear(void);
/* Whether a message was recorded since the last error_clear(). */
bool error_recorded(void);

#endif
