/* Random identifiers for image formats and VM state: RFC 4122 version-4 UUIDs from the kernel's
 * random source (getrandom), so that every writer of a UUID makes them the same way. */
#ifndef MINIVMM_LIB_UUID_H
#define MINIVMM_LIB_UUID_H

#include <stddef.h>
#include <stdint.h>

/* Fill buf with len random bytes (retried on EINTR). 0 or -errno. */
int random_fill(void *buf, size_t len);
/* A random version-4 UUID, bytes in RFC 4122 (big-endian field) order. 0 or -errno. Formats that
 * store fields little-endian (VDI, VHDX) convert it. */
int uuid_random_v4(uint8_t u[16]);

#endif
