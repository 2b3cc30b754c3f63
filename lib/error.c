/* The thread-local message behind lib/error.h. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/error.h"

static __thread char error_text[512];

int error_set(int err, const char *fmt, ...)
{
	char text[sizeof(error_text)];
	va_list ap;

	/* Through a copy: the arguments may include error_msg() itself. */
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	memcpy(error_text, text, sizeof(error_text));
	return err < 0 ? err : -err;
}

int error_wrap(int err, const char *fmt, ...)
{
	char inner[sizeof(error_text)];
	va_list ap;

	snprintf(inner, sizeof(inner), "%s", error_msg());
	va_start(ap, fmt);
	int n = vsnprintf(error_text, sizeof(error_text), fmt, ap);
	va_end(ap);
	/* The message is cut at the buffer's end, like error_set's. */
	if (n >= 0 && (size_t)n < sizeof(error_text))
		snprintf(error_text + n, sizeof(error_text) - (size_t)n, ": %.*s",
			 (int)(sizeof(error_text) - (size_t)n), inner);
	return err < 0 ? err : -err;
}

const char *error_msg(void)
{
	return error_text[0] ? error_text : "no error recorded";
}

void error_clear(void)
{
	error_text[0] = '\0';
}

bool error_recorded(void)
{
	return error_text[0] != '\0';
}
