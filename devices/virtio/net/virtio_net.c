/* virtio-net frames (see virtio_net.h).  Everything runs with the transport lock: queue
 * notifications (from the loop's ioeventfds or a vCPU) and the fd's events on the loop. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "devices/virtio/net/net_ctrl.h"
#include "devices/virtio/net/rx_steer.h"
#include "devices/virtio/net/virtio_net.h"
#include "devices/virtio/virtio.h"
#include "devices/virtio/virtio_pci.h"
#include "lib/event_loop.h"
#include "lib/log.h"
#include "net/vnet_hdr.h"
#include "lib/endian.h"

/* Pair i's receive queue is 2i, its transmit queue 2i+1; the control queue comes last. */
#define RXQ(i) (2 * (i))
#define TXQ(i) (2 * (i) + 1)
#define CTRLQ(n) (2 * (n)->max_pairs)
#define RX_PEEK 128	/* bytes of a frame peeked for the filter and the steering */
#define RX_BATCH 64	/* frames per fd event before the other loop sources get their turn */
#define RX_IOV_MAX 1024 /* UIO_MAXIOV: more pieces than this take the copying path */
#define PCI_CLASS_NETWORK_ETHERNET 0x020000

/* A receive queue's buffers held for the frame being received. */
struct net_rxq {
	struct vq_elem *elems;
	unsigned nelems;
	uint64_t room;
};

/* A transmit queue's chain the fd could not take yet. */
struct net_txq {
	struct vq_elem elem;
	uint8_t hdr[VNET_HDR_LEN];
	bool blocked;
};

struct virtio_net {
	struct virtio_pci *vp;
	struct event_loop *loop;
	struct event_source *src;
	int fd;
	bool is_socket, backend_up;
	uint8_t mac[6]; /* as created: a reset restores it */
	uint64_t features;
	struct net_rx_filter filter; /* the address now, modes and tables (control queue) */
	bool announce;		     /* VIRTIO_NET_S_ANNOUNCE: waiting for the driver's ACK */
	struct vq_elem ctrl_elem;
	unsigned max_pairs, pairs; /* queue pairs offered, in use (MQ; 1 after reset) */
	/* receive: one frame read from the fd waiting for guest buffers on pair rx_q (all pairs
	 * share the one fd), and the buffers each queue holds */
	uint8_t *rxbuf;
	size_t rx_len;
	unsigned rx_q;
	bool rx_pending, rx_waiting;
	struct net_rxq rxq[VIRTIO_NET_MAX_PAIRS];
	struct iovec *rx_iov;	/* RX_IOV_MAX: the held buffers, for a receive straight into them */
	struct net_txq *txq;	/* max_pairs */
	struct net_steer steer; /* the pair each flow last transmitted on: its receive queue */
	struct virtio_net_stats st;
};

static bool has(const struct virtio_net *n, unsigned bit)
{
	return n->features >> bit & 1;
}

static bool tx_any_blocked(const struct virtio_net *n)
{
	for (unsigned i = 0; i < n->max_pairs; i++)
		if (n->txq[i].blocked)
			return true;
	return false;
}

static void tx_unblock_all(struct virtio_net *n)
{
	for (unsigned i = 0; i < n->max_pairs; i++)
		n->txq[i].blocked = false;
}

static void update_events(struct virtio_net *n)
{
	uint32_t ev = 0;
	if (n->backend_up && !n->rx_waiting)
		ev |= EPOLLIN;
	if (n->backend_up && tx_any_blocked(n))
		ev |= EPOLLOUT;
	event_source_set_events(n->src, ev);
}

/* The peer went away (the switch stopped, the TAP was deleted): stop watching; transmits are
 * dropped from now on. */
static void backend_down(struct virtio_net *n, int err)
{
	if (!n->backend_up)
		return;
	n->backend_up = false;
	log_warn("virtio-net", "%02x:%02x:%02x:%02x:%02x:%02x: host side closed (%s)", n->mac[0],
		 n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5],
		 err ? strerror(err) : "end of file");
	tx_unblock_all(n);
	update_events(n);
	virtio_pci_config_changed(n->vp); /* the guest sees the link go down */
}

