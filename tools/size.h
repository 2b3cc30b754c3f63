/* Byte sizes on the `minivmm img` command line: "4096", "64k", "1.5G", "2T".
 *
 * Pure functions (no I/O, no allocation) so they can be unit-tested exhaustively.
 */
#ifndef MINIVMM_TOOLS_SIZE_H
#define MINIVMM_TOOLS_SIZE_H

#include <stddef.h>
#include <stdint.h>

/* Parse a size: decimal digits, an optional fraction, an optional suffix b/B (bytes) or k/K, m/M,
 * g/G, t/T, p/P, e/E (powers of 1024).  Returns 0, or -EINVAL for junk/negative/empty input,
 * -ERANGE when the value does not fit in 63 bits (the largest offset a file can have). */
int size_parse(const char *text, uint64_t *out);

/* A size for people, as qemu-img writes it: three significant digits and a binary unit
 * ("1 GiB", "196 KiB", "1.5 MiB", "512 B").  Returns buf. */
char *size_format(uint64_t bytes, char *buf, size_t len);

#endif
