/* Host TAP devices (see tap.h). */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/tap.h"
#include "net/vnet_hdr.h"
#include "lib/error.h"

/* Bring the link up, as `ip link set NAME up` would: a TAP we created is down, and frames
 * written to a down TAP are dropped.  Without CAP_NET_ADMIN the owner has to do it. */
static void link_up(const char *name)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return;
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && !(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		(void)ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	close(s);
}

int tap_open(const char *name)
{
	if (!*name || strlen(name) > TAP_NAME_MAX || strchr(name, '/') || strchr(name, '%'))
		return error_set(-EINVAL, "TAP '%.40s': bad name (1-%d characters, no '/' or '%%')",
				 name, TAP_NAME_MAX);
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		return error_set(-e, "TAP %s: /dev/net/tun: %s", name, strerror(e));
	}
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	int hdr = VNET_HDR_LEN;
	const char *what = "TUNSETIFF";
	if (ioctl(fd, TUNSETIFF, &ifr) < 0)
		goto fail;
	what = "TUNSETVNETHDRSZ";
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0)
		goto fail;
	what = "TUNSETOFFLOAD";
	if (ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN) < 0)
		goto fail;
	link_up(name);
	return fd;
fail:;
	int e = errno;
	error_set(-e, "TAP %s: %s: %s%s", name, what, strerror(e),
		  e == EPERM ? " (creating a TAP needs CAP_NET_ADMIN; or create it with "
			       "`ip tuntap add NAME mode tap user USER`)"
			     : "");
	close(fd);
	return -e;
}
