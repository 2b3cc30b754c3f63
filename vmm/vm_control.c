/* The control verbs of a running VM: info, pause, resume, stop, poweroff (alias acpipowerbutton).
 * They run on the VM's worker (so pause may wait for the vCPUs while the loop runs on); a bad
 * request fails with a message and leaves the VM alone. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <json-c/json.h>

#include "devices/acpi_pm.h"
#include "devices/device.h"
#include "lib/sandbox.h"
#include "vmm/control.h"
#include "vmm/boot_firmware.h"
#include "vmm/vm.h"
#include "vmm/vm_internal.h"

static int no_args(struct json_object *args, const char *verb, char *err, size_t errlen)
{
	if (args && json_object_is_type(args, json_type_array) &&
	    json_object_array_length(args) > 0) {
		snprintf(err, errlen, "%s takes no arguments", verb);
		return -EINVAL;
	}
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

static int verb_info(void *opaque, struct json_object *args, struct json_object *result, char *err,
		     size_t errlen)
{
	struct vm *vm = opaque;
	if (no_args(args, "info", err, errlen))
		return -EINVAL;
	bool paused = vm_paused(vm);
	time_t now = time(NULL);
	int r = 0;
	r |= add(result, "name", json_object_new_string(vm->cfg->name));
	r |= add(result, "pid", json_object_new_int(getpid()));
	r |= add(result, "state", json_object_new_string(paused ? "paused" : "running"));
	r |= add(result, "cpus", json_object_new_int(vm_vcpu_count(vm)));
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
	if (r) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static int verb_pause(void *opaque, struct json_object *args, struct json_object *result, char *err,
		      size_t errlen)
{
	(void)result;
	if (no_args(args, "pause", err, errlen))
		return -EINVAL;
	int r = vm_pause(opaque);
	if (r == -EALREADY)
		snprintf(err, errlen, "the VM is already paused");
	else if (r < 0)
		snprintf(err, errlen, "the VM is shutting down");
	return r;
}

static int verb_resume(void *opaque, struct json_object *args, struct json_object *result,
		       char *err, size_t errlen)
{
	(void)result;
	if (no_args(args, "resume", err, errlen))
		return -EINVAL;
	int r = vm_resume(opaque);
	if (r < 0)
		snprintf(err, errlen, "the VM is not paused");
	return r;
}

static int verb_stop(void *opaque, struct json_object *args, struct json_object *result, char *err,
		     size_t errlen)
{
	(void)result;
	if (no_args(args, "stop", err, errlen))
		return -EINVAL;
	vm_request_end(opaque, VM_END_STOP);
	return 0;
}

static int verb_poweroff(void *opaque, struct json_object *args, struct json_object *result,
			 char *err, size_t errlen)
{
	struct vm *vm = opaque;
	if (no_args(args, "poweroff", err, errlen))
		return -EINVAL;
	bool paused = vm_paused(vm);
	struct acpi_pm *pm = devices_find(vm->devices, "acpi-pm");
	if (!pm) {
		snprintf(err, errlen, "this VM has no ACPI power button");
		return -ENODEV;
	}
	acpi_pm_press_power_button(pm);
	/* The guest decides; a paused guest sees the button once resumed. */
	if (add(result, "pressed", json_object_new_boolean(1)) < 0 ||
	    add(result, "guest_paused", json_object_new_boolean(paused)) < 0) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* Test only (registered with MINIVMM_SANDBOX_PROBE=1): makes a call no role allows, as a
 * compromised thread would.  Under the sandbox the VMM stops with a message naming it; without,
 * setuid to the current uid changes nothing. */
static int verb_sandbox_probe(void *opaque, struct json_object *args, struct json_object *result,
			      char *err, size_t errlen)
{
	(void)opaque;
	if (no_args(args, "sandbox-probe", err, errlen))
		return -EINVAL;
	long r = syscall(SYS_setuid, geteuid());
	return add(result, "setuid", json_object_new_int(r < 0 ? -errno : 0));
}

int vm_control_start(struct vm *vm, char *err, size_t errlen)
{
	return control_server_start_on(vm->cfg->name, vm->loop, vm->worker, &vm->control, err,
				       errlen);
}

int vm_control_register(struct vm *vm, char *err, size_t errlen)
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
	};
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		r = control_register_verb(vm->control, verbs[i].verb, verbs[i].usage, verbs[i].fn,
					  vm);
		if (r < 0) {
			snprintf(err, errlen, "control verb %s: %s", verbs[i].verb, strerror(-r));
			return r;
		}
	}
	if (vm_storage(vm) && (r = vm_snapshot_register_verb(vm, err, errlen)) < 0)
		return r;
	const char *probe = getenv("MINIVMM_SANDBOX_PROBE");
	if (probe && !strcmp(probe, "1") &&
	    (r = control_register_verb(vm->control, "sandbox-probe", "sandbox-probe",
				       verb_sandbox_probe, vm)) < 0) {
		snprintf(err, errlen, "control verb sandbox-probe: %s", strerror(-r));
		return r;
	}
	return 0;
}

void vm_control_stop(struct vm *vm)
{
	if (vm->control)
		control_server_stop(vm->control);
	vm->control = NULL;
}
