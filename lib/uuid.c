/* Random identifiers (see uuid.h). */
#include <errno.h>
#include <sys/random.h>
#include <sys/types.h>

#include "lib/uuid.h"

int random_fill(void *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = getrandom((uint8_t *)buf + got, len - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	return 0;
}

int uuid_random_v4(uint8_t u[16])
{
	int ret = random_fill(u, 16);
	if (ret < 0)
		return ret;
	u[6] = (u[6] & 0x0f) | 0x40; /* version 4: random */
	u[8] = (u[8] & 0x3f) | 0x80; /* RFC 4122 variant */
	return 0;
}
