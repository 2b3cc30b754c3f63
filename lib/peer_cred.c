/* Peer credentials of a UNIX socket (see peer_cred.h). */
#include <sys/socket.h>
#include <unistd.h>

#include "lib/peer_cred.h"

bool peer_is_owner_or_root(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred))
		return false;
	return cred.uid == geteuid() || cred.uid == 0;
}
