/* The KVM backend of a vCPU (vcpu.h): its fd, kvm_run page and CPUID, and KVM_RUN. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "cpu/cpuid.h"
#include "cpu/vcpu.h"
#include "cpu/vcpu_kvm.h"

static int setup_cpuid(struct vcpu *v)
{
	const struct kvm_cpuid2 *sup = v->env->cpuid;
	size_t sz = sizeof(*sup) + sup->nent * sizeof(sup->entries[0]);
	struct kvm_cpuid2 *c = malloc(sz);
	if (!c)
		return -ENOMEM;
	memcpy(c, sup, sz);
	cpuid_fixup(c, v->id, v->env->max_cpus);
	int r = ioctl(v->fd, KVM_SET_CPUID2, c) < 0 ? -errno : 0;
	free(c);
	return r;
}

static int kvm_create(struct vcpu *v)
{
	struct vcpu_kvm *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	v->priv = k;
	v->fd = ioctl(v->env->vm_fd, KVM_CREATE_VCPU, (unsigned long)v->id);
	if (v->fd < 0)
		return -errno;
	void *run = mmap(NULL, v->env->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (run == MAP_FAILED)
		return -errno;
	v->run = run;
	int r = setup_cpuid(v);
	if (r < 0)
		return r;
	/* A fresh vCPU's LAPIC is in its power-on state: keep it for every later reset. */
	if (ioctl(v->fd, KVM_GET_LAPIC, &k->lapic) < 0)
		return -errno;
	k->xsave = ioctl(v->env->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0;
	k->xcrs = ioctl(v->env->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;
	k->debugregs = ioctl(v->env->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_DEBUGREGS) > 0;
	k->events = ioctl(v->env->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_VCPU_EVENTS) > 0;
	return 0;
}

static int kvm_run(struct vcpu *v)
{
	if (ioctl(v->fd, KVM_RUN, 0) < 0)
		return errno == EAGAIN ? -EINTR : -errno;
	return 0;
}

static void kvm_destroy(struct vcpu *v)
{
	if (v->run)
		munmap(v->run, v->env->run_size);
	v->run = NULL;
	if (v->fd >= 0)
		close(v->fd);
	v->fd = -1;
	free(v->priv);
	v->priv = NULL;
}

/* No .halted (cpu/vcpu_stats.h): busy as wall time less KVM's halted time measured worse than the
 * thread's CPU time inside the nested harness (README, vCPU benchmark); until it is measured on
 * real KVM the cap counts the thread's CPU time. */
const struct vcpu_ops vcpu_kvm_ops = {
    .create = kvm_create,
    .reset = vcpu_kvm_reset,
    .run = kvm_run,
    .destroy = kvm_destroy,
};