/* --- receive ---------------------------------------------------------------------------- */

/* Check a received frame's header (hdr, flen frame bytes after it) and make it fit what the
 * guest negotiated: false to drop the frame.  `frame` is needed only to complete a checksum in
 * software (a guest without GUEST_CSUM); NULL otherwise. */
static bool rx_fix_header(struct virtio_net *n, uint8_t hdr[VNET_HDR_LEN], uint8_t *frame,
			  size_t flen)
{
	static const struct vnet_accept any = {
	    .csum = true, .tso4 = true, .tso6 = true, .ecn = true, .ufo = true};
	struct vnet_hdr h;
	vnet_hdr_get(hdr, &h);
	if (vnet_hdr_check(&h, flen, &any) != VNET_OK)
		return false;
	struct vnet_accept guest = {.csum = has(n, VIRTIO_NET_F_GUEST_CSUM),
				    .tso4 = has(n, VIRTIO_NET_F_GUEST_TSO4),
				    .tso6 = has(n, VIRTIO_NET_F_GUEST_TSO6),
				    .ecn = has(n, VIRTIO_NET_F_GUEST_ECN)};
	if (h.gso_type != VNET_GSO_NONE && vnet_hdr_check(&h, flen, &guest) != VNET_OK)
		return false; /* segmentation in software is not done here */
	if (!guest.csum) {
		if (!frame)
			return false;
		vnet_complete_csum(&h, frame, flen);
		h.flags = 0;
	}
	h.num_buffers = 1;
	vnet_hdr_put(hdr, &h);
	return true;
}

/* The frame read into rxbuf: false to drop it. */
static bool rx_fixup(struct virtio_net *n)
{
	if (n->rx_len < VNET_HDR_LEN)
		return false;
	return rx_fix_header(n, n->rxbuf, n->rxbuf + VNET_HDR_LEN, n->rx_len - VNET_HDR_LEN);
}

/* Does the frame whose header+frame start is `msg` (len bytes) pass the receive filter? */
static bool rx_wanted(struct virtio_net *n, const uint8_t *msg, size_t len)
{
	n->rx_q = len > VNET_HDR_LEN
		      ? net_rx_steer(&n->steer, msg + VNET_HDR_LEN, len - VNET_HDR_LEN, n->pairs)
		      : 0;
	if (!has(n, VIRTIO_NET_F_CTRL_RX) || len < VNET_HDR_LEN + 6 ||
	    net_rx_filter_accept(&n->filter, msg + VNET_HDR_LEN))
		return true;
	n->st.rx_filtered++;
	return false;
}

/* Give the guest back buffers it cannot use for this frame (mergeable buffers too small even
 * all together): zero-length used entries, which drivers count as length errors. */
static void rx_return_all(struct net_rxq *q, struct virtqueue *vq)
{
	for (unsigned i = 0; i < q->nelems; i++)
		vq_push(vq, q->elems[i].head, q->elems[i].ndesc, 0);
	q->nelems = 0;
	q->room = 0;
}

/* Hold guest buffers until they fit rx_len bytes: 0 they do, -EAGAIN no buffers yet, -E2BIG the
 * frame can never fit them (dropped: the buffers are kept or given back), -EIO the ring is
 * broken. */
