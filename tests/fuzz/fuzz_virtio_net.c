/* virtio-net driven by a hostile driver (fuzz_virtio_ops.h) and a hostile peer at once: transmit
 * chains with any vnet header (GSO types, checksum offsets, lengths) and any split, receive
 * buffers of any size with or without mergeable buffers, and frames of any length and content
 * from the switch's end of the socket pair.  The NIC works on the fixture's loop thread, as in
 * the VM.  The NIC, its socket pair and the loop are made once (a thread and a socket per input
 * held the rate near a hundred inputs a second); before each input come a machine reset (the
 * NIC's and the PCI bus's), both sockets emptied, the RAM zeroed and the driver's queue state
 * forgotten. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "devices/virtio/net/virtio_net.h"
#include "tests/fuzz/fuzz_virtio_ops.h"

#define NQ 2 /* rx, tx (no control queue is offered) */

static struct vf f;
static struct virtio_net *net;
static int sv[2];
static uint8_t frame[65600];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (vf_init(&f, true) < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv) < 0)
		abort();
	fuzz_ram_small_pages(&f.mem);
	struct virtio_net_env env = {.pci = f.bus,
				     .mem = &f.mem,
				     .loop = f.loop,
				     .fd = sv[0],
				     .is_socket = true,
				     .mac = {0x02, 0, 0, 0, 0, 1}};
	if (virtio_net_create(&env, &net) < 0)
		abort();
	vf_loop_start(&f);
	return 0;
}

/* Power-on state again, as far as the next input can tell. */
static void machine_reset(void)
{
	virtio_net_reset(net);
	pci_bus_reset(f.bus);
	for (int i = 0; i < 2; i++)
		while (recv(sv[i], frame, sizeof(frame), MSG_DONTWAIT) >= 0)
			;
	fv_driver_reset(&f);
}

/* The target's own steps: the peer's side and host requests. */
static void net_step(struct fuzz_input *in, uint8_t op)
{
	switch (op & 3) {
	case 0: { /* a frame from the switch: any length, any bytes */
		size_t n = take_u16(in);
		if (take_u8(in) & 1)
			n |= 0x10000; /* past the largest frame */
		n = n > sizeof(frame) ? sizeof(frame) : n;
		take_bytes(in, frame, n < 64 ? n : 64);
		send(sv[1], frame, n, MSG_DONTWAIT);
		break;
	}
	case 1: /* the switch reads what the guest sent */
		while (recv(sv[1], frame, sizeof(frame), MSG_DONTWAIT) > 0)
			;
		break;
	case 2: { /* counters */
		struct virtio_net_stats s;
		virtio_net_get_stats(net, &s);
		break;
	}
	default: /* machine reset */
		virtio_net_reset(net);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = {data, size};
	uint8_t flags = take_u8(&in);

	machine_reset();
	fv_run(&f, &in, flags, NQ, net_step);
	return 0;
}
