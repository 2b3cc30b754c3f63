/* Switch socket paths for --nic switch=NAME (see vm_nics.h). */
#include <stdio.h>

#include "net/switch_proto.h"
#include "vmm/control_internal.h"
#include "vmm/vm_config.h"
#include "vmm/vm_nics.h"

int vm_nics_resolve(struct vm_config *cfg, char *err, size_t errlen)
{
	for (unsigned i = 0; i < cfg->nnics; i++) {
		struct nic_config *n = &cfg->nics[i];
		if (n->backend != NIC_SWITCH)
			continue;
		char msg[300];
		int r = control_path_for(n->name, SWITCH_SOCKET_SUFFIX, n->switch_path,
					 sizeof(n->switch_path), msg, sizeof(msg));
		if (r < 0) {
			snprintf(err, errlen, "--nic switch=%s: %s", n->name, msg);
			return r;
		}
	}
	return 0;
}