static int rx_take_buffers(struct virtio_net *n)
{
	struct virtqueue *vq = virtio_pci_queue(n->vp, RXQ(n->rx_q));
	struct net_rxq *q = &n->rxq[n->rx_q];
	bool mrg = has(n, VIRTIO_NET_F_MRG_RXBUF);
	while (q->room < n->rx_len) {
		if (!mrg && q->nelems == 1)
			return -E2BIG; /* bigger than the one buffer: keep it for the next */
		if (q->nelems == VIRTIO_NET_RX_ELEMS) {
			rx_return_all(q, vq);
			return -E2BIG;
		}
		struct vq_elem *e = &q->elems[q->nelems];
		int got = vq_pop(vq, e);
		if (got < 0) {
			virtio_pci_needs_reset(n->vp, "receive queue: malformed chain");
			return -EIO;
		}
		if (got == 0) {
			if (vq_more_after_idle(vq))
				continue;
			return -EAGAIN;
		}
		/* Receive buffers are device-writable only and hold at least the header. */
		if (e->out.bytes || e->in.bytes < VNET_HDR_LEN) {
			virtio_pci_needs_reset(n->vp, "receive buffer readable or shorter than the "
						      "virtio-net header");
			return -EIO;
		}
		q->room += e->in.bytes;
		q->nelems++;
	}
	return 0;
}

/* The held buffers took rx_len bytes (the header already in the first): return them to the
 * guest with num_buffers set.  Buffers are popped only while the frame does not fit, so all of
 * them were used. */
static void rx_complete(struct virtio_net *n)
{
	struct virtqueue *vq = virtio_pci_queue(n->vp, RXQ(n->rx_q));
	struct net_rxq *q = &n->rxq[n->rx_q];
	uint8_t nb[2];
	size_t off = 0;
	put_le16(nb, (uint16_t)q->nelems);
	sg_list_from_buf(&q->elems[0].in, 10, nb, 2); /* num_buffers */
	for (unsigned i = 0; i < q->nelems; i++) {
		struct vq_elem *e = &q->elems[i];
		size_t len = n->rx_len - off < e->in.bytes ? n->rx_len - off : (size_t)e->in.bytes;
		vq_push(vq, e->head, e->ndesc, (uint32_t)len);
		off += len;
	}
	q->nelems = 0;
	q->room = 0;
	n->st.rx_frames++;
	n->st.rx_queue_frames[n->rx_q]++;
	n->st.rx_bytes += n->rx_len - VNET_HDR_LEN;
}

/* Copy the frame in rxbuf into the held buffers. */
static void rx_copy_in(struct virtio_net *n)
{
	const struct net_rxq *q = &n->rxq[n->rx_q];
	size_t off = 0;
	for (unsigned i = 0; i < q->nelems && off < n->rx_len; i++)
		off += sg_list_from_buf(&q->elems[i].in, 0, n->rxbuf + off, n->rx_len - off);
}

/* Copy the pending frame (rxbuf) into guest buffers: 0 delivered (or dropped), -EAGAIN no
 * buffers yet, -EIO the ring is broken. */
static int rx_deliver(struct virtio_net *n)
{
	int r = rx_take_buffers(n);
	if (r == -E2BIG) {
		n->st.rx_drops++;
		return 0;
	}
	if (r < 0)
		return r;
	rx_copy_in(n);
	rx_complete(n);
	return 0;
}

/* Throw away the message at the head of the socket. */
static void rx_discard(struct virtio_net *n)
{
	(void)!recv(n->fd, NULL, 0, MSG_DONTWAIT | MSG_TRUNC);
	n->st.rx_drops++;
}

/* The held buffers' first rx_len bytes as an iovec in rx_iov: the entries, or -ENOSPC when they
 * are in more pieces than one recvmsg takes. */
static int rx_buffers_iov(struct virtio_net *n)
{
	const struct net_rxq *q = &n->rxq[n->rx_q];
	int cnt = 0;
	size_t left = n->rx_len;
	for (unsigned i = 0; i < q->nelems && left; i++) {
		const struct vq_elem *e = &q->elems[i];
		size_t take = left < e->in.bytes ? left : (size_t)e->in.bytes;
		int c = sg_list_slice(&e->in, 0, take, n->rx_iov + cnt, RX_IOV_MAX - (unsigned)cnt);
		if (c < 0)
			return -ENOSPC;
		cnt += c;
		left -= take;
	}
	return cnt;
}

