/* A vCPU's power-on architectural state, written through KVM (cpus_reset() in cpus.h).
 *
 * Used at creation and for a reboot in the same process, where the previous guest left every
 * register, MSR and the LAPIC as it liked: KVM's own INIT handling resets only part of that
 * (INIT keeps MSRs, for one, so kvmclock and steal time would go on writing into the new guest's
 * memory).  Values are the SDM's power-on ones, except where no firmware runs before a direct
 * kernel boot and minivmm stands in for it: MTRRs default to write-back, fast strings are on, and
 * the LAPIC routes the 8259 through LINT0 and NMIs through LINT1, as a BIOS leaves them.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>

#include "cpu/vcpu.h"
#include "cpu/vcpu_kvm.h"
#include "lib/log.h"

#define APIC_DEFAULT_BASE 0xFEE00000ULL
#define APIC_BASE_ENABLE 0x800
#define APIC_BASE_BSP 0x100
#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_MODE_NMI 4
#define APIC_MODE_EXTINT 7

#define CR0_ET 0x10
#define CR0_NW 0x20000000
#define CR0_CD 0x40000000

#define FPU_FCW_INIT 0x37F
#define MXCSR_INIT 0x1F80
#define XSTATE_FP_SSE 0x3
#define XSTATE_PKRU (1u << 9)
#define XSAVE_HDR_OFFSET 512

static struct kvm_segment seg(uint16_t sel, uint64_t base, uint8_t type, uint8_t s)
{
	return (struct kvm_segment){
	    .base = base, .limit = 0xFFFF, .selector = sel, .type = type, .present = 1, .s = s};
}

/* CPUID.1:EAX (family, model, stepping): what a CPU has in EDX after reset. */
static uint32_t cpu_signature(const struct kvm_cpuid2 *c)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == 1)
			return c->entries[i].eax;
	return 0x600; /* family 6, the SDM's example */
}

static int reset_registers(struct vcpu *v, const struct cpu_boot *boot)
{
	struct kvm_sregs s;
	if (ioctl(v->fd, KVM_GET_SREGS, &s) < 0) /* for the fields below that KVM ignores */
		return -errno;
	s.cs = seg(0xF000, 0xFFFF0000, 0xB, 1); /* with RIP 0xFFF0: the reset vector */
	s.ds = s.es = s.fs = s.gs = s.ss = seg(0, 0, 0x3, 1);
	s.ldt = seg(0, 0, 0x2, 0);
	s.tr = seg(0, 0, 0xB, 0);
	s.gdt = (struct kvm_dtable){.base = 0, .limit = 0xFFFF};
	s.idt = (struct kvm_dtable){.base = 0, .limit = 0xFFFF};
	s.cr0 = CR0_CD | CR0_NW | CR0_ET;
	s.cr2 = s.cr3 = s.cr4 = s.cr8 = 0;
	s.efer = 0;
	s.apic_base = APIC_DEFAULT_BASE | APIC_BASE_ENABLE | (v->id == 0 ? APIC_BASE_BSP : 0);
	memset(s.interrupt_bitmap, 0, sizeof(s.interrupt_bitmap));
	struct kvm_regs r = {.rflags = 0x2, .rip = 0xFFF0, .rdx = cpu_signature(v->env->cpuid)};
	if (boot) {
		s.cs = boot->cs;
		s.ds = boot->ds;
		s.es = boot->es;
		s.fs = boot->fs;
		s.gs = boot->gs;
		s.ss = boot->ss;
		s.tr = boot->tr;
		s.gdt = boot->gdt;
		s.idt = boot->idt;
		s.cr0 = boot->cr0;
		s.cr3 = boot->cr3;
		s.cr4 = boot->cr4;
		s.efer = boot->efer;
		r = boot->regs;
	}
	if (ioctl(v->fd, KVM_SET_SREGS, &s) < 0)
		return -errno;
	if (ioctl(v->fd, KVM_SET_REGS, &r) < 0)
		return -errno;
	return 0;
}

