/* run --pagefusion on: guest RAM is offered to the host's KSM (MADV_MERGEABLE), which merges
 * identical pages of this and other VMs copy-on-write.  The kernel does the work, and only while
 * /sys/kernel/mm/ksm/run is 1: when it is 0 the user is told once, since nothing will merge. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "lib/host_memory.h"
#include "lib/log.h"
#include "memory/guest_memory.h"
#include "vmm/vm.h"
#include "vmm/vm_internal.h"

int vm_pagefusion_start(struct vm *vm)
{
	static bool told;
	int r = guest_memory_set_mergeable(&vm->mem, 1);
	if (r < 0) {
		/* A kernel without KSM: the VM runs as it would without the option. */
		log_warn("pagefusion", "guest RAM cannot be made mergeable (%s): no page fusion",
			 strerror(-r));
		return 0;
	}
	struct host_ksm k;
	if (!told && host_ksm_read(&k) == 0 && k.run == 0) {
		told = true;
		log_warn("pagefusion",
			 "the host's KSM is off (/sys/kernel/mm/ksm/run is 0): no pages are shared "
			 "until root runs 'echo 1 > /sys/kernel/mm/ksm/run'");
	}
	return 0;
}
