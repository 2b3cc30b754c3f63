/* The PIIX4 power-management function (8086:7113) at 00:01.3, for OVMF only: OVMF's PlatformPei
 * and its ACPI timer library read the ACPI PM base from this function's PMBA register (0x40) on
 * an i440FX host bridge and use PMBA + 8 as the PM timer.  Here PMBA reads minivmm's fixed PM
 * block (memory/layout.h, devices/acpi_pm.c) with PMREGMISC.PMIOSE (0x80 bit 0) already set, so
 * OVMF keeps it and never moves it; both are read-only.  SeaBIOS and the operating system do not
 * see the function (function 0 of the slot does not announce functions beyond it). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/device.h"
#include "devices/pci.h"
#include "memory/layout.h"
#include "lib/endian.h"
#include "devices/machine_config.h"
#include "lib/error.h"

#define PIIX4_PM_SLOT 1
#define PIIX4_PM_FUNCTION 3
#define PIIX4_PMBA 0x40
#define PIIX4_PMREGMISC 0x80
#define PIIX4_PMBA_IO 0x01	    /* resource type: I/O space */
#define PIIX4_PMREGMISC_PMIOSE 0x01 /* PM I/O space enabled */

static int piix4_pm_create(struct device_env *env, void **state)
{
	*state = NULL;
	if (!env->machine || env->machine->kernel_boot || !env->machine->firmware_efi || !env->pci)
		return 0; /* only OVMF reads it */
	struct pci_device *dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->vendor_id = 0x8086;
	dev->device_id = 0x7113;
	dev->class_code = 0x068000; /* bridge, other */
	dev->revision = 0x03;
	put_le32(dev->cfg + PIIX4_PMBA, LAYOUT_PORT_ACPI_PM | PIIX4_PMBA_IO);
	dev->cfg[PIIX4_PMREGMISC] = PIIX4_PMREGMISC_PMIOSE;
	int r = pci_function_register(env->pci, dev, PIIX4_PM_SLOT, PIIX4_PM_FUNCTION);
	if (r < 0) {
		error_set(r, "piix4-pm: PCI 00:%02x.%u: %s", PIIX4_PM_SLOT, PIIX4_PM_FUNCTION,
			  strerror(-r));
		free(dev);
		return r;
	}
	*state = dev;
	return 0;
}

static void piix4_pm_destroy(void *state)
{
	if (!state)
		return;
	pci_device_unregister(state);
	free(state);
}

/* No reset of its own: the PCI bus puts its config space back. */
static const struct device_ops piix4_pm_device = {
    .name = "piix4-pm",
    .create = piix4_pm_create,
    .destroy = piix4_pm_destroy,
};
DEVICE(piix4_pm_device, DEVICE_LEVEL_PCI);