/* A switch port socket, to a guest that takes checksum offload: peek the next message's length
 * and header, check the header, hold guest buffers for it and receive it straight into them (no
 * copy through rxbuf).  1: a frame was delivered or dropped, 0: stop (no message, no buffers,
 * backend gone), -EIO: the ring is broken. */
static int rx_direct(struct virtio_net *n)
{
	uint8_t hdr[VNET_HDR_LEN + RX_PEEK]; /* and the frame's start: filter and steering */
	ssize_t len = recv(n->fd, hdr, sizeof(hdr), MSG_DONTWAIT | MSG_PEEK | MSG_TRUNC);
	if (len < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (len <= 0) {
		backend_down(n, len < 0 ? errno : 0);
		return 0;
	}
	if (len > VNET_MAX_MSG || len < VNET_HDR_LEN ||
	    !rx_fix_header(n, hdr, NULL, (size_t)len - VNET_HDR_LEN) ||
	    !virtio_pci_running(n->vp) ||
	    !rx_wanted(n, hdr, (size_t)len < sizeof(hdr) ? (size_t)len : sizeof(hdr))) {
		rx_discard(n);
		return 1;
	}
	n->rx_len = (size_t)len;
	int r = rx_take_buffers(n);
	if (r == -EAGAIN) {
		n->rx_waiting = true; /* the frame stays in the socket until buffers come */
		update_events(n);
		return 0;
	}
	if (r == -E2BIG) {
		rx_discard(n);
		return 1;
	}
	if (r < 0)
		return r;
	int cnt = rx_buffers_iov(n);
	struct msghdr mh = {.msg_iov = n->rx_iov, .msg_iovlen = (size_t)cnt};
	ssize_t got = cnt < 0 ? recv(n->fd, n->rxbuf, VNET_MAX_MSG, MSG_DONTWAIT)
			      : recvmsg(n->fd, &mh, MSG_DONTWAIT);
	if (got < 0 && (errno == EAGAIN || errno == EINTR))
		return 0; /* cannot happen (peeked): keep the buffers for the next */
	if (got != len) {
		if (got <= 0)
			backend_down(n, got < 0 ? errno : 0);
		return 0;
	}
	if (cnt < 0)
		rx_copy_in(n); /* too many pieces: through rxbuf after all */
	/* The header as checked, over what arrived (the same bytes, unless the guest wrote). */
	sg_list_from_buf(&n->rxq[n->rx_q].elems[0].in, 0, hdr, VNET_HDR_LEN);
	rx_complete(n);
	return 1;
}

/* Receive through rxbuf (a TAP, or a guest that needs checksums completed): 1 a frame was
 * delivered or dropped, 0 stop, -EIO the ring is broken. */
static int rx_copying(struct virtio_net *n)
{
	if (!n->rx_pending) {
		ssize_t r = n->is_socket
				? recv(n->fd, n->rxbuf, VNET_MAX_MSG + 1, MSG_DONTWAIT | MSG_TRUNC)
				: read(n->fd, n->rxbuf, VNET_MAX_MSG + 1);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (r <= 0) {
			backend_down(n, r < 0 ? errno : 0);
			return 0;
		}
		n->rx_len = (size_t)r;
		if (r > VNET_MAX_MSG || !rx_fixup(n) ||
		    !rx_wanted(n, n->rxbuf, n->rx_len < RX_PEEK ? n->rx_len : RX_PEEK)) {
			n->st.rx_drops++;
			return 1;
		}
		n->rx_pending = true;
	}
	if (!virtio_pci_running(n->vp)) {
		n->rx_pending = false; /* no driver: nobody to give it to */
		n->st.rx_drops++;
		return 1;
	}
	/* Again: the pairs in use may have changed while the frame waited. */
	n->rx_q =
	    net_rx_steer(&n->steer, n->rxbuf + VNET_HDR_LEN, n->rx_len - VNET_HDR_LEN, n->pairs);
	int r = rx_deliver(n);
	if (r == -EAGAIN) {
		n->rx_waiting = true;
		update_events(n);
		return 0;
	}
	n->rx_pending = false;
	return r < 0 ? r : 1;
}

static void rx_process(struct virtio_net *n)
{
	uint32_t pushed = 0; /* the pairs whose receive queue got frames */
	for (int i = 0; i < RX_BATCH && n->backend_up && !n->rx_waiting; i++) {
		bool direct = n->is_socket && !n->rx_pending && has(n, VIRTIO_NET_F_GUEST_CSUM);
		uint64_t before = n->st.rx_frames;
		int r = direct ? rx_direct(n) : rx_copying(n);
		if (n->st.rx_frames != before)
			pushed |= 1u << n->rx_q;
		if (r <= 0)
			break;
	}
	for (unsigned q = 0; q < n->max_pairs; q++)
		if (pushed >> q & 1)
			virtio_pci_queue_done(n->vp, RXQ(q));
}

/* --- transmit --------------------------------------------------------------------------- */

/* Send t's chain with its checked header in front of its frame: 0 sent or dropped, -EAGAIN not
 * yet. */
static int tx_send(struct virtio_net *n, struct net_txq *t)
{
	struct vq_elem *e = &t->elem;
	struct iovec iov[VQ_ELEM_SEGS + 1];
	iov[0] = (struct iovec){t->hdr, VNET_HDR_LEN};
	int cnt = sg_list_slice(&e->out, VNET_HDR_LEN, e->out.bytes - VNET_HDR_LEN, iov + 1,
				VQ_ELEM_SEGS);
	if (cnt < 0) {
		n->st.tx_drops++;
		return 0;
	}
	ssize_t w;
	if (n->is_socket) {
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)cnt + 1};
		w = sendmsg(n->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	} else {
		w = writev(n->fd, iov, cnt + 1);
	}
	if (w < 0 && (errno == EAGAIN || errno == EINTR || errno == ENOBUFS))
		return -EAGAIN;
	if (w < 0) {
		n->st.tx_drops++;
		if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN)
			backend_down(n, errno);
		return 0;
	}
	n->st.tx_frames++;
	n->st.tx_queue_frames[t - n->txq]++;
	if (n->pairs > 1) { /* the flow's replies come back to this pair */
		uint8_t head[RX_PEEK];
		size_t got = sg_list_to_buf(&e->out, VNET_HDR_LEN, head, sizeof(head));
		net_steer_tx(&n->steer, head, got, (unsigned)(t - n->txq));
	}
	n->st.tx_bytes += e->out.bytes - VNET_HDR_LEN;
	return 0;
}

