/* Between pci.c (config space, BARs) and pci_msi.c (MSI, MSI-X): not for devices. */
#ifndef MINIVMM_DEVICES_PCI_INTERNAL_H
#define MINIVMM_DEVICES_PCI_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

struct pci_device;

uint32_t pci_cfg_get(const struct pci_device *dev, unsigned off, unsigned len);
/* The guest wrote config bytes [offset, offset+len): deliver messages that became unmasked. Bus
 * lock held. */
void pci_msi_config_written(struct pci_device *dev, unsigned offset, unsigned len);
/* A BAR access that falls in the MSI-X table or PBA; returns false when it does not. */
bool pci_msix_bar_access(struct pci_device *dev, unsigned bar, uint64_t offset, uint8_t *data,
			 unsigned len, bool is_write);
void pci_msi_free(struct pci_device *dev);
/* MSI-X table entries masked and cleared, nothing pending (MSI lives in config space). */
void pci_msi_power_on(struct pci_device *dev);

#endif
