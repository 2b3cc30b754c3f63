/* vCPU set-up and the KVM_RUN loop (see vcpu.h). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "cpu/cpuid.h"
#include "cpu/vcpu.h"
#include "vmm/vm.h"

#define VCPU_KICK_SIGNAL SIGUSR1

#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_MODE_NMI 4
#define APIC_MODE_EXTINT 7

static void kick_handler(int sig)
{
	(void)sig; /* only there to interrupt KVM_RUN with EINTR */
}

int vcpu_signal_setup(void)
{
	struct sigaction sa = {.sa_handler = kick_handler}; /* no SA_RESTART: KVM_RUN must return */
	sigemptyset(&sa.sa_mask);
	if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0)
		return -errno;
	return 0;
}

static int setup_cpuid(struct vcpu *v, unsigned ncpus)
{
	const struct kvm_cpuid2 *sup = v->vm->cpuid;
	size_t sz = sizeof(*sup) + sup->nent * sizeof(sup->entries[0]);
	struct kvm_cpuid2 *c = malloc(sz);
	if (!c)
		return -ENOMEM;
	memcpy(c, sup, sz);
	cpuid_fixup(c, v->id, ncpus);
	int r = ioctl(v->fd, KVM_SET_CPUID2, c) < 0 ? -errno : 0;
	free(c);
	return r;
}

static int setup_msrs(struct vcpu *v)
{
	static const struct {
		uint32_t index;
		uint64_t value;
	} init[] = {
	    {0x174, 0},		  /* SYSENTER_CS */
	    {0x175, 0},		  /* SYSENTER_ESP */
	    {0x176, 0},		  /* SYSENTER_EIP */
	    {0xC0000081, 0},	  /* STAR */
	    {0xC0000082, 0},	  /* LSTAR */
	    {0xC0000083, 0},	  /* CSTAR */
	    {0xC0000084, 0},	  /* SYSCALL_MASK */
	    {0xC0000102, 0},	  /* KERNEL_GS_BASE */
	    {0x10, 0},		  /* TSC: every vCPU written alike, so KVM keeps them in sync */
	    {0x1A0, 1},		  /* MISC_ENABLE: fast strings */
	    {0x2FF, 1 << 11 | 6}, /* MTRR default type: enabled, write-back */
	};
	const unsigned n = sizeof(init) / sizeof(init[0]);
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[sizeof(init) / sizeof(init[0])];
	} m;
	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = n;
	for (unsigned i = 0; i < n; i++) {
		m.e[i].index = init[i].index;
		m.e[i].data = init[i].value;
	}
	int r = ioctl(v->fd, KVM_SET_MSRS, &m);
	if (r < 0)
		return -errno;
	return r == (int)n ? 0 : -EINVAL;
}

static void set_lvt(struct kvm_lapic_state *l, unsigned reg, unsigned mode)
{
	uint32_t val;
	memcpy(&val, &l->regs[reg], 4);
	val = (val & ~0x700u) | mode << 8;
	memcpy(&l->regs[reg], &val, 4);
}

static int setup_lapic(struct vcpu *v)
{
	struct kvm_lapic_state l;
	if (ioctl(v->fd, KVM_GET_LAPIC, &l) < 0)
		return -errno;
	/* As a BIOS leaves it: the 8259 reaches the CPU through LINT0, NMIs through LINT1. */
	set_lvt(&l, APIC_LVT_LINT0, APIC_MODE_EXTINT);
	set_lvt(&l, APIC_LVT_LINT1, APIC_MODE_NMI);
	if (ioctl(v->fd, KVM_SET_LAPIC, &l) < 0)
		return -errno;
	return 0;
}

int vcpu_create(struct vm *vm, unsigned id, unsigned ncpus, struct vcpu **out)
{
	struct vcpu *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->vm = vm;
	v->id = id;
	v->run = MAP_FAILED;
	int r;
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, id);
	if (v->fd < 0) {
		r = -errno;
		goto fail;
	}
	v->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		r = -errno;
		goto fail;
	}
	if ((r = setup_cpuid(v, ncpus)) < 0 || (r = setup_msrs(v)) < 0 || (r = setup_lapic(v)) < 0)
		goto fail;
	/* Application processors sleep until the guest sends INIT/SIPI. */
	struct kvm_mp_state mp = {.mp_state =
				      id == 0 ? KVM_MP_STATE_RUNNABLE : KVM_MP_STATE_UNINITIALIZED};
	if (ioctl(v->fd, KVM_SET_MP_STATE, &mp) < 0) {
		r = -errno;
		goto fail;
	}
	*out = v;
	return 0;