/* Check the header of a popped chain and keep its sanitised copy in t->hdr: false to drop. */
static bool tx_check(struct virtio_net *n, struct net_txq *t)
{
	struct vq_elem *e = &t->elem;
	struct vnet_hdr h;
	if (e->out.bytes < VNET_HDR_LEN)
		return false;
	sg_list_to_buf(&e->out, 0, t->hdr, VNET_HDR_LEN);
	vnet_hdr_get(t->hdr, &h);
	struct vnet_accept acc = {.csum = has(n, VIRTIO_NET_F_CSUM),
				  .tso4 = has(n, VIRTIO_NET_F_HOST_TSO4),
				  .tso6 = has(n, VIRTIO_NET_F_HOST_TSO6),
				  .ecn = has(n, VIRTIO_NET_F_HOST_ECN)};
	if (vnet_hdr_check(&h, e->out.bytes - VNET_HDR_LEN, &acc) != VNET_OK)
		return false;
	h.flags &= VNET_HDR_F_NEEDS_CSUM; /* DATA_VALID means nothing from a sender */
	h.num_buffers = 0;
	if (h.gso_type == VNET_GSO_NONE)
		h.gso_size = h.hdr_len = 0;
	vnet_hdr_put(t->hdr, &h);
	return true;
}

static void tx_process(struct virtio_net *n, unsigned pair)
{
	struct virtqueue *vq = virtio_pci_queue(n->vp, TXQ(pair));
	struct net_txq *t = &n->txq[pair];
	bool pushed = false;
	unsigned taken = 0;
	if (t->blocked) {
		if (tx_send(n, t) == -EAGAIN)
			return;
		t->blocked = false;
		update_events(n);
		vq_push(vq, t->elem.head, t->elem.ndesc, 0);
		pushed = true;
	}
	do {
		for (;;) {
			if (taken++ == vq->size && virtio_pci_defer_notify(n->vp, TXQ(pair)))
				goto out;
			int got = vq_pop(vq, &t->elem);
			if (got < 0) {
				virtio_pci_needs_reset(n->vp, "transmit queue: malformed chain");
				goto out;
			}
			if (got == 0)
				break;
			if (!tx_check(n, t)) {
				n->st.tx_drops++;
				n->st.tx_malformed++;
			} else if (!n->backend_up) {
				n->st.tx_drops++;
			} else if (tx_send(n, t) == -EAGAIN) {
				t->blocked = true;
				update_events(n);
				goto out;
			}
			vq_push(vq, t->elem.head, t->elem.ndesc, 0);
			pushed = true;
		}
	} while (vq_more_after_idle(vq));
out:
	if (pushed)
		virtio_pci_queue_done(n->vp, TXQ(pair));
}

