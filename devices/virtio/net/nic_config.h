/* `--nic` options of `minivmm run` (parsed without touching the system, unit-tested):
 *
 *   --nic switch=NAME[,mac=XX:XX:XX:XX:XX:XX][,vlan=N]   a port on a running `minivmm switch`
 *   --nic tap=TAPNAME[,mac=...]                            straight onto a host TAP device
 *   ...,queues=N                                            N receive/transmit queue pairs (1-8)
 *
 * Without mac=, the NIC gets a stable locally administered unicast MAC derived from the VM's
 * name and the NIC's index (nic_default_mac), so a VM keeps its addresses across runs.
 */
#ifndef MINIVMM_DEVICES_VIRTIO_NET_NIC_CONFIG_H
#define MINIVMM_DEVICES_VIRTIO_NET_NIC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NIC_MAX 8
#define NIC_QUEUES_MAX 8 /* queue pairs of one NIC (VIRTIO_NET_F_MQ) */

enum nic_backend { NIC_SWITCH, NIC_TAP };

struct nic_config {
	enum nic_backend backend;
	char name[65]; /* the switch (a VM-style name) or the TAP (IFNAMSIZ - 1 at most) */
	bool has_mac;
	uint8_t mac[6];
	unsigned vlan;	       /* 0: none (the switch's native VLAN) */
	char switch_path[108]; /* the switch's socket, filled in by vmm before devices are made */
	unsigned queues;       /* queue pairs, 1..NIC_QUEUES_MAX */
};

int nic_config_parse(const char *val, struct nic_config *out);
/* 02:xx:xx:xx:xx:xx from a hash of the VM name and the NIC index. */
void nic_default_mac(const char *vm_name, unsigned index, uint8_t mac[6]);

#endif
