/*
 * Thread channels by new connections (tools/wk_attach.c), for transports
 * that cannot pass descriptors.
 */
#ifndef VGPU_WK_ATTACH_H
#define VGPU_WK_ATTACH_H

#include <stdint.h>

#include "vgpu/wire.h"

struct tp_chan;

/* The owning worker: a session id and its rendezvous listener. */
int wk_attach_listen(void);
int wk_attach_fd(void);			/* -1 when not listening */
void wk_attach_close(void);
/* A new single-use token for channel tid; fills a (the ATTACH to send). */
int wk_attach_offer(uint32_t tid, struct vg_attach *a);
/* Serves one connection on the rendezvous socket: a valid ATTACH starts
 * the channel's host thread (wk_thread_start), anything else is refused. */
void wk_attach_accept(void);
/* Starts the host thread serving tid on chan (which it takes) after
 * answering THREAD_OPENED on it; 0 or a negative errno (chan untouched). */
int wk_thread_start(uint32_t tid, struct tp_chan *chan, uint64_t seq);

/* A fresh worker whose first message is ATTACH: hands guest's connection
 * to the owning worker.  0, or a negative errno after telling the guest. */
int wk_attach_forward(struct tp_chan *guest, const struct vg_hdr *h, const void *payload, size_t n);

#endif
