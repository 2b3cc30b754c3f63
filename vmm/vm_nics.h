/* The VM's NICs before the devices are made: where each --nic switch=NAME listens. */
#ifndef MINIVMM_VMM_VM_NICS_H
#define MINIVMM_VMM_VM_NICS_H

#include <stddef.h>

struct vm_config;

/* Fill in every switch NIC's switch_path (the runtime directory's rule, as for VMs). */
int vm_nics_resolve(struct vm_config *cfg);

#endif
