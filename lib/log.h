/* One way to report: leveled messages and trace points, for every layer.
 *
 * Messages go to stderr as "minivmm: SUBSYSTEM: text" (errors and warnings are always shown at the
 * default level; info and debug when asked).  The level comes from MINIVMM_LOG or --log-level
 * (error, warn, info, debug).  Trace points are per subsystem and cost one predicted branch when
 * off: TRACE(AHCI, "port %u: cmd %#x", p, cmd) prints only while `--trace ahci` (or
 * MINIVMM_LOG=...,trace=ahci+virtio, or trace=all) is in effect.
 *
 * Functions that fail still return -errno and leave the decision to their caller; the caller that
 * decides a failure is the user's business reports it once, here.
 */
#ifndef MINIVMM_LIB_LOG_H
#define MINIVMM_LIB_LOG_H

#include <stdint.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Trace categories: add one here and in log.c's table. */
enum trace_category {
	TRACE_VCPU,
	TRACE_LOOP,
	TRACE_PCI,
	TRACE_IRQ,
	TRACE_IDE,
	TRACE_AHCI,
	TRACE_ATA,
	TRACE_VIRTIO,
	TRACE_BLOCK,
	TRACE_CONTROL,
	TRACE_SERIAL,
	TRACE_ACPI,
	TRACE_LSI,
	TRACE_CATEGORIES
};

extern enum log_level log_level;
extern uint64_t trace_mask;

/* Parse a level name; -EINVAL for an unknown one. */
int log_set_level(const char *name);
/* Enable trace categories from a list such as "ahci,virtio" or "ahci+virtio" or "all";
 * -EINVAL (nothing changed) when a name is unknown. */
int trace_enable(const char *list);
/* Apply MINIVMM_LOG ("debug", "warn,trace=ahci+virtio", "trace=all"); -EINVAL when malformed
 * (the setting is then ignored with one warning). */
int log_init_from_env(void);
/* "error, warn, info, debug" and "vcpu, loop, ..." for usage texts. */
const char *trace_category_names(void);

void log_msg(enum log_level level, const char *subsystem, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void trace_emit(enum trace_category cat, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(sub, ...) log_msg(LOG_ERROR, sub, __VA_ARGS__)
#define log_warn(sub, ...) log_msg(LOG_WARN, sub, __VA_ARGS__)
#define log_info(sub, ...) log_msg(LOG_INFO, sub, __VA_ARGS__)
#define log_debug(sub, ...) log_msg(LOG_DEBUG, sub, __VA_ARGS__)

#define TRACE(cat, ...)                                                                            \
	do {                                                                                       \
		if (__builtin_expect(trace_mask & (1ull << TRACE_##cat), 0))                       \
			trace_emit(TRACE_##cat, __VA_ARGS__);                                      \
	} while (0)

#endif
