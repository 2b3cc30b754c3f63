/* The debug console at port 0x402 that QEMU offers firmware (isa-debugcon): SeaBIOS reads the
 * port, sees 0xE9 and writes its log there byte by byte.  minivmm collects the bytes into lines
 * and hands each to a callback (logged, and watched for boot failures).
 *
 * The machine's device "debugcon" (DEVICE_LEVEL_PLATFORM) exists only when firmware boots: it logs
 * the lines at debug level and asks for DEVICE_REQUEST_NO_BOOT on SeaBIOS's "No bootable device".
 */
#ifndef MINIVMM_DEVICES_DEBUGCON_H
#define MINIVMM_DEVICES_DEBUGCON_H

#include <stdbool.h>
#include <stdint.h>

#define DEBUGCON_PORT 0x402
#define DEBUGCON_READBACK 0xE9
#define DEBUGCON_LINE_MAX 160 /* longer lines are handed over in pieces */

struct debugcon;
/* `line` is NUL-terminated, without the newline, printable ASCII only. */
typedef void (*debugcon_line_fn)(void *opaque, const char *line);

int debugcon_create(debugcon_line_fn fn, void *opaque, struct debugcon **out);
void debugcon_destroy(struct debugcon *d);
/* io_bus handler for the one port. */
void debugcon_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write);

#endif
