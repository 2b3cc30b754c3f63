/* virtio-blk (virtio 1.2, 5.2) on the virtio-pci transport: one disk, one request queue per vCPU.
 *
 * Requests go through the disk's asynchronous block layer (storage/core/block_aio.h); completions may
 * run on any thread (the device takes the transport lock).  Offered: SEG_MAX, SIZE_MAX, BLK_SIZE,
 * FLUSH, MQ, DISCARD and WRITE_ZEROES (with unmap) on writable disks, RO on read-only ones (whose
 * writes then fail with VIRTIO_BLK_S_IOERR).  GET_ID answers the disk's serial number.
 */
#ifndef MINIVMM_DEVICES_VIRTIO_BLK_VIRTIO_BLK_H
#define MINIVMM_DEVICES_VIRTIO_BLK_VIRTIO_BLK_H

#include <stdint.h>

struct pci_bus;
struct disk;
struct guest_memory;
struct event_loop;
struct virtio_blk;
struct virtio_pci;

#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2
#define VIRTIO_BLK_ID_BYTES 20
#define VIRTIO_BLK_CONFIG_LEN 0x3C
/* Bytes per segment.  SeaBIOS 1.16 sizes its largest request as size_max * seg_max / 512 in
 * 16 bits: with 1 MiB that came to 0, and it sent zero-length reads forever.  64 KiB keeps the
 * product (16 MiB with 256 segments) at 32768 sectors. */
#define VIRTIO_BLK_SIZE_MAX (64u << 10)
#define VIRTIO_BLK_MAX_DISCARD_SECTORS (1u << 22) /* 2 GiB per discard/write-zeroes range */

struct virtio_blk_env {
	struct pci_bus *pci;
	const struct guest_memory *mem;
	struct event_loop *loop; /* may be NULL */
	unsigned nqueues;	 /* 1..VIRTIO_PCI_MAX_QUEUES */
};

int virtio_blk_create(const struct virtio_blk_env *env, struct disk *d, struct virtio_blk **out);
/* Waits for the requests in flight (their completions must still be able to run). */
void virtio_blk_destroy(struct virtio_blk *b);
/* Machine reset: the device as after power-on (waits for the requests in flight). */
void virtio_blk_reset(struct virtio_blk *b);
/* For tests: the transport, and the requests in flight. */
struct virtio_pci *virtio_blk_transport(struct virtio_blk *b);
unsigned virtio_blk_inflight(struct virtio_blk *b);

#endif
