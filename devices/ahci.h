/* AHCI SATA controller: an ICH9-class HBA (8086:2922, class 01.06.01) that Linux's `ahci` driver
 * binds as board_ahci.  ABAR is BAR5 (4 KiB MMIO), also reachable through the index/data pair in
 * I/O BAR4; one disk or CD-ROM per port; NCQ with 32 tags (queued TRIM, FUA); MSI (one vector)
 * with INTx fallback.
 *
 * Ports without a drive report no device (SSTS.DET = 0).  Commands reach the disk through the
 * block layer's asynchronous requests (storage/core/block_aio.h): their callbacks must run on a thread
 * that does not hold any device lock (the VM's completion thread, or a test's).
 */
#ifndef MINIVMM_DEVICES_AHCI_H
#define MINIVMM_DEVICES_AHCI_H

#include <stdbool.h>

struct ahci;
struct pci_bus;
struct guest_memory;
struct disk;

#define AHCI_DEFAULT_PORTS 6 /* as on ICH9 */

/* Create the controller with `nports` ports (1..30) and register it on `bus` (slot -1: first free).
 * `mem` is guest RAM: every command list, table, PRDT and FIS area goes through guest_memory_ptr.
 */
int ahci_create(struct pci_bus *bus, int slot, const struct guest_memory *mem, unsigned nports,
		struct ahci **out);
/* Put a disk or CD-ROM (devices/disk.h; owned by the caller, closed after ahci_destroy) behind
 * port `port`. -EINVAL for a bad port, -EBUSY when the port already has a drive. */
int ahci_attach(struct ahci *hba, unsigned port, struct disk *disk);
/* Cancels whatever is in flight (waiting for the block layer's callbacks: the completion thread
 * must still run), unregisters from the bus and frees. */
void ahci_destroy(struct ahci *hba);
/* Machine reset: an HBA reset (it waits for requests in flight), then the power-on values that HR
 * keeps (PxCLB/PxFB) and each drive's own settings (ata_device_power_on). */
void ahci_power_on(struct ahci *hba);

#endif