/* --- control ---------------------------------------------------------------------------- */

static void ctrl_process(struct virtio_net *n)
{
	struct virtqueue *vq = virtio_pci_queue(n->vp, CTRLQ(n));
	struct vq_elem *e = &n->ctrl_elem;
	bool pushed = false;
	unsigned taken = 0;
	do {
		for (;;) {
			/* A driver that keeps adding commands gets the rest on the next turn. */
			if (taken++ == vq->size && virtio_pci_defer_notify(n->vp, CTRLQ(n)))
				goto out;
			int got = vq_pop(vq, e);
			if (got < 0 || (got > 0 && (e->out.bytes < 2 || e->in.bytes < 1))) {
				virtio_pci_needs_reset(n->vp,
						       got < 0 ? "control queue: malformed chain"
							       : "control queue: command without "
								 "header or ack byte");
				goto out;
			}
			if (got == 0)
				break;
			struct net_ctrl_effect eff;
			uint8_t ack =
			    net_ctrl_run(&n->filter, &e->out, has(n, VIRTIO_NET_F_GUEST_ANNOUNCE),
					 has(n, VIRTIO_NET_F_MQ) ? n->max_pairs : 0, &eff);
			if (eff.pairs)
				n->pairs = eff.pairs; /* frames now steer over these pairs */
			if (eff.announce_ack && n->announce) {
				n->announce = false;
				virtio_pci_config_changed(n->vp);
			}
			sg_list_from_buf(&e->in, 0, &ack, 1);
			vq_push(vq, e->head, e->ndesc, 1);
			pushed = true;
		}
	} while (vq_more_after_idle(vq));
out:
	if (pushed)
		virtio_pci_queue_done(n->vp, CTRLQ(n));
}

int virtio_net_announce(struct virtio_net *n)
{
	int r = -ENOTSUP;
	virtio_pci_lock(n->vp);
	n->features = virtio_pci_features(n->vp);
	if (virtio_pci_running(n->vp) && has(n, VIRTIO_NET_F_GUEST_ANNOUNCE)) {
		n->announce = true;
		virtio_pci_config_changed(n->vp);
		r = 0;
	}
	virtio_pci_unlock(n->vp);
	return r;
}

/* --- hooks ------------------------------------------------------------------------------ */

static void fd_event(void *opaque, uint32_t events)
{
	struct virtio_net *n = opaque;
	virtio_pci_lock(n->vp);
	n->features = virtio_pci_features(n->vp);
	if ((events & EPOLLOUT) && virtio_pci_running(n->vp))
		for (unsigned i = 0; i < n->max_pairs; i++)
			if (n->txq[i].blocked)
				tx_process(n, i);
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		rx_process(n);
	virtio_pci_unlock(n->vp);
}

