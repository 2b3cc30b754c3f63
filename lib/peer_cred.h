/* Who is on the other end of a connected UNIX socket.  The control sockets and the switch's
 * socket admit only their owner and root, whatever the file modes say: a directory or socket
 * opened up by mistake must not let another user steer a VM or join its network. */
#ifndef MINIVMM_LIB_PEER_CRED_H
#define MINIVMM_LIB_PEER_CRED_H

#include <stdbool.h>

/* True when the peer of `fd` (SO_PEERCRED) runs as this process's effective uid or as root;
 * false when it does not or cannot be told. */
bool peer_is_owner_or_root(int fd);

#endif
