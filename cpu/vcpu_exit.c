/* What a vCPU does with a KVM_RUN exit (vcpu.h): port I/O and MMIO go to the VM's buses, the
 * exits that end the machine become a reason for env->end. */
#include <stdint.h>
#include <stdio.h>
#include <linux/kvm.h>

#include "cpu/vcpu.h"
#include "devices/io_bus.h"
#include "lib/log.h"

static void dispatch_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *p = (uint8_t *)run + run->io.data_offset;
	bool write = run->io.direction == KVM_EXIT_IO_OUT;
	/* KVM keeps data_offset + count * size inside the kvm_run mapping. */
	for (uint32_t i = 0; i < run->io.count; i++, p += run->io.size)
		io_bus_access(v->env->pio, run->io.port, p, run->io.size, write);
}

bool vcpu_handle_exit(struct vcpu *v, enum cpu_end *why)
{
	struct kvm_run *run = v->run;
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		dispatch_io(v);
		return true;
	case KVM_EXIT_MMIO:
		io_bus_access(v->env->mmio, run->mmio.phys_addr, run->mmio.data,
			      run->mmio.len <= 8 ? run->mmio.len : 8, run->mmio.is_write);
		return true;
	case KVM_EXIT_INTR:
	case KVM_EXIT_IRQ_WINDOW_OPEN:
		return true;
	case KVM_EXIT_SHUTDOWN:
		*why = CPU_END_TRIPLE_FAULT;
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN) {
			*why = CPU_END_POWEROFF;
			return false;
		}
		if (run->system_event.type == KVM_SYSTEM_EVENT_RESET) {
			*why = CPU_END_RESET;
			return false;
		}
		log_error(NULL, "vcpu %u: system event %u", v->id, run->system_event.type);
		break;
	case KVM_EXIT_FAIL_ENTRY:
		log_error(NULL, "vcpu %u: VM entry failed (reason 0x%llx)", v->id,
			  (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		log_error(NULL, "vcpu %u: KVM internal error (suberror %u)", v->id,
			  run->internal.suberror);
		break;
	default:
		log_error(NULL, "vcpu %u: unhandled exit reason %u", v->id, run->exit_reason);
		break;
	}
	*why = CPU_END_ERROR;
	return false;
}
