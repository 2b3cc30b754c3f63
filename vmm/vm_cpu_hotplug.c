/* vCPU hot-plug on a running VM (--cpuhotplug): the ACPI register block
 * (devices/acpi_cpu_hotplug.h) wired to the ports, to GPE0 of the ACPI PM device, and to the vCPU
 * state machine (cpu/cpus.h).
 *
 * Plug: cpus_plug() makes the vCPU (waiting for INIT/SIPI), then the insert event; the guest's
 * _OST(1, status) for that CPU is the answer.  Unplug: the remove event; the guest offlines the CPU
 * and calls _EJ0, then _OST(3, status).  The eject arrives as a port write on a vCPU thread, which
 * must not join a vCPU: the verb (on the VM's worker) parks the vCPU once the guest has answered,
 * and a job queued on the worker by the eject does it when no verb waits (a late answer).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpu/cpus.h"
#include "devices/acpi_cpu_hotplug.h"
#include "devices/acpi_pm.h"
#include "devices/device.h"
#include "devices/io_bus.h"
#include "lib/worker.h"
#include "memory/layout.h"
#include "vmm/vm.h"
#include "vmm/vm_internal.h"
#include "lib/log.h"
#include "lib/error.h"

/* ACPI _OST source events and status codes (ACPI 6.5, 6.3.5): the 0x8x codes differ per event. */
#define OST_EVENT_DEVICE_CHECK 1
#define OST_EVENT_EJECT_REQUEST 3
#define OST_SUCCESS 0
#define OST_INSERT_IN_PROGRESS 0x80
#define OST_EJECT_NOT_SUPPORTED 0x80
#define OST_EJECT_DEVICE_IN_USE 0x81
#define OST_EJECT_DEVICE_BUSY 0x82
#define OST_EJECT_DEPENDENCY_BUSY 0x83
#define OST_EJECT_IN_PROGRESS 0x84

/* How long a verb waits for the guest's answer, in 100 ms steps that also check the VM's end. */
#define ANSWER_WAIT_MS 20000 /* below the control client's default 30 s */
#define WAIT_STEP_MS 100

struct cpu_record {
	bool ost_seen; /* an _OST with a final status since the request */
	uint32_t ost_event, ost_status;
	bool ejected; /* _EJ0 came: the vCPU waits to be parked */
	bool online;  /* the guest has it: present at boot or its insert _OST said success */
};

struct vm_cpu_hotplug {
	struct vm *vm;
	struct acpi_cpu_hotplug *hp;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	struct cpu_record cpu[LAYOUT_MAX_VCPUS];
};

struct park_job {
	struct vm_cpu_hotplug *h;
	unsigned cpu;
};

static void hp_notify(void *opaque)
{
	struct vm_cpu_hotplug *h = opaque;
	struct acpi_pm *pm = devices_find(h->vm->devices, "acpi-pm");
	if (pm)
		acpi_pm_raise_gpe(pm, ACPI_GPE_CPU_HOTPLUG);
}

/* Park an ejected vCPU (on the worker).  Quiet when the verb did it already. */
static void park(struct vm_cpu_hotplug *h, unsigned cpu)
{
	pthread_mutex_lock(&h->lock);
	bool ejected = h->cpu[cpu].ejected;
	h->cpu[cpu].ejected = false;
	pthread_mutex_unlock(&h->lock);
	if (!ejected)
		return;
	int r = cpus_unplug(h->vm->cpus, cpu);
	if (r < 0 && r != -ENOENT && r != -ESHUTDOWN)
		log_error(NULL, "CPU %u ejected by the guest: cannot stop its vCPU: %s", cpu,
			  strerror(-r));
}

static void park_job(void *opaque)
{
	struct park_job *j = opaque;
	park(j->h, j->cpu);
	free(j);
}

/* _EJ0, on a vCPU thread: record it and leave the join to the worker. */
static void hp_eject(void *opaque, unsigned cpu)
{
	struct vm_cpu_hotplug *h = opaque;
	pthread_mutex_lock(&h->lock);
	h->cpu[cpu].ejected = true;
	h->cpu[cpu].online = false;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	struct park_job *j = malloc(sizeof(*j));
	if (!j)
		return; /* the waiting verb parks it, or it stays halted until the end */
	*j = (struct park_job){h, cpu};
	if (worker_submit(h->vm->worker, park_job, j) < 0)
		free(j);
}

