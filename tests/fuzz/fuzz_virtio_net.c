/* virtio-net driven by a hostile driver (fuzz_virtio_ops.h) and a hostile peer at once: transmit
 * chains with any vnet header (GSO types, checksum offsets, lengths) and any split, receive
 * buffers of any size with or without mergeable buffers, and frames of any length and content
 * from the switch's end of the socket pair.  The NIC works on the fixture's loop thread, as in
 * the VM.  The NIC, its socket pair and the loop are made once (a thread and a socket per input
 * held the rate near a hundred inputs a second); before each input come a machine reset (the
 * NIC's and the PCI bus's), both sockets emptied, the RAM zeroed and the driver's queue state
 * forgotten.  The NIC has two queue pairs (multi-queue): the input's frames from the peer steer
 * over them once a control command picked both, and control commands come whole (any class,
 * command and data, queue-pair counts of any value) or as the hostile driver builds them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "devices/virtio/net/virtio_net.h"
#include "tests/fuzz/fuzz_virtio_ops.h"

#define PAIRS 2
#define NQ (2 * PAIRS + 1) /* rx and tx per pair, control */
#define CTRL_GPA 0x1F0000u /* a control command and its ack byte (below FV_RAM_USED) */

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
				     .mac = {0x02, 0, 0, 0, 0, 1},
				     .queues = PAIRS};
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
	case 2: { /* a whole control command (MQ VQ_PAIRS_SET half the time), then counters */
		uint8_t cmd[2 + 16];
		size_t n = take_u8(in) % (sizeof(cmd) - 1);
		take_bytes(in, cmd, n + 2);
		if (n & 1)
			cmd[0] = 4, cmd[1] = 0; /* VIRTIO_NET_CTRL_MQ, VQ_PAIRS_SET */
		memcpy(vf_ram(&f, CTRL_GPA, sizeof(cmd)), cmd, n + 2);
		struct vf_buf b[3] = {{CTRL_GPA, 2, false},
				      {CTRL_GPA + 2, (uint32_t)n, false},
				      {CTRL_GPA + 0x100, 1, true}};
		if (f.qsize[NQ - 1]) {
			if (n)
				vf_post(&f, NQ - 1, b, 3);
			else
				vf_post(&f, NQ - 1, (struct vf_buf[]){b[0], b[2]}, 2);
			vf_kick(&f, NQ - 1);
		}
		struct virtio_net_stats s;
		virtio_net_get_stats(net, &s);
		if (s.pairs < 1 || s.pairs > PAIRS)
			abort(); /* the pairs in use are always ones the NIC has */
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
