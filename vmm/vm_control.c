/* The control verbs of a running VM: info, pause, resume, stop, poweroff (alias acpipowerbutton),
 * plugcpu, unplugcpu (vm_cpu_hotplug.c), cpucap.
 * They run on the VM's worker (so pause may wait for the vCPUs while the loop runs on); a bad
 * request fails with a message and leaves the VM alone. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <json-c/json.h>

#include "devices/acpi_pm.h"
#include "cpu/cpus.h"
#include "devices/device.h"
#include "lib/sandbox.h"
#include "vmm/control.h"
#include "vmm/boot_firmware.h"
#include "vmm/vm.h"
#include "vmm/vm_internal.h"
#include "lib/error.h"

static int no_args(struct json_object *args, const char *verb)
{
	if (args && json_object_is_type(args, json_type_array) &&
	    json_object_array_length(args) > 0)
		return error_set(-EINVAL, "%s takes no arguments", verb);
	return 0;
}

static int add(struct json_object *obj, const char *key, struct json_object *val)
{
	if (!val || json_object_object_add(obj, key, val) < 0) {
		json_object_put(val);
		return -ENOMEM;
	}
	return 0;
}

static struct json_object *cpu_array(uint64_t mask)
{
	struct json_object *a = json_object_new_array();
	for (unsigned i = 0; a && i < 64; i++)
		if (mask >> i & 1)
			json_object_array_add(a, json_object_new_int(i));
	return a;
}

/* Which CPUs exist for the guest and which it has taken (vm_cpu_online_mask). */
static int add_cpu_lists(struct vm *vm, struct json_object *result)
{
	int r = add(result, "cpus_max", json_object_new_int(vm->cfg->cpus));
	r |= add(result, "cpu_hotplug", json_object_new_boolean(vm->cpu_hotplug != NULL));
	r |= add(result, "cpus_present", cpu_array(cpus_present_mask(vm->cpus)));
	r |= add(result, "cpus_online", cpu_array(vm_cpu_online_mask(vm)));
	r |= add(result, "cpu_cap", json_object_new_int(cpus_cap(vm->cpus)));
	const char *cg = cpus_cap_cgroup(vm->cpus); /* where the kernel applies it, if it does */
	r |= add(result, "cpu_cap_by", json_object_new_string(cg ? cg : "vmm"));
	return r;
}

static int verb_info(void *opaque, struct json_object *args, struct json_object *result)
{
	struct vm *vm = opaque;
	if (no_args(args, "info"))
		return -EINVAL;
	bool paused = vm_paused(vm);
	time_t now = time(NULL);
	int r = 0;
	r |= add(result, "name", json_object_new_string(vm->cfg->name));
	r |= add(result, "pid", json_object_new_int(getpid()));
	r |= add(result, "state", json_object_new_string(paused ? "paused" : "running"));
	r |= add(result, "cpus", json_object_new_int(vm_vcpu_count(vm)));
	r |= add_cpu_lists(vm, result);
	r |= add(result, "memory_mib", json_object_new_int64(vm->cfg->memory_mib));
	/* "kernel" stays for direct boot; a firmware boot reports "firmware" instead. */
	if (vm->cfg->kernel)
		r |= add(result, "kernel", json_object_new_string(vm->cfg->kernel));
	else
		r |= add(result, "firmware",
			 json_object_new_string(vm->cfg->firmware_file	? vm->cfg->firmware_file
						: vm->cfg->firmware_efi ? FIRMWARE_DEFAULT_OVMF_CODE
									: FIRMWARE_DEFAULT_BIOS));
	r |= add(result, "sandbox", json_object_new_string(sandbox_started() ? "on" : "off"));
	r |= add(result, "uptime_s",
		 json_object_new_int64(now > vm->started ? now - vm->started : 0));
	r |= add(result, "nics_hotplugged", vm_nic_hotplug_ids(vm));
	if (r)
		return error_set(-ENOMEM, "out of memory");
	return 0;
}

static int verb_pause(void *opaque, struct json_object *args, struct json_object *result)
{
	(void)result;
	if (no_args(args, "pause"))
		return -EINVAL;
	int r = vm_pause(opaque);
	if (r == -EALREADY)
		error_set(r, "the VM is already paused");
	else if (r < 0)
		error_set(r, "the VM is shutting down");
	return r;
}

static int verb_resume(void *opaque, struct json_object *args, struct json_object *result)
{
	(void)result;
	if (no_args(args, "resume"))
		return -EINVAL;
	int r = vm_resume(opaque);
	if (r < 0)
		error_set(r, "the VM is not paused");
	return r;
}

static int verb_stop(void *opaque, struct json_object *args, struct json_object *result)
{
	(void)result;
	if (no_args(args, "stop"))
		return -EINVAL;
	vm_request_end(opaque, VM_END_STOP);
	return 0;
}

static int verb_poweroff(void *opaque, struct json_object *args, struct json_object *result)
{
	struct vm *vm = opaque;
	if (no_args(args, "poweroff"))
		return -EINVAL;
	bool paused = vm_paused(vm);
	struct acpi_pm *pm = devices_find(vm->devices, "acpi-pm");
	if (!pm)
		return error_set(-ENODEV, "this VM has no ACPI power button");
	acpi_pm_press_power_button(pm);
	/* The guest decides; a paused guest sees the button once resumed. */
	if (add(result, "pressed", json_object_new_boolean(1)) < 0 ||
	    add(result, "guest_paused", json_object_new_boolean(paused)) < 0)
		return error_set(-ENOMEM, "out of memory");
	return 0;
}