fail:
	vcpu_destroy(v);
	return r;
}

static void dispatch_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *p = (uint8_t *)run + run->io.data_offset;
	bool write = run->io.direction == KVM_EXIT_IO_OUT;
	/* KVM keeps data_offset + count * size inside the kvm_run mapping. */
	for (uint32_t i = 0; i < run->io.count; i++, p += run->io.size)
		io_bus_access(&v->vm->pio, run->io.port, p, run->io.size, write);
}

/* Handle one exit. Returns false when the VM must end. */
static bool handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		dispatch_io(v);
		return true;
	case KVM_EXIT_MMIO:
		io_bus_access(&v->vm->mmio, run->mmio.phys_addr, run->mmio.data,
			      run->mmio.len <= 8 ? run->mmio.len : 8, run->mmio.is_write);
		return true;
	case KVM_EXIT_INTR:
	case KVM_EXIT_IRQ_WINDOW_OPEN:
		return true;
	case KVM_EXIT_SHUTDOWN: /* triple fault: a PC resets */
		vm_request_end(v->vm, VM_END_REBOOT);
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN) {
			vm_request_end(v->vm, VM_END_POWEROFF);
			return false;
		}
		if (run->system_event.type == KVM_SYSTEM_EVENT_RESET) {
			vm_request_end(v->vm, VM_END_REBOOT);
			return false;
		}
		fprintf(stderr, "minivmm: vcpu %u: system event %u\n", v->id,
			run->system_event.type);
		break;
	case KVM_EXIT_FAIL_ENTRY:
		fprintf(stderr, "minivmm: vcpu %u: VM entry failed (reason 0x%llx)\n", v->id,
			(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		fprintf(stderr, "minivmm: vcpu %u: KVM internal error (suberror %u)\n", v->id,
			run->internal.suberror);
		break;
	default:
		fprintf(stderr, "minivmm: vcpu %u: unhandled exit reason %u\n", v->id,
			run->exit_reason);
		break;
	}
	vm_request_end(v->vm, VM_END_ERROR);
	return false;
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	char name[16];
	snprintf(name, sizeof(name), "vcpu%u", v->id);
	pthread_setname_np(pthread_self(), name);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	while (!vm_vcpu_checkpoint(v->vm, v)) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			fprintf(stderr, "minivmm: vcpu %u: KVM_RUN: %s\n", v->id, strerror(errno));
			vm_request_end(v->vm, VM_END_ERROR);
			break;
		}
		if (!handle_exit(v))
			break;
	}
	pthread_mutex_lock(&v->vm->lock);
	v->vm->threads_alive--;
	pthread_cond_broadcast(&v->vm->cond);
	pthread_mutex_unlock(&v->vm->lock);
	return NULL;
}

int vcpu_start(struct vcpu *v)
{
	pthread_mutex_lock(&v->vm->lock);
	v->stop_requested = false;
	v->vm->threads_alive++;
	pthread_mutex_unlock(&v->vm->lock);
	int r = pthread_create(&v->thread, NULL, vcpu_thread, v);
	if (r) {
		pthread_mutex_lock(&v->vm->lock);
		v->vm->threads_alive--;
		pthread_mutex_unlock(&v->vm->lock);
		return -r;
	}
	v->thread_started = true;
	return 0;
}

void vcpu_kick(struct vcpu *v)
{
	if (!v->thread_started)
		return;
	/* immediate_exit covers the window before the thread enters KVM_RUN, the signal the time
	 * inside it. */
	v->run->immediate_exit = 1;
	pthread_kill(v->thread, VCPU_KICK_SIGNAL);
}

void vcpu_join(struct vcpu *v)
{
	if (!v->thread_started)
		return;
	pthread_join(v->thread, NULL);
	v->thread_started = false;
}

void vcpu_destroy(struct vcpu *v)
{
	if (!v)
		return;
	if (v->run != MAP_FAILED && v->run)
		munmap(v->run, v->vm->run_size);
	if (v->fd >= 0)
		close(v->fd);
	free(v);
}
