/* ACPI fixed hardware: PM1a event and control blocks, the PM timer, and GPE0 (ports in
 * memory/layout.h).
 *
 * Pure device logic: the VM wires acpi_pm_io() to the port ranges and supplies the two callbacks.
 * Writing SLP_TYP|SLP_EN to PM1a_CNT calls ops->sleep (S5 = power off); a status bit that is both
 * set and enabled raises the SCI (level) through ops->set_sci.
 */
#ifndef MINIVMM_DEVICES_ACPI_PM_H
#define MINIVMM_DEVICES_ACPI_PM_H

#include <stdbool.h>
#include <stdint.h>

/* The sleep-type value minivmm's DSDT puts in \_S5 (power off). */
#define ACPI_PM_SLP_TYP_S5 5

struct acpi_pm_ops {
	void (*set_sci)(void *opaque, bool level);
	void (*sleep)(void *opaque, unsigned slp_typ); /* SLP_EN written with this SLP_TYP */
	void *opaque;
};

struct acpi_pm;

int acpi_pm_create(const struct acpi_pm_ops *ops, struct acpi_pm **out);
void acpi_pm_destroy(struct acpi_pm *pm);
/* Status, enable and control back to their power-on values (SCI_EN set: no firmware hands over),
 * the timer from 0.  As a machine device: "acpi-pm" (devices/device.h). */
void acpi_pm_reset(struct acpi_pm *pm);
/* An access to `port` (absolute) in the PM block [LAYOUT_PORT_ACPI_PM, +12) or the GPE0 block.
 * Unknown offsets and odd sizes read as all-ones and ignore writes. Thread-safe. */
void acpi_pm_io(struct acpi_pm *pm, uint16_t port, uint8_t *data, unsigned len, bool is_write);
/* Set a GPE0 status bit (CPU hot-plug and friends). */
void acpi_pm_raise_gpe(struct acpi_pm *pm, unsigned bit);
/* The fixed power button: PWRBTN_STS, then SCI if enabled (`minivmm control NAME poweroff`). */
void acpi_pm_press_power_button(struct acpi_pm *pm);

#endif