static void queue_notify(void *dev, unsigned q)
{
	struct virtio_net *n = dev;
	n->features = virtio_pci_features(n->vp);
	if (q == CTRLQ(n)) {
		ctrl_process(n);
	} else if (q & 1) {
		tx_process(n, q / 2);
	} else if (n->rx_waiting) {
		/* New buffers (on any receive queue: the frame's queue is picked again, the pairs
		 * in use may have changed): finish the frame that waited and go on reading. */
		n->rx_waiting = false;
		rx_process(n);
		update_events(n);
	}
}

static void reset(void *dev)
{
	struct virtio_net *n = dev;
	/* Nothing is in flight: every transfer is synchronous.  Forget the chains. */
	for (unsigned i = 0; i < n->max_pairs; i++)
		n->rxq[i].nelems = 0, n->rxq[i].room = 0;
	n->rx_q = 0;
	n->pairs = 1;
	net_steer_reset(&n->steer);
	n->rx_waiting = false;
	n->rx_pending = false;
	tx_unblock_all(n);
	n->features = 0;
	n->announce = false;
	net_rx_filter_reset(&n->filter, n->mac);
	update_events(n);
}

static void config_read(void *dev, unsigned off, uint8_t *data, unsigned len)
{
	struct virtio_net *n = dev;
	uint8_t c[VIRTIO_NET_CONFIG_LEN] = {0};
	memcpy(c, n->filter.mac, 6);
	put_le16(c + 6, (n->backend_up ? VIRTIO_NET_S_LINK_UP : 0) |
			    (n->announce ? VIRTIO_NET_S_ANNOUNCE : 0));
	put_le16(c + 8, (uint16_t)n->max_pairs);
	put_le16(c + 10, ETH_MTU);
	memcpy(data, c + off, len);
}

static const struct virtio_dev_ops net_ops = {
    .config_read = config_read,
    .queue_notify = queue_notify,
    .reset = reset,
};

static void free_buffers(struct virtio_net *n)
{
	free(n->rxbuf);
	for (unsigned i = 0; i < VIRTIO_NET_MAX_PAIRS; i++)
		free(n->rxq[i].elems);
	free(n->rx_iov);
	free(n->txq);
	free(n);
}

