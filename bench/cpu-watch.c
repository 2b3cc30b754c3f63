/* Guest-side benchmark helper: brings hot-added CPUs online and says when.
 *
 * Runs in the CPU benchmark guest (bench/cpu.sh) as a static program in the background.  It listens
 * to the kernel's uevents (what udev hears), and for "add" of /devices/system/cpu/cpuN writes 1 to
 * its `online` file (the job of guest-tests/udev/80-minivmm-cpu-online.rules) and prints
 * "WATCH: online cpuN" once the write has returned, i.e. the CPU runs; for "remove" it prints
 * "WATCH: removed cpuN".  The host times these lines against its own request.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* "/devices/system/cpu/cpu<digits>" and nothing after: the CPU device itself. */
static int cpu_number(const char *devpath)
{
	static const char prefix[] = "/devices/system/cpu/cpu";
	const char *p = devpath + sizeof(prefix) - 1;
	int n = 0;

	if (strncmp(devpath, prefix, sizeof(prefix) - 1) != 0 || *p == '\0')
		return -1;
	for (; *p; p++) {
		if (*p < '0' || *p > '9' || n > 4096)
			return -1;
		n = n * 10 + (*p - '0');
	}
	return n;
}

static int set_online(int cpu)
{
	char path[64];
	int fd, rc = 0;

	snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/online", cpu);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	if (write(fd, "1", 1) != 1)
		rc = -errno;
	close(fd);
	return rc;
}

int main(void)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = 1};
	char buf[8192];
	int fd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	fd = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_KOBJECT_UEVENT);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("cpu-watch: uevent socket");
		return 1;
	}
	printf("WATCH: listening\n");
	for (;;) {
		ssize_t len = recv(fd, buf, sizeof(buf) - 1, 0);
		const char *action = NULL, *devpath = NULL;

		if (len < 0) {
			if (errno == EINTR || errno == ENOBUFS)
				continue;
			perror("cpu-watch: recv");
			return 1;
		}
		buf[len] = '\0';
		/* "ACTION@DEVPATH\0KEY=VALUE\0...": read the keys, not the header. */
		for (char *k = buf; k < buf + len; k += strlen(k) + 1) {
			if (strncmp(k, "ACTION=", 7) == 0)
				action = k + 7;
			else if (strncmp(k, "DEVPATH=", 8) == 0)
				devpath = k + 8;
		}
		if (!action || !devpath)
			continue;
		int cpu = cpu_number(devpath);
		if (cpu < 0)
			continue;
		if (strcmp(action, "add") == 0) {
			int rc = set_online(cpu);
			if (rc < 0)
				printf("WATCH: online cpu%d failed: %s\n", cpu, strerror(-rc));
			else
				printf("WATCH: online cpu%d\n", cpu);
		} else if (strcmp(action, "remove") == 0) {
			printf("WATCH: removed cpu%d\n", cpu);
		}
	}
}