static int reset_fpu(struct vcpu *v)
{
	const struct vcpu_kvm *k = v->priv;
	if (k->xcrs) {
		struct kvm_xcrs x = {.nr_xcrs = 1, .xcrs = {{.xcr = 0, .value = 1}}}; /* x87 only */
		if (ioctl(v->fd, KVM_SET_XCRS, &x) < 0)
			return -errno;
	}
	if (k->xsave) {
		/* x87 and SSE given in their init values (so MXCSR is loaded too), every other
		 * component marked as in its init state; KVM leaves PKRU alone unless its bit is
		 * given, so it is given (as 0) whenever KVM reports it. */
		struct kvm_xsave x;
		if (ioctl(v->fd, KVM_GET_XSAVE, &x) < 0)
			return -errno;
		uint64_t bv;
		memcpy(&bv, (uint8_t *)x.region + XSAVE_HDR_OFFSET, sizeof(bv));
		bv = XSTATE_FP_SSE | (bv & XSTATE_PKRU);
		memset(&x, 0, sizeof(x));
		uint16_t fcw = FPU_FCW_INIT;
		uint32_t mxcsr = MXCSR_INIT;
		memcpy((uint8_t *)x.region, &fcw, sizeof(fcw));
		memcpy((uint8_t *)x.region + 24, &mxcsr, sizeof(mxcsr));
		memcpy((uint8_t *)x.region + XSAVE_HDR_OFFSET, &bv, sizeof(bv));
		return ioctl(v->fd, KVM_SET_XSAVE, &x) < 0 ? -errno : 0;
	}
	struct kvm_fpu f = {.fcw = FPU_FCW_INIT, .mxcsr = MXCSR_INIT};
	return ioctl(v->fd, KVM_SET_FPU, &f) < 0 ? -errno : 0;
}

struct msr_init {
	uint32_t index;
	uint64_t value;
};

/* Every KVM handles these. */
static const struct msr_init msrs_always[] = {
    {0x174, 0},			 /* SYSENTER_CS */
    {0x175, 0},			 /* SYSENTER_ESP */
    {0x176, 0},			 /* SYSENTER_EIP */
    {0xC0000081, 0},		 /* STAR */
    {0xC0000082, 0},		 /* LSTAR */
    {0xC0000083, 0},		 /* CSTAR */
    {0xC0000084, 0},		 /* SYSCALL_MASK */
    {0xC0000102, 0},		 /* KERNEL_GS_BASE */
    {0x10, 0},			 /* TSC: KVM takes a host write of 0 as "in step with the others" */
    {0x1A0, 1},			 /* MISC_ENABLE: fast strings */
    {0x277, 0x0007040600070406}, /* PAT */
    {0x200, 0},			 /* variable MTRRs: base/mask pairs, all off */
    {0x201, 0},
    {0x202, 0},
    {0x203, 0},
    {0x204, 0},
    {0x205, 0},
    {0x206, 0},
    {0x207, 0},
    {0x208, 0},
    {0x209, 0},
    {0x20A, 0},
    {0x20B, 0},
    {0x20C, 0},
    {0x20D, 0},
    {0x20E, 0},
    {0x20F, 0},
    {0x250, 0}, /* fixed MTRRs (unused: not enabled below) */
    {0x258, 0},
    {0x259, 0},
    {0x268, 0},
    {0x269, 0},
    {0x26A, 0},
    {0x26B, 0},
    {0x26C, 0},
    {0x26D, 0},
    {0x26E, 0},
    {0x26F, 0},
    {0x2FF, 1 << 11 | 6}, /* MTRR default type: enabled, write-back */
};

/* These exist only with some CPUs or KVM features: reset where KVM reads them and the guest left
 * another value.  The paravirtual ones matter most: KVM writes kvmclock, steal time and PV EOI
 * into guest memory for as long as they are on.  (The wall-clock MSRs are one-shot writes and
 * are left alone: writing them writes guest memory.) */
static const struct msr_init msrs_optional[] = {
    {0x12, 0},	     /* MSR_KVM_SYSTEM_TIME (old kvmclock) */
    {0x4B564D01, 0}, /* MSR_KVM_SYSTEM_TIME_NEW */
    {0x4B564D02, 0}, /* MSR_KVM_ASYNC_PF_EN */
    {0x4B564D03, 0}, /* MSR_KVM_STEAL_TIME */
    {0x4B564D04, 0}, /* MSR_KVM_PV_EOI_EN */
    {0x4B564D05, 1}, /* MSR_KVM_POLL_CONTROL */
    {0x4B564D06, 0}, /* MSR_KVM_ASYNC_PF_INT */
    {0x48, 0},	     /* SPEC_CTRL */
    {0x1D9, 0},	     /* DEBUGCTL */
    {0xDA0, 0},	     /* XSS */
};

