// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers of ip_vs_mh_rs.
 *
 * The scheduler object itself lives here: IPVS needs a struct with a stable
 * address, an initialised list head and THIS_MODULE, and its callbacks are
 * the Rust functions declared in helpers.h. The other helpers wrap static
 * inline functions and macros of the IPVS and networking headers.
 */

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/skbuff.h>
#include <linux/siphash.h>
#include <net/ip_vs.h>

#include "helpers.h"

static struct ip_vs_scheduler mh_rs_scheduler = {
	.name = "mh",
	.refcnt = ATOMIC_INIT(0),
	.module = THIS_MODULE,
	.n_list = LIST_HEAD_INIT(mh_rs_scheduler.n_list),
	.init_service = mh_rs_init_service,
	.done_service = mh_rs_done_service,
	.add_dest = mh_rs_dest_changed,
	.del_dest = mh_rs_dest_changed,
	.upd_dest = mh_rs_dest_changed,
	.schedule = mh_rs_schedule,
};

int mh_rs_register(void)
{
	return register_ip_vs_scheduler(&mh_rs_scheduler);
}

void mh_rs_unregister(void)
{
	unregister_ip_vs_scheduler(&mh_rs_scheduler);
}

/*
 * Copy the service's real servers, in IPVS list order (newest first), into
 * @out. Called with the IPVS configuration mutex held, so the list is stable.
 * Returns the number of servers, which may exceed @max (then only @max were
 * copied).
 */
unsigned int mh_rs_svc_dests(struct ip_vs_service *svc,
			     struct mh_rs_dest_info *out, unsigned int max)
{
	struct ip_vs_dest *dest;
	unsigned int n = 0;

	list_for_each_entry(dest, &svc->destinations, n_list) {
		if (n < max) {
			out[n].dest = dest;
			out[n].addr = dest->addr;
			out[n].port = dest->port;
			out[n].af = dest->af;
			out[n].weight = atomic_read(&dest->weight);
		}
		n++;
	}
	return n;
}

void mh_rs_dest_hold(struct ip_vs_dest *dest)
{
	ip_vs_dest_hold(dest);
}

void mh_rs_dest_put(struct ip_vs_dest *dest)
{
	ip_vs_dest_put(dest);
}

/* Same test as the C scheduler: a server is usable unless quiesced or overloaded. */
bool mh_rs_dest_available(const struct ip_vs_dest *dest)
{
	return atomic_read(&dest->weight) > 0 &&
	       !(READ_ONCE(dest->flags) & IP_VS_DEST_F_OVERLOAD);
}

/*
 * The client's address and port for this packet. For an ICMP error about a
 * flow (an "inverse" header) the client is the embedded packet's destination.
 * Ports are at the same place in TCP, UDP and SCTP headers; other protocols
 * hash with port 0.
 */
void mh_rs_flow_of(const struct sk_buff *skb, const struct ip_vs_iphdr *iph,
		   struct mh_rs_flow *flow)
{
	bool inverse = ip_vs_iph_inverse(iph);
	__be16 _ports[2], *ports;

	flow->addr = inverse ? iph->daddr : iph->saddr;
	flow->port = 0;
	switch (iph->protocol) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		ports = skb_header_pointer(skb, iph->len, sizeof(_ports), _ports);
		if (likely(ports))
			flow->port = inverse ? ports[1] : ports[0];
		break;
	default:
		break;
	}
}

/* "TCP 192.0.2.1:80", "UDP [2001:db8::1]:53" or "FWM 7", for log messages. */
void mh_rs_svc_name(const struct ip_vs_service *svc, char *buf, size_t len)
{
	const char *proto;

	if (svc->fwmark) {
		snprintf(buf, len, "FWM %u", svc->fwmark);
		return;
	}
	switch (svc->protocol) {
	case IPPROTO_TCP:
		proto = "TCP";
		break;
	case IPPROTO_UDP:
		proto = "UDP";
		break;
	case IPPROTO_SCTP:
		proto = "SCTP";
		break;
	default:
		proto = "IP";
		break;
	}
#ifdef CONFIG_IP_VS_IPV6
	if (svc->af == AF_INET6) {
		snprintf(buf, len, "%s [%pI6c]:%u", proto, &svc->addr.in6,
			 ntohs(svc->port));
		return;
	}
#endif
	snprintf(buf, len, "%s %pI4:%u", proto, &svc->addr.ip, ntohs(svc->port));
}

/* The kernel's own hsiphash of a u32, for the KUnit cross-check. */
u32 mh_rs_kernel_hsiphash_u32(u32 value, u64 key0, u64 key1)
{
	hsiphash_key_t key = { .key = { key0, key1 } };

	return hsiphash(&value, sizeof(value), &key);
}
