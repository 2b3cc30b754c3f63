/* Switch socket paths for --nic switch=NAME (see vm_nics.h). */
#include <stdio.h>

#include "net/switch_proto.h"
#include "vmm/control_internal.h"
#include "vmm/vm_config.h"
#include "vmm/vm_nics.h"
#include "lib/error.h"

int vm_nics_resolve(struct vm_config *cfg)
{
	for (unsigned i = 0; i < cfg->nnics; i++) {
		struct nic_config *n = &cfg->nics[i];
		if (n->backend != NIC_SWITCH)
			continue;
		int r = control_path_for(n->name, SWITCH_SOCKET_SUFFIX, n->switch_path,
					 sizeof(n->switch_path));
		if (r < 0)
			return error_wrap(r, "--nic switch=%s", n->name);
	}
	return 0;
}