static void hp_ost(void *opaque, unsigned cpu, uint32_t event, uint32_t status)
{
	struct vm_cpu_hotplug *h = opaque;
	/* "In progress" is not the answer yet (Linux says so before it offlines the CPU). */
	if (cpu >= LAYOUT_MAX_VCPUS ||
	    (event == OST_EVENT_DEVICE_CHECK && status == OST_INSERT_IN_PROGRESS) ||
	    (event == OST_EVENT_EJECT_REQUEST && status == OST_EJECT_IN_PROGRESS))
		return;
	pthread_mutex_lock(&h->lock);
	struct cpu_record *r = &h->cpu[cpu];
	r->ost_seen = true;
	r->ost_event = event;
	r->ost_status = status;
	if (event == OST_EVENT_DEVICE_CHECK && status == OST_SUCCESS)
		r->online = true;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

static void hp_port_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct vm_cpu_hotplug *h = opaque;
	acpi_cpu_hotplug_io(h->hp, LAYOUT_PORT_CPU_HOTPLUG + offset, data, len, is_write);
}

int vm_cpu_hotplug_create(struct vm *vm)
{
	if (!vm->cfg->cpu_hotplug)
		return 0;
	struct vm_cpu_hotplug *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->vm = vm;
	pthread_mutex_init(&h->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cond, &ca);
	pthread_condattr_destroy(&ca);
	uint64_t boot = vm_config_boot_cpus(vm->cfg);
	for (unsigned i = 0; i < LAYOUT_MAX_VCPUS; i++)
		h->cpu[i].online = boot >> i & 1;
	vm->cpu_hotplug = h;
	struct acpi_cpu_hotplug_ops ops = {
	    .notify = hp_notify, .eject = hp_eject, .ost = hp_ost, .opaque = h};
	int r = acpi_cpu_hotplug_create_mask(vm->cfg->cpus, boot, &ops, &h->hp);
	if (r == 0)
		r = io_bus_register(&vm->pio, LAYOUT_PORT_CPU_HOTPLUG, ACPI_CPU_HOTPLUG_LEN,
				    hp_port_io, h);
	if (r < 0)
		return error_set(r, "CPU hot-plug registers at port 0x%x: %s",
				 LAYOUT_PORT_CPU_HOTPLUG, strerror(-r));
	return 0;
}

void vm_cpu_hotplug_reset(struct vm *vm)
{
	if (vm->cpu_hotplug)
		acpi_cpu_hotplug_reset(vm->cpu_hotplug->hp);
}

void vm_cpu_hotplug_destroy(struct vm *vm)
{
	struct vm_cpu_hotplug *h = vm->cpu_hotplug;
	if (!h)
		return;
	if (h->hp) {
		io_bus_unregister(&vm->pio, LAYOUT_PORT_CPU_HOTPLUG, h);
		acpi_cpu_hotplug_destroy(h->hp);
	}
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	free(h);
	vm->cpu_hotplug = NULL;
}

static bool vm_ending(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	bool ending = vm->end != VM_END_NONE;
	pthread_mutex_unlock(&vm->lock);
	return ending;
}

/* Wait (under h->lock) for the guest's final _OST for `event` on `cpu`.  False on timeout or when
 * the VM ends meanwhile. */
static bool wait_answer(struct vm_cpu_hotplug *h, unsigned cpu, uint32_t event)
{
	struct cpu_record *r = &h->cpu[cpu];
	for (int waited = 0; waited < ANSWER_WAIT_MS; waited += WAIT_STEP_MS) {
		if (r->ost_seen && r->ost_event == event)
			return true;
		pthread_mutex_unlock(&h->lock);
		bool ending = vm_ending(h->vm);
		pthread_mutex_lock(&h->lock);
		if (ending)
			return false;
		struct timespec t;
		clock_gettime(CLOCK_MONOTONIC, &t);
		t.tv_nsec += WAIT_STEP_MS * 1000000L;
		t.tv_sec += t.tv_nsec / 1000000000L;
		t.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&h->cond, &h->lock, &t);
	}
	return r->ost_seen && r->ost_event == event;
}

/* Checks shared by plug and unplug; -errno with the message. */
static int check_request(struct vm *vm, unsigned cpu)
{
	if (!vm->cpu_hotplug)
		return error_set(-EOPNOTSUPP,
				 "CPU hot-plug is off: start the VM with --cpuhotplug");
	if (cpu >= vm->cfg->cpus)
		return error_set(-EINVAL, "no CPU %u: this VM has CPUs 0 to %u (--cpus %u)", cpu,
				 vm->cfg->cpus - 1, vm->cfg->cpus);
	return 0;
}

static const char *busy_reason(struct vm *vm)
{
	return vm_paused(vm) ? "the VM is paused" : "the VM is busy with another change";
}

