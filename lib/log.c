/* Leveled messages and trace points (log.h). */
#include "lib/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum log_level log_level = LOG_WARN;
uint64_t trace_mask;

static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const char *const trace_names[TRACE_CATEGORIES] = {
    [TRACE_VCPU] = "vcpu",	 [TRACE_LOOP] = "loop",	    [TRACE_PCI] = "pci",
    [TRACE_IRQ] = "irq",	 [TRACE_IDE] = "ide",	    [TRACE_AHCI] = "ahci",
    [TRACE_ATA] = "ata",	 [TRACE_VIRTIO] = "virtio", [TRACE_BLOCK] = "block",
    [TRACE_CONTROL] = "control", [TRACE_SERIAL] = "serial", [TRACE_ACPI] = "acpi",
    [TRACE_LSI] = "lsi",
};

int log_set_level(const char *name)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (!strcmp(name, level_names[i])) {
			log_level = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

int trace_enable(const char *list)
{
	uint64_t mask = 0;
	const char *p = list;
	if (!*p)
		return -EINVAL;
	while (*p) {
		size_t n = strcspn(p, ",+");
		if (n == 3 && !strncmp(p, "all", 3)) {
			mask |= (1ull << TRACE_CATEGORIES) - 1;
		} else {
			unsigned i;
			for (i = 0; i < TRACE_CATEGORIES; i++)
				if (strlen(trace_names[i]) == n && !strncmp(p, trace_names[i], n))
					break;
			if (i == TRACE_CATEGORIES)
				return -EINVAL;
			mask |= 1ull << i;
		}
		p += n;
		if (*p) {
			p++;
			if (!*p)
				return -EINVAL; /* a trailing separator */
		}
	}
	trace_mask |= mask;
	return 0;
}

int log_init_from_env(void)
{
	const char *env = getenv("MINIVMM_LOG");
	if (!env || !*env)
		return 0;
	char *copy = strdup(env);
	if (!copy)
		return -ENOMEM;
	enum log_level saved_level = log_level;
	uint64_t saved_mask = trace_mask;
	int ret = 0;
	char *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok && !ret;
	     tok = strtok_r(NULL, ",", &save)) {
		if (!strncmp(tok, "trace=", 6))
			ret = trace_enable(tok + 6);
		else
			ret = log_set_level(tok);
	}
	free(copy);
	if (ret) {
		log_level = saved_level;
		trace_mask = saved_mask;
		log_warn("log", "MINIVMM_LOG='%s' not understood (levels: %s; trace=%s): ignored",
			 env, "error, warn, info, debug", trace_category_names());
	}
	return ret;
}

const char *trace_category_names(void)
{
	static char names[160];
	if (!names[0]) {
		size_t off = 0;
		for (unsigned i = 0; i < TRACE_CATEGORIES && off < sizeof(names); i++)
			off += snprintf(names + off, sizeof(names) - off, "%s%s", i ? "," : "",
					trace_names[i]);
	}
	return names;
}

/* One write per message, so lines from several threads never interleave. */
static void emit(const char *prefix, const char *subsystem, const char *fmt, va_list ap)
{
	char line[1024];
	int off = snprintf(line, sizeof(line), "minivmm: %s%s%s", prefix,
			   subsystem ? subsystem : "", subsystem ? ": " : "");
	if (off < 0 || (size_t)off >= sizeof(line))
		off = 0;
	int n = vsnprintf(line + off, sizeof(line) - off, fmt, ap);
	size_t len = n < 0 ? (size_t)off : (size_t)off + (size_t)n;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	fwrite(line, 1, len, stderr);
}

void log_msg(enum log_level level, const char *subsystem, const char *fmt, ...)
{
	if (level > log_level)
		return;
	static const char *const prefixes[] = {"", "warning: ", "", "debug: "};
	va_list ap;
	va_start(ap, fmt);
	emit(prefixes[level], subsystem, fmt, ap);
	va_end(ap);
}

void trace_emit(enum trace_category cat, const char *fmt, ...)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	char prefix[48];
	snprintf(prefix, sizeof(prefix), "trace %ld.%06ld ", (long)ts.tv_sec, ts.tv_nsec / 1000);
	va_list ap;
	va_start(ap, fmt);
	emit(prefix, cat < TRACE_CATEGORIES ? trace_names[cat] : "?", fmt, ap);
	va_end(ap);
}
