/* The VM's disks and their controllers.
 *
 * storage_create() opens every --disk/--cdrom (struct disk), hands each group of the same bus to
 * the controller registered for that bus (STORAGE_CONTROLLER below: IDE here, AHCI, SCSI and NVMe
 * in their own files) and puts every disk's aio eventfd on an event loop: the VM's (env->loop),
 * or, without one (device tests), a loop of its own on an I/O thread.  The loop runs the
 * completions (block_aio_complete) that controllers then handle under their own locks.  A media
 * change swaps the disk's aio context on the loop thread, which re-registers the new eventfd, so
 * the loop never sees a closed context and never needs to look for a new one.
 *
 * storage_destroy() runs with the vCPUs stopped and the loop no longer running: it drains every
 * disk (the last callbacks run against live controllers), destroys the controllers, then closes
 * the disks.  As a machine device ("storage", devices/device.h) storage is created last, with its
 * control verbs, and its quiesce and reset run for a guest reboot.
 */
#ifndef MINIVMM_DEVICES_STORAGE_H
#define MINIVMM_DEVICES_STORAGE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "devices/disk.h"

struct pci_bus;
struct io_bus;
struct guest_memory;
struct device_env;
struct event_loop;

/* What a controller may use of the machine. */
struct storage_env {
	struct pci_bus *pci;
	struct io_bus *pio;
	const struct guest_memory *mem;
	/* Drive an interrupt line (ISA IRQ / GSI); edge-triggered lines are raised and lowered. */
	int (*set_irq)(void *opaque, unsigned gsi, bool level);
	void *irq_opaque;
	struct event_loop *loop; /* NULL: storage runs a loop of its own on an I/O thread */
	unsigned ncpus;		 /* vCPUs: virtio-blk gives each its own request queue */
	/* werror=stop: a disk's write failed; the VM should pause (any thread; NULL: nothing). */
	void (*io_error_pause)(void *opaque);
	void *pause_opaque;
};

struct storage_controller {
	enum disk_bus bus;
	const char *name; /* for messages: "IDE (PIIX4)" */
	/* Pure check of the attachment (positions, counts) before anything is opened. */
	int (*check)(const struct disk_config *cfgs, unsigned n);
	/* Attach `n` opened disks (in command-line order); *state is the controller's. */
	int (*create)(const struct storage_env *env, struct disk **disks, unsigned n, void **state);
	void (*destroy)(void *state);
	/* Machine reset with nothing in flight: registers and drives back to power-on (the disks
	 * stay open). */
	void (*reset)(void *state);
	/* Swap the medium of CD-ROM `d` with *m (which receives the old one), under the
	 * controller's lock; -EBUSY when a request on the medium is in flight, -EPERM while the
	 * guest locks the tray (PREVENT MEDIUM REMOVAL) unless force. May be NULL. */
	int (*change_medium)(void *state, struct disk *d, struct disk_medium *m, bool force);
};

void storage_controller_register(const struct storage_controller *c);
#define STORAGE_CONTROLLER(var)                                                                    \
	static void __attribute__((constructor)) var##_register(void)                              \
	{                                                                                          \
		storage_controller_register(&(var));                                               \
	}

/* Every configuration can be attached: its bus has a controller, which accepts the group. */
int storage_check(const struct disk_config *cfgs, unsigned n);

struct storage;
int storage_create(const struct storage_env *env, const struct disk_config *cfgs, unsigned n,
		   struct storage **out);
void storage_destroy(struct storage *s);

/* Media change (the control verbs cdrom-eject and cdrom-insert call this): `index` counts the
 * CD-ROM drives from 0 in command-line order; path NULL ejects. */
int storage_change_medium(struct storage *s, unsigned index, const char *path, bool force);
/* Disk `index` in command-line order (--disk and --cdrom together), NULL past the end. */
struct disk *storage_disk(struct storage *s, unsigned index);

/* Wait until no request is in flight on any disk (woken by the completions; -EBUSY if they do
 * not end within a minute, a bound against a host file system that never answers).  Not on the
 * loop's thread (-EDEADLK): the loop is what runs the completions.  The vCPUs must be paused, or
 * new requests may come at any time. */
int storage_drain(struct storage *s);
/* Machine reset (after storage_drain): every controller back to power-on. */
void storage_reset(struct storage *s);

/* VM snapshot of a paused VM (vmm/vm_snapshot.h), in two steps with the vCPUs paused:
 * storage_quiesce drains (storage_drain) and flushes every writable disk; storage_switch_layers
 * then makes each hard disk i with layers[i] set write layers[i] (in formats[i]), a new
 * differencing image over its current top (which stays read-locked, in the new chain). All or
 * nothing: on failure every disk keeps its chain. */
int storage_quiesce(struct storage *s);
int storage_switch_layers(struct storage *s, const char *const *layers, const char *const *formats,
			  unsigned n);

/* werror=stop: submit again the writes that waited for a resume; how many. */
unsigned storage_retry_stopped(struct storage *s);

/* Register cdrom-eject and cdrom-insert on the VM's control socket (storage_control.c). */
int storage_register_verbs(struct storage *s, const struct device_env *env);

#endif
