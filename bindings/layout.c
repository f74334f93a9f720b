// SPDX-License-Identifier: GPL-2.0
/*
 * Offsets and sizes, as the C compiler sees them, of every field that the
 * Rust side reads through bindgen's declarations, of the few fields of
 * opaque structures it reads by offset (struct sk_buff's), and of every
 * structure it allocates for the kernel. Compiled to assembly only; Kbuild
 * turns the markers into bindings/layout.rs, and bindings/mod.rs asserts at
 * compile time that bindgen agrees.
 */

#include <linux/kbuild.h>
#include <linux/workqueue.h>
#include <net/ip_vs.h>
#include <net/net_namespace.h>

#include "helpers.h"

void mh_rs_layout(void);

void mh_rs_layout(void)
{
	DEFINE(SVC_SIZE, sizeof(struct ip_vs_service));
	OFFSET(SVC_AF, ip_vs_service, af);
	OFFSET(SVC_PROTOCOL, ip_vs_service, protocol);
	OFFSET(SVC_ADDR, ip_vs_service, addr);
	OFFSET(SVC_FWMARK, ip_vs_service, fwmark);
	OFFSET(SVC_PORT, ip_vs_service, port);
	OFFSET(SVC_FLAGS, ip_vs_service, flags);
	OFFSET(SVC_SCHED_DATA, ip_vs_service, sched_data);
	OFFSET(SVC_NUM_DESTS, ip_vs_service, num_dests);
	OFFSET(SVC_DESTINATIONS, ip_vs_service, destinations);
	DEFINE(DEST_SIZE, sizeof(struct ip_vs_dest));
	OFFSET(DEST_AF, ip_vs_dest, af);
	OFFSET(DEST_PORT, ip_vs_dest, port);
	OFFSET(DEST_ADDR, ip_vs_dest, addr);
	OFFSET(DEST_FLAGS, ip_vs_dest, flags);
	OFFSET(DEST_WEIGHT, ip_vs_dest, weight);
	OFFSET(DEST_CFLAGS, ip_vs_dest, cflags);
	OFFSET(DEST_LAST_WEIGHT, ip_vs_dest, last_weight);
	OFFSET(DEST_N_LIST, ip_vs_dest, n_list);
	OFFSET(LIST_NEXT, list_head, next);
	DEFINE(LIST_NEXT_SIZE, sizeof_field(struct list_head, next));
	OFFSET(SKB_LEN, sk_buff, len);
	DEFINE(SKB_LEN_SIZE, sizeof_field(struct sk_buff, len));
	OFFSET(SKB_DATA_LEN, sk_buff, data_len);
	DEFINE(SKB_DATA_LEN_SIZE, sizeof_field(struct sk_buff, data_len));
	OFFSET(SKB_DATA, sk_buff, data);
	DEFINE(SKB_DATA_SIZE, sizeof_field(struct sk_buff, data));
	DEFINE(ADDR_SIZE, sizeof(union nf_inet_addr));
	DEFINE(DWORK_SIZE, sizeof(struct delayed_work));
	OFFSET(DWORK_WORK, delayed_work, work);
	DEFINE(SCHED_SIZE, sizeof(struct ip_vs_scheduler));
	DEFINE(PERNET_OPS_SIZE, sizeof(struct pernet_operations));
}
