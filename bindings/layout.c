// SPDX-License-Identifier: GPL-2.0
/*
 * Offsets and sizes, as the C compiler sees them, of every field that the
 * Rust side reads through bindgen's declarations. Compiled to assembly only;
 * Kbuild turns the markers into bindings/layout.rs, and bindings/mod.rs
 * asserts at compile time that bindgen agrees.
 */

#include <linux/kbuild.h>
#include <net/ip_vs.h>

#include "helpers.h"

void mh_rs_layout(void);

void mh_rs_layout(void)
{
	DEFINE(SVC_SIZE, sizeof(struct ip_vs_service));
	OFFSET(SVC_AF, ip_vs_service, af);
	OFFSET(SVC_FLAGS, ip_vs_service, flags);
	OFFSET(SVC_SCHED_DATA, ip_vs_service, sched_data);
	OFFSET(SVC_NUM_DESTS, ip_vs_service, num_dests);
	DEFINE(DEST_INFO_SIZE, sizeof(struct mh_rs_dest_info));
	OFFSET(DEST_INFO_ADDR, mh_rs_dest_info, addr);
	OFFSET(DEST_INFO_PORT, mh_rs_dest_info, port);
	OFFSET(DEST_INFO_WEIGHT, mh_rs_dest_info, weight);
	DEFINE(FLOW_SIZE, sizeof(struct mh_rs_flow));
	OFFSET(FLOW_PORT, mh_rs_flow, port);
	DEFINE(ADDR_SIZE, sizeof(union nf_inet_addr));
}