/* Test only (registered with MINIVMM_SANDBOX_PROBE=1): makes a call no role allows, as a
 * compromised thread would.  Under the sandbox the VMM stops with a message naming it; without,
 * setuid to the current uid changes nothing. */
static int verb_sandbox_probe(void *opaque, struct json_object *args, struct json_object *result)
{
	(void)opaque;
	if (no_args(args, "sandbox-probe"))
		return -EINVAL;
	long r = syscall(SYS_setuid, geteuid());
	return add(result, "setuid", json_object_new_int(r < 0 ? -errno : 0));
}

/* The one argument of plugcpu/unplugcpu/cpucap: a number in decimal. */
static int cpu_arg(struct json_object *args, const char *verb, unsigned *cpu)
{
	const char *s = NULL;
	if (args && json_object_is_type(args, json_type_array) &&
	    json_object_array_length(args) == 1) {
		struct json_object *v = json_object_array_get_idx(args, 0);
		if (json_object_is_type(v, json_type_string))
			s = json_object_get_string(v);
	}
	char *end;
	unsigned long n = s && *s >= '0' && *s <= '9' ? strtoul(s, &end, 10) : 0;
	if (!s || *s < '0' || *s > '9' || *end || n > 1000000)
		return error_set(-EINVAL, "usage: %s ID (a CPU number)", verb);
	*cpu = n;
	return 0;
}

static int verb_plugcpu(void *opaque, struct json_object *args, struct json_object *result)
{
	unsigned cpu;
	bool answered = false;
	if (cpu_arg(args, "plugcpu", &cpu) < 0)
		return -EINVAL;
	int r = vm_cpu_plug(opaque, cpu, &answered);
	if (r < 0)
		return r;
	/* No answer in time: plugged all the same, and said so. */
	if (add(result, "cpu", json_object_new_int(cpu)) < 0 ||
	    add(result, "guest", json_object_new_string(answered ? "added" : "no answer yet")) < 0)
		return error_set(-ENOMEM, "out of memory");
	return 0;
}

static int verb_unplugcpu(void *opaque, struct json_object *args, struct json_object *result)
{
	unsigned cpu;
	if (cpu_arg(args, "unplugcpu", &cpu) < 0)
		return -EINVAL;
	int r = vm_cpu_unplug(opaque, cpu);
	if (r < 0)
		return r;
	if (add(result, "cpu", json_object_new_int(cpu)) < 0 ||
	    add(result, "guest", json_object_new_string("released")) < 0)
		return error_set(-ENOMEM, "out of memory");
	return 0;
}

/* cpucap PERCENT: the execution cap of every vCPU, 1 to 100 (100: none). */
static int verb_cpucap(void *opaque, struct json_object *args, struct json_object *result)
{
	struct vm *vm = opaque;
	unsigned pct;
	if (cpu_arg(args, "cpucap", &pct) < 0 || pct < 1 || pct > 100)
		return error_set(-EINVAL, "usage: cpucap PERCENT (1 to 100)");
	int r = cpus_set_cap(vm->cpus, pct);
	if (r < 0)
		return error_set(r, "cannot set the cap to %u%%: %s", pct, strerror(-r));
	if (add(result, "cpu_cap", json_object_new_int(pct)) < 0)
		return error_set(-ENOMEM, "out of memory");
	return 0;
}

int vm_control_start(struct vm *vm)
{
	return control_server_start_on(vm->cfg->name, vm->loop, vm->worker, &vm->control);
}

int vm_control_register(struct vm *vm)
{
	int r;
	static const struct {
		const char *verb, *usage;
		control_verb_fn fn;
	} verbs[] = {
	    {"info", "info", verb_info},
	    {"pause", "pause", verb_pause},
	    {"resume", "resume", verb_resume},
	    {"stop", "stop", verb_stop},
	    {"poweroff", "poweroff", verb_poweroff},
	    {"acpipowerbutton", "acpipowerbutton", verb_poweroff},
	    {"plugcpu", "plugcpu ID", verb_plugcpu},
	    {"unplugcpu", "unplugcpu ID", verb_unplugcpu},
	    {"cpucap", "cpucap PERCENT", verb_cpucap},
	};
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		r = control_register_verb(vm->control, verbs[i].verb, verbs[i].usage, verbs[i].fn,
					  vm);
		if (r < 0)
			return error_set(r, "control verb %s: %s", verbs[i].verb, strerror(-r));
	}
	if (vm_storage(vm) && (r = vm_snapshot_register_verb(vm)) < 0)
		return r;
	const char *probe = getenv("MINIVMM_SANDBOX_PROBE");
	if (probe && !strcmp(probe, "1") &&
	    (r = control_register_verb(vm->control, "sandbox-probe", "sandbox-probe",
				       verb_sandbox_probe, vm)) < 0)
		return error_set(r, "control verb sandbox-probe: %s", strerror(-r));
	return 0;
}

void vm_control_stop(struct vm *vm)
{
	if (vm->control)
		control_server_stop(vm->control);
	vm->control = NULL;
}