int virtio_net_create(const struct virtio_net_env *env, struct virtio_net **out)
{
	if (!env->loop)
		return -EINVAL;
	struct virtio_net *n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->fd = env->fd;
	n->is_socket = env->is_socket;
	n->loop = env->loop;
	n->backend_up = true;
	n->max_pairs = env->queues ? env->queues : 1;
	n->pairs = 1;
	int r = -EINVAL;
	if (n->max_pairs > VIRTIO_NET_MAX_PAIRS)
		goto fail;
	memcpy(n->mac, env->mac, 6);
	net_rx_filter_reset(&n->filter, n->mac);
	n->rxbuf = malloc(VNET_MAX_MSG + 1);
	n->rx_iov = calloc(RX_IOV_MAX, sizeof(*n->rx_iov));
	n->txq = calloc(n->max_pairs, sizeof(*n->txq));
	r = -ENOMEM;
	if (!n->rxbuf || !n->rx_iov || !n->txq)
		goto fail;
	for (unsigned i = 0; i < n->max_pairs; i++)
		if (!(n->rxq[i].elems = calloc(VIRTIO_NET_RX_ELEMS, sizeof(*n->rxq[i].elems))))
			goto fail;
	uint64_t f = 1ULL << VIRTIO_NET_F_CSUM | 1ULL << VIRTIO_NET_F_GUEST_CSUM |
		     1ULL << VIRTIO_NET_F_MTU | 1ULL << VIRTIO_NET_F_MAC |
		     1ULL << VIRTIO_NET_F_GUEST_TSO4 | 1ULL << VIRTIO_NET_F_GUEST_TSO6 |
		     1ULL << VIRTIO_NET_F_GUEST_ECN | 1ULL << VIRTIO_NET_F_HOST_TSO4 |
		     1ULL << VIRTIO_NET_F_HOST_TSO6 | 1ULL << VIRTIO_NET_F_HOST_ECN |
		     1ULL << VIRTIO_NET_F_MRG_RXBUF | 1ULL << VIRTIO_NET_F_STATUS |
		     1ULL << VIRTIO_NET_F_CTRL_VQ | 1ULL << VIRTIO_NET_F_CTRL_RX |
		     1ULL << VIRTIO_NET_F_GUEST_ANNOUNCE | 1ULL << VIRTIO_NET_F_CTRL_MAC_ADDR;
	if (n->max_pairs > 1)
		f |= 1ULL << VIRTIO_NET_F_MQ;
	struct virtio_pci_config cfg = {
	    .device_id = VIRTIO_ID_NET,
	    .class_code = PCI_CLASS_NETWORK_ETHERNET,
	    .features = f,
	    .config_len = VIRTIO_NET_CONFIG_LEN,
	    .nqueues = 2 * n->max_pairs + 1, /* receive and transmit per pair, control */
	    .queue_max = VIRTIO_NET_QUEUE_SIZE,
	    .ops = &net_ops,
	    .dev = n,
	    .mem = env->mem,
	    .loop = env->loop,
	    .slot = env->slot,
	};
	/* The source exists before the transport can call reset (which updates it). */
	r = event_loop_add_fd(env->loop, env->fd, EPOLLIN, fd_event, n, &n->src);
	if (r < 0)
		goto fail;
	r = virtio_pci_create(env->pci, &cfg, &n->vp);
	if (r < 0) {
		event_source_remove(n->src);
		goto fail;
	}
	*out = n;
	return 0;
fail:
	free_buffers(n);
	return r;
}

void virtio_net_destroy(struct virtio_net *n)
{
	if (!n)
		return;
	virtio_pci_destroy(n->vp);
	event_source_remove(n->src);
	close(n->fd);
	free_buffers(n);
}

int virtio_net_reattach(struct virtio_net *n, int fd)
{
	struct event_source *src;
	virtio_pci_lock(n->vp);
	if (n->backend_up) {
		virtio_pci_unlock(n->vp);
		return -EBUSY;
	}
	int r = event_loop_add_fd(n->loop, fd, 0, fd_event, n, &src);
	if (r < 0) {
		virtio_pci_unlock(n->vp);
		return r;
	}
	event_source_remove(n->src);
	close(n->fd);
	n->fd = fd;
	n->src = src;
	n->backend_up = true;
	n->rx_pending = false; /* a frame of the old host side is not worth keeping */
	tx_unblock_all(n);
	update_events(n);
	virtio_pci_config_changed(n->vp); /* the guest sees the link come back */
	virtio_pci_unlock(n->vp);
	return 0;
}

bool virtio_net_backend_up(struct virtio_net *n)
{
	virtio_pci_lock(n->vp);
	bool up = n->backend_up;
	virtio_pci_unlock(n->vp);
	return up;
}

void virtio_net_reset(struct virtio_net *n)
{
	virtio_pci_reset(n->vp);
}

void virtio_net_get_stats(struct virtio_net *n, struct virtio_net_stats *s)
{
	virtio_pci_lock(n->vp);
	*s = n->st;
	s->backend_up = n->backend_up;
	memcpy(s->mac, n->filter.mac, 6);
	s->promisc = !has(n, VIRTIO_NET_F_CTRL_RX) || n->filter.promisc;
	s->max_pairs = n->max_pairs;
	s->pairs = n->pairs;
	virtio_pci_unlock(n->vp);
}

struct virtio_pci *virtio_net_transport(struct virtio_net *n)
{
	return n->vp;
}
