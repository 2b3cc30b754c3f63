/* The device lifecycle: every device of the machine (buses, platform devices, PCI devices, the
 * storage controllers) is a `struct device_ops` registered with DEVICE(), created in level order
 * (buses first) and, within a level, in registration order; destroyed in reverse.  The VM keeps
 * the instances in a list (`struct devices`), not a field per device.
 *
 *   create   build the device on what `env` offers (register ports, a PCI function, control
 *            verbs, event-loop sources); on failure undo what it did and return -errno with a
 *            one-line message recorded with error_set() (lib/error.h).
 *   quiesce  (optional) wait until nothing the device started is in flight (disk requests):
 *            runs off the event loop (on the VM's worker) with the vCPUs paused, so it may wait
 *            for completions that the loop delivers.
 *   reset    back to the power-on state, as after create (a guest reboot without a new process):
 *            registers, queues and interrupt lines; what lives outside the machine stays (open
 *            disks and their locks, the console, the host clock).  Runs after quiesce with the
 *            vCPUs paused.  NULL: the device has no state.
 *   destroy  free everything (vCPUs stopped, nothing in flight).
 *
 * A device never reaches into another device: it uses only its env (buses, memory, interrupts,
 * the loop, the control server) and the requests it may make of the VM (power off, reset).
 */
#ifndef MINIVMM_DEVICES_DEVICE_H
#define MINIVMM_DEVICES_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct io_bus;
struct pci_bus;
struct guest_memory;
struct event_loop;
struct json_object;
struct vm_config;
struct irq_ops;

/* Init levels, as kvmtool's util-init: what a level needs was created by an earlier one. */
enum device_level {
	DEVICE_LEVEL_BUS,      /* the PCI bus: sets env->pci */
	DEVICE_LEVEL_PLATFORM, /* COM1, RTC, i8042, POST port, ACPI PM, fw_cfg, debugcon */
	DEVICE_LEVEL_PCI,      /* PCI functions of their own (virtio, ...) */
	DEVICE_LEVEL_STORAGE,  /* disks and their controllers (PCI functions too) */
	DEVICE_LEVELS,
};

/* What a device may ask of the VM.  Safe from any thread. */
enum device_request {
	DEVICE_REQUEST_POWEROFF, /* ACPI S5 */
	DEVICE_REQUEST_RESET,	 /* 0xCF9, i8042 0xFE: the VM reboots or ends, per --reboot */
	DEVICE_REQUEST_NO_BOOT,	 /* firmware found nothing to boot: the VM ends, exit 1 */
	DEVICE_REQUEST_PAUSE,	 /* werror=stop: pause the guest until `control NAME resume` */
};

/* Interrupt delivery into the guest (the VM wires these to KVM). */
struct device_irq_ops {
	/* Drive ISA IRQ / IOAPIC GSI `gsi`; edge-triggered lines are raised and lowered. */
	int (*set_irq)(void *opaque, unsigned gsi, bool level);
	/* Send one MSI message. */
	int (*signal_msi)(void *opaque, uint64_t address, uint32_t data);
};

/* A control verb (`minivmm control NAME VERB ARGS...`): runs on the VM's worker, one at a time.
 * Fill `result` (a JSON object) and return 0, or -errno with a one-line message recorded with
 * error_set(). */
typedef int (*device_verb_fn)(void *opaque, struct json_object *args, struct json_object *result);

struct device_env {
	struct io_bus *pio, *mmio;
	struct pci_bus *pci; /* NULL before DEVICE_LEVEL_BUS has run */
	const struct guest_memory *mem;
	struct event_loop *loop; /* the VM's loop: runs on the VM's main thread */
	/* Registers a control verb with the VM's control server (vmm); NULL: no verbs (tests).
	 * Devices call device_add_verb. */
	int (*add_verb)(void *control, const char *verb, const char *usage, device_verb_fn fn,
			void *opaque);
	void *control;
	const struct machine_config *machine; /* devices/machine_config.h; NULL: a bare machine */
	int console_fd;			      /* where the console's output goes, -1 for none */
	const struct device_irq_ops *irq;
	/* Kernel-side delivery: irqfds with MSI routes, resample irqfds, ioeventfds
	 * (devices/irq_ops.h); NULL: devices use irq (and MMIO exits for doorbells). */
	const struct irq_ops *fast_irq;
	void (*request)(void *opaque, enum device_request why);
	void *opaque; /* for irq and request */
};

struct device_ops {
	const char *name; /* unique, for messages and devices_find */
	int (*create)(struct device_env *env, void **state);
	int (*quiesce)(void *state); /* optional */
	void (*reset)(void *state);  /* NULL: stateless */
	void (*destroy)(void *state);
};

void device_register(const struct device_ops *ops, enum device_level level);
/* Register a control verb through env (0 without a control server); -errno with a message. */
int device_add_verb(const struct device_env *env, const char *verb, const char *usage,
		    device_verb_fn fn, void *opaque);
#define DEVICE(var, level)                                                                         \
	static void __attribute__((constructor)) var##_device_register(void)                       \
	{                                                                                          \
		device_register(&(var), (level));                                                  \
	}

/* The devices of one VM, in creation order. */
struct devices;
/* Create every registered device; on failure the ones made are destroyed and the message
 * (lib/error.h) names the device. */
int devices_create(struct device_env *env, struct devices **out);
void devices_destroy(struct devices *d); /* reverse order; NULL is ignored */
/* Quiesce every device that can (creation order); stops at the first failure. */
int devices_quiesce(struct devices *d);
void devices_reset(struct devices *d); /* creation order */
/* The same from an explicit list instead of the registry (tests). */
struct device_type {
	const struct device_ops *ops;
	enum device_level level;
};
int devices_create_types(const struct device_type *types, unsigned ntypes, struct device_env *env,
			 struct devices **out);
/* The state of the device named `name`, NULL when there is none (for the VM's own verbs). */
void *devices_find(struct devices *d, const char *name);
/* The names in creation order, for tests: name i, or NULL past the end. */
const char *devices_name(struct devices *d, unsigned i);

#endif