struct one_msr {
	struct kvm_msrs hdr;
	struct kvm_msr_entry e;
};

static int reset_msrs(struct vcpu *v)
{
	const unsigned n = sizeof(msrs_always) / sizeof(msrs_always[0]);
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[sizeof(msrs_always) / sizeof(msrs_always[0])];
	} m;
	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = n;
	for (unsigned i = 0; i < n; i++) {
		m.e[i].index = msrs_always[i].index;
		m.e[i].data = msrs_always[i].value;
	}
	int r = ioctl(v->fd, KVM_SET_MSRS, &m);
	if (r < 0)
		return -errno;
	if (r != (int)n) { /* KVM stops at the first MSR it refuses */
		log_error(NULL, "vcpu %u: KVM refuses MSR 0x%x = 0x%llx", v->id,
			  msrs_always[r].index, (unsigned long long)msrs_always[r].value);
		return -EINVAL;
	}
	for (unsigned i = 0; i < sizeof(msrs_optional) / sizeof(msrs_optional[0]); i++) {
		struct one_msr o = {.hdr.nmsrs = 1, .e.index = msrs_optional[i].index};
		if (ioctl(v->fd, KVM_GET_MSRS, &o) != 1 || o.e.data == msrs_optional[i].value)
			continue;
		o.e.data = msrs_optional[i].value;
		if (ioctl(v->fd, KVM_SET_MSRS, &o) != 1) {
			log_error(NULL, "vcpu %u: KVM refuses MSR 0x%x = 0x%llx", v->id, o.e.index,
				  (unsigned long long)o.e.data);
			return -EINVAL;
		}
	}
	return 0;
}

static int reset_debug_and_events(struct vcpu *v)
{
	const struct vcpu_kvm *k = v->priv;
	if (k->debugregs) {
		struct kvm_debugregs d = {.dr6 = 0xFFFF0FF0, .dr7 = 0x400};
		if (ioctl(v->fd, KVM_SET_DEBUGREGS, &d) < 0)
			return -errno;
	}
	if (k->events) {
		/* No exception, interrupt or NMI pending or injected, NMIs unmasked, no shadow. */
		struct kvm_vcpu_events e = {.flags = KVM_VCPUEVENT_VALID_NMI_PENDING |
						     KVM_VCPUEVENT_VALID_SHADOW};
		if (ioctl(v->fd, KVM_SET_VCPU_EVENTS, &e) < 0)
			return -errno;
	}
	return 0;
}

static void set_lvt(struct kvm_lapic_state *l, unsigned reg, unsigned mode)
{
	uint32_t val;
	memcpy(&val, &l->regs[reg], 4);
	val = (val & ~0x700u) | mode << 8;
	memcpy(&l->regs[reg], &val, 4);
}

static int reset_lapic(struct vcpu *v)
{
	const struct vcpu_kvm *k = v->priv;
	struct kvm_lapic_state l = k->lapic; /* after the APIC base (sregs): KVM reads its mode */
	set_lvt(&l, APIC_LVT_LINT0, APIC_MODE_EXTINT);
	set_lvt(&l, APIC_LVT_LINT1, APIC_MODE_NMI);
	if (ioctl(v->fd, KVM_SET_LAPIC, &l) < 0)
		return -errno;
	/* The boot CPU runs; the others wait for the guest's INIT/SIPI. */
	struct kvm_mp_state mp = {.mp_state = v->id == 0 ? KVM_MP_STATE_RUNNABLE
							 : KVM_MP_STATE_UNINITIALIZED};
	return ioctl(v->fd, KVM_SET_MP_STATE, &mp) < 0 ? -errno : 0;
}

int vcpu_kvm_reset(struct vcpu *v, const struct cpu_boot *boot)
{
	int r;
	if ((r = reset_registers(v, v->id == 0 ? boot : NULL)) < 0 || (r = reset_fpu(v)) < 0 ||
	    (r = reset_msrs(v)) < 0 || (r = reset_debug_and_events(v)) < 0 ||
	    (r = reset_lapic(v)) < 0)
		log_error(NULL, "vcpu %u: reset: %s", v->id, strerror(-r));
	return r;
}