int vm_cpu_plug(struct vm *vm, unsigned cpu, bool *answered)
{
	int r = check_request(vm, cpu);
	if (r < 0)
		return r;
	struct vm_cpu_hotplug *h = vm->cpu_hotplug;
	pthread_mutex_lock(&h->lock);
	h->cpu[cpu].ost_seen = false;
	h->cpu[cpu].ejected = false;
	pthread_mutex_unlock(&h->lock);
	r = cpus_plug(vm->cpus, cpu);
	switch (r) {
	case 0:
		break;
	case -EEXIST:
		return error_set(r, "CPU %u is already plugged", cpu);
	case -EBUSY:
		return error_set(r, "cannot plug CPU %u now: %s", cpu, busy_reason(vm));
	case -ESHUTDOWN:
		return error_set(r, "the VM is shutting down");
	default:
		return error_set(r, "cannot make a vCPU for CPU %u: %s", cpu, strerror(-r));
	}
	r = acpi_cpu_hotplug_insert(h->hp, cpu);
	if (r < 0) {
		/* The guest never saw it: take the vCPU back. */
		cpus_unplug(vm->cpus, cpu);
		return error_set(r, "CPU %u: cannot announce it to the guest: %s", cpu,
				 strerror(-r));
	}
	pthread_mutex_lock(&h->lock);
	*answered = wait_answer(h, cpu, OST_EVENT_DEVICE_CHECK);
	uint32_t status = h->cpu[cpu].ost_status;
	pthread_mutex_unlock(&h->lock);
	if (*answered && status != OST_SUCCESS)
		return error_set(-EIO, "the guest could not add CPU %u (_OST status 0x%x)", cpu,
				 status);
	return 0;
}

int vm_cpu_unplug(struct vm *vm, unsigned cpu)
{
	int r = check_request(vm, cpu);
	if (r < 0)
		return r;
	if (cpu == 0)
		return error_set(-EPERM, "CPU 0 cannot be unplugged");
	struct vm_cpu_hotplug *h = vm->cpu_hotplug;
	int st = cpus_state(vm->cpus, cpu);
	if (st != VCPU_RUNNING && st != VCPU_PAUSED && st != VCPU_CREATED)
		return error_set(-ENOENT, "CPU %u is not plugged", cpu);
	if (vm_paused(vm))
		return error_set(-EBUSY, "cannot unplug CPU %u now: the VM is paused", cpu);
	pthread_mutex_lock(&h->lock);
	h->cpu[cpu].ost_seen = false;
	pthread_mutex_unlock(&h->lock);
	r = acpi_cpu_hotplug_remove(h->hp, cpu);
	if (r < 0)
		return error_set(r, "CPU %u: cannot ask the guest to release it: %s", cpu,
				 strerror(-r));
	pthread_mutex_lock(&h->lock);
	bool answered = wait_answer(h, cpu, OST_EVENT_EJECT_REQUEST);
	uint32_t status = h->cpu[cpu].ost_status;
	bool ejected = h->cpu[cpu].ejected;
	pthread_mutex_unlock(&h->lock);
	if (ejected)
		park(h, cpu); /* before the reply: the caller sees the thread gone */
	if (!answered)
		return error_set(
		    -ETIMEDOUT,
		    "no answer from the guest about CPU %u within %d s (the request stays: "
		    "the guest may still release it)",
		    cpu, ANSWER_WAIT_MS / 1000);
	switch (status) {
	case OST_SUCCESS:
		if (!ejected && cpus_state(vm->cpus, cpu) != VCPU_PARKED)
			return error_set(
			    -EIO, "the guest reported CPU %u released but never ejected it", cpu);
		return 0;
	case OST_EJECT_DEVICE_IN_USE:
	case OST_EJECT_DEVICE_BUSY:
	case OST_EJECT_DEPENDENCY_BUSY:
		return error_set(-EBUSY, "the guest keeps CPU %u: busy (_OST status 0x%x)", cpu,
				 status);
	case OST_EJECT_NOT_SUPPORTED:
		return error_set(-EOPNOTSUPP, "the guest cannot eject CPU %u (_OST status 0x%x)",
				 cpu, status);
	default:
		return error_set(-EIO, "the guest refused to release CPU %u (_OST status 0x%x)",
				 cpu, status);
	}
}

uint64_t vm_cpu_online_mask(struct vm *vm)
{
	struct vm_cpu_hotplug *h = vm->cpu_hotplug;
	if (!h)
		return cpus_present_mask(vm->cpus);
	uint64_t present = cpus_present_mask(vm->cpus), m = 0;
	pthread_mutex_lock(&h->lock);
	for (unsigned i = 0; i < LAYOUT_MAX_VCPUS; i++)
		if (h->cpu[i].online && (present >> i & 1))
			m |= 1ULL << i;
	pthread_mutex_unlock(&h->lock);
	return m;
}
